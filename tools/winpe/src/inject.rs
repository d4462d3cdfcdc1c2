//! Injection into (and removal from) the images of a WIM, on top of [`WimStore`] and
//! [`RegistryHive`]. Everything is read and checked first; the WIM is only written when at least
//! one image really changes, in one in-place append at the end.

use crate::error::{Error, ErrorKind, Result};
use crate::hive::Hive;
use crate::package::{Arch, Package};
use crate::store::{FileOp, ImageInfo, WimStore};
use crate::system::{self, WIM_INF_PATH, WIM_KERNEL, WIM_SYSTEM_HIVE, WIM_SYS_PATH};
use crate::verifier::{self, VerifierSetting};
use crate::wim::Wim;
use std::path::Path;

/// Which images of a WIM to work on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The image marked bootable in the WIM header (the one the ramdisk boots: index 2 on Setup
    /// media); every image if none is marked.
    Bootable,
    /// One image (1-based).
    Index(u32),
    /// Every image.
    All,
}

/// What happened to one image.
#[derive(Debug, Clone)]
pub struct ImageReport {
    pub index: u32,
    pub name: String,
    pub arch: Option<Arch>,
    pub changes: Vec<String>,
    pub warnings: Vec<String>,
}

/// What happened to a WIM.
#[derive(Debug, Clone)]
pub struct WimReport {
    pub images: Vec<ImageReport>,
    /// Whether the WIM file was written.
    pub written: bool,
    /// Bytes appended to the file.
    pub grown_by: u64,
}

impl WimReport {
    /// The short report printed on stdout.
    pub fn render(&self, path: &Path, remove: bool) -> String {
        let mut s = String::new();
        let file = path.display();
        for im in &self.images {
            let arch = im.arch.map(|a| format!(" [{a}]")).unwrap_or_default();
            s.push_str(&format!(
                "{file}: image {} \"{}\"{arch}:",
                im.index, im.name
            ));
            if im.changes.is_empty() {
                s.push_str(if remove {
                    " rvblk not present, nothing to remove\n"
                } else {
                    " already up to date, nothing to change\n"
                });
            } else {
                s.push('\n');
                for c in &im.changes {
                    s.push_str(&format!("  {c}\n"));
                }
            }
            for w in &im.warnings {
                s.push_str(&format!("  warning: {w}\n"));
            }
        }
        if self.written {
            s.push_str(&format!(
                "{file}: updated in place ({} KiB appended; unchanged resources kept)\n",
                self.grown_by.div_ceil(1024)
            ));
        } else {
            s.push_str(&format!("{file}: not modified\n"));
        }
        s
    }
}

/// The image indices `sel` stands for.
pub fn select(images: &[ImageInfo], sel: Selection, path: &Path) -> Result<Vec<u32>> {
    match sel {
        Selection::All => Ok(images.iter().map(|i| i.index).collect()),
        Selection::Index(n) => {
            if n == 0 || n as usize > images.len() {
                Err(Error::new(
                    ErrorKind::BadIndex,
                    format!(
                        "{}: no image {n} (the WIM has {} image{}: use --index 1..{} or --all)",
                        path.display(),
                        images.len(),
                        if images.len() == 1 { "" } else { "s" },
                        images.len()
                    ),
                ))
            } else {
                Ok(vec![n])
            }
        }
        Selection::Bootable => match images.iter().find(|i| i.bootable) {
            Some(i) => Ok(vec![i.index]),
            None => Ok(images.iter().map(|i| i.index).collect()),
        },
    }
}

