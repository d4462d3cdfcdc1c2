//! Bootable ISO images in and out, through `xorriso` (Debian package `xorriso`), never a writer
//! of our own (`docs/tools.md` §ISO).
//!
//! [`Iso::open`] reads what the tools need without extracting the image: volume label, the El
//! Torito boot images (platform, load size, LBA, path) and the file list. [`Iso::extract`] copies
//! single files out. [`write_modified`] writes a new ISO = the input's tree with some files
//! replaced and the El Torito boot images kept from the input (`-boot_image any keep`, which
//! also keeps images hidden from the tree, as on XP CDs), so the BIOS image (`etfsboot.com`) and
//! the UEFI image (`efisys.bin`) keep their bytes and the label stays. The output is written to a temporary file next to it, checked (label, every boot
//! image's bytes), and only then renamed into place; on any failure nothing is left behind.

use std::fmt;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The program used, with its Debian package for error messages.
pub const XORRISO: &str = "xorriso";

/// A one-line, user-facing error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoError(pub String);

impl fmt::Display for IsoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IsoError {}

pub type Result<T> = std::result::Result<T, IsoError>;

/// One El Torito boot image as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootImage {
    /// `BIOS`, `UEFI`, ... as xorriso names the platform.
    pub platform: String,
    /// 512-byte sectors the firmware loads.
    pub load_sectors: u64,
    /// First 2048-byte block of the image.
    pub lba: u64,
    /// Its path in the ISO tree, when it is a file there.
    pub path: Option<String>,
}

/// What xorriso reports about an ISO.
#[derive(Debug, Clone)]
pub struct Iso {
    pub path: PathBuf,
    pub volume_id: String,
    pub boot_images: Vec<BootImage>,
    /// Every file, as absolute ISO paths (`/sources/boot.wim`).
    pub files: Vec<String>,
    /// The files were found in the UDF tree (the ISO 9660 tree is a stub, as on Windows 10/11
    /// media): read with 7-Zip, written with genisoimage (`docs/tools.md` §UDF).
    pub udf: bool,
}

/// 7-Zip (Debian `7zip`), which reads UDF.
pub const SEVEN_ZIP: &str = "7zz";
/// genisoimage (Debian `genisoimage`), which writes UDF next to ISO 9660.
pub const GENISOIMAGE: &str = "genisoimage";

