//! HwStartIo's SRB_FUNCTION_IO_CONTROL (`docs/control.md` §1, §4, §5): the core parses, admits
//! and answers (`rvblk_core::control::serve`); this module hands it the SRB's buffer, the LUN
//! table and the port's limits, and completes the SRB as the core says. It runs at
//! ≤ DISPATCH_LEVEL on any CPU, reads the table only and allocates nothing.
//!
//! No work is offered yet ([`Services::empty`]): mounting a file, creating a RAM disk and
//! removing a runtime LUN need the PASSIVE_LEVEL worker, so the core answers those NOT AVAILABLE
//! after every other rule has been checked. LIST LUNS is answered here, synchronously.

use crate::adapter::{Adapter, MAX_LUNS, MAX_TARGETS};
use crate::physmem;
use crate::srb::Srb;
use arrayvec::ArrayVec;
use rvblk_core::control::{
    self, ControlError, Limits, LunInfo, Origin, Served, Services, LUN_PATH_UNITS,
};
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

/// The adapter's LUNs as the protocol reports them: every LUN in the table, target = index
/// (`crate::adapter`), all found by a loader at boot.
fn lun_table(adapter: &Adapter) -> ArrayVec<LunInfo<'static>, MAX_LUNS> {
    adapter
        .targets()
        .enumerate()
        .map(|(index, target)| {
            let image = target.image();
            LunInfo {
                // MAX_LUNS ≤ 256: the table index is the target id.
                target_id: index as u8,
                kind: image.kind,
                origin: Origin::Loader,
                read_only: image.is_read_only(),
                block_size: image.block_size(),
                blocks: image.blocks(),
                path: None,
            }
        })
        .collect()
}

/// Serves one SRB_FUNCTION_IO_CONTROL and fills its completion fields; the caller completes it.
pub fn io_control(adapter: &Adapter, ram_bytes: u64, srb: &mut Srb<'_>) {
    let luns = lun_table(adapter);
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
