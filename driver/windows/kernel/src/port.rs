//! What both port flavours share around their callbacks, in safe Rust: the device-extension
//! state, the PORT_CONFIGURATION_INFORMATION each flavour declares (`docs/driver.md` "Port
//! configuration"), and the adapter callbacks' logic. The ports' trampolines turn raw
//! arguments into the types used here.

use crate::adapter::{Adapter, LUNS_PER_TARGET, MAX_TARGETS};
use crate::backed::DiskService;
use crate::srb::BufferMapping;
use core::mem::{offset_of, size_of};
use rvblk_abi::*;
use rvblk_core::image::DiskBackedImage;
use rvblk_core::policy::Exposure;
use rvblk_irql::Passive;

/// What lives in the port's device extension (see `crate::extension`).
pub struct DeviceState {
    /// False in a freshly zeroed extension. StorPort keeps the old contents across a restart
    /// (`docs/windows-integration.md` §1.5 "Device-extension lifetime"); SCSIPORT zeroes them.
    pub live: bool,
    /// How the port maps data buffers, as declared in HwFindAdapter; read by HwStartIo.
    pub mapping: BufferMapping,
    pub adapter: Adapter,
    /// The RAM Windows manages, measured in HwFindAdapter: the RAM-disk limit of the control
    /// interface (`crate::control`).
    pub ram_bytes: u64,
    /// The disk-backed images' worker, when there are any and the port serves them
    /// (`docs/driver.md` "Disk-backed images"). `None` (all-zero bytes) otherwise.
    pub disk: Option<DiskService>,
}

/// Starts the worker for these disk-backed images at targets from the given one and for the
/// runtime LUNs, with the RAM limit (`backed::start` with the port's notifications).
pub type StartDisks<'a> = &'a dyn Fn(&[DiskBackedImage], u8, u64, &Passive) -> Option<DiskService>;

/// How a port flavour serves disk-backed images.
#[derive(Clone, Copy)]
pub enum DiskBacked<'a> {
    /// A worker, which completes pending requests through the port's notifications (StorPort:
    /// started whether or not there are disk-backed images, as it also serves the control
    /// interface's runtime LUNs, `docs/control.md` §10; SCSIPORT: only for disk-backed images,
    /// completed from HwTimer).
    Serve(StartDisks<'a>),
}

/// Largest transfer per SRB.
pub const MAX_TRANSFER: u32 = 8 << 20;

/// The adapter a port flavour declares in ConfigInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// StorPort virtual miniport (`docs/windows-integration.md` §1.5): `mapping` as in the init data.
    StorPortVirtual { mapping: BufferMapping },
    /// Legacy SCSIPORT miniport with no hardware: no interrupt, no DMA, MapBuffers = TRUE.
    ScsiPortLegacy,
}

fn field_size<T>(_: &T) -> u32 {
    size_of::<T>() as u32
}

/// Writes `value` into ConfigInfo only if the field lies within `length`: never write past what
/// this Windows version's structure has (§1.1; XP's ends at WmiDataProvider).
macro_rules! set_config {
    ($config:expr, $field:ident, $value:expr) => {{
        let end =
            offset_of!(PortConfigurationInformation, $field) as u32 + field_size(&$config.$field);
        if end <= $config.length {
            $config.$field = $value;
        }
    }};
}

/// Fills the fields HwFindAdapter owns. Why each value: `docs/driver.md` "Port configuration".
pub fn fill_config(config: &mut PortConfigurationInformation, flavour: Flavour) {
    set_config!(config, maximum_transfer_length, MAX_TRANSFER);
    set_config!(config, number_of_physical_breaks, (MAX_TRANSFER >> 12) + 1);
    set_config!(config, alignment_mask, 0);
    set_config!(config, number_of_buses, 1);
    set_config!(config, caches_data, 0);
    set_config!(config, tagged_queuing, 1);
    set_config!(config, auto_request_sense, 1);
    set_config!(config, multiple_request_per_lu, 1);
    set_config!(config, maximum_number_of_targets, MAX_TARGETS as u8);
    set_config!(
        config,
        maximum_number_of_logical_units,
        LUNS_PER_TARGET as u8
    );
    match flavour {
        Flavour::StorPortVirtual { mapping } => {
            set_config!(config, map_buffers, mapping.storport_map_buffers());
            set_config!(config, scatter_gather, 1);
            set_config!(config, master, 1);
            set_config!(config, dma64_bit_addresses, SCSI_DMA64_MINIPORT_SUPPORTED);
            set_config!(config, wmi_data_provider, 0);
            set_config!(config, synchronization_model, STOR_SYNCHRONIZE_FULL_DUPLEX);
            set_config!(config, virtual_device, 1);
        }
        Flavour::ScsiPortLegacy => {
            set_config!(config, map_buffers, 1);
            set_config!(config, scatter_gather, 0);
            set_config!(config, master, 0);
            set_config!(config, dma32_bit_addresses, 0);
            set_config!(config, dma64_bit_addresses, 0);
            set_config!(config, need_physical_addresses, 0);
        }
    }
}

