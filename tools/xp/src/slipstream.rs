//! Slipstreaming `rvblkxp.sys` into an XP/2003 setup source (no F6 needed): the `i386` directory
//! of 32-bit XP/2003 or the `amd64` directory of XP x64 / Server 2003 x64, which gets the x64
//! driver. The architecture comes from `txtsetup.sif` (an x64 one has `[SourceDisksNames.amd64]`
//! or `[SourceDisksFiles.amd64]`) and must agree with the directory's name when that is `i386`
//! or `amd64`, and with the driver's PE machine.
//!
//! Edits, all idempotent (a second run leaves every byte as it was):
//!
//! * `txtsetup.sif`
//!   * i386: `[SourceDisksFiles]` (or `[SourceDisksFiles.x86]` when the former is absent);
//!     amd64: `[SourceDisksFiles.amd64]` (or `[SourceDisksFiles]` when the former is absent):
//!     `rvblkxp.sys = 1,,,,,,4_,4,1,,,1,4`
//!   * `[SCSI.Load]`: `<svc> = rvblkxp.sys,4`
//!   * `[SCSI]`: `<svc> = "<description>"`
//!   * `[HardwareIdsDatabase]`: `DETECTED\Isa\<svc> = "<svc>"` and `DETECTED\<svc> = "<svc>"`
//! * `dosnet.inf` `[Files]`: `d1,rvblkxp.sys` (only read by winnt.exe/winnt32.exe; skipped with a
//!   note when the tree has no `dosnet.inf`)
//! * the driver itself, as a plain (uncompressed) file next to them.
//!
//! `<svc>` is `rvblkxp`, or `rvblkxpd` with `--disks` (see `inf/xp/README.md`).
//!
//! Before the first change to a file, its original bytes are saved once as `<name>.rvblk-orig`;
//! an existing backup is never overwritten. Every write goes through a temporary file and a
//! rename. Files are edited as text in their own encoding (ANSI code page bytes are kept as they
//! are; UTF-8 or UTF-16LE with a byte-order mark are re-encoded the same way) and with their own
//! line ends. Anything that does not look like the expected file is refused unchanged.

use std::fs;
use std::path::{Path, PathBuf};

use crate::package::write_atomic;
use crate::{XpArch, XpError, DRIVER_FILE, SERVICE, SERVICE_DISKS};

/// Suffix of the backup of an edited file.
pub const BACKUP_SUFFIX: &str = ".rvblk-orig";

/// The `[SourceDisksFiles]` line: disk 1 (the i386 or amd64 source directory itself), text-mode
/// boot media order `4_`, destination dir 4 (`system32\drivers`), upgrade disposition 1, WinPE
/// fields `1,4`.
pub const SOURCE_DISKS_FILES_VALUE: &str = "1,,,,,,4_,4,1,,,1,4";

/// What `rvblk xp slipstream` should set up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Use the `rvblkxpd` service: RAM hard-disk images are exposed during setup too.
    pub disks: bool,
}

impl Options {
    /// The service name this choice installs.
    pub fn service(self) -> &'static str {
        if self.disks {
            SERVICE_DISKS
        } else {
            SERVICE
        }
    }

    fn description(self) -> &'static str {
        if self.disks {
            "rvblk RAM CD + RAM disks (GRUB4DOS/MEMDISK)"
        } else {
            "rvblk RAM disk/CD (GRUB4DOS/MEMDISK)"
        }
    }
}

/// What happened to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Already as wanted; not written.
    Unchanged,
    /// Written (created, edited or, for `--remove`, edited back).
    Written,
    /// Restored from its backup, and the backup removed.
    Restored,
    /// Deleted.
    Removed,
    /// Not there, so left alone (the reason is in [`Report::notes`]).
    Skipped,
}

/// The outcome of [`slipstream`] or [`remove`].
#[derive(Debug, Default)]
pub struct Report {
    pub files: Vec<(PathBuf, Change)>,
    pub notes: Vec<String>,
}

impl Report {
    /// True when nothing was written or deleted.
    pub fn unchanged(&self) -> bool {
        self.files
            .iter()
            .all(|(_, c)| matches!(c, Change::Unchanged | Change::Skipped))
    }
}

