//! `mount`, `ramdisk`, `list` and `eject`: what to send to the running driver and how to show
//! its answer (`docs/control.md` §3, §8). The request bytes come from the driver's own protocol
//! crate (`rvblk_core::control`: `encode`, `read_reply`), so the CLI and the driver's parser
//! cannot disagree. Nothing here touches Windows; `win::control` opens the adapter and sends.

use rvblk_core::control::{
    self, buffer_len, encode, read_reply, ControlCode, ControlError, LunInfo, NtPath, Reply,
    ReplyError, Request,
};
use rvblk_core::image::DeviceKind;
use serde::Serialize;
use std::fmt::Write;

/// Seconds the driver may take: the SRB's TimeOutValue (§1). A file mount opens one file; a RAM
/// disk filled from an image copies it whole, so it gets longer.
pub const TIMEOUT_SECONDS: u32 = 60;
pub const RAM_DISK_TIMEOUT_SECONDS: u32 = 600;

/// A Win32 path as the driver needs it: an NT path (`docs/control.md` §3.2), following what
/// `RtlDosPathNameToNtPathName_U` does for the forms a user types:
///
/// * `C:\dir\x.iso` → `\??\C:\dir\x.iso` (`.` and `..` resolved, `/` taken as `\`);
/// * `\\server\share\x.iso` → `\??\UNC\server\share\x.iso`;
/// * `\\?\C:\x.iso` and `\\.\C:\x.iso` → `\??\C:\x.iso` (taken as they are);
/// * `\??\…` and `\Device\…` are NT paths already and are kept;
/// * a relative path (`x.iso`, `..\x.iso`, `\x.iso`) is made absolute against `cwd`, which must
///   be a drive path (`C:\…`) or a UNC path.
pub fn nt_path(path: &str, cwd: &str) -> Result<String, String> {
    let p = path.replace('/', "\\");
    if p.is_empty() {
        return Err("empty path".into());
    }
    if p.contains('\0') {
        return Err("the path contains a NUL character".into());
    }
    if let Some(rest) = p
        .strip_prefix("\\\\?\\")
        .or_else(|| p.strip_prefix("\\\\.\\"))
    {
        return Ok(format!("\\??\\{rest}"));
    }
    if p.starts_with("\\??\\") || p.to_ascii_lowercase().starts_with("\\device\\") {
        return Ok(p);
    }
    let absolute = if let Some(unc) = p.strip_prefix("\\\\") {
        format!("\\\\{unc}")
    } else if is_drive_absolute(&p) {
        p
    } else if p.len() >= 2 && p.as_bytes()[1] == b':' {
        return Err(format!(
            "{path}: a drive-relative path (no \\ after the drive letter) is ambiguous; give \
             the full path"
        ));
    } else {
        let cwd = cwd.replace('/', "\\");
        if let Some(rooted) = p.strip_prefix('\\') {
            // Rooted: the current drive (or share) only.
            let root =
                root_of(&cwd).ok_or_else(|| format!("current directory {cwd} has no drive"))?;
            format!("{root}\\{rooted}")
        } else if is_drive_absolute(&cwd) || cwd.starts_with("\\\\") {
            format!("{}\\{p}", cwd.trim_end_matches('\\'))
        } else {
            return Err(format!("current directory {cwd} is not a Windows path"));
        }
    };
    let (root, rest) = if let Some(unc) = absolute.strip_prefix("\\\\") {
        let mut parts = unc.splitn(3, '\\');
        let server = parts.next().unwrap_or_default();
        let share = parts.next().unwrap_or_default();
        if server.is_empty() || share.is_empty() {
            return Err(format!("{path}: a UNC path needs \\\\server\\share\\file"));
        }
        (
            format!("\\??\\UNC\\{server}\\{share}"),
            parts.next().unwrap_or_default().to_string(),
        )
    } else {
        (
            format!("\\??\\{}", absolute[..2].to_ascii_uppercase()),
            absolute[3..].to_string(),
        )
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in rest.split('\\') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(format!("{path}: names a directory, not a file"));
    }
    Ok(format!("{root}\\{}", parts.join("\\")))
}

fn is_drive_absolute(p: &str) -> bool {
    let b = p.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\'
}

/// `C:` of a drive path, `\\server\share` of a UNC one.
fn root_of(cwd: &str) -> Option<String> {
    if is_drive_absolute(cwd) {
        return Some(cwd[..2].to_string());
    }
    let unc = cwd.strip_prefix("\\\\")?;
    let mut parts = unc.splitn(3, '\\');
    Some(format!("\\\\{}\\{}", parts.next()?, parts.next()?))
}

