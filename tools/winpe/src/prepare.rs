//! `rvblk winpe prepare`: inject into `sources/boot.wim` (every image), turn test-signing on in
//! the media BCD stores, and produce the GRUB4DOS menu entry; on an extracted tree in place, or
//! from an ISO to a new ISO through xorriso (`rvblk_iso`, `docs/tools.md` §ISO).

use crate::bcd::{self, DebugSetting, Setting};
use crate::error::{Error, ErrorKind, Result};
use crate::inject::{self, InjectOptions, Selection, WimReport};
use crate::package::Package;
use crate::verifier::VerifierSetting;
use std::path::{Path, PathBuf};

/// Resolves `rel` (`/`-separated) under `root`, matching each component case-insensitively.
pub fn find_ci(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut cur = root.to_path_buf();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        let exact = cur.join(part);
        if exact.exists() {
            cur = exact;
            continue;
        }
        let found = std::fs::read_dir(&cur)
            .ok()?
            .filter_map(|e| e.ok())
            .find(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(part))
            })?;
        cur = found.path();
    }
    Some(cur)
}

/// The two BCD stores of Windows media, relative to the ISO root.
pub const BCD_STORES: [&str; 2] = ["boot/bcd", "efi/microsoft/boot/bcd"];

/// The result of [`prepare`].
#[derive(Debug)]
pub struct PrepareReport {
    pub boot_wim: PathBuf,
    pub wim: WimReport,
    /// (store path, change lines)
    pub bcds: Vec<(PathBuf, Vec<String>)>,
    pub menu: String,
    pub notes: Vec<String>,
}

/// The GRUB4DOS `menu.lst` entry that maps `iso` (a path on the GRUB4DOS device) into RAM.
pub fn menu_entry(iso: &str, title: &str) -> String {
    format!(
        "title {title}\n\
         map --mem {iso} (0xff)\n\
         map --hook\n\
         chainloader (0xff)\n\
         boot\n"
    )
}

/// What `prepare` sets besides the driver and test-signing.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrepareOptions {
    pub verifier: Option<VerifierSetting>,
    pub debug: Option<DebugSetting>,
}

/// Checks the stores, injects into the WIM, edits the stores: the job both forms share.
fn prepare_files(
    boot_wim: &Path,
    stores: &[PathBuf],
    pkg: &Package,
    opts: PrepareOptions,
) -> Result<(WimReport, Vec<Vec<String>>)> {
    // Check every store before touching anything, so a bad BCD leaves everything unchanged.
    for s in stores {
        bcd::check_store(s, false)?;
        crate::error::ensure_writable(s)?;
    }
    let wim = inject::inject_with(
        boot_wim,
        pkg,
        Selection::All,
        InjectOptions {
            verifier: opts.verifier,
            debug_print: opts.debug.map(|d| matches!(d, DebugSetting::Serial { .. })),
        },
    )?;
    let mut settings = vec![Setting::boolean(bcd::ELEM_TESTSIGNING, "testsigning", true)];
    if let Some(d) = opts.debug {
        settings.extend(d.settings());
    }
    let mut bcds = Vec::new();
    for s in stores {
        bcds.push(bcd::edit_store(s, &settings, false)?);
    }
    Ok((wim, bcds))
}

fn common_notes(pkg: &Package, no_stores: bool) -> Vec<String> {
    let mut notes = Vec::new();
    if no_stores {
        notes.push("no BCD store found (boot/bcd, efi/microsoft/boot/bcd): test-signing not set; a 64-bit WinPE will refuse a test-signed driver".to_string());
    }
    notes.push(
        "Secure Boot must be off: test-signing set in the BCD is ignored (or refused) under Secure Boot.".to_string(),
    );
    if let Some(cert) = pkg.test_cert() {
        notes.push(format!(
            "Test certificate {}: nothing to install in WinPE. In test-signing mode the kernel accepts a driver \
             signed by any certificate, so the certificate does not need to be in WinPE's Root or TrustedPublisher \
             stores (it is only needed on a full Windows that installs the package through PnP).",
            cert.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        ));
    }
    notes
}

const TOP_NOTE: &str = "For ISOs larger than the memory below 4 GiB or when low memory is short, use \
    `map --mem --top` so GRUB4DOS places the image at the top of RAM (above 4 GiB where present; \
    64-bit Windows only); rvblk finds it either way. `rvblk menu` prints entries for other loaders.";

