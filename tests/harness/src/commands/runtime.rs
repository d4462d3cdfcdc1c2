//! `rvblk-harness runtime`: the control interface (`docs/control.md`) of a real driver, through
//! the emulated port. Requests are built with the same encoder the CLI uses
//! (`rvblk_core::control::encode`) and sent as SRB_FUNCTION_IO_CONTROL SRBs through HwStartIo,
//! in guarded buffers; replies are decoded with `read_reply`. Checked per RAM-image scenario:
//! LIST LUNS is the LUN table (the scenario's images, and what INQUIRY / READ CAPACITY / MODE
//! SENSE say); every bad request gets its defined answer (§4) and changes nothing (the LIST
//! reply and the SCSI view are the same before and after); nothing trips the verifier.
//!
//! Every request carries a requester's IRP at OriginalRequest (`docs/harness-runtime.md` §1).
//! Under StorPort the driver serves runtime mounts: admissible requests get their service
//! errors, and `mounts` runs issue 14's scenarios (files as CD and disk, a RAM disk, ejects,
//! refusals). `rvblkxp.sys` (SCSIPORT) answers admissible requests NOT AVAILABLE, and that is
//! what is checked for it.

use crate::commands::control::{code_of, encoded, requester_released, send_as, utf16, Answer};
use crate::commands::scenario::{ExpectedLun, Setup};
use crate::commands::scsi::{Io, LunInfo as ScsiLun};
use crate::emu::kernel::{Kernel, MachineConfig, Personality, Requester};
use crate::emu::storport::{Adapter, SRB_STATUS_INVALID_REQUEST, SRB_STATUS_SUCCESS};
use rvblk_core::control::{
    read_reply, ControlCode, ControlError, NtPath, Reply, ReplyError, Request as Control,
    HEADER_LEN, LUN_PATH_UNITS,
};
use rvblk_core::image::{DeviceKind, WritePolicy};
use std::path::Path;
use std::sync::Arc;

mod mounts;

/// RAM-image layouts with a CD, hard disks and a floppy among them; MEMDISK also under XP.
const SCENARIOS: &[&str] = &["g4d_both", "g4d_fd0", "memdisk_iso"];

/// The scenario the runtime mounts run on (StorPort): a CD and a disk the loader left, so the
/// new LUNs come after two boot images.
const MOUNT_SCENARIO: &str = "g4d_both";

/// The emulated RAM for MDL pages in `runtime` (MiB, at most): less than the scenarios'
/// 256 MiB machines, so a RAM disk the admission accepts can still find no memory.
const RUNTIME_RAM_LIMIT_MIB: u64 = 128;

/// Sends `bytes` as an elevated administrator (a read-only request: no write open allowed).
fn send(io: &mut Io<'_>, bytes: &[u8]) -> Answer {
    send_as(io, bytes, Requester::Admin, true)
}

/// LIST LUNS with ample room: the raw reply and the decoded entries.
pub(crate) fn list(io: &mut Io<'_>) -> Result<(Vec<u8>, Vec<Entry>), String> {
    list_reply(send(io, &encoded(&Control::ListLuns, 64 << 10)))
}

/// [`list`]'s entries, or `None` when the driver has no control interface at all (it answers
/// SRB_FUNCTION_IO_CONTROL INVALID_REQUEST: the harness's mock miniports).
pub(crate) fn list_if_served(io: &mut Io<'_>) -> Result<Option<Vec<Entry>>, String> {
    let a = send(io, &encoded(&Control::ListLuns, 64 << 10));
    if a.srb_status == SRB_STATUS_INVALID_REQUEST {
        return Ok(None);
    }
    list_reply(a).map(|(_, entries)| Some(entries))
}

fn list_reply(a: Answer) -> Result<(Vec<u8>, Vec<Entry>), String> {
    if a.srb_status != SRB_STATUS_SUCCESS {
        return Err(format!(
            "LIST LUNS completed with SrbStatus {:#x}",
            a.srb_status
        ));
    }
    match read_reply(ControlCode::ListLuns, a.returned()) {
        Ok(Reply::Luns(entries)) => Ok((a.returned().to_vec(), entries.map(Entry::of).collect())),
        other => Err(format!("LIST LUNS answered {other:?}")),
    }
}