/// UTF-16LE bytes of an NT path, checked by the driver's own rules (§3.2).
pub fn nt_path_bytes(nt: &str) -> Result<Vec<u8>, String> {
    let bytes: Vec<u8> = nt.encode_utf16().flat_map(u16::to_le_bytes).collect();
    NtPath::new(&bytes).map_err(|e| format!("{nt}: {e}"))?;
    if bytes.len() / 2 > control::LUN_PATH_UNITS {
        return Err(format!(
            "{nt}: the path is {} characters long; the driver keeps at most {}",
            bytes.len() / 2,
            control::LUN_PATH_UNITS
        ));
    }
    Ok(bytes)
}

/// A size as users write it: bytes, or a number with K, M, G or T (binary units, with an
/// optional `iB`/`B`): `64M`, `1.5G` is refused (whole numbers only), `1440K`, `4GiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 64M, 1440K, 2G, 1048576)"))?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use K, M, G or T: binary units)"
            ))
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// The size rounded up to whole blocks of `kind`, as the driver wants it (§3.3).
pub fn round_to_blocks(size: u64, kind: DeviceKind) -> Result<u64, String> {
    let bs = u64::from(kind.block_size());
    size.div_ceil(bs)
        .checked_mul(bs)
        .ok_or_else(|| format!("{size} bytes is too large"))
}

/// A request with its buffer and the code to decode the reply with.
pub struct Encoded {
    pub code: ControlCode,
    pub bytes: Vec<u8>,
}

/// The DeviceIoControl buffer for `request`: header, request, room for the reply.
pub fn encode_request(request: &Request<'_>, timeout: u32, room: usize) -> Encoded {
    let mut bytes = vec![0; buffer_len(request).max(control::HEADER_LEN + room)];
    encode(request, timeout, &mut bytes).expect("buffer_len gives room for the request");
    Encoded {
        code: request.code(),
        bytes,
    }
}

/// One LUN as `list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lun {
    pub target: u8,
    /// `disk`, `cdrom` or `floppy`.
    pub kind: &'static str,
    /// `loader` (found at boot), `file` or `ramdisk`.
    pub origin: &'static str,
    pub read_only: bool,
    pub block_size: u32,
    pub blocks: u64,
    pub size_bytes: u64,
    /// The mounted file (or a RAM disk's source), as an NT path.
    pub path: Option<String>,
}

impl Lun {
    pub fn of(info: &LunInfo<'_>) -> Lun {
        Lun {
            target: info.target_id,
            kind: info.kind.name(),
            origin: info.origin.name(),
            read_only: info.read_only,
            block_size: info.block_size,
            blocks: info.blocks,
            size_bytes: info.blocks.saturating_mul(u64::from(info.block_size)),
            path: info
                .path
                .map(|p| String::from_utf16_lossy(&p.units().collect::<Vec<_>>())),
        }
    }
}

/// What the driver answered, as the CLI uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Luns(Vec<Lun>),
    Lun(Lun),
    Removed(u8),
}

/// Decodes the bytes DeviceIoControl returned. `Err` carries the message for the user.
pub fn decode(code: ControlCode, returned: &[u8]) -> Result<Answer, Refusal> {
    match read_reply(code, returned) {
        Ok(Reply::Luns(entries)) => Ok(Answer::Luns(entries.map(|i| Lun::of(&i)).collect())),
        Ok(Reply::Lun(info)) => Ok(Answer::Lun(Lun::of(&info))),
        Ok(Reply::Removed { target_id }) => Ok(Answer::Removed(target_id)),
        Err(ReplyError::Refused(ControlError::BufferTooSmall { needed })) => {
            Err(Refusal::BufferTooSmall(needed))
        }
        Err(ReplyError::Refused(e)) => Err(Refusal::Driver(e)),
        Err(ReplyError::UnknownReturnCode(c)) => Err(Refusal::Other(format!(
            "the driver refused the request with code {c:#06x}, which this program does not \
             know (a newer driver?)"
        ))),
        Err(ReplyError::Malformed(what)) => Err(Refusal::Other(format!(
            "the driver's answer is malformed ({what})"
        ))),
    }
}

/// Why a request did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Ask again with this much payload room (LIST of many LUNs).
    BufferTooSmall(u32),
    Driver(ControlError),
    Other(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::BufferTooSmall(n) => write!(f, "the reply needs {n} bytes"),
            Refusal::Driver(ControlError::NotAvailable) => f.write_str(
                "the driver refused: this driver version cannot do that yet (file mounts, RAM \
                 disks and ejecting them come with a later version; list works)",
            ),
            Refusal::Driver(ControlError::BootImage) => f.write_str(
                "the driver refused: that LUN is an image the boot loader left in memory; \
                 Windows may be running from it, so it cannot be ejected",
            ),
            Refusal::Driver(e) => write!(f, "the driver refused: {e}"),
            Refusal::Other(s) => f.write_str(s),
        }
    }
}

