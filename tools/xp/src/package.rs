//! The XP part of the driver package: `target/package/xp/` (x86), `target/package/xp/amd64/`
//! (x64) and one F6 floppy image per architecture (`rvblk-f6.img`, `rvblk-f6-amd64.img`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::floppy::build_f6_image;
use crate::templates::{rvblkxp_inf, tag_file, txtsetup_oem};
use crate::{XpArch, XpError, CATALOG_FILE, INF_FILE, TAG_FILE};

/// Writes the XP files of the driver package and returns the floppy images written.
///
/// For each architecture whose driver is in the package (`xp/rvblkxp.sys`, placed by
/// `cargo xtask package`, is required; `xp/amd64/rvblkxp.sys` is optional), writes
/// `txtsetup.oem`, `rvblkxp.inf` and `RVBLKXP.TAG` next to the driver, then the floppy image
/// ([`XpArch::f6_image_name`]) holding, in its root, `TXTSETUP.OEM`, `RVBLKXP.TAG`,
/// `RVBLKXP.SYS`, `RVBLKXP.INF` and, when `rvblkxp.cat` is next to the driver at the time of the
/// call, `RVBLKXP.CAT` (with matching `catalog =` lines in `txtsetup.oem`). Each floppy holds
/// one architecture in its root: text-mode setup of Server 2003 SP1 and later (the x64
/// editions) looks in the root when the floppy has no `\amd64` directory. Run it again after
/// signing to pick up the signed drivers and a new catalog: the output depends only on those
/// inputs.
pub fn write_xp_package(package_dir: &Path) -> Result<Vec<PathBuf>, XpError> {
    let mut images = Vec::new();
    for arch in XpArch::ALL {
        let driver_path = package_dir.join(arch.driver_path());
        let driver = match fs::read(&driver_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && arch != XpArch::X86 => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(XpError::Missing {
                    path: driver_path,
                    hint: "build the XP driver first (cargo xtask package places it there)".into(),
                })
            }
            Err(e) => return Err(XpError::io(&driver_path, "read", e)),
        };
        images.push(write_arch(package_dir, arch, &driver)?);
    }
    Ok(images)
}

/// One architecture's text files and floppy image; returns the image's path.
fn write_arch(package_dir: &Path, arch: XpArch, driver: &[u8]) -> Result<PathBuf, XpError> {
    let dir = package_dir.join(arch.package_dir());
    let catalog_path = dir.join(CATALOG_FILE);
    let catalog = match fs::read(&catalog_path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(XpError::io(&catalog_path, "read", e)),
    };

    let oem = txtsetup_oem(arch, catalog.is_some());
    let inf = rvblkxp_inf(arch);
    let tag = tag_file(arch);
    write_atomic(&dir.join("txtsetup.oem"), oem.as_bytes())?;
    write_atomic(&dir.join(INF_FILE), inf.as_bytes())?;
    write_atomic(&dir.join(TAG_FILE), tag.as_bytes())?;

    let mut files: Vec<(&str, &[u8])> = vec![
        ("TXTSETUP.OEM", oem.as_bytes()),
        ("RVBLKXP.TAG", tag.as_bytes()),
        ("RVBLKXP.SYS", driver),
        ("RVBLKXP.INF", inf.as_bytes()),
    ];
    if let Some(cat) = &catalog {
        files.push(("RVBLKXP.CAT", cat));
    }
    let image = build_f6_image(&files)?;
    let path = package_dir.join(arch.f6_image_name());
    write_atomic(&path, &image)?;
    Ok(path)
}

/// Writes `bytes` to `path` atomically (`rvblk-outfile`), so a reader never sees a
/// half-written file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), XpError> {
    rvblk_outfile::write(path, bytes).map_err(|e| XpError::io(&e.path, e.action, e.source))
}