/// The architecture of an image: WIM metadata (`WINDOWS/ARCH`), else its kernel's PE machine.
pub fn image_arch<W: WimStore>(wim: &mut W, info: &ImageInfo) -> Result<Arch> {
    if let Some(p) = info.arch_property {
        return Arch::from_wim_property(p).ok_or_else(|| {
            Error::new(
                ErrorKind::Arch,
                format!("image {}: architecture {p} (WINDOWS/ARCH) is not supported (x86, amd64, arm64 are)", info.index),
            )
        });
    }
    let kernel = wim.read_file(info.index, WIM_KERNEL)?.ok_or_else(|| {
        Error::new(
            ErrorKind::Arch,
            format!("image {}: cannot tell its architecture (no WINDOWS/ARCH metadata and no \\Windows\\System32\\ntoskrnl.exe)", info.index),
        )
    })?;
    let m = rvblk_pe::machine(&kernel).map_err(|e| {
        Error::new(
            ErrorKind::Arch,
            format!(
                "image {}: \\Windows\\System32\\ntoskrnl.exe is not a PE image ({e})",
                info.index
            ),
        )
    })?;
    Arch::from_pe_machine(m).ok_or_else(|| {
        Error::new(
            ErrorKind::Arch,
            format!(
                "image {}: kernel machine type {m:#06x} is not supported (x86, amd64, arm64 are)",
                info.index
            ),
        )
    })
}

fn parent_dir(p: &str) -> &str {
    p.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// The top-most missing directory on the way to `file` (recorded with a trailing `/`), if any.
fn missing_dir<W: WimStore>(wim: &mut W, image: u32, file: &str) -> Result<Option<String>> {
    let dir = parent_dir(file);
    let mut top_missing = None;
    let mut cur = dir.to_string();
    while !cur.is_empty() {
        if wim.exists(image, &cur)? {
            break;
        }
        top_missing = Some(format!("{cur}/"));
        cur = parent_dir(&cur).to_string();
    }
    Ok(top_missing)
}

/// `path` with each existing component spelled as in the image (lookups are case-insensitive, but
/// a replaced file should keep its original name, e.g. `config/system` stays lower case).
fn actual_path<W: WimStore>(wim: &mut W, image: u32, path: &str) -> Result<String> {
    let mut cur = String::new();
    let mut parts = path.split('/').filter(|p| !p.is_empty()).peekable();
    while let Some(part) = parts.next() {
        let listing = wim.list_dir(image, if cur.is_empty() { "/" } else { &cur })?;
        match listing.iter().find(|n| n.eq_ignore_ascii_case(part)) {
            Some(n) => {
                cur.push('/');
                cur.push_str(n);
            }
            None => {
                cur.push('/');
                cur.push_str(part);
                for rest in parts.by_ref() {
                    cur.push('/');
                    cur.push_str(rest);
                }
            }
        }
    }
    Ok(cur)
}

/// Loads an image's SYSTEM hive into a scratch file opened for writing.
fn load_hive(wim: &mut Wim, image: u32) -> Result<(Hive, std::path::PathBuf)> {
    let bytes = wim.read_file(image, WIM_SYSTEM_HIVE)?.ok_or_else(|| {
        Error::new(
            ErrorKind::BadHive,
            format!("{}: image {image} has no \\Windows\\System32\\config\\SYSTEM (not a Windows PE/Setup image?)", wim.path().display()),
        )
    })?;
    let dir = wim.scratch_dir()?;
    let p = dir.join("SYSTEM");
    std::fs::write(&p, &bytes).map_err(|e| Error::io(&p, "cannot write", &e))?;
    let hive = Hive::open(&p, true).map_err(|e| {
        Error::new(
            e.kind,
            format!(
                "{}: image {image}: SYSTEM hive: {}",
                wim.path().display(),
                e.msg
            ),
        )
    })?;
    Ok((hive, dir))
}

fn prefix_err(path: &Path, image: u32, e: Error) -> Error {
    if e.msg.starts_with(&path.display().to_string()) {
        e
    } else if e.msg.starts_with(&format!("image {image}:")) {
        Error::new(e.kind, format!("{}: {}", path.display(), e.msg))
    } else {
        Error::new(
            e.kind,
            format!("{}: image {image}: {}", path.display(), e.msg),
        )
    }
}

/// Extra settings for [`inject_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct InjectOptions {
    /// Driver Verifier for rvblk.sys in each image's SYSTEM hive (`docs/verifier.md`); `None`
    /// leaves whatever is there.
    pub verifier: Option<VerifierSetting>,
    /// `DbgPrint` through to the kernel debugger (`Debug Print Filter\DEFAULT`), set or
    /// removed; `None` leaves it (`docs/verifier.md` §4).
    pub debug_print: Option<bool>,
}