/// `list`'s table.
pub fn table(luns: &[Lun]) -> String {
    let mut s = String::new();
    if luns.is_empty() {
        s.push_str("no LUNs\n");
        return s;
    }
    let _ = writeln!(
        s,
        "{:<6} {:<7} {:<8} {:<3} {:>12}  path",
        "target", "kind", "origin", "ro", "size"
    );
    for l in luns {
        let _ = writeln!(
            s,
            "{:<6} {:<7} {:<8} {:<3} {:>12}  {}",
            l.target,
            l.kind,
            l.origin,
            if l.read_only { "yes" } else { "no" },
            human(l.size_bytes),
            l.path.as_deref().unwrap_or("-")
        );
    }
    s
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// What `eject TARGET` names: a target id, or a mounted file looked up in the LIST reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EjectTarget {
    Id(u8),
    File(String),
}

pub fn eject_target(arg: &str, cwd: &str) -> Result<EjectTarget, String> {
    match arg.parse::<u8>() {
        Ok(id) => Ok(EjectTarget::Id(id)),
        Err(_) if arg.chars().all(|c| c.is_ascii_digit()) => {
            Err(format!("{arg}: target ids are 0–255"))
        }
        Err(_) => nt_path(arg, cwd).map(EjectTarget::File),
    }
}