/// The architecture of the setup source in `dir` (`i386` or `amd64`), from its `txtsetup.sif`:
/// which `rvblkxp.sys` [`slipstream`] needs.
pub fn setup_arch(dir: &Path) -> Result<XpArch, XpError> {
    let tree = Tree::open(dir)?;
    let sif = TextFile::read(&tree.sif)?;
    tree.arch(&sif)
}

/// Adds `driver` (the bytes of `rvblkxp.sys` for the setup source's architecture, see
/// [`setup_arch`]) to the setup source in `dir`.
pub fn slipstream(dir: &Path, driver: &[u8], options: Options) -> Result<Report, XpError> {
    let tree = Tree::open(dir)?;
    // Read and check everything before writing anything.
    let sif = TextFile::read(&tree.sif)?;
    let arch = tree.arch(&sif)?;
    check_driver_machine(driver, arch, &tree.sif)?;
    let new_sif = edit_txtsetup_sif(&sif, &tree.sif, arch, Some(options))?;
    let dosnet = match &tree.dosnet {
        Some(path) => {
            let file = TextFile::read(path)?;
            let edited = edit_dosnet(&file, path, true)?;
            Some((path, file, edited))
        }
        None => None,
    };

    let mut report = Report::default();
    let driver_path = tree.driver_path();
    let same = fs::read(&driver_path).map(|b| b == driver).unwrap_or(false);
    if same {
        report.files.push((driver_path, Change::Unchanged));
    } else {
        write_atomic(&driver_path, driver)?;
        report.files.push((driver_path, Change::Written));
    }

    report
        .files
        .push((tree.sif.clone(), save_edit(&tree.sif, &sif, &new_sif)?));
    match dosnet {
        Some((path, file, edited)) => report
            .files
            .push((path.clone(), save_edit(path, &file, &edited)?)),
        None => {
            report.files.push((dir.join("dosnet.inf"), Change::Skipped));
            report.notes.push(format!(
                "no dosnet.inf in {}: skipped it (only winnt.exe/winnt32.exe read it; booting the CD does not)",
                dir.display()
            ));
        }
    }
    if arch == XpArch::Amd64 {
        report
            .notes
            .push("x64 (amd64) setup source: added the x64 rvblkxp.sys".to_string());
    }
    report.notes.push(format!(
        "service {}: {}",
        options.service(),
        if options.disks {
            "RAM CDs and RAM hard-disk images are exposed during setup"
        } else {
            "RAM CDs are exposed during setup, RAM hard-disk images are not (use --disks to change)"
        }
    ));
    Ok(report)
}

/// Undoes [`slipstream`]: restores each edited file from its backup when nothing else changed it
/// since, otherwise removes just the lines rvblk added; deletes the driver file.
pub fn remove(dir: &Path) -> Result<Report, XpError> {
    let tree = Tree::open(dir)?;
    let sif = TextFile::read(&tree.sif)?;
    let arch = tree.arch(&sif)?;
    let sif_plan = plan_removal(
        &tree.sif,
        &sif,
        |f, p| edit_txtsetup_sif(f, p, arch, None),
        |f, p, o| edit_txtsetup_sif(f, p, arch, Some(o)),
    )?;
    let dosnet_plan = match &tree.dosnet {
        Some(path) => {
            let file = TextFile::read(path)?;
            Some((
                path,
                plan_removal(
                    path,
                    &file,
                    |f, p| edit_dosnet(f, p, false),
                    |f, p, _| edit_dosnet(f, p, true),
                )?,
            ))
        }
        None => None,
    };

    let mut report = Report::default();
    report
        .files
        .push((tree.sif.clone(), sif_plan.apply(&tree.sif)?));
    if let Some((path, plan)) = dosnet_plan {
        report.files.push((path.clone(), plan.apply(path)?));
    }
    let driver_path = tree.driver_path();
    if driver_path.exists() {
        fs::remove_file(&driver_path).map_err(|e| XpError::io(&driver_path, "delete", e))?;
        report.files.push((driver_path, Change::Removed));
    }
    for (path, change) in &report.files {
        if *change == Change::Written {
            let backup = backup_path(path);
            if backup.exists() {
                report.notes.push(format!(
                    "{} was changed since rvblk edited it: removed rvblk's lines only and kept {}",
                    path.display(),
                    backup.display()
                ));
            }
        }
    }
    Ok(report)
}

enum RemovalPlan {
    Nothing { drop_backup: bool },
    Restore(Vec<u8>),
    Write(Vec<u8>),
}