/// A LIST entry, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) target_id: u8,
    pub(crate) kind: DeviceKind,
    pub(crate) origin: &'static str,
    pub(crate) read_only: bool,
    pub(crate) block_size: u32,
    pub(crate) blocks: u64,
    /// The path's UTF-16LE bytes.
    pub(super) path: Option<Vec<u8>>,
}

impl Entry {
    fn of(i: rvblk_core::control::LunInfo<'_>) -> Entry {
        Entry {
            target_id: i.target_id,
            kind: i.kind,
            origin: i.origin.name(),
            read_only: i.read_only,
            block_size: i.block_size,
            blocks: i.blocks,
            path: i.path.map(|p| p.as_le_bytes().to_vec()),
        }
    }
}

/// LIST against the scenario's images and the SCSI view of the same adapter.
fn check_list(
    entries: &[Entry],
    expected: &[&ExpectedLun],
    scsi: &[ScsiLun],
) -> Result<(), String> {
    if entries.len() != expected.len() || entries.len() != scsi.len() {
        return Err(format!(
            "LIST has {} LUN(s); the scenario has {}, SCSI enumeration found {}",
            entries.len(),
            expected.len(),
            scsi.len()
        ));
    }
    for (n, ((e, want), s)) in entries.iter().zip(expected).zip(scsi).enumerate() {
        let kind = DeviceKind::from_name(want.kind).ok_or("unknown kind")?;
        let bs = kind.block_size();
        let read_only = kind == DeviceKind::CdRom || want.policy == WritePolicy::ReadOnly;
        let wanted = Entry {
            target_id: n as u8,
            kind,
            origin: "loader",
            read_only,
            block_size: bs,
            blocks: want.length / u64::from(bs),
            path: None,
        };
        if *e != wanted {
            return Err(format!("LUN {n}: LIST says {e:?}, the scenario {wanted:?}"));
        }
        if (
            s.target,
            s.block_size,
            s.blocks,
            // A CD is read-only by its type; MMC devices do not report the WP bit.
            s.write_protected || s.is_cd(),
            s.is_cd(),
        ) != (
            e.target_id,
            e.block_size,
            e.blocks,
            e.read_only,
            kind == DeviceKind::CdRom,
        ) {
            return Err(format!("LUN {n}: LIST says {e:?}, SCSI says {s:?}"));
        }
    }
    Ok(())
}

/// One bad request: its bytes and the answer it must get.
struct Bad {
    name: &'static str,
    bytes: Vec<u8>,
    /// `None`: a header-level refusal (INVALID_REQUEST, nothing written).
    want: Option<ControlError>,
}

