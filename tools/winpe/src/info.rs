//! `rvblk info`: what rvblk finds in a WIM, a BCD store or a SYSTEM hive.

use crate::bcd;
use crate::error::{Error, ErrorKind, Result};
use crate::hive::Hive;
use crate::inject::image_arch;
use crate::store::{RegistryHive, WimStore};
use crate::system::{self, WIM_INF_PATH, WIM_SYSTEM_HIVE, WIM_SYS_PATH};
use crate::wim::Wim;
use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The kinds of file `rvblk info` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// An ISO 9660 image (a Setup/WinPE CD).
    Iso,
    Wim,
    Bcd,
    SystemHive,
}

/// Detects the kind of `path` from its magic (`MSWIM\0\0\0`, `regf`) and, for hives, its keys.
pub fn detect(path: &Path) -> Result<FileKind> {
    let mut magic = [0u8; 8];
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, "cannot read", &e))?;
    let n = f
        .read(&mut magic)
        .map_err(|e| Error::io(path, "cannot read", &e))?;
    let mut cd = [0u8; 6];
    if f.seek(SeekFrom::Start(16 * 2048))
        .and_then(|_| f.read_exact(&mut cd))
        .is_ok()
        && &cd[1..] == b"CD001"
    {
        return Ok(FileKind::Iso);
    }
    if n >= 8 && &magic == b"MSWIM\0\0\0" {
        return Ok(FileKind::Wim);
    }
    if n >= 4 && &magic[..4] == b"regf" {
        let h = Hive::open(path, false)?;
        if bcd::is_bcd(&h)? {
            return Ok(FileKind::Bcd);
        }
        if h.child(h.root(), "Select")?.is_some() {
            return Ok(FileKind::SystemHive);
        }
        return Err(Error::new(
            ErrorKind::NoSelect,
            format!("{}: registry hive is neither a SYSTEM hive (no \\Select) nor a BCD store (no Objects)", path.display()),
        ));
    }
    Err(Error::new(
        ErrorKind::NotAWim,
        format!("{}: not a WIM, BCD store or registry hive", path.display()),
    ))
}

/// The text `rvblk info` prints for `path`.
pub fn describe(path: &Path) -> Result<String> {
    match detect(path)? {
        FileKind::Iso => describe_iso(path),
        FileKind::Wim => describe_wim(path),
        FileKind::Bcd => describe_bcd(&Hive::open(path, false)?, path),
        FileKind::SystemHive => {
            let h = Hive::open(path, false)?;
            let mut s = format!("{}: SYSTEM hive\n", path.display());
            s.push_str(&describe_system(&h, "")?);
            Ok(s)
        }
    }
}

fn describe_system<H: RegistryHive>(h: &H, indent: &str) -> Result<String> {
    let mut s = String::new();
    if let Some(sel) = h.child(h.root(), "Select")? {
        let v = |n: &str| -> Result<String> {
            Ok(h.value(sel, n)?
                .and_then(|v| v.as_dword())
                .map(|d| d.to_string())
                .unwrap_or_else(|| "-".into()))
        };
        let _ = writeln!(
            s,
            "{indent}Select: Current={} Default={} LastKnownGood={} Failed={}",
            v("Current")?,
            v("Default")?,
            v("LastKnownGood")?,
            v("Failed")?
        );
    }
    for st in system::status(h)? {
        let state = if st.complete() {
            "present"
        } else if st.service.is_none() && st.devnode.is_none() && st.class_key.is_none() {
            "not present"
        } else {
            "INCOMPLETE"
        };
        let _ = writeln!(
            s,
            "{indent}{}: rvblk {state}{}",
            st.control_set,
            if st.recorded {
                " (injected by rvblk winpe)"
            } else {
                ""
            }
        );
        let show = |name: &str, v: &Option<String>, s: &mut String| {
            let _ = writeln!(s, "{indent}  {name:<9} {}", v.as_deref().unwrap_or("-"));
        };
        show("service", &st.service, &mut s);
        show("devnode", &st.devnode, &mut s);
        show("class", &st.class_key, &mut s);
        if st.cddb.is_some() {
            show("CDDB", &st.cddb, &mut s);
        }
        let v = crate::verifier::state(h, &st.control_set)?;
        show("verifier", &Some(v.describe()), &mut s);
    }
    Ok(s)
}

