//! `rvblk winpe prepare`: inject into `sources/boot.wim` (every image), turn test-signing on in
//! the media BCD stores, and produce the GRUB4DOS menu entry.

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

/// Runs the whole preparation on the extracted ISO tree `tree`.
pub fn prepare(
    tree: &Path,
    pkg: &Package,
    iso_path: Option<&str>,
    verifier: Option<VerifierSetting>,
    debug: Option<DebugSetting>,
) -> Result<PrepareReport> {
    if !tree.is_dir() {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "{}: not a directory (pass the extracted ISO tree)",
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
    // Check every store before touching anything, so a bad BCD leaves the tree unchanged.
    for s in &stores {
        bcd::check_store(s, false)?;
        crate::error::ensure_writable(s)?;
    }
    let wim = inject::inject_with(&boot_wim, pkg, Selection::All, InjectOptions { verifier })?;
    let mut settings = vec![Setting::boolean(bcd::ELEM_TESTSIGNING, "testsigning", true)];
    if let Some(d) = debug {
        settings.extend(d.settings());
    }
    let mut bcds = Vec::new();
    for s in &stores {
        let changes = bcd::edit_store(s, &settings, false)?;
        bcds.push((s.clone(), changes));
    }
    let mut notes = Vec::new();
    if stores.is_empty() {
        notes.push("no BCD store found (boot/bcd, efi/microsoft/boot/bcd): test-signing not set; a 64-bit WinPE will refuse a test-signed driver".to_string());
    }
    let name = tree
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "windows".into());
    let iso = iso_path
        .map(str::to_string)
        .unwrap_or_else(|| format!("/{name}.iso"));
    let menu = menu_entry(&iso, &format!("Windows Setup from RAM ({name}, rvblk)"));
    notes.push(
        "Rebuild the ISO from this tree (keep boot/etfsboot.com as the El Torito boot image), copy it to \
         the GRUB4DOS disk and add the entry above to menu.lst. For ISOs larger than the memory below \
         4 GiB or when low memory is short, use `map --mem --top` so GRUB4DOS places the image at the top \
         of RAM (above 4 GiB where present); rvblk finds it either way."
            .to_string(),
    );
    notes.push(
        "Secure Boot must be off: test-signing set in the BCD is ignored (or refused) under Secure Boot.".to_string(),
    );
    if let Some(cert) = pkg.test_cert() {
        notes.push(format!(
            "Test certificate {}: nothing to install in WinPE. In test-signing mode the kernel accepts a driver \
             signed by any certificate, so the certificate does not need to be in WinPE's Root or TrustedPublisher \
             stores (it is only needed on a full Windows that installs the package through PnP).",
            cert.display()
        ));
    }
    Ok(PrepareReport {
        boot_wim,
        wim,
        bcds,
        menu,
        notes,
    })
}
