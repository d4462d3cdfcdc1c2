//! What the miniport tells the port at start: HW_INITIALIZATION_DATA validated as the
//! personality's port would, PORT_CONFIGURATION_INFORMATION prefilled with the port's defaults
//! and checked after HwFindAdapter (including the legacy SCSIPORT DMA rules), and the
//! `PortConfig` read back from it.

use super::{HwFns, StartError};
use crate::emu::kernel::{Kernel, Personality};
use rvblk_abi::{HwInitializationData, PortConfigurationInformation, VirtualHwFindAdapterFn};
use std::ffi::c_void;
use std::mem::offset_of;

const SP_UNINITIALIZED_VALUE: u32 = 0xFFFF_FFFF;

#[derive(Clone, Debug, Default)]
pub struct PortConfig {
    pub length: u32,
    pub max_transfer: u32,
    pub physical_breaks: u32,
    pub buses: u8,
    pub max_targets: u8,
    pub max_luns: u8,
    pub map_buffers: u8,
    pub sync_model: u32,
    pub virtual_device: bool,
    pub alignment_mask: u32,
}

pub(super) fn validate_init(
    k: &Kernel,
    d: &HwInitializationData,
) -> Result<(HwFns, VirtualHwFindAdapterFn), StartError> {
    let size = d.hw_initialization_data_size;
    let mut errs = Vec::new();
    if d.adapter_interface_type != rvblk_abi::INTERFACE_TYPE_INTERNAL {
        errs.push(format!(
            "AdapterInterfaceType {} (a virtual miniport uses Internal = 0)",
            d.adapter_interface_type
        ));
    }
    if d.hw_build_io.is_some() {
        errs.push("HwBuildIo must be NULL for a virtual miniport".to_string());
    }
    if !d.hw_dma_started.is_null() || !d.hw_adapter_state.is_null() {
        errs.push("HwDmaStarted/HwAdapterState must be NULL".to_string());
    }
    if d.device_extension_size == 0 {
        errs.push("DeviceExtensionSize is 0".to_string());
    }
    if d.number_of_access_ranges != 0 {
        errs.push(format!(
            "NumberOfAccessRanges {} for a virtual miniport",
            d.number_of_access_ranges
        ));
    }
    if size == rvblk_abi::HW_INIT_DATA_SIZE_WIN8 {
        if d.feature_support & rvblk_abi::STOR_FEATURE_VIRTUAL_MINIPORT == 0 {
            errs.push("FeatureSupport lacks STOR_FEATURE_VIRTUAL_MINIPORT with the full-size HW_INITIALIZATION_DATA".to_string());
        }
        if d.srb_type_flags != 0
            && d.srb_type_flags & rvblk_abi::SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK == 0
        {
            errs.push(format!(
                "SrbTypeFlags {:#x} without SRB_TYPE_FLAG_SCSI_REQUEST_BLOCK",
                d.srb_type_flags
            ));
        }
        if d.hw_free_adapter_resources.is_none() {
            errs.push("HwFreeAdapterResources is required for a virtual miniport".to_string());
        }
    }
    if !d.hw_complete_service_irp.is_null() && d.hw_process_service_request.is_null() {
        // fine
    } else if !d.hw_process_service_request.is_null() && d.hw_complete_service_irp.is_null() {
        errs.push("HwProcessServiceRequest set without HwCompleteServiceIrp".to_string());
    }
    let req = |name: &str, p: usize, errs: &mut Vec<String>| {
        if p == 0 {
            errs.push(format!("{name} is NULL"));
        }
    };
    req("HwFindAdapter", d.hw_find_adapter as usize, &mut errs);
    req(
        "HwStartIo",
        d.hw_start_io.map_or(0, |f| f as usize),
        &mut errs,
    );
    req(
        "HwInitialize",
        d.hw_initialize.map_or(0, |f| f as usize),
        &mut errs,
    );
    req(
        "HwResetBus",
        d.hw_reset_bus.map_or(0, |f| f as usize),
        &mut errs,
    );
    req(
        "HwAdapterControl",
        d.hw_adapter_control.map_or(0, |f| f as usize),
        &mut errs,
    );
    if !errs.is_empty() {
        for e in &errs {
            k.fail(format!("StorPortInitialize: {e}"));
        }
        return Err(StartError::Invalid(format!(
            "invalid HW_INITIALIZATION_DATA: {}",
            errs.join("; ")
        )));
    }
    // SAFETY: non-null function pointer with the virtual HwFindAdapter prototype.
    let find_adapter =
        unsafe { std::mem::transmute::<*const c_void, VirtualHwFindAdapterFn>(d.hw_find_adapter) };
    Ok((
        HwFns {
            initialize: d.hw_initialize.expect("checked"),
            start_io: d.hw_start_io.expect("checked"),
            reset_bus: d.hw_reset_bus.expect("checked"),
            adapter_control: d.hw_adapter_control,
            free_resources: d.hw_free_adapter_resources,
        },
        find_adapter,
    ))
}

