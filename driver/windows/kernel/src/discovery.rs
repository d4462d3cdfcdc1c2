//! Discovery inside Windows (PASSIVE_LEVEL, HwFindAdapter): snapshot low memory, read the OS RAM
//! ranges and the NFIT (through [`crate::physmem`]), run `rvblk_core::discovery`, log the result.

use crate::physmem::{self, LowMemorySnapshot, PoolBox};
use crate::rvblk_log;
use rvblk_core::discovery::{
    discover_with, Discovered, DiscoveryInput, DiscoveryLog, Event, Firmware, Handoff,
};
use rvblk_core::log::RefusalLine;
use rvblk_irql::Passive;

/// Turns the core's events into `rvblk:` lines.
struct DbgLog;

impl DiscoveryLog for DbgLog {
    fn event(&mut self, event: &Event<'_>) {
        rvblk_log!("{}", event);
    }
}

/// Runs the whole discovery. `None` when nothing can be examined safely (the reason is logged).
/// The result is a few KiB, so it lives in pool.
#[inline(never)]
pub fn run(irql: &Passive) -> Option<PoolBox<Discovered>> {
    let Some(os_ram) = physmem::os_ram_ranges(irql) else {
        rvblk_log!("cannot read the OS memory map (MmGetPhysicalMemoryRanges); exposing nothing");
        return None;
    };
    let Some(mut found) = PoolBox::<Discovered>::new_default(irql) else {
        rvblk_log!("out of pool for discovery; exposing nothing");
        return None;
    };
    let Some(mem) = LowMemorySnapshot::take(irql) else {
        rvblk_log!("out of pool for the low-memory snapshot; exposing nothing");
        return None;
    };
    let total = os_ram.iter().map(|r| r.end()).max().unwrap_or(0);
    let nfit = physmem::nfit(irql);
    let input = DiscoveryInput {
        os_ram: &os_ram,
        nfit: nfit.as_ref().map(|t| t.bytes()),
        firmware: Firmware::Unknown,
        max_phys_end: if cfg!(target_arch = "x86") {
            1 << 36
        } else {
            0
        },
        total_ram_bytes: total,
    };
    // Ventoy's UEFI hand-off (`docs/ventoy.md` §3.2, §4): absent routine (before Windows 8),
    // a BIOS machine or absent variables leave both empty, i.e. the BIOS behaviour.
    let mut os_param = [0u8; 512];
    let mut ram_disk = [0u8; 16];
    let handoff = Handoff {
        ventoy_os_param: ventoy_variable(&VENTOY_OS_PARAM, &mut os_param, irql),
        ventoy_ram_disk: ventoy_variable(&VENTOY_RAM_DISK, &mut ram_disk, irql),
    };
    discover_with(&mem, &input, &handoff, &mut DbgLog, &mut found);
    for r in found.disk_refused.iter() {
        rvblk_log!("disk-backed image refused: {}", r);
    }
    for r in found.refused.iter() {
        rvblk_log!(
            "{}",
            RefusalLine {
                source: r.source,
                phys_base: r.phys_base,
                length: r.length,
                reason: r.reason,
            }
        );
    }
    Some(found)
}

const fn utf16<const N: usize>(s: &[u8; N]) -> [u16; N] {
    let mut w = [0u16; N];
    let mut i = 0;
    while i < N {
        w[i] = s[i] as u16;
        i += 1;
    }
    w
}

const VENTOY_OS_PARAM: [u16; 13] = utf16(b"VentoyOsParam");
const VENTOY_RAM_DISK: [u16; 13] = utf16(b"VentoyRamDisk");

fn ventoy_variable<'b>(name: &[u16], buf: &'b mut [u8], irql: &Passive) -> Option<&'b [u8]> {
    let got = crate::ntio::firmware_variable(name, &rvblk_abi::GUID_VENTOY_VENDOR, buf, irql)?;
    rvblk_log!(
        "UEFI variable {} read ({} bytes)",
        if name == VENTOY_OS_PARAM {
            "VentoyOsParam"
        } else {
            "VentoyRamDisk"
        },
        got.len()
    );
    Some(got)
}