/// HwFindAdapter's common part: reset a restarted extension, fill ConfigInfo, discover, and
/// start the disk path when there are disk-backed images (no thread otherwise).
pub fn find_adapter(
    state: &mut DeviceState,
    config: &mut PortConfigurationInformation,
    flavour: Flavour,
    exposure: Exposure,
    disk_backed: DiskBacked<'_>,
    irql: &Passive,
) -> u32 {
    free_resources(state, irql);
    fill_config(config, flavour);
    state.mapping = match flavour {
        Flavour::StorPortVirtual { mapping } => mapping,
        Flavour::ScsiPortLegacy => BufferMapping::All,
    };
    // A fresh extension is zeroed, which is an empty table; a restarted one was released above.
    let found = state.adapter.discover(exposure, irql);
    state.ram_bytes = crate::control::os_ram_bytes(irql);
    let images = found.as_ref().map_or(&[][..], |f| &f.disk_backed[..]);
    match disk_backed {
        DiskBacked::Serve(start) => {
            let first = state.adapter.lun_count() as u8;
            state.disk = start(images, first, state.ram_bytes, irql);
        }
    }
    state.live = true;
    SP_RETURN_FOUND
}

/// A HwAdapterControl request.
pub enum AdapterControl<'a> {
    /// ScsiQuerySupportedControlTypes: one BOOLEAN per control type, MaxControlType of them.
    QuerySupported(&'a mut [u8]),
    Stop,
    Restart,
    Other(u32),
}

/// HwAdapterControl: query, stop, restart. Stop and restart run at device IRQL, where
/// MmMapIoSpace/MmUnmapIoSpace are not allowed, so the mappings stay in place until
/// HwFreeAdapterResources (PASSIVE_LEVEL) releases them; nothing is in flight while stopped.
pub fn adapter_control(control: AdapterControl<'_>) -> u32 {
    use rvblk_abi::adapter_control::*;
    match control {
        AdapterControl::QuerySupported(flags) => {
            for t in [QUERY_SUPPORTED_CONTROL_TYPES, STOP_ADAPTER, RESTART_ADAPTER] {
                if let Some(f) = flags.get_mut(t as usize) {
                    *f = 1;
                }
            }
            STATUS_SUCCESS
        }
        AdapterControl::Stop | AdapterControl::Restart => STATUS_SUCCESS,
        AdapterControl::Other(code) => {
            crate::rvblk_log!("unsupported adapter control {}", code);
            STATUS_UNSUCCESSFUL
        }
    }
}

/// The disk-backed images' service, stopped (no callback, worker ended, disks released,
/// nothing pending): HwFreeAdapterResources and a restarted HwFindAdapter of the StorPort
/// flavour call it before [`free_resources`].
pub fn stop_disk_backed(state: &mut DeviceState, irql: &Passive) {
    if let Some(disk) = state.disk.take() {
        disk.stop(irql);
    }
}

/// HwFreeAdapterResources / removal: release every mapping. No I/O is in flight.
pub fn free_resources(state: &mut DeviceState, _irql: &Passive) {
    // The flavour that serves disk-backed images stops their service before calling this
    // (`stop_disk_backed`), so that the other flavour's binary carries none of its imports.
    if let Some(never_started) = state.disk.take() {
        core::mem::forget(never_started);
    }
    if state.live {
        state.adapter.release();
        state.live = false;
    }
}