/// The bad requests every driver must refuse. `serves`: the driver serves runtime mounts
/// (StorPort), so admissible requests get their service error instead of `NotAvailable`;
/// `ram_limit`: the emulated RAM for MDL pages.
fn bad_requests(entries: &[Entry], ram_bytes: u64, serves: bool, ram_limit: u64) -> Vec<Bad> {
    let iso = utf16(r"\??\C:\images\win.iso");
    let iso = NtPath::new(&iso).expect("path");
    fn mount(path: NtPath<'_>) -> Control<'_> {
        Control::MountFile {
            kind: DeviceKind::CdRom,
            read_only: true,
            path,
        }
    }
    let ram = |size_bytes| Control::CreateRamDisk {
        kind: DeviceKind::Disk,
        read_only: false,
        size_bytes,
        source: None,
    };
    let list = encoded(&Control::ListLuns, 64);
    let mut out = vec![
        Bad {
            name: "short_buffer",
            bytes: list[..HEADER_LEN - 1].to_vec(),
            want: None,
        },
        Bad {
            name: "wrong_signature",
            bytes: {
                let mut b = list.clone();
                b[4..12].copy_from_slice(b"SCSIDISK");
                b
            },
            want: None,
        },
        Bad {
            name: "bad_header_length",
            bytes: {
                let mut b = list.clone();
                b[0] = 24;
                b
            },
            want: None,
        },
        Bad {
            name: "length_past_buffer",
            bytes: {
                let mut b = list.clone();
                let past = (b.len() - HEADER_LEN + 1) as u32;
                b[24..28].copy_from_slice(&past.to_le_bytes());
                b
            },
            want: None,
        },
        Bad {
            name: "unknown_code",
            bytes: {
                let mut b = list.clone();
                b[16..20].copy_from_slice(&77u32.to_le_bytes());
                b
            },
            want: Some(ControlError::UnknownCode),
        },
        Bad {
            name: "unsupported_version",
            bytes: {
                let mut b = list.clone();
                b[HEADER_LEN] = 2;
                b
            },
            want: Some(ControlError::UnsupportedVersion),
        },
        Bad {
            name: "truncated_mount",
            bytes: {
                let mut b = encoded(&mount(iso), 0);
                let short = 6u32;
                b[24..28].copy_from_slice(&short.to_le_bytes());
                b
            },
            want: Some(ControlError::Truncated),
        },
        Bad {
            name: "path_not_absolute",
            bytes: {
                let mut b = encoded(&mount(iso), 0);
                b[HEADER_LEN + 8] = b'C';
                b
            },
            want: Some(ControlError::PathNotAbsolute),
        },
        Bad {
            name: "path_with_nul",
            bytes: {
                let mut b = encoded(&mount(iso), 0);
                b[HEADER_LEN + 12] = 0;
                b
            },
            want: Some(ControlError::PathHasNul),
        },
        Bad {
            name: "path_too_long",
            bytes: {
                let long = utf16(&format!("\\??\\C:\\{}", "x".repeat(LUN_PATH_UNITS)));
                encoded(&mount(NtPath::new(&long).expect("path")), 0)
            },
            want: Some(ControlError::PathTooLong),
        },
        Bad {
            name: "ram_disk_size_0",
            bytes: encoded(&ram(0), 64),
            want: Some(ControlError::ZeroSize),
        },
        Bad {
            name: "ram_disk_larger_than_ram",
            bytes: encoded(&ram((ram_bytes & !511) + 512), 64),
            want: Some(ControlError::SizeExceedsMemory),
        },
        Bad {
            name: "ram_cd_without_source",
            bytes: encoded(
                &Control::CreateRamDisk {
                    kind: DeviceKind::CdRom,
                    read_only: true,
                    size_bytes: 2048 * 16,
                    source: None,
                },
                64,
            ),
            want: Some(ControlError::CdNeedsSource),
        },
        Bad {
            name: "eject_missing_target",
            bytes: encoded(&Control::Remove { target_id: 200 }, 64),
            want: Some(ControlError::NoSuchTarget),
        },
    ];
    if serves {
        // Admissible, and then refused by the work itself: all of the machine's RAM is more
        // than the emulated RAM can give (nothing half created), and a path outside the one
        // volume the harness maps (`\\??\\Z:\\`) does not exist.
        if ram_bytes & !511 > ram_limit {
            out.push(Bad {
                name: "ram_disk_over_emulated_ram",
                bytes: encoded(&ram(ram_bytes & !511), 64),
                want: Some(ControlError::InsufficientMemory),
            });
        }
        out.push(Bad {
            name: "mount_outside_the_mapped_volume",
            bytes: encoded(&mount(iso), 64),
            want: Some(ControlError::FileNotFound),
        });
    } else {
        // Admissible, but this driver (SCSIPORT) cannot do it.
        out.push(Bad {
            name: "ram_disk_of_all_ram_not_available",
            bytes: encoded(&ram(ram_bytes & !511), 64),
            want: Some(ControlError::NotAvailable),
        });
        out.push(Bad {
            name: "mount_not_available",
            bytes: encoded(&mount(iso), 64),
            want: Some(ControlError::NotAvailable),
        });
    }
    if let Some(boot) = entries.first() {
        out.push(Bad {
            name: "eject_boot_image",
            bytes: encoded(
                &Control::Remove {
                    target_id: boot.target_id,
                },
                64,
            ),
            want: Some(ControlError::BootImage),
        });
    }
    out
}

fn check_bad(io: &mut Io<'_>, bad: &Bad) -> Result<(), String> {
    let pages = io.a.k.mdl_bytes().0;
    let a = send(io, &bad.bytes);
    match bad.want {
        None => {
            if a.srb_status != SRB_STATUS_INVALID_REQUEST || a.transferred != 0 {
                return Err(format!(
                    "SrbStatus {:#x} with {} bytes; wanted INVALID_REQUEST with 0",
                    a.srb_status, a.transferred
                ));
            }
            if a.buf != bad.bytes {
                return Err("the driver wrote into a request that is not its own".into());
            }
        }
        Some(want) => {
            if a.srb_status != SRB_STATUS_SUCCESS || a.transferred != HEADER_LEN {
                return Err(format!(
                    "SrbStatus {:#x} with {} bytes; wanted SUCCESS with the 28-byte header",
                    a.srb_status, a.transferred
                ));
            }
            let got = read_reply(code_of(&bad.bytes), a.returned());
            // A port may report less than all RAM as available for RAM disks (docs/control.md
            // §5 step 3): refusing the size at admission is as right as failing the allocation.
            let also = (want == ControlError::InsufficientMemory)
                .then_some(Err(ReplyError::Refused(ControlError::SizeExceedsMemory)));
            if got != Err(ReplyError::Refused(want)) && Some(got) != also {
                return Err(format!("answered {got:?}; wanted {want:?}"));
            }
            // Only ReturnCode and Length in the header change; the payload is left alone.
            if a.buf[..20] != bad.bytes[..20] || a.buf[HEADER_LEN..] != bad.bytes[HEADER_LEN..] {
                return Err("the refusal changed bytes other than ReturnCode and Length".into());
            }
        }
    }
    // Nothing half created: no MDL pages kept.
    let held = io.a.k.mdl_bytes().0;
    if held != pages {
        return Err(format!(
            "the refused request left {:#x} bytes of MDL pages allocated",
            held.saturating_sub(pages)
        ));
    }
    requester_released(&io.a.k, a.irp, std::time::Duration::from_secs(2))
}

/// The RAM Windows manages in this emulation: what MmGetPhysicalMemoryRanges returns.
fn os_ram_bytes(setup: &Setup) -> u64 {
    setup.os_ram.iter().map(|&(_, len)| len).sum()
}

fn scenario(
    driver: &[u8],
    setup: &Setup,
    personality: Personality,
    verbose: bool,
    machine: &MachineConfig,
    passed: &mut Vec<String>,
    failed: &mut Vec<(String, String)>,
) {
    let tag = format!("{}/{}", setup.name, personality.name());
    let mut machine = machine.clone();
    machine.ram_limit_mib = machine.ram_limit_mib.min(RUNTIME_RAM_LIMIT_MIB);
    let ram_limit = machine.ram_limit_mib << 20;
    let serves = personality != Personality::Xp;
    let k: Arc<Kernel> = setup.kernel_with(personality, verbose, machine);
    let mut a = match Adapter::start(driver, k.clone()) {
        Ok(a) => a,
        Err(e) => {
            failed.push((
                format!("start [{tag}]"),
                format!("{e}; verifier: {:?}", k.failures()),
            ));
            return;
        }
    };
    let mut record = |name: String, r: Result<(), String>, k: &Kernel, before: usize| {
        let new = k.failures()[before..].to_vec();
        match (r, new.is_empty()) {
            (Ok(()), true) => passed.push(name),
            (Ok(()), false) => failed.push((name, format!("verifier: {}", new.join("; ")))),
            (Err(e), _) if new.is_empty() => failed.push((name, e)),
            (Err(e), _) => failed.push((name, format!("{e}; verifier: {}", new.join("; ")))),
        }
    };
    {
        let mut io = Io::new(&a);
        // 32-bit XP has no firmware-table query, so NFIT RAM disks cannot be found there.
        let expected: Vec<&ExpectedLun> = setup
            .expected
            .iter()
            .filter(|e| personality != Personality::Xp || e.source != "nfit")
            .collect();
        let before = k.failures().len();
        let scsi = io.enumerate();
        let first = list(&mut io);
        let r = match (&scsi, &first) {
            (Ok(scsi), Ok((_, entries))) => check_list(entries, &expected, scsi),
            (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        };
        record(format!("list_is_the_lun_table [{tag}]"), r, &k, before);
        let (Ok(scsi), Ok((first_raw, entries))) = (scsi, first) else {
            return;
        };

        // A LIST that does not fit: BUFFER TOO SMALL with the Length that does, then success.
        let before = k.failures().len();
        let r = (|| {
            let need = first_raw.len() - HEADER_LEN;
            let a1 = send(&mut io, &encoded(&Control::ListLuns, need - 1));
            match read_reply(ControlCode::ListLuns, a1.returned()) {
                Err(ReplyError::Refused(ControlError::BufferTooSmall { needed }))
                    if needed as usize == need => {}
                other => return Err(format!("with one byte too few: {other:?}")),
            }
            let a2 = send(&mut io, &encoded(&Control::ListLuns, need));
            if a2.returned() != first_raw {
                return Err("the retry with the Length named differs from the first LIST".into());
            }
            Ok(())
        })();
        record(format!("list_buffer_too_small [{tag}]"), r, &k, before);

        for bad in bad_requests(&entries, os_ram_bytes(setup), serves, ram_limit) {
            let before = k.failures().len();
            let r = check_bad(&mut io, &bad).and_then(|()| {
                // Nothing changed: the same LIST, byte for byte.
                match list(&mut io) {
                    Ok((raw, _)) if raw == first_raw => Ok(()),
                    Ok(_) => Err("LIST differs after the refused request".into()),
                    Err(e) => Err(e),
                }
            });
            record(format!("{} [{tag}]", bad.name), r, &k, before);
        }

        // Mounting files and creating RAM disks (issue 14's acceptance scenarios).
        if serves && setup.name == MOUNT_SCENARIO {
            mounts::cases(&mut io, &k, &tag, &first_raw, &mut record);
        }

        // And the SCSI view is what it was.
        let before = k.failures().len();
        let r = match io.enumerate() {
            Ok(after) if format!("{after:?}") == format!("{scsi:?}") => Ok(()),
            Ok(after) => Err(format!("SCSI enumeration changed: {scsi:?} → {after:?}")),
            Err(e) => Err(e),
        };
        record(format!("scsi_view_unchanged [{tag}]"), r, &k, before);
    }
    let before = k.failures().len();
    a.stop();
    a.restart();
    let leaks = a.remove();
    let r = if leaks.is_empty() {
        Ok(())
    } else {
        Err(format!("leaks after remove: {leaks:?}"))
    };
    record(format!("remove_after_control [{tag}]"), r, &k, before);
}

/// `rvblk-harness runtime`: one line per case and `N passed, M failed`.
pub fn main(
    driver: &Path,
    personality: Personality,
    verbose: bool,
    machine: &MachineConfig,
) -> i32 {
    let _ = machine;
    let bytes = match crate::commands::read_driver(driver) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    for sc in SCENARIOS {
        match Setup::named(sc) {
            Ok(s) => scenario(
                &bytes,
                &s,
                personality,
                verbose,
                machine,
                &mut passed,
                &mut failed,
            ),
            Err(e) => failed.push((format!("setup {sc}"), e)),
        }
    }
    crate::commands::print_results(&passed, &failed);
    println!(
        "kernel stack high-water mark: {} bytes of {}",
        crate::emu::stack::measure(),
        crate::emu::stack::KERNEL_STACK
    );
    println!("{} passed, {} failed", passed.len(), failed.len());
    i32::from(!failed.is_empty())
}