fn describe_bcd<H: RegistryHive>(h: &H, path: &Path) -> Result<String> {
    let mut s = format!("{}: BCD store\n", path.display());
    let default = bcd::default_loader(h);
    let onoff = |v: Option<bool>| match v {
        Some(true) => "on",
        Some(false) => "off (set)",
        None => "off (not set)",
    };
    match &default {
        Ok(g) => {
            let _ = writeln!(s, "default loader: {g}");
        }
        Err(e) => {
            let _ = writeln!(s, "default loader: none ({e})");
        }
    }
    let mut loaders = bcd::os_loaders(h)?;
    if let Ok(d) = &default {
        if !loaders.iter().any(|l| l.eq_ignore_ascii_case(d)) {
            loaders.insert(0, d.clone());
        }
    }
    for g in loaders {
        let is_default = default.as_ref().is_ok_and(|d| d.eq_ignore_ascii_case(&g));
        let desc = bcd::description(h, &g)?.unwrap_or_default();
        let debug = match bcd::get_bool(h, &g, bcd::ELEM_KERNEL_DEBUGGER)? {
            Some(true) => {
                let int = |e| bcd::get_integer(h, &g, e);
                match (
                    int(bcd::ELEM_DEBUGGER_TYPE)?,
                    int(bcd::ELEM_DEBUGGER_PORT)?,
                    int(bcd::ELEM_DEBUGGER_BAUD)?,
                ) {
                    (Some(0), p, b) => format!(
                        "on (serial, COM{}, {} baud)",
                        p.map_or("?".into(), |p| p.to_string()),
                        b.map_or("?".into(), |b| b.to_string())
                    ),
                    (None, ..) => "on (transport inherited from {dbgsettings})".into(),
                    (Some(t), ..) => format!("on (debugtype {t})"),
                }
            }
            v => onoff(v).to_string(),
        };
        let _ = writeln!(
            s,
            "{}{g} \"{desc}\": testsigning={} nointegritychecks={} debug={debug}",
            if is_default { "* " } else { "  " },
            onoff(bcd::get_bool(h, &g, bcd::ELEM_TESTSIGNING)?),
            onoff(bcd::get_bool(h, &g, bcd::ELEM_NOINTEGRITY)?)
        );
    }
    Ok(s)
}

