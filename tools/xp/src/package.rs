//! The XP part of the driver package (`target/package/xp/` and `target/package/rvblk-f6.img`).

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::floppy::build_f6_image;
use crate::templates::{rvblkxp_inf, tag_file, txtsetup_oem};
use crate::{XpError, CATALOG_FILE, DRIVER_FILE, INF_FILE, TAG_FILE};

/// File name of the F6 floppy image in the package directory.
pub const F6_IMAGE_NAME: &str = "rvblk-f6.img";

/// Writes the XP files of the driver package.
///
/// Requires `package_dir/xp/rvblkxp.sys` (placed by `cargo xtask package`). Writes
/// `xp/txtsetup.oem`, `xp/rvblkxp.inf` and `xp/RVBLKXP.TAG`, then `package_dir/rvblk-f6.img`
/// holding `TXTSETUP.OEM`, `RVBLKXP.SYS`, `RVBLKXP.INF`, `RVBLKXP.TAG` and, when
/// `xp/rvblkxp.cat` exists at the time of the call, `RVBLKXP.CAT` (with matching `catalog =`
/// lines in `txtsetup.oem`). Run it again after signing to pick up a new catalog: the output
/// depends only on those inputs.
pub fn write_xp_package(package_dir: &Path) -> Result<(), XpError> {
    let xp_dir = package_dir.join("xp");
    let driver_path = xp_dir.join(DRIVER_FILE);
    let driver = fs::read(&driver_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            XpError::Missing {
                path: driver_path.clone(),
                hint: "build the XP driver first (cargo xtask package places it there)".into(),
            }
        } else {
            XpError::io(&driver_path, "read", e)
        }
    })?;
    let catalog_path = xp_dir.join(CATALOG_FILE);
    let catalog = match fs::read(&catalog_path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(XpError::io(&catalog_path, "read", e)),
    };

    let oem = txtsetup_oem(catalog.is_some());
    let inf = rvblkxp_inf();
    let tag = tag_file();
    write_atomic(&xp_dir.join("txtsetup.oem"), oem.as_bytes())?;
    write_atomic(&xp_dir.join(INF_FILE), inf.as_bytes())?;
    write_atomic(&xp_dir.join(TAG_FILE), tag.as_bytes())?;

    let mut files: Vec<(&str, &[u8])> = vec![
        ("TXTSETUP.OEM", oem.as_bytes()),
        ("RVBLKXP.TAG", tag.as_bytes()),
        ("RVBLKXP.SYS", &driver),
        ("RVBLKXP.INF", inf.as_bytes()),
    ];
    if let Some(cat) = &catalog {
        files.push(("RVBLKXP.CAT", cat));
    }
    let image = build_f6_image(&files)?;
    write_atomic(&package_dir.join(F6_IMAGE_NAME), &image)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), XpError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.rvblk-tmp"));
    let result = (|| {
        let mut file = fs::File::create(&tmp).map_err(|e| XpError::io(&tmp, "create", e))?;
        file.write_all(bytes)
            .map_err(|e| XpError::io(&tmp, "write", e))?;
        file.sync_all().map_err(|e| XpError::io(&tmp, "sync", e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| XpError::io(path, "replace", e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
