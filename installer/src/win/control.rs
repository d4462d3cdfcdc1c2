//! `mount`, `ramdisk`, `list`, `eject` on Windows: find rvblk's adapter, send the request the
//! library built, show the answer (docs/control.md §8). All system calls are in `sys`.

use super::sys::{self, IoctlError};
use super::{fail, win32_text};
use crate::Kind;
use rvblk_core::control::{NtPath, Request, HEADER_LEN};
use rvblk_core::image::DeviceKind;
use rvblk_install::control::{
    self as ctl, decode, encode_request, Answer, EjectTarget, Encoded, Lun, Refusal,
};
use rvblk_install::package::HARDWARE_ID;

const ERROR_ACCESS_DENIED: u32 = 5;

/// The kind `mount` was given, if any.
pub fn kind_flags(cd: bool, disk: bool, floppy: bool) -> Option<DeviceKind> {
    match (cd, disk, floppy) {
        (true, _, _) => Some(DeviceKind::CdRom),
        (_, true, _) => Some(DeviceKind::Disk),
        (_, _, true) => Some(DeviceKind::Floppy),
        _ => None,
    }
}

fn cwd() -> String {
    std::env::current_dir()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The interface path of the running rvblk adapter.
fn adapter() -> Result<Vec<u16>, String> {
    let ports = sys::storage_ports()
        .map_err(|e| format!("cannot list the storage adapters: {}", win32_text(e)))?;
    let mut ours = ports.into_iter().filter(|p| {
        p.hardware_ids
            .iter()
            .any(|id| id.eq_ignore_ascii_case(HARDWARE_ID))
    });
    match (ours.next(), ours.next()) {
        (Some(port), None) => Ok(port.path),
        (Some(_), Some(_)) => Err(format!(
            "more than one running adapter has hardware ID {HARDWARE_ID}; `rvblk-install \
             status` lists them"
        )),
        (None, _) => Err(format!(
            "no rvblk adapter is running on this machine (no storage adapter with hardware ID \
             {HARDWARE_ID}): install the driver with `rvblk-install install`, and see \
             `rvblk-install status` for why it is not running"
        )),
    }
}

/// Sends one request and decodes the answer; a LIST that does not fit is asked again with the
/// room the driver names.
fn send(path: &[u16], mut req: Encoded) -> Result<Answer, String> {
    for _ in 0..4 {
        let returned = sys::scsi_miniport(path, &mut req.bytes).map_err(|e| match e {
            IoctlError::Open(ERROR_ACCESS_DENIED) => {
                "cannot open the rvblk adapter: only Administrators may send it requests (run \
                 from a command prompt opened with \"Run as administrator\")"
                    .to_string()
            }
            IoctlError::Open(e) => format!("cannot open the rvblk adapter: {}", win32_text(e)),
            IoctlError::Call(e) => format!(
                "the adapter did not take the request ({}); is the running driver older than \
                 this program? `rvblk-install status` shows its version",
                win32_text(e)
            ),
        })?;
        match decode(req.code, &req.bytes[..returned.min(req.bytes.len())]) {
            Err(Refusal::BufferTooSmall(needed)) => {
                let room = HEADER_LEN + needed as usize;
                if room <= req.bytes.len() {
                    return Err("the driver asked for less room than it had".into());
                }
                let code = req.code;
                req.bytes = rebuild_list(room)?;
                req.code = code;
            }
            other => return other.map_err(|r| r.to_string()),
        }
    }
    Err("the LUN list kept growing while it was read; try again".into())
}

fn rebuild_list(total: usize) -> Result<Vec<u8>, String> {
    Ok(encode_request(&Request::ListLuns, ctl::TIMEOUT_SECONDS, total - HEADER_LEN).bytes)
}

fn luns(path: &[u16]) -> Result<Vec<Lun>, String> {
    match send(
        path,
        encode_request(&Request::ListLuns, ctl::TIMEOUT_SECONDS, 4096),
    )? {
        Answer::Luns(l) => Ok(l),
        other => Err(format!("unexpected answer to LIST: {other:?}")),
    }
}

fn show_new(answer: Answer) -> i32 {
    match answer {
        Answer::Lun(l) => {
            println!(
                "rvblk-install: target {}: {} of {} ({}){}",
                l.target,
                l.kind,
                l.size_bytes,
                l.origin,
                l.path.map(|p| format!(" from {p}")).unwrap_or_default()
            );
            0
        }
        other => fail(format!("unexpected answer: {other:?}")),
    }
}

pub fn mount(file: &str, kind: Option<DeviceKind>, ro: bool) -> i32 {
    let run = || -> Result<Answer, String> {
        let nt = ctl::nt_path(file, &cwd())?;
        let bytes = ctl::nt_path_bytes(&nt)?;
        let path = NtPath::new(&bytes).map_err(|e| e.to_string())?;
        let kind = kind.unwrap_or(if file.to_ascii_lowercase().ends_with(".iso") {
            DeviceKind::CdRom
        } else {
            DeviceKind::Disk
        });
        let req = Request::MountFile {
            kind,
            read_only: ro || kind == DeviceKind::CdRom,
            path,
        };
        send(&adapter()?, encode_request(&req, ctl::TIMEOUT_SECONDS, 0))
    };
    run().map_or_else(fail, show_new)
}

pub fn ramdisk(size: Option<&str>, kind: Kind, from: Option<&str>, ro: bool) -> i32 {
    let kind = match kind {
        Kind::Disk => DeviceKind::Disk,
        Kind::Cd => DeviceKind::CdRom,
        Kind::Floppy => DeviceKind::Floppy,
    };
    let run = || -> Result<Answer, String> {
        let source = from
            .map(|f| -> Result<(String, u64), String> {
                let len = std::fs::metadata(f).map_err(|e| format!("{f}: {e}"))?.len();
                Ok((ctl::nt_path(f, &cwd())?, len))
            })
            .transpose()?;
        let size = match (size, &source) {
            (Some(s), _) => ctl::parse_size(s)?,
            (None, Some((_, len))) => *len,
            (None, None) => return Err("give a SIZE or --from IMAGE".into()),
        };
        let size = ctl::round_to_blocks(size, kind)?;
        let bytes = source
            .as_ref()
            .map(|(nt, _)| ctl::nt_path_bytes(nt))
            .transpose()?;
        let source = bytes
            .as_deref()
            .map(NtPath::new)
            .transpose()
            .map_err(|e| e.to_string())?;
        let req = Request::CreateRamDisk {
            kind,
            read_only: ro || kind == DeviceKind::CdRom,
            size_bytes: size,
            source,
        };
        send(
            &adapter()?,
            encode_request(&req, ctl::RAM_DISK_TIMEOUT_SECONDS, 0),
        )
    };
    run().map_or_else(fail, show_new)
}

pub fn list(json: bool) -> i32 {
    match adapter().and_then(|p| luns(&p)) {
        Ok(l) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&l).expect("LUNs serialise")
            );
            0
        }
        Ok(l) => {
            print!("{}", ctl::table(&l));
            0
        }
        Err(e) => fail(e),
    }
}

pub fn eject(target: &str) -> i32 {
    let run = || -> Result<u8, String> {
        let path = adapter()?;
        let id = match ctl::eject_target(target, &cwd())? {
            EjectTarget::Id(id) => id,
            EjectTarget::File(nt) => ctl::find_file(&luns(&path)?, &nt)?,
        };
        match send(
            &path,
            encode_request(&Request::Remove { target_id: id }, ctl::TIMEOUT_SECONDS, 0),
        )? {
            Answer::Removed(t) => Ok(t),
            other => Err(format!("unexpected answer: {other:?}")),
        }
    };
    match run() {
        Ok(t) => {
            println!("rvblk-install: target {t} is being removed");
            0
        }
        Err(e) => fail(e),
    }
}