/// An ISO: label and boot records, then whether it carries rvblk (from its `sources/boot.wim`
/// and BCD stores, copied out to a temporary directory; the ISO is only read).
fn describe_iso(path: &Path) -> Result<String> {
    let iso = rvblk_iso::Iso::open(path).map_err(|e| Error::new(ErrorKind::Io, e.0))?;
    let mut s = format!(
        "{}: ISO, label {:?}\nboot records: {}\n",
        path.display(),
        iso.volume_id,
        iso.describe_boot()
    );
    let tmp = tempfile::tempdir()
        .map_err(|e| Error::io(path, "cannot create a temporary directory", &e))?;
    let stores: Vec<&str> = crate::prepare::BCD_STORES
        .iter()
        .filter_map(|b| iso.find_ci(b))
        .collect();
    let mut testsigning = Vec::new();
    for (i, st) in stores.iter().enumerate() {
        let local = tmp.path().join(format!("bcd{i}"));
        iso.extract(st, &local)
            .map_err(|e| Error::new(ErrorKind::Io, e.0))?;
        let h = Hive::open(&local, false)?;
        let on = bcd::default_loader(&h)
            .ok()
            .map(|g| bcd::get_bool(&h, &g, bcd::ELEM_TESTSIGNING))
            .transpose()?
            .flatten()
            == Some(true);
        testsigning.push(format!("{st} {}", if on { "on" } else { "off" }));
        let text = describe_bcd(&h, Path::new(st))?;
        s.push_str(&text);
    }
    let Some(wim_path) = iso.find_ci("sources/boot.wim") else {
        s.push_str(
            "rvblk: no (the ISO has no sources/boot.wim: not a Windows Vista+ Setup/WinPE ISO)\n",
        );
        return Ok(s);
    };
    let local = tmp.path().join("boot.wim");
    iso.extract(wim_path, &local)
        .map_err(|e| Error::new(ErrorKind::Io, e.0))?;
    let mut wim = Wim::open(&local, false)?;
    let mut with = Vec::new();
    let mut versions = Vec::new();
    let mut verifier = Vec::new();
    for info in wim.images()? {
        if wim.read_file(info.index, WIM_SYS_PATH)?.is_none() {
            continue;
        }
        with.push(info.index.to_string());
        if let Some(bytes) = wim.read_file(info.index, WIM_SYSTEM_HIVE)? {
            let p = tmp.path().join(format!("SYSTEM{}", info.index));
            std::fs::write(&p, bytes).map_err(|e| Error::io(&p, "cannot write", &e))?;
            let h = Hive::open(&p, false)?;
            for st in system::status(&h)? {
                if let Some(v) = st
                    .class_key
                    .as_deref()
                    .and_then(|c| c.split("DriverVersion=").nth(1))
                {
                    let v = v.trim_matches('"').to_string();
                    if !versions.contains(&v) {
                        versions.push(v);
                    }
                }
                let vs = crate::verifier::state(&h, &st.control_set)?.describe();
                let line = format!("image {}: {vs}", info.index);
                if !verifier.contains(&line) {
                    verifier.push(line);
                }
            }
        }
    }
    drop(wim);
    if with.is_empty() {
        s.push_str("rvblk: no (no image of sources/boot.wim has \\Windows\\System32\\drivers\\rvblk.sys)\n");
    } else {
        let _ = writeln!(
            s,
            "rvblk: yes, version {} in image(s) {} of {wim_path}",
            if versions.is_empty() {
                "unknown".to_string()
            } else {
                versions.join(", ")
            },
            with.join(", ")
        );
        let _ = writeln!(
            s,
            "test-signing: {}",
            if testsigning.is_empty() {
                "no BCD store".to_string()
            } else {
                testsigning.join(", ")
            }
        );
        for v in verifier {
            let _ = writeln!(s, "Driver Verifier: {v}");
        }
    }
    let _ = writeln!(s, "\n{wim_path}:");
    s.push_str(
        &describe_wim(&local)?
            .split_once('\n')
            .map(|(_, r)| r.to_string())
            .unwrap_or_default(),
    );
    Ok(s)
}

fn describe_wim(path: &Path) -> Result<String> {
    let mut wim = Wim::open(path, false)?;
    let images = wim.images()?;
    let mut s = format!(
        "{}: WIM, {} image{}\n",
        path.display(),
        images.len(),
        if images.len() == 1 { "" } else { "s" }
    );
    for info in &images {
        let arch = match (info.arch_property, image_arch(&mut wim, info)) {
            (Some(_), Ok(a)) => a.to_string(),
            (None, Ok(a)) => format!("{a} (from ntoskrnl.exe)"),
            (_, Err(e)) => format!("unknown ({e})"),
        };
        let _ = writeln!(
            s,
            "image {}: \"{}\" arch={arch}{}",
            info.index,
            info.name,
            if info.bootable { " bootable" } else { "" }
        );
        for (label, p) in [("driver", WIM_SYS_PATH), ("inf", WIM_INF_PATH)] {
            let state = match wim.read_file(info.index, p)? {
                Some(d) => format!("present ({} bytes)", d.len()),
                None => "not present".into(),
            };
            let _ = writeln!(s, "  {label:<7} {p}: {state}");
        }
        match wim.read_file(info.index, WIM_SYSTEM_HIVE)? {
            None => {
                let _ = writeln!(s, "  no \\Windows\\System32\\config\\SYSTEM hive");
            }
            Some(bytes) => {
                let dir = wim.scratch_dir()?;
                let p = dir.join("SYSTEM");
                std::fs::write(&p, bytes).map_err(|e| Error::io(&p, "cannot write", &e))?;
                match Hive::open(&p, false).and_then(|h| describe_system(&h, "  ")) {
                    Ok(t) => s.push_str(&t),
                    Err(e) => {
                        let _ = writeln!(s, "  SYSTEM hive: {e}");
                    }
                }
            }
        }
    }
    Ok(s)
}