/// The files of the UDF tree, listed by 7-Zip (`None` if 7-Zip is missing or finds none).
fn udf_files(path: &Path) -> Option<Vec<String>> {
    let out = Command::new(SEVEN_ZIP)
        .args(["l", "-ba", "-slt", "-tudf"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut files = Vec::new();
    let mut cur: Option<String> = None;
    for l in text.lines() {
        if let Some(p) = l.strip_prefix("Path = ") {
            cur = Some(format!("/{}", p.trim()));
        } else if l.trim() == "Folder = -" {
            if let Some(p) = cur.take() {
                files.push(p);
            }
        }
    }
    (!files.is_empty()).then_some(files)
}

/// `xorriso` with reports kept to what we parse; fails clearly if it is not installed.
fn xorriso() -> Command {
    let mut c = Command::new(XORRISO);
    c.stdin(Stdio::null());
    c
}

fn run_report(args: &[&std::ffi::OsStr], what: &Path) -> Result<(String, String)> {
    let out = xorriso().args(args).output().map_err(|e| {
        IsoError(if e.kind() == std::io::ErrorKind::NotFound {
            "xorriso is not installed: `apt-get install xorriso`".to_string()
        } else {
            format!("cannot run xorriso: {e}")
        })
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(IsoError(format!(
            "{}: not a readable ISO image (truncated or damaged?): {}",
            what.display(),
            problems(&stderr)
        )));
    }
    Ok((stdout, stderr))
}

/// xorriso's own error lines (`FAILURE`, `SORRY`, `FATAL`), or its last line.
fn problems(stderr: &str) -> String {
    let bad: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("FAILURE") || l.contains("SORRY") || l.contains("FATAL"))
        .map(|l| l.trim_start_matches("xorriso : ").trim())
        .collect();
    if bad.is_empty() {
        stderr.lines().last().unwrap_or("").trim().to_string()
    } else {
        bad.join("; ")
    }
}

/// `'/a/b'` as xorriso quotes paths in `-find` output.
fn unquote(s: &str) -> String {
    let t = s.trim();
    let t = t
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .unwrap_or(t);
    t.replace("'\"'\"'", "'")
}

impl Iso {
    /// Reads label, boot catalog and file list of `path`. Refuses files that are not ISO 9660.
    pub fn open(path: &Path) -> Result<Iso> {
        let meta = std::fs::metadata(path)
            .map_err(|e| IsoError(format!("{}: cannot read: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(IsoError(format!("{}: not a file", path.display())));
        }
        // Volume descriptor set starts at block 16 with "\x01CD001".
        let mut f = std::fs::File::open(path)
            .map_err(|e| IsoError(format!("{}: cannot read: {e}", path.display())))?;
        let mut pvd = [0u8; 132];
        let magic = f
            .seek(SeekFrom::Start(16 * 2048))
            .and_then(|_| f.read_exact(&mut pvd));
        if magic.is_err() || &pvd[1..6] != b"CD001" {
            return Err(IsoError(format!(
                "{}: not an ISO 9660 image (no CD001 volume descriptor at block 16)",
                path.display()
            )));
        }
        // ECMA-119 8.4.8 and 8.4.12: volume space size (blocks) at 80, block size at 128, both
        // little-endian halves first. A file shorter than that lost its end.
        if pvd[0] == 1 {
            let blocks = u64::from(u32::from_le_bytes([pvd[80], pvd[81], pvd[82], pvd[83]]));
            let block = u64::from(u16::from_le_bytes([pvd[128], pvd[129]]));
            let want = blocks * block;
            if meta.len() < want {
                return Err(IsoError(format!(
                    "{}: truncated ISO: its volume descriptor says {want} bytes, the file has {}",
                    path.display(),
                    meta.len()
                )));
            }
        }
        let (stdout, stderr) = run_report(
            &[
                "-abort_on".as_ref(),
                "FAILURE".as_ref(),
                "-return_with".as_ref(),
                "SORRY".as_ref(),
                "32".as_ref(),
                "-indev".as_ref(),
                path.as_os_str(),
                "-report_el_torito".as_ref(),
                "plain".as_ref(),
                "-find".as_ref(),
                "/".as_ref(),
                "-type".as_ref(),
                "f".as_ref(),
            ],
            path,
        )?;
        let text = format!("{stderr}\n{stdout}");
        let volume_id = text
            .lines()
            .find_map(|l| l.strip_prefix("Volume id    :"))
            .map(unquote)
            .unwrap_or_default();
        let mut boot_images: Vec<BootImage> = Vec::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("El Torito boot img :") {
                // N Pltf B Emul Ld_seg Hdpt Ldsiz LBA
                let f: Vec<&str> = rest.split_whitespace().collect();
                if f.len() >= 8 {
                    boot_images.push(BootImage {
                        platform: f[1].to_string(),
                        load_sectors: f[6].parse().unwrap_or(0),
                        lba: f[7].parse().unwrap_or(0),
                        path: None,
                    });
                }
            } else if let Some(rest) = l.strip_prefix("El Torito img path :") {
                let rest = rest.trim();
                if let Some((n, p)) = rest.split_once(char::is_whitespace) {
                    if let Ok(n) = n.parse::<usize>() {
                        if let Some(b) = boot_images.get_mut(n.wrapping_sub(1)) {
                            b.path = Some(p.trim().to_string());
                        }
                    }
                }
            }
        }
        let files = stdout
            .lines()
            .filter(|l| l.starts_with('\''))
            .map(unquote)
            .collect();
        let mut iso = Iso {
            path: path.to_path_buf(),
            volume_id,
            boot_images,
            files,
            udf: false,
        };
        if iso.looks_udf_only() {
            if let Some(files) = udf_files(path) {
                iso.files = files;
                iso.udf = true;
            }
        }
        Ok(iso)
    }

    /// The ISO path of `rel` (`sources/boot.wim`), compared case-insensitively (Windows ISOs
    /// without Rock Ridge show upper-case ISO 9660 names).
    pub fn find_ci(&self, rel: &str) -> Option<&str> {
        let want = format!("/{}", rel.trim_start_matches('/'));
        self.files
            .iter()
            .find(|f| f.eq_ignore_ascii_case(&want))
            .map(String::as_str)
    }

    /// Copies the file `iso_path` out to `dest` (a new file).
    pub fn extract(&self, iso_path: &str, dest: &Path) -> Result<()> {
        if self.udf {
            return self.extract_udf(iso_path, dest);
        }
        let out = xorriso()
            .args(["-abort_on", "FAILURE", "-return_with", "SORRY", "32"])
            .arg("-indev")
            .arg(&self.path)
            .args(["-osirrox", "on", "-extract", iso_path])
            .arg(dest)
            .stdout(Stdio::null())
            .output()
            .map_err(|e| IsoError(format!("cannot run xorriso: {e}")))?;
        if !out.status.success() || !dest.is_file() {
            let err = String::from_utf8_lossy(&out.stderr);
            let first = problems(&err);
            let first = first.split("; ").next().unwrap_or("").to_string();
            return Err(IsoError(format!(
                "{}: cannot copy {iso_path} out of the ISO (damaged image or full disk?): {first}",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// [`Iso::extract`] from the UDF tree, through 7-Zip into a directory next to `dest`.
    fn extract_udf(&self, iso_path: &str, dest: &Path) -> Result<()> {
        let parent = dest.parent().unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".rvblk-7z.")
            .tempdir_in(parent)
            .map_err(|e| {
                IsoError(format!(
                    "{}: cannot create a directory: {e}",
                    parent.display()
                ))
            })?;
        let rel = iso_path.trim_start_matches('/');
        let out = Command::new(SEVEN_ZIP)
            .args(["x", "-y", "-bso0", "-bsp0", "-tudf"])
            .arg(format!("-o{}", tmp.path().display()))
            .arg(&self.path)
            .arg(rel)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| IsoError(format!("cannot run 7zz (apt-get install 7zip): {e}")))?;
        let got = tmp.path().join(rel);
        if !out.status.success() || !got.is_file() {
            return Err(IsoError(format!(
                "{}: cannot copy {iso_path} out of the UDF tree (damaged image or full disk?): {}",
                self.path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        std::fs::rename(&got, dest)
            .map_err(|e| IsoError(format!("cannot move to {}: {e}", dest.display())))
    }

    /// The bytes the firmware loads for boot image `b` (`load_sectors` × 512 from its LBA).
    pub fn boot_image_bytes(&self, b: &BootImage) -> Result<Vec<u8>> {
        let mut f = std::fs::File::open(&self.path)
            .map_err(|e| IsoError(format!("{}: cannot read: {e}", self.path.display())))?;
        let mut buf = vec![0u8; (b.load_sectors * 512) as usize];
        f.seek(SeekFrom::Start(b.lba * 2048))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| {
                IsoError(format!(
                    "{}: boot image at block {} is cut short: {e}",
                    self.path.display(),
                    b.lba
                ))
            })?;
        Ok(buf)
    }

    /// Whether the ISO 9660 tree looks like the stub of a UDF-only disc (oscdimg `-u2`, as
    /// Windows 10/11 media): a lone `README.TXT` and no directories.
    pub fn looks_udf_only(&self) -> bool {
        self.files.len() <= 2
            && self.files.iter().all(|f| f.matches('/').count() == 1)
            && self
                .files
                .iter()
                .any(|f| f.eq_ignore_ascii_case("/readme.txt"))
    }

    /// A short human-readable description of the boot records.
    pub fn describe_boot(&self) -> String {
        if self.boot_images.is_empty() {
            return "no El Torito boot record".into();
        }
        self.boot_images
            .iter()
            .map(|b| {
                format!(
                    "{} {} ({} sectors at block {})",
                    b.platform,
                    b.path.as_deref().unwrap_or("(hidden image)"),
                    b.load_sectors,
                    b.lba
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Writes `output` = `input` with the files `replace` (ISO path, local file) swapped in, the
/// label and El Torito boot records kept. Progress lines go to stderr when `progress` is set.
/// `output` appears only when everything, including the check of the result, has succeeded.
pub fn write_modified(
    input: &Iso,
    output: &Path,
    replace: &[(String, PathBuf)],
    progress: bool,
) -> Result<()> {
    if let (Ok(a), Ok(b)) = (input.path.canonicalize(), output.canonicalize()) {
        if a == b {
            return Err(IsoError(format!(
                "{}: the output must not be the input (the input is never modified)",
                output.display()
            )));
        }
    }
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out.iso".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".part")
        .tempfile_in(&dir)
        .map_err(|e| {
            IsoError(format!(
                "{}: cannot create a temporary file there: {e}",
                dir.display()
            ))
        })?;
    if input.udf {
        write_udf(input, &tmp, output, replace, progress)?;
    } else {
        write_xorriso(input, &tmp, output, replace, progress)?;
    }
    // Check the result before it gets its name: same label, same boot image bytes.
    let out = Iso::open(tmp.path())?;
    if out.volume_id != input.volume_id {
        return Err(IsoError(format!(
            "{}: xorriso wrote volume label {:?} instead of {:?}; not kept",
            output.display(),
            out.volume_id,
            input.volume_id
        )));
    }
    if out.boot_images.len() != input.boot_images.len() {
        return Err(IsoError(format!(
            "{}: the new ISO has {} boot image(s), the input {}; not kept",
            output.display(),
            out.boot_images.len(),
            input.boot_images.len()
        )));
    }
    for (a, b) in input.boot_images.iter().zip(&out.boot_images) {
        if a.platform != b.platform || input.boot_image_bytes(a)? != out.boot_image_bytes(b)? {
            return Err(IsoError(format!(
                "{}: the {} boot image changed while rewriting; not kept",
                output.display(),
                a.platform
            )));
        }
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| IsoError(format!("{}: cannot sync: {e}", output.display())))?;
    tmp.persist(output).map_err(|e| {
        IsoError(format!(
            "{}: cannot rename the finished ISO into place: {}",
            output.display(),
            e.error
        ))
    })?;
    Ok(())
}

fn write_xorriso(
    input: &Iso,
    tmp: &tempfile::NamedTempFile,
    output: &Path,
    replace: &[(String, PathBuf)],
    progress: bool,
) -> Result<()> {
    let mut cmd = xorriso();
    cmd.args(["-abort_on", "FAILURE", "-return_with", "SORRY", "32"])
        .args(["-report_about", "UPDATE"])
        .arg("-indev")
        .arg(&input.path)
        .arg("-outdev")
        .arg(tmp.path())
        .args(["-boot_image", "any", "keep"])
        // A Joliet tree too: Windows reads long names from Joliet (or UDF), not from Rock Ridge.
        .args(["-joliet", "on"]);
    if !input.volume_id.is_empty() {
        cmd.args(["-volid", &input.volume_id]);
    }
    for (iso_path, local) in replace {
        cmd.arg("-map").arg(local).arg(iso_path);
    }
    cmd.arg("-commit")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .map_err(|e| IsoError(format!("cannot run xorriso: {e}")))?;
    let progress_of = |line: &str| {
        let update = line.split("UPDATE :").nth(1)?;
        line.contains("% done").then(|| update.trim().to_string())
    };
    finish_writer(child, "xorriso", output, progress, progress_of, problems)
}

/// Waits for an ISO writer whose stderr carries its progress and its errors: shows each line
/// `progress_of` picks (when `progress`), and on failure names `output` with what `summary`
/// makes of the whole stderr.
fn finish_writer(
    mut child: std::process::Child,
    tool: &str,
    output: &Path,
    progress: bool,
    progress_of: impl Fn(&str) -> Option<String>,
    summary: impl Fn(&str) -> String,
) -> Result<()> {
    let mut all = String::new();
    if let Some(err) = child.stderr.take() {
        for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
            if let Some(shown) = progress.then(|| progress_of(&line)).flatten() {
                eprintln!("rvblk: writing {}: {shown}", output.display());
            }
            all.push_str(&line);
            all.push('\n');
        }
    }
    let status = child
        .wait()
        .map_err(|e| IsoError(format!("waiting for {tool}: {e}")))?;
    if !status.success() {
        return Err(IsoError(format!(
            "{}: writing the new ISO failed (nothing written): {}",
            output.display(),
            summary(&all)
        )));
    }
    Ok(())
}

/// The UDF route: the whole tree copied out with 7-Zip, the replacements put in, a new ISO 9660 +
/// Joliet + UDF image made by genisoimage with the input's label and boot images (found in the
/// tree by their bytes, with the input's load sizes). Checked by the caller like the other route.
fn write_udf(
    input: &Iso,
    tmp: &tempfile::NamedTempFile,
    output: &Path,
    replace: &[(String, PathBuf)],
    progress: bool,
) -> Result<()> {
    let work = scratch_dir(output)?;
    let tree = work.path().join("tree");
    if progress {
        eprintln!(
            "rvblk: copying the UDF tree of {} out (7-Zip)",
            input.path.display()
        );
    }
    // 7-Zip's own progress indicator goes to stderr (-bsp2) for the multi-GB copy.
    let out = Command::new(SEVEN_ZIP)
        .args(["x", "-y", "-bso0", "-tudf"])
        .arg(if progress { "-bsp2" } else { "-bsp0" })
        .arg(format!("-o{}", tree.display()))
        .arg(&input.path)
        .stdin(Stdio::null())
        .stderr(if progress {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
        .output()
        .map_err(|e| IsoError(format!("cannot run 7zz (apt-get install 7zip): {e}")))?;
    if !out.status.success() {
        return Err(IsoError(format!(
            "{}: cannot copy the UDF tree out (damaged image or full disk?): {}",
            input.path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    for (iso_path, local) in replace {
        let dest = tree.join(iso_path.trim_start_matches('/'));
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d).map_err(|e| IsoError(format!("{}: {e}", d.display())))?;
        }
        std::fs::copy(local, &dest)
            .map_err(|e| IsoError(format!("cannot copy to {}: {e}", dest.display())))?;
    }
    let mut cmd = Command::new(GENISOIMAGE);
    cmd.args([
        "-udf",
        "-allow-limited-size",
        "-iso-level",
        "3",
        "-J",
        "-joliet-long",
    ])
    .args(["-relaxed-filenames", "-V", &input.volume_id]);
    let mut first = true;
    for b in &input.boot_images {
        let want = input.boot_image_bytes(b)?;
        let rel = input
            .files
            .iter()
            .map(|f| f.trim_start_matches('/'))
            .find(|f| {
                std::fs::read(tree.join(f))
                    .is_ok_and(|d| d.len() >= want.len() && d[..want.len()] == want[..])
            })
            .ok_or_else(|| {
                IsoError(format!(
                    "{}: the {} boot image is not a file of the UDF tree; cannot rebuild it",
                    input.path.display(),
                    b.platform
                ))
            })?;
        if !first {
            cmd.arg("-eltorito-alt-boot");
        }
        first = false;
        cmd.arg(if b.platform == "UEFI" { "-e" } else { "-b" })
            .arg(rel)
            .args(["-no-emul-boot", "-boot-load-size"])
            .arg(b.load_sectors.to_string());
    }
    if !input.boot_images.is_empty() {
        cmd.args([
            "-c",
            "boot.catalog",
            "-hide",
            "boot.catalog",
            "-hide-joliet",
            "boot.catalog",
        ]);
    }
    cmd.arg("-o").arg(tmp.path()).arg(&tree);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().map_err(|e| {
        IsoError(format!(
            "cannot run genisoimage (apt-get install genisoimage): {e}"
        ))
    })?;
    let progress_of = |line: &str| line.contains("% done").then(|| line.trim().to_string());
    let last_line = |all: &str| all.lines().last().unwrap_or("").trim().to_string();
    finish_writer(
        child,
        "genisoimage",
        output,
        progress,
        progress_of,
        last_line,
    )
}

/// A scratch directory for extracted files, next to `near` (the output), so a multi-GB
/// `boot.wim` lands on the output's file system rather than in a small `/tmp`.
pub fn scratch_dir(near: &Path) -> Result<tempfile::TempDir> {
    let dir = match near.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tempfile::Builder::new()
        .prefix(".rvblk-work.")
        .tempdir_in(&dir)
        .map_err(|e| {
            IsoError(format!(
                "{}: cannot create a work directory there: {e}",
                dir.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(files: &[&str]) -> Iso {
        Iso {
            path: PathBuf::from("x.iso"),
            volume_id: String::new(),
            boot_images: Vec::new(),
            files: files.iter().map(|s| s.to_string()).collect(),
            udf: false,
        }
    }

    #[test]
    fn lookups_ignore_case() {
        let i = iso(&["/SOURCES/BOOT.WIM", "/BOOT/BCD"]);
        assert_eq!(i.find_ci("sources/boot.wim"), Some("/SOURCES/BOOT.WIM"));
        assert_eq!(i.find_ci("/boot/bcd"), Some("/BOOT/BCD"));
        assert_eq!(i.find_ci("efi/microsoft/boot/bcd"), None);
    }

    #[test]
    fn udf_stub_is_recognised() {
        assert!(iso(&["/README.TXT"]).looks_udf_only());
        assert!(!iso(&["/README.TXT", "/SOURCES/BOOT.WIM"]).looks_udf_only());
        assert!(!iso(&["/docs/readme.txt"]).looks_udf_only());
        assert!(!iso(&[]).looks_udf_only());
    }

    #[test]
    fn xorriso_output_is_read() {
        assert_eq!(unquote("'/a b/c'"), "/a b/c");
        assert_eq!(unquote(" 'it'\"'\"'s' "), "it's");
        let err = "xorriso : NOTE : x\nlibisofs: FAILURE : Read error\nxorriso : SORRY : gave up\n";
        assert_eq!(
            problems(err),
            "libisofs: FAILURE : Read error; SORRY : gave up"
        );
        assert_eq!(problems("only\nlast line\n"), "last line");
    }
}
