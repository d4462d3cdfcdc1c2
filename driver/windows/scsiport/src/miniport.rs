//! rvblkxp's SCSIPORT logic (safe): a legacy adapter with no hardware that exposes the images
//! the core's XP policy allows (`rvblk_core::policy`, `docs/driver.md` "Setup mode"): RAM images
//! served in HwStartIo, disk-backed ones through the same worker as StorPort's, whose
//! completions HwTimer hands to SCSIPORT (`docs/driver.md` "Disk-backed images", SCSIPORT).

use crate::trampolines::ScsiMiniport;
use rvblk_abi::PortConfigurationInformation;
use rvblk_core::image::DiskBackedImage;
use rvblk_core::policy::{self, Exposure, Service, SetupPhase};
use rvblk_irql::{Dispatch, Passive};
use rvblk_kernel::backed::{self, DiskPath, PortCalls};
use rvblk_kernel::extension::AdapterRef;
use rvblk_kernel::io::{PortBuffers, Started};
use rvblk_kernel::port::{self, DeviceState, DiskBacked, Flavour};
use rvblk_kernel::srb::{QueuedSrb, Srb};
use rvblk_kernel::trampolines::AdapterCallbacks;
use rvblk_kernel::{nt, rvblk_log};

pub struct RamDisks;

/// HwTimer's period while SRBs are pending: a completed disk-backed request waits at most this
/// long for SCSIPORT to hear of it (`docs/driver.md` "Disk-backed images", SCSIPORT).
pub const BUSY_TIMER_US: u32 = 1_000;
/// HwTimer's period while nothing is pending: how soon a disk-backed LUN that went live (or
/// away) is announced with BusChangeDetected.
pub const IDLE_TIMER_US: u32 = 100_000;

/// The period HwTimer re-arms with, from the SRBs still pending.
pub fn timer_period(owed: u32) -> u32 {
    if owed > 0 {
        BUSY_TIMER_US
    } else {
        IDLE_TIMER_US
    }
}

/// The worker's port calls under SCSIPORT: ScsiPortNotification is legal only inside miniport
/// callbacks, so both wait in the path's deferred queue for HwTimer.
pub struct ScsiPortCalls;

impl PortCalls for ScsiPortCalls {
    const RUNTIME_LUNS: bool = false;

    fn complete(path: &DiskPath, _adapter: AdapterRef, srb: QueuedSrb, irql: &Passive) {
        path.deferred().push(srb, irql);
    }

    fn bus_changed(path: &DiskPath, _adapter: AdapterRef) {
        path.deferred().bus_changed();
    }
}

/// SCSIPORT maps every buffer (MapBuffers = TRUE): nothing is reached any other way.
struct MappedOnly;
impl PortBuffers for MappedOnly {}

/// ASCII to UTF-16, for registry names (const context only).
const fn utf16<const N: usize>(s: &str) -> [u16; N] {
    let b = s.as_bytes();
    assert!(b.len() == N);
    let mut out = [0u16; N];
    let mut i = 0;
    while i < N {
        out[i] = b[i] as u16;
        i += 1;
    }
    out
}

macro_rules! utf16 {
    ($s:expr) => {{
        const S: &str = $s;
        // Evaluated at compile time: a length mismatch is a build error, not a runtime panic.
        const W: [u16; S.len()] = utf16(S);
        W
    }};
}

/// The two registry values [`SetupPhase::detect`] decides from (`docs/driver.md` "Setup mode").
fn setup_phase(irql: &Passive) -> SetupPhase {
    let in_progress = nt::read_registry_dword(
        &utf16!("\\Registry\\Machine\\System\\Setup"),
        &utf16!("SystemSetupInProgress"),
        irql,
    );
    let mut buf = [0u32; 128];
    let options = nt::read_registry_string(
        &utf16!("\\Registry\\Machine\\System\\CurrentControlSet\\Control"),
        &utf16!("SystemStartOptions"),
        &mut buf,
        irql,
    );
    SetupPhase::detect(in_progress, options)
}

/// HwInitialize, HwResetBus and HwAdapterControl as every port flavour does them.
impl AdapterCallbacks for RamDisks {}

impl ScsiMiniport for RamDisks {
    fn find_adapter(
        state: &mut DeviceState,
        config: &mut PortConfigurationInformation,
        service: Service,
        argument: Option<&[u8]>,
        adapter: AdapterRef,
        irql: &Passive,
    ) -> u32 {
        let option = argument.map_or(policy::DisksOption::Unset, policy::parse_disks_option);
        let phase = setup_phase(irql);
        let exposure = Exposure::xp(option, service, phase);
        if !exposure.disks() {
            rvblk_log!(
                "setup mode ({}): hard-disk images stay hidden (use the \"RAM CD + RAM disks\" entry or disks=on)",
                phase.name()
            );
        }
        // The worker runs only for disk-backed images: a RAM-only boot starts no thread and
        // arms no timer, as before.
        let start = |images: &[DiskBackedImage], first: u8, ram_bytes: u64, irql: &Passive| {
            if images.is_empty() {
                return None;
            }
            backed::start::<ScsiPortCalls>(images, first, ram_bytes, false, adapter, irql)
        };
        port::find_adapter(
            state,
            config,
            Flavour::ScsiPortLegacy,
            exposure,
            DiskBacked::Serve(&start),
            irql,
        )
    }

    fn start_io(state: &DeviceState, srb: Srb<'_>, irql: &Dispatch) -> Started {
        rvblk_kernel::io::start_io::<ScsiPortCalls>(state, srb, &MappedOnly, irql)
    }
}