macro_rules! cfg_put {
    ($ci:expr, $len:expr, $field:ident, $v:expr) => {
        if offset_of!(PortConfigurationInformation, $field) < $len as usize {
            let p = $ci as *mut PortConfigurationInformation;
            // SAFETY: the field lies inside the `Length` bytes allocated at `ci`.
            unsafe { std::ptr::addr_of_mut!((*p).$field).write_unaligned($v) };
        }
    };
}

/// Reads a field the miniport may have set, or the type's default when the field lies past
/// `Length` (it does not exist in that port's structure).
macro_rules! cfg_get {
    ($ci:expr, $len:expr, $field:ident) => {{
        let p = $ci as *const PortConfigurationInformation;
        if offset_of!(PortConfigurationInformation, $field) < $len as usize {
            // SAFETY: the field lies inside the `Length` bytes at `ci`.
            unsafe { std::ptr::addr_of!((*p).$field).read_unaligned() }
        } else {
            Default::default()
        }
    }};
}

/// SCSIPORT semantics for a legacy miniport with no hardware (`docs/driver.md` "Port
/// configuration"): Master or a DMA channel makes SCSIPORT build a DMA adapter (HalGetAdapter)
/// for a device that does no DMA; scatter/gather, 32/64-bit DMA addressing and physical
/// addresses describe DMA too; MapBuffers must be TRUE because the miniport reads DataBuffer.
pub(super) fn check_legacy_dma(ci: *mut u8, length: u32) -> Vec<String> {
    let mut bad = Vec::new();
    for (name, value) in [
        ("Master", cfg_get!(ci, length, master)),
        ("ScatterGather", cfg_get!(ci, length, scatter_gather)),
        (
            "Dma32BitAddresses",
            cfg_get!(ci, length, dma32_bit_addresses),
        ),
        (
            "NeedPhysicalAddresses",
            cfg_get!(ci, length, need_physical_addresses),
        ),
    ] {
        if value != 0u8 {
            bad.push(format!(
                "{name} = TRUE under SCSIPORT: declares a DMA adapter for a miniport that does no DMA"
            ));
        }
    }
    let dma64: u8 = cfg_get!(ci, length, dma64_bit_addresses);
    if dma64 & rvblk_abi::SCSI_DMA64_MINIPORT_SUPPORTED != 0 {
        bad.push(format!(
            "Dma64BitAddresses {dma64:#x} claims 64-bit DMA for a miniport that does no DMA"
        ));
    }
    let (channel, port): (u32, u32) = (
        cfg_get!(ci, length, dma_channel),
        cfg_get!(ci, length, dma_port),
    );
    if channel != SP_UNINITIALIZED_VALUE || port != SP_UNINITIALIZED_VALUE {
        bad.push(format!(
            "DmaChannel {channel:#x} / DmaPort {port:#x} set: claims a system DMA controller"
        ));
    }
    if cfg_get!(ci, length, map_buffers) == 0u8 {
        bad.push("MapBuffers FALSE: Srb->DataBuffer would not be a system address".to_string());
    }
    bad
}

pub(crate) fn prefill_config(ci: *mut u8, length: u32, d: &HwInitializationData) {
    // SAFETY: `length` writable bytes at `ci`.
    unsafe { std::ptr::write_bytes(ci, 0, length as usize) };
    cfg_put!(ci, length, length, length);
    cfg_put!(ci, length, adapter_interface_type, d.adapter_interface_type);
    cfg_put!(ci, length, maximum_transfer_length, SP_UNINITIALIZED_VALUE);
    cfg_put!(
        ci,
        length,
        number_of_physical_breaks,
        SP_UNINITIALIZED_VALUE
    );
    cfg_put!(ci, length, dma_channel, SP_UNINITIALIZED_VALUE);
    cfg_put!(ci, length, dma_port, SP_UNINITIALIZED_VALUE);
    cfg_put!(ci, length, initiator_bus_id, [0xffu8; 8]);
    cfg_put!(ci, length, map_buffers, d.map_buffers);
    cfg_put!(
        ci,
        length,
        need_physical_addresses,
        d.need_physical_addresses
    );
    cfg_put!(ci, length, tagged_queuing, 1u8);
    cfg_put!(ci, length, auto_request_sense, 1u8);
    cfg_put!(ci, length, multiple_request_per_lu, 1u8);
    cfg_put!(ci, length, device_extension_size, d.device_extension_size);
    cfg_put!(
        ci,
        length,
        specific_lu_extension_size,
        d.specific_lu_extension_size
    );
    cfg_put!(ci, length, srb_extension_size, d.srb_extension_size);
    cfg_put!(ci, length, dma64_bit_addresses, 0x80u8);
    cfg_put!(ci, length, max_number_of_io, 1000u32);
    cfg_put!(ci, length, max_ios_per_lun, 255u32);
    cfg_put!(ci, length, initial_lun_queue_depth, 250u32);
}

