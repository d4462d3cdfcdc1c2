//! rvblk's StorPort logic (safe): a virtual adapter that exposes every image discovery accepts:
//! RAM images served in HwStartIo, disk-backed ones through the disk worker (`docs/driver.md`
//! "Disk-backed images").

use crate::storport::{StorPortAdapter, StorPortCalls};
use crate::trampolines::StorMiniport;
use rvblk_abi::PortConfigurationInformation;
use rvblk_core::image::DiskBackedImage;
use rvblk_core::policy::Exposure;
use rvblk_irql::{Dispatch, Passive};
use rvblk_kernel::backed;
use rvblk_kernel::extension::AdapterRef;
use rvblk_kernel::io::Started;
use rvblk_kernel::port::{self, DeviceState, DiskBacked, Flavour};
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
        adapter: AdapterRef,
        irql: &Passive,
    ) -> u32 {
        port::stop_disk_backed(state, irql);
        let start = |images: &[DiskBackedImage], first: u8, ram_bytes: u64, irql: &Passive| {
            // StorPort accepted the Windows 8 init data only on Windows 8 and later.
            let win8 = mapping == BufferMapping::All;
            backed::start::<StorPortCalls>(images, first, ram_bytes, win8, adapter, irql)
        };
        port::find_adapter(
            state,
            config,
            Flavour::StorPortVirtual { mapping },
            Exposure::ALL,
            DiskBacked::Serve(&start),
            irql,
        )
    }

    fn start_io(
        state: &DeviceState,
        srb: Srb<'_>,
        adapter: &StorPortAdapter,
        irql: &Dispatch,
    ) -> Started {
        rvblk_kernel::io::start_io::<crate::storport::StorPortCalls>(state, srb, adapter, irql)
    }

    fn free_resources(state: &mut DeviceState, irql: &Passive) {
        port::stop_disk_backed(state, irql);
        port::free_resources(state, irql);
    }
}