impl RemovalPlan {
    fn apply(self, path: &Path) -> Result<Change, XpError> {
        let backup = backup_path(path);
        match self {
            RemovalPlan::Nothing { drop_backup } => {
                if drop_backup {
                    fs::remove_file(&backup).map_err(|e| XpError::io(&backup, "delete", e))?;
                }
                Ok(Change::Unchanged)
            }
            RemovalPlan::Restore(bytes) => {
                write_atomic(path, &bytes)?;
                fs::remove_file(&backup).map_err(|e| XpError::io(&backup, "delete", e))?;
                Ok(Change::Restored)
            }
            RemovalPlan::Write(bytes) => {
                write_atomic(path, &bytes)?;
                Ok(Change::Written)
            }
        }
    }
}

fn plan_removal(
    path: &Path,
    current: &TextFile,
    strip: impl Fn(&TextFile, &Path) -> Result<TextFile, XpError>,
    add: impl Fn(&TextFile, &Path, Options) -> Result<TextFile, XpError>,
) -> Result<RemovalPlan, XpError> {
    let backup = backup_path(path);
    let backup_file = match fs::read(&backup) {
        Ok(bytes) => Some(TextFile::decode(&backup, bytes)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(XpError::io(&backup, "read", e)),
    };
    let stripped = strip(current, path)?;
    if stripped.bytes == current.bytes {
        // None of our lines: nothing to undo. A backup equal to the file is just stale.
        let drop_backup = backup_file
            .as_ref()
            .is_some_and(|b| b.bytes == current.bytes);
        return Ok(RemovalPlan::Nothing { drop_backup });
    }
    if let Some(orig) = backup_file {
        for options in [Options { disks: false }, Options { disks: true }] {
            if add(&orig, &backup, options)?.bytes == current.bytes {
                return Ok(RemovalPlan::Restore(orig.bytes));
            }
        }
    }
    Ok(RemovalPlan::Write(stripped.bytes))
}

/// Writes `new` over `path` (keeping a first backup of `old`) unless they are equal.
fn save_edit(path: &Path, old: &TextFile, new: &TextFile) -> Result<Change, XpError> {
    if old.bytes == new.bytes {
        return Ok(Change::Unchanged);
    }
    let backup = backup_path(path);
    if !backup.exists() {
        write_atomic(&backup, &old.bytes)?;
    }
    write_atomic(path, &new.bytes)?;
    Ok(Change::Written)
}

/// `<file>.rvblk-orig` next to `path`.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(BACKUP_SUFFIX);
    path.with_file_name(name)
}

// ------------------------------------------------------------------------------------------
// The setup tree

struct Tree {
    dir: PathBuf,
    sif: PathBuf,
    dosnet: Option<PathBuf>,
    driver_name: String,
    /// What the directory's name says (`i386`, `amd64`), if it says anything.
    named: Option<XpArch>,
}