/// What HwFindAdapter left in ConfigInfo, checked against the port's rules and against the
/// init data the driver gave the port (`d`).
pub(crate) fn check_config(
    k: &Kernel,
    ci: *mut u8,
    length: u32,
    d: &HwInitializationData,
) -> PortConfig {
    let c = PortConfig {
        length: cfg_get!(ci, length, length),
        max_transfer: cfg_get!(ci, length, maximum_transfer_length),
        physical_breaks: cfg_get!(ci, length, number_of_physical_breaks),
        buses: cfg_get!(ci, length, number_of_buses),
        max_targets: cfg_get!(ci, length, maximum_number_of_targets),
        max_luns: cfg_get!(ci, length, maximum_number_of_logical_units),
        map_buffers: cfg_get!(ci, length, map_buffers),
        sync_model: cfg_get!(ci, length, synchronization_model),
        virtual_device: cfg_get!(ci, length, virtual_device) != 0,
        alignment_mask: cfg_get!(ci, length, alignment_mask),
    };
    let mut bad = Vec::new();
    if c.length != length {
        bad.push(format!("Length changed from {length} to {}", c.length));
    }
    if c.max_transfer == SP_UNINITIALIZED_VALUE || c.max_transfer == 0 {
        bad.push(format!(
            "MaximumTransferLength not set ({:#x})",
            c.max_transfer
        ));
    }
    if c.physical_breaks == SP_UNINITIALIZED_VALUE {
        bad.push("NumberOfPhysicalBreaks not set".to_string());
    }
    if c.buses == 0 {
        bad.push("NumberOfBuses is 0".to_string());
    }
    if c.max_targets == 0 {
        bad.push("MaximumNumberOfTargets is 0".to_string());
    }
    if c.max_luns == 0 {
        bad.push("MaximumNumberOfLogicalUnits is 0".to_string());
    }
    // The port takes MapBuffers from the init data and the miniport may only confirm it: two
    // different values are two different promises about Srb->DataBuffer (StorPort on Vista/7
    // rejects 3 in the init data, so the driver must not declare 3 in ConfigInfo either).
    if c.map_buffers != d.map_buffers {
        bad.push(format!(
            "MapBuffers {} differs from HW_INITIALIZATION_DATA.MapBuffers {}: the miniport declares two buffer mappings",
            c.map_buffers, d.map_buffers
        ));
    }
    if k.cfg.personality == Personality::Xp {
        bad.extend(check_legacy_dma(ci, length));
    } else if cfg_get!(ci, length, scatter_gather) == 0 || cfg_get!(ci, length, master) == 0 {
        // StorPort requires both.
        bad.push("ScatterGather and Master must be TRUE".to_string());
    }
    if c.sync_model > 1 {
        bad.push(format!("SynchronizationModel {} invalid", c.sync_model));
    }
    if k.cfg.personality == Personality::Win8 {
        if !c.virtual_device {
            bad.push("VirtualDevice not set TRUE".to_string());
        }
        let srb_type: u8 = cfg_get!(ci, length, srb_type);
        if srb_type != 0 {
            bad.push(format!(
                "SrbType {srb_type}: this port only issues classic SCSI_REQUEST_BLOCKs"
            ));
        }
    }
    for b in bad {
        k.fail(format!(
            "HwFindAdapter: PORT_CONFIGURATION_INFORMATION: {b}"
        ));
    }
    k.log_line(format!(
        "[harness] config: MaximumTransferLength={:#x} NumberOfPhysicalBreaks={} buses={} targets={} luns={} MapBuffers={} SynchronizationModel={} VirtualDevice={}",
        c.max_transfer, c.physical_breaks, c.buses, c.max_targets, c.max_luns, c.map_buffers, c.sync_model, c.virtual_device
    ));
    c
}