/// The target of the LUN that serves `nt_path` (NT paths compare without case, as NTFS names do
/// by default).
pub fn find_file(luns: &[Lun], nt_path: &str) -> Result<u8, String> {
    luns.iter()
        .find(|l| {
            l.origin == "file"
                && l.path
                    .as_deref()
                    .is_some_and(|p| p.to_lowercase() == nt_path.to_lowercase())
        })
        .map(|l| l.target)
        .ok_or_else(|| format!("no LUN serves {nt_path} (see `rvblk-install list`)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvblk_core::control::{parse, reply_error, reply_luns, LunInfo, Origin};

    #[test]
    fn win32_paths_become_nt_paths() {
        let cwd = r"C:\Users\me\Downloads";
        for (given, want) in [
            (r"C:\images\win10.iso", r"\??\C:\images\win10.iso"),
            (r"c:\images\.\sub\..\win10.iso", r"\??\C:\images\win10.iso"),
            ("D:/isos/x.iso", r"\??\D:\isos\x.iso"),
            (r"x.iso", r"\??\C:\Users\me\Downloads\x.iso"),
            (r"..\x.iso", r"\??\C:\Users\me\x.iso"),
            (r"\x.iso", r"\??\C:\x.iso"),
            (r"\\srv\share\dir\x.iso", r"\??\UNC\srv\share\dir\x.iso"),
            (r"\\?\C:\very\long\x.iso", r"\??\C:\very\long\x.iso"),
            (r"\\.\C:\x.iso", r"\??\C:\x.iso"),
            (r"\??\E:\x.img", r"\??\E:\x.img"),
            (
                r"\Device\HarddiskVolume2\x.img",
                r"\Device\HarddiskVolume2\x.img",
            ),
        ] {
            assert_eq!(nt_path(given, cwd).as_deref(), Ok(want), "{given}");
        }
        assert_eq!(
            nt_path("x.iso", r"\\srv\share\d").as_deref(),
            Ok(r"\??\UNC\srv\share\d\x.iso")
        );
        for bad in ["", "C:x.iso", r"C:\", r"\\srv", "a\0b"] {
            assert!(nt_path(bad, cwd).is_err(), "{bad:?}");
        }
        assert!(nt_path("x.iso", "/home/me").is_err());
    }

    #[test]
    fn sizes() {
        for (s, want) in [
            ("1048576", 1 << 20),
            ("64M", 64 << 20),
            ("64MiB", 64 << 20),
            ("1440K", 1440 << 10),
            ("2g", 2 << 30),
            ("1T", 1 << 40),
        ] {
            assert_eq!(parse_size(s), Ok(want), "{s}");
        }
        for bad in [
            "",
            "M",
            "1.5G",
            "-1",
            "12X",
            "99999999999999999999",
            "17179869184T",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert_eq!(round_to_blocks(1000, DeviceKind::Disk), Ok(1024));
        assert_eq!(round_to_blocks(2049, DeviceKind::CdRom), Ok(4096));
        assert_eq!(round_to_blocks(1474560, DeviceKind::Floppy), Ok(1474560));
        assert!(round_to_blocks(u64::MAX, DeviceKind::Disk).is_err());
    }

    /// The CLI's requests, read by the driver's parser: the same request comes out.
    #[test]
    fn requests_round_trip_through_the_drivers_parser() {
        let nt = nt_path(r"C:\images\win10.iso", r"C:\").unwrap();
        let path = nt_path_bytes(&nt).unwrap();
        let path = NtPath::new(&path).unwrap();
        let requests = [
            Request::ListLuns,
            Request::MountFile {
                kind: DeviceKind::CdRom,
                read_only: true,
                path,
            },
            Request::MountFile {
                kind: DeviceKind::Disk,
                read_only: false,
                path,
            },
            Request::CreateRamDisk {
                kind: DeviceKind::Floppy,
                read_only: false,
                size_bytes: parse_size("1440K").unwrap(),
                source: None,
            },
            Request::CreateRamDisk {
                kind: DeviceKind::CdRom,
                read_only: true,
                size_bytes: 2048 * 100,
                source: Some(path),
            },
            Request::Remove { target_id: 3 },
        ];
        for r in requests {
            let e = encode_request(&r, TIMEOUT_SECONDS, 4096);
            let parsed = parse(&e.bytes).expect("the driver parses what the CLI sends");
            assert_eq!(parsed.request, r);
            assert_eq!(parsed.timeout, TIMEOUT_SECONDS);
            assert_eq!(parsed.request.code(), e.code);
            assert_eq!(e.bytes.len(), control::HEADER_LEN + 4096);
        }
        // The path check is the driver's: a path it would refuse is refused before sending.
        assert!(nt_path_bytes(&format!(
            "\\??\\C:\\{}",
            "x".repeat(control::LUN_PATH_UNITS)
        ))
        .is_err());
        assert!(nt_path_bytes("C:\\x").is_err());
    }

    #[test]
    fn answers_are_decoded_and_refusals_explained() {
        let x_img = nt_path_bytes(r"\??\C:\X.img").unwrap();
        let luns = [
            LunInfo {
                target_id: 0,
                kind: DeviceKind::CdRom,
                origin: Origin::Loader,
                read_only: true,
                block_size: 2048,
                blocks: 1000,
                path: None,
            },
            LunInfo {
                target_id: 1,
                kind: DeviceKind::Disk,
                origin: Origin::File,
                read_only: false,
                block_size: 512,
                blocks: 2048,
                path: Some(NtPath::new(&x_img).unwrap()),
            },
        ];
        let mut e = encode_request(&Request::ListLuns, TIMEOUT_SECONDS, 4096);
        let c = reply_luns(&mut e.bytes, &luns);
        let returned = &e.bytes[..c.data_transfer_length as usize];
        let Ok(Answer::Luns(got)) = decode(e.code, returned) else {
            panic!("not a list")
        };
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].path.as_deref(), Some(r"\??\C:\X.img"));
        assert_eq!(got[0].size_bytes, 2048 * 1000);
        let t = table(&got);
        assert!(
            t.contains("cdrom") && t.contains("loader") && t.contains("2.0 MiB"),
            "{t}"
        );
        assert!(t.contains(r"\??\C:\X.img") && t.contains("1.0 MiB"), "{t}");
        let json = serde_json::to_value(&got).unwrap();
        assert_eq!(json[1]["origin"], "file");
        assert_eq!(json[0]["read_only"], true);
        assert_eq!(find_file(&got, r"\??\c:\x.IMG"), Ok(1));
        assert!(find_file(&got, r"\??\C:\other.img").is_err());

        for (err, want) in [
            (ControlError::NotAvailable, "cannot do that yet"),
            (ControlError::BootImage, "boot loader left in memory"),
            (
                ControlError::SizeExceedsMemory,
                "larger than the available memory",
            ),
        ] {
            let mut e = encode_request(&Request::ListLuns, TIMEOUT_SECONDS, 64);
            reply_error(&mut e.bytes, err);
            let r = decode(e.code, &e.bytes[..control::HEADER_LEN]).unwrap_err();
            assert_eq!(r, Refusal::Driver(err));
            assert!(r.to_string().contains(want), "{r}");
        }
        let mut e = encode_request(&Request::ListLuns, TIMEOUT_SECONDS, 8);
        let c = reply_luns(&mut e.bytes, &luns);
        assert_eq!(
            decode(e.code, &e.bytes[..c.data_transfer_length as usize]),
            Err(Refusal::BufferTooSmall(8 + 20 + 20 + 24))
        );
    }

    #[test]
    fn eject_targets() {
        assert_eq!(eject_target("3", r"C:\"), Ok(EjectTarget::Id(3)));
        assert_eq!(
            eject_target(r"D:\a.iso", r"C:\"),
            Ok(EjectTarget::File(r"\??\D:\a.iso".into()))
        );
        assert!(eject_target("256", r"C:\").is_err());
    }
}
