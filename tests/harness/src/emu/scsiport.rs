//! Emulated Windows XP/2003 SCSIPORT for a legacy (non-PnP) miniport
//! (`docs/windows-integration.md` §2): ScsiPortInitialize validates the XP-sized
//! HW_INITIALIZATION_DATA and, like the real port, calls HwFindAdapter (6 parameters, with the
//! service's `DriverParameter` as ArgumentString) and HwInitialize from inside the driver's
//! DriverEntry. A miniport without an interrupt is synchronised by a spin lock, so HwInitialize
//! and HwStartIo run at DISPATCH_LEVEL, one at a time (`SpSynchronizeExecution`).

use crate::checks::guard::{self, GuardedBuf};
use crate::emu::kernel::{self, Kernel, Personality, DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::emu::storport::{check_config, prefill_config, PortConfig};
use rvblk_abi::status::{STATUS_NO_SUCH_DEVICE, STATUS_REVISION_MISMATCH, STATUS_SUCCESS};
use rvblk_abi::{HwFindAdapterFn, HwInitializationData, PortConfigurationInformation};
use std::ffi::c_void;
use std::mem::offset_of;
use std::sync::atomic::Ordering;

const STATUS_INVALID_PARAMETER: i32 = kernel::STATUS_INVALID_PARAMETER;
const STATUS_ADAPTER_HARDWARE_ERROR: i32 = 0xC000_00C2_u32 as i32;

/// What ScsiPortInitialize left behind for the harness's adapter object.
pub struct Started {
    /// HwFindAdapter's return value (SP_RETURN_*), or None when it was never called.
    pub find_result: Option<u32>,
    pub initialized: bool,
    pub init: HwInitializationData,
    pub cfg: PortConfig,
    pub ext: Option<GuardedBuf>,
}

// SAFETY: the copied HW_INITIALIZATION_DATA holds code and data pointers into the loaded image,
// which outlives the session; nothing here is thread-affine.
unsafe impl Send for Started {}

/// ScsiPortInitialize(DriverObject, RegistryPath, HwInitializationData, HwContext).
pub(crate) fn initialize(
    k: &Kernel,
    drv: *mut c_void,
    reg: *mut c_void,
    init: *const u8,
    ctx: *mut c_void,
) -> i32 {
    if k.cfg.personality != Personality::Xp {
        k.log_line(format!(
            "[harness] ScsiPortInitialize under the {} personality: run SCSIPORT miniports with --personality xp",
            k.cfg.personality.name()
        ));
        return STATUS_NO_SUCH_DEVICE;
    }
    if !k.check_irql("ScsiPortInitialize", PASSIVE_LEVEL) {
        return STATUS_INVALID_PARAMETER;
    }
    if drv.is_null() || reg.is_null() || init.is_null() {
        k.fail("ScsiPortInitialize with a NULL DriverObject, RegistryPath or HwInitializationData");
        return STATUS_INVALID_PARAMETER;
    }
    k.check_entry_args("ScsiPortInitialize", drv, reg);
    if k.legacy_start
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some()
    {
        k.fail(
            "ScsiPortInitialize called twice: this emulation has one adapter (one interface type)",
        );
        return STATUS_NO_SUCH_DEVICE;
    }
    // SAFETY: the first ULONG of the caller's HW_INITIALIZATION_DATA.
    let size = unsafe { (init as *const u32).read_unaligned() };
    let xp = rvblk_abi::HW_INIT_DATA_SIZE_SCSIPORT;
    // NT4's structure ends before HwAdapterControl; XP accepts it and anything up to its own.
    let nt4 = offset_of!(HwInitializationData, hw_adapter_control) as u32;
    if size > xp || size < nt4 {
        k.log_line(format!(
            "[harness] ScsiPortInitialize: HwInitializationDataSize {size} (XP accepts {nt4}..={xp}): STATUS_REVISION_MISMATCH"
        ));
        return STATUS_REVISION_MISMATCH;
    }
    let mut d = HwInitializationData::zeroed();
    // SAFETY: `size` readable bytes at `init`, no more than the structure's size.
    unsafe {
        std::ptr::copy_nonoverlapping(
            init,
            (&mut d as *mut HwInitializationData).cast(),
            size as usize,
        )
    };
    let mut started = Started {
        find_result: None,
        initialized: false,
        init: d,
        cfg: PortConfig::default(),
        ext: None,
    };
    let errs = validate(&d);
    if !errs.is_empty() {
        for e in &errs {
            k.fail(format!("ScsiPortInitialize: {e}"));
        }
        store(k, started);
        return STATUS_REVISION_MISMATCH;
    }
    if d.hw_interrupt.is_none() {
        k.log_line(
            "[harness] HwInterrupt is NULL: XP accepts that, ReactOS's scsiport refuses it".into(),
        );
    }
    if d.map_buffers == 0 {
        k.log_line(
            "[harness] MapBuffers = FALSE: Srb->DataBuffer is not a system address under SCSIPORT"
                .into(),
        );
    }

    let de_size = guard::round_up((d.device_extension_size as usize).max(1), 16);
    let ext = GuardedBuf::new(de_size, "the device extension");
    let ext_p = ext.tail(de_size);
    k.device_extension.store(ext_p as usize, Ordering::SeqCst);

    // Fields past `WmiDataProvider` do not exist on XP: the buffer ends at a guard page there.
    let length = rvblk_abi::PORT_CONFIG_SIZE_SCSIPORT_XP;
    let cbuf = GuardedBuf::new(
        length as usize,
        "PORT_CONFIGURATION_INFORMATION (fields past WmiDataProvider do not exist on XP)",
    );
    let ci = cbuf.tail(length as usize);
    prefill_config(ci, length, &d);
    // SCSIPORT passes the service's Parameters\Device\DriverParameter as an ANSI string.
    let arg = k.cfg.legacy.argument_string.as_ref().map(|a| {
        let n = a.len() + 1;
        let b = GuardedBuf::new(n, "the ArgumentString (DriverParameter)");
        let p = b.tail(n);
        // SAFETY: `n` writable bytes at `p`.
        unsafe { std::ptr::copy_nonoverlapping(a.as_ptr(), p, a.len()) };
        // SAFETY: as above, the last byte.
        unsafe { p.wrapping_add(a.len()).write(0) };
        (p, b)
    });
    let arg_p = arg
        .as_ref()
        .map_or(std::ptr::null(), |(p, _)| *p as *const u8);
    let again = GuardedBuf::new(1, "the Again BOOLEAN");
    let again_p = again.tail(1);
    // SAFETY: the 6-parameter HwFindAdapter prototype (checked non-null above).
    let find: HwFindAdapterFn =
        unsafe { std::mem::transmute::<*const c_void, HwFindAdapterFn>(d.hw_find_adapter) };
    // Already on the driver's kernel stack: DriverEntry called us, as on Windows.
    let r = kernel::in_miniport(|| {
        kernel::at_irql(PASSIVE_LEVEL, || {
            // SAFETY: HwFindAdapter(DeviceExtension, HwContext, BusInformation (none for Isa or
            // Internal), ArgumentString, ConfigInfo, Again) with valid arguments.
            unsafe {
                find(
                    ext_p as *mut c_void,
                    ctx,
                    std::ptr::null_mut(),
                    arg_p,
                    ci as *mut PortConfigurationInformation,
                    again_p,
                )
            }
        })
    });
    started.find_result = Some(r);
    if r != rvblk_abi::SP_RETURN_FOUND {
        k.log_line(format!("[harness] HwFindAdapter returned {r}: no adapter"));
        store(k, started);
        return STATUS_NO_SUCH_DEVICE;
    }
    // SAFETY: one byte written by the driver.
    if unsafe { again_p.read() } != 0 {
        k.fail("HwFindAdapter set *Again = TRUE: SCSIPORT would call it again for a second adapter and present the same images twice");
    }
    started.cfg = check_config(k, ci, length, &d);
    started.ext = Some(ext);
    drop(cbuf);
    let hw_init = d.hw_initialize.expect("validated");
    let ok = kernel::in_miniport(|| {
        kernel::at_irql(DISPATCH_LEVEL, || {
            // SAFETY: HwInitialize(DeviceExtension) under the port's synchronisation lock.
            unsafe { hw_init(ext_p as *mut c_void) != 0 }
        })
    });
    started.initialized = ok;
    store(k, started);
    if ok {
        STATUS_SUCCESS
    } else {
        STATUS_ADAPTER_HARDWARE_ERROR
    }
}

fn store(k: &Kernel, s: Started) {
    *k.legacy_start.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
}

/// What SCSIPORT refuses, plus what a no-hardware miniport must not declare.
fn validate(d: &HwInitializationData) -> Vec<String> {
    let mut errs = Vec::new();
    let it = d.adapter_interface_type;
    if it != rvblk_abi::INTERFACE_TYPE_INTERNAL && it != rvblk_abi::INTERFACE_TYPE_ISA {
        errs.push(format!(
            "AdapterInterfaceType {it}: a miniport with no hardware uses Isa (1) or Internal (0); any other bus needs a device SCSIPORT can find"
        ));
    }
    if d.number_of_access_ranges != 0 {
        errs.push(format!(
            "NumberOfAccessRanges {}: a miniport with no hardware claims none",
            d.number_of_access_ranges
        ));
    }
    if d.device_extension_size == 0 {
        errs.push("DeviceExtensionSize is 0".into());
    }
    if !d.hw_dma_started.is_null() {
        errs.push("HwDmaStarted set by a miniport that does no DMA".into());
    }
    if d.need_physical_addresses != 0 {
        errs.push("NeedPhysicalAddresses set: SCSIPORT would need a DMA adapter for a device that does not exist".into());
    }
    for (name, missing) in [
        ("HwInitialize", d.hw_initialize.is_none()),
        ("HwStartIo", d.hw_start_io.is_none()),
        ("HwFindAdapter", d.hw_find_adapter.is_null()),
        ("HwResetBus", d.hw_reset_bus.is_none()),
    ] {
        if missing {
            errs.push(format!("{name} is NULL"));
        }
    }
    errs
}