/// Injects rvblk into the selected images of the WIM at `path` (see the crate docs).
pub fn inject(path: &Path, pkg: &Package, sel: Selection) -> Result<WimReport> {
    inject_with(path, pkg, sel, InjectOptions::default())
}

/// [`inject`] with [`InjectOptions`].
pub fn inject_with(
    path: &Path,
    pkg: &Package,
    sel: Selection,
    opts: InjectOptions,
) -> Result<WimReport> {
    let size0 = file_len(path);
    let mut wim = Wim::open(path, true)?;
    let images = wim.images()?;
    let indices = select(&images, sel, path)?;
    let mut reports = Vec::new();
    let mut plans: Vec<(u32, Vec<FileOp>)> = Vec::new();
    for &idx in &indices {
        let info = images[idx as usize - 1].clone();
        let one = (|| -> Result<()> {
            let arch = image_arch(&mut wim, &info)?;
            let sys = pkg.sys_for(arch)?;
            let (mut hive, dir) = load_hive(&mut wim, idx)?;
            let mut ops = Vec::new();
            let mut changes = Vec::new();
            let mut new_files = Vec::new();
            for (wim_path, src) in [
                (WIM_SYS_PATH, sys.as_path()),
                (WIM_INF_PATH, pkg.inf_path.as_path()),
            ] {
                let want = std::fs::read(src).map_err(|e| Error::io(src, "cannot read", &e))?;
                let have = wim.read_file(idx, wim_path)?;
                if have.as_deref() == Some(want.as_slice()) {
                    continue;
                }
                if have.is_none() {
                    if let Some(d) = missing_dir(&mut wim, idx, wim_path)? {
                        changes.push(format!("+ {d} (directory)"));
                        new_files.push(d);
                    }
                    new_files.push(wim_path.to_string());
                    changes.push(format!(
                        "+ {wim_path} ({} bytes, from {})",
                        want.len(),
                        src.display()
                    ));
                } else {
                    changes.push(format!(
                        "~ {wim_path} replaced ({} bytes, from {})",
                        want.len(),
                        src.display()
                    ));
                }
                ops.push(FileOp::Put {
                    wim_path: actual_path(&mut wim, idx, wim_path)?,
                    source: src.to_path_buf(),
                });
            }
            let mut hr = system::inject(&mut hive, &pkg.inf, arch, &new_files)?;
            if let Some(v) = opts.verifier {
                let vr = verifier::apply(&mut hive, v, info.build)?;
                hr.modified |= !vr.changes.is_empty();
                hr.changes.extend(vr.changes);
                hr.warnings.extend(vr.warnings);
            }
            if let Some(on) = opts.debug_print {
                let c = verifier::set_debug_print(&mut hive, on)?;
                hr.modified |= !c.is_empty();
                hr.changes.extend(c);
            }
            if hr.modified {
                let out = dir.join("SYSTEM.new");
                crate::store::RegistryHive::commit_to(&mut hive, &out)?;
                for c in &hr.changes {
                    changes.push(format!("~ SYSTEM: {c}"));
                }
                if hr.changes.is_empty() {
                    changes.push("~ SYSTEM: inject record updated".into());
                }
                ops.push(FileOp::Put {
                    wim_path: actual_path(&mut wim, idx, WIM_SYSTEM_HIVE)?,
                    source: out,
                });
            }
            reports.push(ImageReport {
                index: idx,
                name: info.name.clone(),
                arch: Some(arch),
                changes,
                warnings: hr.warnings,
            });
            if !ops.is_empty() {
                plans.push((idx, ops));
            }
            Ok(())
        })();
        one.map_err(|e| prefix_err(path, idx, e))?;
    }
    let written = !plans.is_empty();
    for (idx, ops) in &plans {
        wim.update(*idx, ops)?;
    }
    wim.commit()?;
    drop(wim);
    Ok(wim_report(path, size0, reports, written))
}

