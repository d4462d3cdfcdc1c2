//! HwStartIo's SRB_FUNCTION_IO_CONTROL (`docs/control.md` §1, §4, §5): the core parses, admits
//! and answers (`rvblk_core::control::serve`); this module hands it the SRB's buffer, the LUN
//! table and the port's limits, and completes the SRB as the core says. It runs at
//! ≤ DISPATCH_LEVEL on any CPU, reads the table only and allocates nothing.
//!
//! No work is offered yet ([`Services::empty`]): mounting a file, creating a RAM disk and
//! removing a runtime LUN need the PASSIVE_LEVEL worker, so the core answers those NOT AVAILABLE
//! after every other rule has been checked. LIST LUNS is answered here, synchronously.

use crate::adapter::{Adapter, MAX_TARGETS};
use crate::backed::DiskPath;
use crate::physmem;
use crate::srb::Srb;
use arrayvec::ArrayVec;
use rvblk_core::control::{self, ControlError, Limits, LunInfo, Served, Services, LUN_PATH_UNITS};
use rvblk_core::srb::{BufferUse, SrbCompletion};
use rvblk_irql::Passive;

/// The RAM Windows manages (the sum of MmGetPhysicalMemoryRanges), measured in HwFindAdapter:
/// no RAM disk can be larger (`docs/control.md` §5). 0 when the ranges cannot be read, which
/// refuses every RAM disk as too large rather than guessing.
pub fn os_ram_bytes(irql: &Passive) -> u64 {
    physmem::os_ram_ranges(irql).map_or(0, |ranges| {
        ranges.iter().map(|r| r.length).fold(0, u64::saturating_add)
    })
}

/// The LUNs a loader left at boot as the protocol reports them, sorted by target id: every
/// RAM image in the adapter's table (target = index, `crate::adapter`) and every disk-backed
/// image Windows can see now (`disk`, when the adapter has a disk path). The runtime's LIST
/// adds its own LUNs to these (`crate::runtime`).
pub(crate) fn boot_luns<const N: usize>(
    adapter: &Adapter,
    disk: Option<&DiskPath>,
) -> ArrayVec<LunInfo<'static>, N> {
    let ram = adapter
        .targets()
        .enumerate()
        // MAX_LUNS ≤ 256: the table index is the target id.
        .map(|(index, target)| LunInfo::loader(index as u8, target.image()));
    let disks = disk
        .into_iter()
        .flat_map(|d| d.disk_luns())
        .map(|(target_id, lun)| LunInfo::loader(target_id, lun.target.image()));
    let mut infos = ArrayVec::new();
    for info in ram.chain(disks) {
        if !infos
            .iter()
            .any(|i: &LunInfo| i.target_id == info.target_id)
        {
            let _ = infos.try_push(info);
        }
    }
    infos.sort_unstable_by_key(|i| i.target_id);
    infos
}

/// Serves one SRB_FUNCTION_IO_CONTROL and fills its completion fields; the caller completes it.
pub fn io_control(adapter: &Adapter, disk: Option<&DiskPath>, ram_bytes: u64, srb: &mut Srb<'_>) {
    let luns: ArrayVec<_, MAX_TARGETS> = boot_luns(adapter, disk);
    let limits = Limits {
        max_targets: MAX_TARGETS as u8,
        ram_bytes,
        max_path_units: LUN_PATH_UNITS,
        services: Services::empty(),
    };
    let done = {
        let (mut access, _sense) = srb.buffers();
        // Ports map IO_CONTROL buffers (they are not medium data); a NULL one is an empty
        // buffer, which the core refuses as too short without touching anything.
        let buf = access.mapped(BufferUse::Parameters).unwrap_or(&mut []);
        match control::serve(buf, &luns, &limits) {
            Served::Done(c) => c,
            // Unreachable with no services offered; answered as the core names it, not dropped.
            Served::Admitted { .. } => control::reply_error(buf, ControlError::NotAvailable),
        }
    };
    srb.finish(&SrbCompletion {
        srb_status: done.srb_status,
        scsi_status: 0,
        data_transfer_length: done.data_transfer_length,
        sense_length: 0,
    });
}
