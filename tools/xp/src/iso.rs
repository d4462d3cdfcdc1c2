//! `rvblk xp slipstream IN.iso -o OUT.iso`: the slipstream of [`crate::slipstream`] on the setup
//! source inside an XP/2003 ISO, written to a new ISO through xorriso (`rvblk_iso`): label and
//! boot record kept, input never modified, output only when complete (`docs/tools.md` §ISO).

use crate::slipstream::{self, Change, Options, Report};
use crate::{XpArch, XpError, DRIVER_FILE};
use std::path::{Path, PathBuf};

fn iso_err(e: rvblk_iso::IsoError) -> XpError {
    XpError::Iso(e.0)
}

/// Slipstreams into the ISO `input`'s setup source (`AMD64` if the CD has one, else `I386`) and
/// writes `output`. `driver_for` gives the driver bytes for the source's architecture.
pub fn slipstream_iso(
    input: &Path,
    output: &Path,
    driver_for: &dyn Fn(XpArch) -> Result<Vec<u8>, XpError>,
    options: Options,
) -> Result<Report, XpError> {
    let iso = rvblk_iso::Iso::open(input).map_err(iso_err)?;
    let (arch, sif_in_iso) = [XpArch::Amd64, XpArch::X86]
        .into_iter()
        .find_map(|a| {
            iso.find_ci(&format!("{}/txtsetup.sif", a.setup_dir()))
                .map(|p| (a, p.to_string()))
        })
        .ok_or_else(|| {
            XpError::Unsupported(format!(
                "{}: no I386/TXTSETUP.SIF or AMD64/TXTSETUP.SIF in the ISO (not a Windows XP/2003 setup CD?)",
                input.display()
            ))
        })?;
    let dir_in_iso = sif_in_iso.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let work = rvblk_iso::scratch_dir(output).map_err(iso_err)?;
    let local = work.path().join(arch.setup_dir());
    std::fs::create_dir(&local).map_err(|e| XpError::io(&local, "create", e))?;
    let mut replace: Vec<(String, PathBuf)> = Vec::new();
    for name in ["txtsetup.sif", "dosnet.inf"] {
        if let Some(p) = iso.find_ci(&format!("{}/{name}", arch.setup_dir())) {
            let dest = local.join(p.rsplit('/').next().unwrap_or(name));
            iso.extract(p, &dest).map_err(iso_err)?;
            let mut perm = std::fs::metadata(&dest)
                .map_err(|e| XpError::io(&dest, "read", e))?
                .permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&dest, perm).map_err(|e| XpError::io(&dest, "chmod", e))?;
            replace.push((p.to_string(), dest));
        }
    }
    let driver = driver_for(arch)?;
    eprintln!(
        "rvblk: slipstreaming into {dir_in_iso} ({}) of {}",
        arch.label(),
        input.display()
    );
    let report = slipstream::slipstream(&local, &driver, options)?;
    // The driver as slipstream wrote it (its spelling follows txtsetup.sif's case).
    let local_driver = report
        .files
        .iter()
        .map(|(p, _)| p)
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().eq_ignore_ascii_case(DRIVER_FILE))
        })
        .cloned()
        .unwrap_or_else(|| local.join(DRIVER_FILE));
    let driver_name = local_driver
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| DRIVER_FILE.into());
    let driver_in_iso = iso
        .find_ci(&format!("{}/{DRIVER_FILE}", arch.setup_dir()))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{dir_in_iso}/{driver_name}"));
    replace.push((driver_in_iso, local_driver));
    eprintln!("rvblk: writing {}", output.display());
    rvblk_iso::write_modified(&iso, output, &replace, true).map_err(iso_err)?;
    // Report the files as they are inside the new ISO.
    let mut out = Report::default();
    for (path, change) in report.files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let shown = PathBuf::from(format!("{}:{dir_in_iso}/{name}", output.display()));
        out.files.push((shown, change));
    }
    out.notes = report.notes;
    out.notes.push(format!(
        "{} written: label {:?}, boot record kept ({})",
        output.display(),
        iso.volume_id,
        iso.describe_boot()
    ));
    if out
        .files
        .iter()
        .all(|(_, c)| matches!(c, Change::Unchanged | Change::Skipped))
    {
        out.notes
            .push("the ISO already carried rvblk; the new ISO is a copy".into());
    }
    Ok(out)
}