/// Runs the whole preparation on the extracted ISO tree `tree`.
pub fn prepare(
    tree: &Path,
    pkg: &Package,
    iso_path: Option<&str>,
    opts: PrepareOptions,
) -> Result<PrepareReport> {
    if !tree.is_dir() {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "{}: not a directory or ISO file (pass an ISO with -o OUT.iso, or the extracted ISO tree)",
                tree.display()
            ),
        ));
    }
    let boot_wim = find_ci(tree, "sources/boot.wim")
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Usage,
                format!(
                    "{}: no sources/boot.wim (not a Windows Vista+ Setup/WinPE tree?)",
                    tree.display()
                ),
            )
        })?;
    let stores: Vec<PathBuf> = BCD_STORES
        .iter()
        .filter_map(|s| find_ci(tree, s))
        .filter(|p| p.is_file())
        .collect();
    let (wim, changes) = prepare_files(&boot_wim, &stores, pkg, opts)?;
    let bcds = stores.iter().cloned().zip(changes).collect();
    let name = tree
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "windows".into());
    let iso = iso_path
        .map(str::to_string)
        .unwrap_or_else(|| format!("/{name}.iso"));
    let menu = menu_entry(&iso, &format!("Windows Setup from RAM ({name}, rvblk)"));
    let mut notes = common_notes(pkg, stores.is_empty());
    notes.insert(
        0,
        format!(
            "Rebuild the ISO from this tree (keep boot/etfsboot.com as the El Torito boot image), copy it to \
             the GRUB4DOS disk and add the entry above to menu.lst. {TOP_NOTE}"
        ),
    );
    Ok(PrepareReport {
        boot_wim,
        wim,
        bcds,
        menu,
        notes,
    })
}

fn iso_err(e: rvblk_iso::IsoError) -> Error {
    Error::new(ErrorKind::Io, e.0)
}

/// The whole preparation from the ISO `input` to a new ISO `output` (label and both boot records
/// kept; `input` never modified; `output` appears only when complete).
pub fn prepare_iso(
    input: &Path,
    output: &Path,
    pkg: &Package,
    iso_path: Option<&str>,
    opts: PrepareOptions,
) -> Result<PrepareReport> {
    let iso = rvblk_iso::Iso::open(input).map_err(iso_err)?;
    let wim_in_iso = iso.find_ci("sources/boot.wim").ok_or_else(|| {
        Error::new(
            ErrorKind::Usage,
            if iso.looks_udf_only() {
                format!(
                    "{}: its ISO 9660 tree holds only README.TXT: the files are in UDF only (as on \
                     Windows 10/11 media), which needs 7-Zip to read and genisoimage to write \
                     (`apt-get install 7zip genisoimage`)",
                    input.display()
                )
            } else {
                format!(
                    "{}: no sources/boot.wim in the ISO (not a Windows Vista+ Setup/WinPE ISO?)",
                    input.display()
                )
            },
        )
    })?;
    let stores_in_iso: Vec<String> = BCD_STORES
        .iter()
        .filter_map(|s| iso.find_ci(s).map(str::to_string))
        .collect();
    let work = rvblk_iso::scratch_dir(output).map_err(iso_err)?;
    eprintln!("rvblk: extracting {wim_in_iso} from {}", input.display());
    let boot_wim = work.path().join("boot.wim");
    iso.extract(wim_in_iso, &boot_wim).map_err(iso_err)?;
    let mut stores = Vec::new();
    for (i, s) in stores_in_iso.iter().enumerate() {
        let local = work.path().join(format!("bcd{i}"));
        iso.extract(s, &local).map_err(iso_err)?;
        stores.push(local);
    }
    // xorriso gives extracted files the ISO's (read-only) permissions.
    for f in std::iter::once(&boot_wim).chain(&stores) {
        make_writable(f)?;
    }
    // Messages name the files inside the ISO, not the work copies.
    let mut names = vec![(
        boot_wim.clone(),
        format!("{}:{wim_in_iso}", input.display()),
    )];
    for (local, s) in stores.iter().zip(&stores_in_iso) {
        names.push((local.clone(), format!("{}:{s}", input.display())));
    }
    let (wim, changes) = prepare_files(&boot_wim, &stores, pkg, opts).map_err(|mut e| {
        for (local, shown) in &names {
            e.msg = e.msg.replace(&local.display().to_string(), shown);
        }
        e
    })?;
    let mut replace = vec![(wim_in_iso.to_string(), boot_wim.clone())];
    replace.extend(stores_in_iso.iter().cloned().zip(stores.iter().cloned()));
    eprintln!("rvblk: writing {}", output.display());
    rvblk_iso::write_modified(&iso, output, &replace, true).map_err(iso_err)?;
    let bcds = stores_in_iso
        .iter()
        .map(|s| PathBuf::from(format!("{}:{s}", output.display())))
        .zip(changes)
        .collect();
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "windows.iso".into());
    let menu_iso = iso_path
        .map(str::to_string)
        .unwrap_or_else(|| format!("/{name}"));
    let menu = menu_entry(
        &menu_iso,
        &format!(
            "Windows Setup from RAM ({}, rvblk)",
            name.trim_end_matches(".iso")
        ),
    );
    let mut notes = common_notes(pkg, stores_in_iso.is_empty());
    notes.insert(
        0,
        format!(
            "{} written: label {:?}, boot records kept ({}). Copy it to the GRUB4DOS disk and add the entry above to menu.lst. {TOP_NOTE}",
            output.display(),
            iso.volume_id,
            iso.describe_boot()
        ),
    );
    Ok(PrepareReport {
        boot_wim: PathBuf::from(format!("{}:{wim_in_iso}", output.display())),
        wim,
        bcds,
        menu,
        notes,
    })
}

fn make_writable(p: &Path) -> Result<()> {
    let mut perm = std::fs::metadata(p)
        .map_err(|e| Error::io(p, "cannot read", &e))?
        .permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(p, perm).map_err(|e| Error::io(p, "cannot make writable", &e))
}