impl Tree {
    fn open(dir: &Path) -> Result<Tree, XpError> {
        let meta = fs::metadata(dir).map_err(|e| XpError::io(dir, "open", e))?;
        if !meta.is_dir() {
            return Err(XpError::unrecognised(
                dir,
                "not a directory (give the i386 or amd64 directory of the setup source)",
            ));
        }
        let dir_name = dir
            .canonicalize()
            .ok()
            .and_then(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy().to_ascii_lowercase())
            })
            .unwrap_or_default();
        if dir_name == "ia64" {
            return Err(XpError::Unsupported(format!(
                "{}: Itanium (ia64) setup trees are not supported: rvblk has XP/2003 drivers for \
                 x86 (i386) and x64 (amd64) only",
                dir.display()
            )));
        }
        let named = XpArch::ALL.into_iter().find(|a| dir_name == a.setup_dir());
        let entries = list_dir(dir)?;
        let find = |name: &str| {
            entries
                .iter()
                .find(|e| e.eq_ignore_ascii_case(name))
                .map(|e| dir.join(e))
        };
        let Some(sif) = find("txtsetup.sif") else {
            let sub = entries.iter().find(|e| {
                XpArch::ALL
                    .iter()
                    .any(|a| e.eq_ignore_ascii_case(a.setup_dir()))
            });
            let hint = match sub {
                Some(s) => format!(
                    "this looks like the CD root: give {}",
                    dir.join(s).display()
                ),
                None => "give the i386 or amd64 directory of an XP/2003 setup source".to_string(),
            };
            return Err(XpError::Missing {
                path: dir.join("txtsetup.sif"),
                hint,
            });
        };
        for name in ["rvblkxp.sy_"] {
            if let Some(p) = find(name) {
                return Err(XpError::unrecognised(
                    &p,
                    "a compressed copy of the driver is already there (from another tool?); delete it first so \
                     setup cannot pick a stale driver",
                ));
            }
        }
        // Reuse an existing driver file's spelling; otherwise follow txtsetup.sif's case.
        let driver_name = match entries.iter().find(|e| e.eq_ignore_ascii_case(DRIVER_FILE)) {
            Some(existing) => existing.clone(),
            None if sif.file_name().is_some_and(|n| n == "TXTSETUP.SIF") => {
                DRIVER_FILE.to_ascii_uppercase()
            }
            None => DRIVER_FILE.to_string(),
        };
        Ok(Tree {
            dir: dir.to_path_buf(),
            dosnet: find("dosnet.inf"),
            sif,
            driver_name,
            named,
        })
    }

    fn driver_path(&self) -> PathBuf {
        self.dir.join(&self.driver_name)
    }

    /// The architecture of `sif` (this tree's `txtsetup.sif`), checked against the directory's
    /// name.
    fn arch(&self, sif: &TextFile) -> Result<XpArch, XpError> {
        let has = |name: &str| !sections(&sif.lines, name).is_empty();
        if has("SourceDisksNames.ia64") || has("SourceDisksFiles.ia64") {
            return Err(XpError::Unsupported(format!(
                "{}: an Itanium (ia64) txtsetup.sif: rvblk has XP/2003 drivers for x86 (i386) and \
                 x64 (amd64) only",
                self.sif.display()
            )));
        }
        let arch = if has("SourceDisksNames.amd64") || has("SourceDisksFiles.amd64") {
            XpArch::Amd64
        } else {
            XpArch::X86
        };
        match self.named {
            Some(named) if named != arch => Err(XpError::unrecognised(
                &self.sif,
                format!(
                    "the directory is named {} but this is the txtsetup.sif of an {} ({}) setup \
                     source",
                    named.setup_dir(),
                    arch.label(),
                    arch.setup_dir()
                ),
            )),
            _ => Ok(arch),
        }
    }
}

/// Refuses a driver built for the other architecture (checked when `driver` is a PE image).
fn check_driver_machine(driver: &[u8], arch: XpArch, sif: &Path) -> Result<(), XpError> {
    match rvblk_pe::Pe::parse(driver).map(|pe| pe.machine) {
        Ok(machine) if machine != arch.pe_machine() => {
            let is = XpArch::ALL
                .into_iter()
                .find(|a| a.pe_machine() == machine)
                .map_or_else(
                    || format!("an image for PE machine {machine:#06x}"),
                    |a| format!("an {} image", a.label()),
                );
            Err(XpError::Unsupported(format!(
                "the driver given is {is}, but {} belongs to an {} ({}) setup source: \
                 use the {} rvblkxp.sys ({} in the package)",
                sif.display(),
                arch.label(),
                arch.setup_dir(),
                arch.label(),
                arch.driver_path().display()
            )))
        }
        _ => Ok(()),
    }
}

