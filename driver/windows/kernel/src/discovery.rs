//! Discovery inside Windows (PASSIVE_LEVEL, HwFindAdapter): snapshot low memory, read the OS RAM
//! ranges and the NFIT (through [`crate::physmem`]), run `rvblk_core::discovery`, log the result.

use crate::physmem::{self, LowMemorySnapshot, PoolBox};
use crate::rvblk_log;
use rvblk_core::discovery::{
    discover_into, Discovered, DiscoveryInput, DiscoveryLog, Event, Firmware,
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
    discover_into(&mem, &input, &mut DbgLog, &mut found);
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