/// Removes what [`inject`] added from the selected images.
pub fn remove(path: &Path, sel: Selection) -> Result<WimReport> {
    let size0 = file_len(path);
    let mut wim = Wim::open(path, true)?;
    let images = wim.images()?;
    let indices = select(&images, sel, path)?;
    let mut reports = Vec::new();
    let mut plans: Vec<(u32, Vec<FileOp>, Vec<String>)> = Vec::new();
    for &idx in &indices {
        let info = images[idx as usize - 1].clone();
        let one = (|| -> Result<()> {
            let (mut hive, dir) = load_hive(&mut wim, idx)?;
            let mut rr = system::remove(&mut hive)?;
            // A verifier setting for a driver that is gone would only confuse the next reader.
            let vr = verifier::apply(&mut hive, VerifierSetting::Off, info.build)?;
            rr.changes.extend(vr.changes);
            rr.warnings.extend(vr.warnings);
            let mut changes = Vec::new();
            let mut ops = Vec::new();
            let mut dirs = Vec::new();
            let mut files: Vec<String> = rr.files.clone();
            files.sort_by_key(|f| std::cmp::Reverse(f.matches('/').count()));
            for f in files {
                if let Some(d) = f.strip_suffix('/') {
                    dirs.push(d.to_string());
                } else if wim.exists(idx, &f)? {
                    changes.push(format!("- {f}"));
                    ops.push(FileOp::Delete { wim_path: f });
                }
            }
            if !rr.changes.is_empty() {
                let out = dir.join("SYSTEM.new");
                crate::store::RegistryHive::commit_to(&mut hive, &out)?;
                for c in &rr.changes {
                    changes.push(format!("~ SYSTEM: {c}"));
                }
                ops.push(FileOp::Put {
                    wim_path: actual_path(&mut wim, idx, WIM_SYSTEM_HIVE)?,
                    source: out,
                });
            }
            let mut warnings = rr.warnings;
            if !rr.recorded && !rr.changes.is_empty() {
                warnings.push(
                    "no inject record found: removed the keys and files whose values are rvblk's"
                        .into(),
                );
            }
            reports.push(ImageReport {
                index: idx,
                name: info.name.clone(),
                arch: None,
                changes,
                warnings,
            });
            if !ops.is_empty() || !dirs.is_empty() {
                plans.push((idx, ops, dirs));
            }
            Ok(())
        })();
        one.map_err(|e| prefix_err(path, idx, e))?;
    }
    let mut written = false;
    for (idx, ops, dirs) in &plans {
        if !ops.is_empty() {
            wim.update(*idx, ops)?;
            written = true;
        }
        // Directories inject created go too, once empty (deepest first).
        for d in dirs {
            if wim.exists(*idx, d)? && wim.list_dir(*idx, d)?.is_empty() {
                wim.update(
                    *idx,
                    &[FileOp::Delete {
                        wim_path: d.clone(),
                    }],
                )?;
                if let Some(r) = reports.iter_mut().find(|r| r.index == *idx) {
                    r.changes.insert(0, format!("- {d}/ (directory)"));
                }
                written = true;
            }
        }
    }
    if written {
        wim.commit()?;
    }
    drop(wim);
    Ok(wim_report(path, size0, reports, written))
}

/// The report of a pass over the WIM at `path` (closed again), which was `size0` bytes before.
fn wim_report(path: &Path, size0: u64, images: Vec<ImageReport>, written: bool) -> WimReport {
    WimReport {
        images,
        written,
        grown_by: file_len(path).saturating_sub(size0),
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}
