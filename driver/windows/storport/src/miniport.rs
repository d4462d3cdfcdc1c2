//! rvblk's StorPort logic (safe): a virtual adapter that exposes every image discovery accepts.

use crate::storport::StorPortAdapter;
use crate::trampolines::StorMiniport;
use rvblk_abi::PortConfigurationInformation;
use rvblk_core::policy::Exposure;
use rvblk_irql::{Dispatch, Passive};
use rvblk_kernel::port::{self, DeviceState, Flavour};
use rvblk_kernel::srb::{BufferMapping, Srb};
use rvblk_kernel::trampolines::AdapterCallbacks;

pub struct RamDisks;

/// HwInitialize, HwResetBus and HwAdapterControl as every port flavour does them.
impl AdapterCallbacks for RamDisks {}

impl StorMiniport for RamDisks {
    fn find_adapter(
        state: &mut DeviceState,
        config: &mut PortConfigurationInformation,
        mapping: BufferMapping,
        irql: &Passive,
    ) -> u32 {
        port::find_adapter(
            state,
            config,
            Flavour::StorPortVirtual { mapping },
            Exposure::ALL,
            irql,
        )
    }

    fn start_io(
        state: &DeviceState,
        srb: &mut Srb<'_>,
        adapter: &StorPortAdapter,
        irql: &Dispatch,
    ) {
        rvblk_kernel::io::start_io(state, srb, adapter, irql);
    }

    fn free_resources(state: &mut DeviceState, irql: &Passive) {
        port::free_resources(state, irql);
    }
}