fn list_dir(dir: &Path) -> Result<Vec<String>, XpError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| XpError::io(dir, "list", e))? {
        let entry = entry.map_err(|e| XpError::io(dir, "list", e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

// ------------------------------------------------------------------------------------------
// Text files in their own encoding and line ends

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    /// Single-byte code page: each byte is kept as it is (mapped 1:1 to U+0000..U+00FF).
    Ansi,
    Utf8Bom,
    Utf16LeBom,
}

#[derive(Clone, Debug)]
pub(crate) struct TextFile {
    encoding: Encoding,
    /// Lines with their terminators.
    lines: Vec<String>,
    /// `"\r\n"` or `"\n"`: what new lines end with.
    newline: &'static str,
    /// The encoded bytes of `lines`.
    bytes: Vec<u8>,
}

impl TextFile {
    fn read(path: &Path) -> Result<TextFile, XpError> {
        let bytes = fs::read(path).map_err(|e| XpError::io(path, "read", e))?;
        TextFile::decode(path, bytes)
    }

    fn decode(path: &Path, bytes: Vec<u8>) -> Result<TextFile, XpError> {
        let (encoding, text) = if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
            if rest.len() % 2 != 0 {
                return Err(XpError::unrecognised(
                    path,
                    "UTF-16 text with an odd number of bytes",
                ));
            }
            let units: Vec<u16> = rest
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            let text = String::from_utf16(&units)
                .map_err(|_| XpError::unrecognised(path, "invalid UTF-16 text"))?;
            (Encoding::Utf16LeBom, text)
        } else if bytes.starts_with(&[0xFE, 0xFF]) {
            return Err(XpError::unrecognised(
                path,
                "big-endian UTF-16 text, which Windows setup does not use",
            ));
        } else if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
            let text = String::from_utf8(rest.to_vec()).map_err(|_| {
                XpError::unrecognised(path, "invalid UTF-8 text after a UTF-8 byte-order mark")
            })?;
            (Encoding::Utf8Bom, text)
        } else {
            if bytes.contains(&0) {
                let odd_zeros = bytes.iter().skip(1).step_by(2).filter(|b| **b == 0).count();
                let reason = if odd_zeros * 2 >= bytes.len() / 2 {
                    "looks like UTF-16 text without a byte-order mark (expected ANSI text, or UTF-16 with a BOM)"
                } else {
                    "contains NUL bytes: binary data, not a text file"
                };
                return Err(XpError::unrecognised(path, reason));
            }
            if let Some(b) = bytes
                .iter()
                .find(|b| b.is_ascii_control() && !b"\t\r\n\x0c\x1a".contains(b))
            {
                return Err(XpError::unrecognised(
                    path,
                    format!("contains control byte 0x{b:02x}: binary data, not a text file"),
                ));
            }
            (
                Encoding::Ansi,
                bytes.iter().map(|&b| char::from(b)).collect(),
            )
        };
        let lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
        let crlf = lines.iter().filter(|l| l.ends_with("\r\n")).count();
        let lf = lines.iter().filter(|l| l.ends_with('\n')).count() - crlf;
        let newline = if crlf >= lf { "\r\n" } else { "\n" };
        Ok(TextFile {
            encoding,
            lines,
            newline,
            bytes,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let text: String = self.lines.concat();
        match self.encoding {
            // Every char came from one byte or from our ASCII lines.
            Encoding::Ansi => text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect(),
            Encoding::Utf8Bom => [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat(),
            Encoding::Utf16LeBom => {
                let mut out = vec![0xFF, 0xFE];
                out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
                out
            }
        }
    }

    fn with_lines(&self, lines: Vec<String>) -> TextFile {
        let mut file = TextFile {
            lines,
            ..self.clone()
        };
        file.bytes = file.encode();
        file
    }
}

/// A section found in a file: where its header and its lines are.
struct Section {
    /// Index of the header line.
    header: usize,
    /// Index one past its last line (the next header or the end of the file).
    end: usize,
}

/// The content of a line without its terminator and surrounding blanks.
fn content(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n']).trim()
}

fn sections(lines: &[String], name: &str) -> Vec<Section> {
    let mut out = Vec::new();
    let mut current: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        if let Some(n) = rvblk_inf::section_header(line) {
            if let Some(h) = current.take() {
                out.push(Section { header: h, end: i });
            }
            if n.eq_ignore_ascii_case(name) {
                current = Some(i);
            }
        }
    }
    if let Some(h) = current {
        out.push(Section {
            header: h,
            end: lines.len(),
        });
    }
    out
}

/// One wanted state of a section: keys we own, and the lines we want for some of them.
struct SectionEdit<'a> {
    section: &'a str,
    /// Tells whether a line is one of ours (any flavour).
    ours: &'a dyn Fn(&str) -> Option<String>,
    /// (identity, wanted line without terminator), in order.
    wanted: Vec<(String, String)>,
}

/// Applies section edits: replaces or removes our existing lines, appends missing ones at the end
/// of the section's last non-blank line.
fn apply_edits(
    file: &TextFile,
    path: &Path,
    edits: &[SectionEdit<'_>],
) -> Result<TextFile, XpError> {
    let mut lines = file.lines.clone();
    for edit in edits {
        let found = sections(&lines, edit.section);
        if found.is_empty() {
            return Err(XpError::unrecognised(
                path,
                format!("no [{}] section", edit.section),
            ));
        }
        let mut present: Vec<String> = Vec::new();
        let mut remove: Vec<usize> = Vec::new();
        for s in &found {
            for (i, line) in lines.iter_mut().enumerate().take(s.end).skip(s.header + 1) {
                let Some(id) = (edit.ours)(line) else {
                    continue;
                };
                match edit
                    .wanted
                    .iter()
                    .find(|(w, _)| w.eq_ignore_ascii_case(&id))
                {
                    Some((w, text)) if !present.iter().any(|p| p.eq_ignore_ascii_case(w)) => {
                        present.push(w.clone());
                        if content(line) != text {
                            let term = terminator(line);
                            *line = format!("{text}{term}");
                        }
                    }
                    _ => remove.push(i),
                }
            }
        }
        for i in remove.into_iter().rev() {
            lines.remove(i);
        }
        let missing: Vec<&String> = edit
            .wanted
            .iter()
            .filter(|(w, _)| !present.iter().any(|p| p.eq_ignore_ascii_case(w)))
            .map(|(_, text)| text)
            .collect();
        if missing.is_empty() {
            continue;
        }
        // Recompute: removals may have shortened it (never removed its header).
        let section = sections(&lines, edit.section).swap_remove(0);
        // After the section's last non-blank line (comments count), before trailing blanks.
        let at = (section.header + 1..section.end)
            .rev()
            .find(|&i| !content(&lines[i]).is_empty())
            .map_or(section.header + 1, |i| i + 1);
        if !lines[at - 1].ends_with('\n') {
            lines[at - 1].push_str(file.newline);
        }
        for (k, text) in missing.into_iter().enumerate() {
            lines.insert(at + k, format!("{text}{}", file.newline));
        }
    }
    Ok(file.with_lines(lines))
}

fn terminator(line: &str) -> &'static str {
    if line.ends_with("\r\n") {
        "\r\n"
    } else if line.ends_with('\n') {
        "\n"
    } else {
        // The last line of a file without a final newline.
        ""
    }
}

const REQUIRED_SIF_SECTIONS: [&str; 3] = ["SCSI.Load", "SCSI", "HardwareIdsDatabase"];

/// Edits a `txtsetup.sif`: adds our lines for `options`, or (with `None`) removes them all.
fn edit_txtsetup_sif(
    file: &TextFile,
    path: &Path,
    arch: XpArch,
    options: Option<Options>,
) -> Result<TextFile, XpError> {
    let lines = &file.lines;
    // The section for the driver's own platform first where that is the usual place.
    let candidates = match arch {
        XpArch::X86 => ["SourceDisksFiles", "SourceDisksFiles.x86"],
        XpArch::Amd64 => ["SourceDisksFiles.amd64", "SourceDisksFiles"],
    };
    let Some(files_section) = candidates
        .into_iter()
        .find(|name| !sections(lines, name).is_empty())
    else {
        return Err(XpError::unrecognised(
            path,
            "no [SourceDisksFiles] section: not a txtsetup.sif",
        ));
    };
    for s in REQUIRED_SIF_SECTIONS {
        if sections(lines, s).is_empty() {
            return Err(XpError::unrecognised(
                path,
                format!("no [{s}] section: not an XP/2003 txtsetup.sif"),
            ));
        }
    }

    let services = [SERVICE, SERVICE_DISKS];
    let is_driver =
        |line: &str| rvblk_inf::entry_key(line).filter(|k| k.eq_ignore_ascii_case(DRIVER_FILE));
    let is_service = |line: &str| {
        rvblk_inf::entry_key(line).filter(|k| services.iter().any(|s| k.eq_ignore_ascii_case(s)))
    };
    let is_hwid = |line: &str| {
        rvblk_inf::entry_key(line).filter(|k| {
            services.iter().any(|s| {
                k.eq_ignore_ascii_case(&format!("DETECTED\\{s}"))
                    || k.eq_ignore_ascii_case(&format!("DETECTED\\Isa\\{s}"))
            })
        })
    };
    let wanted = |f: &dyn Fn(&str) -> Vec<(String, String)>| {
        options.map(|o| f(o.service())).unwrap_or_default()
    };
    let edits = [
        SectionEdit {
            section: files_section,
            ours: &is_driver,
            wanted: wanted(&|_| {
                vec![(
                    DRIVER_FILE.into(),
                    format!("{DRIVER_FILE} = {SOURCE_DISKS_FILES_VALUE}"),
                )]
            }),
        },
        SectionEdit {
            section: "SCSI.Load",
            ours: &is_service,
            wanted: wanted(&|s| vec![(s.into(), format!("{s} = {DRIVER_FILE},4"))]),
        },
        SectionEdit {
            section: "SCSI",
            ours: &is_service,
            wanted: options
                .map(|o| {
                    vec![(
                        o.service().into(),
                        format!("{} = \"{}\"", o.service(), o.description()),
                    )]
                })
                .unwrap_or_default(),
        },
        SectionEdit {
            section: "HardwareIdsDatabase",
            ours: &is_hwid,
            wanted: wanted(&|s| {
                vec![
                    (
                        format!("DETECTED\\Isa\\{s}"),
                        format!("DETECTED\\Isa\\{s} = \"{s}\""),
                    ),
                    (format!("DETECTED\\{s}"), format!("DETECTED\\{s} = \"{s}\"")),
                ]
            }),
        },
    ];
    apply_edits(file, path, &edits)
}

/// Edits a `dosnet.inf`: adds (or with `add == false` removes) `d1,rvblkxp.sys` in `[Files]`.
fn edit_dosnet(file: &TextFile, path: &Path, add: bool) -> Result<TextFile, XpError> {
    if sections(&file.lines, "Files").is_empty() {
        return Err(XpError::unrecognised(
            path,
            "no [Files] section: not a dosnet.inf",
        ));
    }
    // `d1,rvblkxp.sys`: disk, file.
    let is_driver = |line: &str| {
        let ("", value) = rvblk_inf::split_entry(line)? else {
            return None;
        };
        rvblk_inf::fields(value)
            .into_iter()
            .nth(1)
            .filter(|f| f.eq_ignore_ascii_case(DRIVER_FILE))
    };
    let edit = SectionEdit {
        section: "Files",
        ours: &is_driver,
        wanted: if add {
            vec![(DRIVER_FILE.into(), format!("d1,{DRIVER_FILE}"))]
        } else {
            vec![]
        },
    };
    apply_edits(file, path, &[edit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> TextFile {
        TextFile::decode(Path::new("t"), s.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn appends_before_trailing_blanks_and_is_idempotent() {
        let f = text("[Files]\r\nd1,a.sys\r\n\r\n[Other]\r\nx\r\n");
        let once = edit_dosnet(&f, Path::new("t"), true).unwrap();
        assert_eq!(
            String::from_utf8(once.bytes.clone()).unwrap(),
            "[Files]\r\nd1,a.sys\r\nd1,rvblkxp.sys\r\n\r\n[Other]\r\nx\r\n"
        );
        let twice = edit_dosnet(&once, Path::new("t"), true).unwrap();
        assert_eq!(once.bytes, twice.bytes);
        let removed = edit_dosnet(&twice, Path::new("t"), false).unwrap();
        assert_eq!(removed.bytes, f.bytes);
    }

    #[test]
    fn no_final_newline() {
        let f = text("[Files]\nd1,a.sys");
        let once = edit_dosnet(&f, Path::new("t"), true).unwrap();
        assert_eq!(
            String::from_utf8(once.bytes).unwrap(),
            "[Files]\nd1,a.sys\nd1,rvblkxp.sys\n"
        );
    }

    #[test]
    fn ansi_bytes_survive() {
        let mut bytes = b"[Files]\r\n; caf\xe9 \x80\r\nd1,a.sys\r\n".to_vec();
        let f = TextFile::decode(Path::new("t"), bytes.clone()).unwrap();
        let once = edit_dosnet(&f, Path::new("t"), true).unwrap();
        bytes.extend_from_slice(b"d1,rvblkxp.sys\r\n");
        assert_eq!(once.bytes, bytes);
    }

    #[test]
    fn utf16_with_bom_round_trips() {
        let s = "[Files]\r\nd1,a.sys\r\n";
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
        let f = TextFile::decode(Path::new("t"), bytes).unwrap();
        let once = edit_dosnet(&f, Path::new("t"), true).unwrap();
        let mut want = vec![0xFF, 0xFE];
        want.extend(
            "[Files]\r\nd1,a.sys\r\nd1,rvblkxp.sys\r\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        assert_eq!(once.bytes, want);
    }
}
