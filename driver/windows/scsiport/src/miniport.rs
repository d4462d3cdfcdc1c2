//! rvblkxp's SCSIPORT logic (safe): a legacy adapter with no hardware that exposes the images
//! the core's XP policy allows (`rvblk_core::policy`, `docs/driver.md` "Setup mode").

use crate::trampolines::ScsiMiniport;
use rvblk_abi::PortConfigurationInformation;
use rvblk_core::policy::{self, Exposure, Service, SetupPhase};
use rvblk_irql::{Dispatch, Passive};
use rvblk_kernel::io::PortBuffers;
use rvblk_kernel::port::{self, DeviceState, DiskBacked, Flavour};
use rvblk_kernel::srb::Srb;
use rvblk_kernel::trampolines::AdapterCallbacks;
use rvblk_kernel::{nt, rvblk_log};

pub struct RamDisks;

/// Why the SCSIPORT flavour leaves disk-backed images alone (`docs/driver.md` "Disk-backed
/// images", SCSIPORT).
const NOT_SERVED: &str =
    "the SCSIPORT flavour (rvblkxp.sys) serves RAM images only; load a map --mem image instead";

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
        port::find_adapter(
            state,
            config,
            Flavour::ScsiPortLegacy,
            exposure,
            DiskBacked::NotServed(NOT_SERVED),
            irql,
        )
    }

    fn start_io(state: &DeviceState, srb: &mut Srb<'_>, irql: &Dispatch) {
        rvblk_kernel::io::start_io_now(state, srb, &MappedOnly, irql);
    }
}
