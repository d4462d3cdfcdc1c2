//! Adapter callbacks (SCSIPORT serialises them). HwFindAdapter runs from DriverEntry at
//! PASSIVE_LEVEL.

use core::ffi::c_void;
use core::sync::atomic::Ordering;
use rvblk_abi::*;
use rvblk_core::policy;
use rvblk_kernel::adapter::ExposePolicy;
use rvblk_kernel::{nt, port, rvblk_log};

/// Setup is running unless `HKLM\System\Setup\SystemSetupInProgress` exists and is 0: it is 1
/// during GUI-mode setup and absent in text mode (`docs/peers.md` §6).
fn setup_in_progress() -> bool {
    const KEY: &str = "\\Registry\\Machine\\System\\Setup";
    const VALUE: &str = "SystemSetupInProgress";
    // Evaluated at compile time: a length mismatch is a build error, not a runtime panic.
    const KEY_UTF16: [u16; KEY.len()] = utf16(KEY);
    const VALUE_UTF16: [u16; VALUE.len()] = utf16(VALUE);
    nt::read_registry_dword(&KEY_UTF16, &VALUE_UTF16) != Some(0)
}

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

/// HwFindAdapter, 6 parameters (SCSIPORT).
///
/// # Safety
/// SCSIPORT contract: PASSIVE_LEVEL, valid extension and ConfigInfo; `argument_string` null or a
/// NUL-terminated string.
pub unsafe extern "system" fn hw_find_adapter(
    ext: *mut c_void,
    _hw_context: *mut c_void,
    _bus_information: *mut c_void,
    argument_string: *const u8,
    config: *mut PortConfigurationInformation,
    again: *mut u8,
) -> u32 {
    let option = if argument_string.is_null() {
        policy::DisksOption::Unset
    } else {
        // SAFETY: a NUL-terminated C string (SCSIPORT contract).
        policy::parse_disks_option(
            unsafe { core::ffi::CStr::from_ptr(argument_string.cast()) }.to_bytes(),
        )
    };
    let disks = match option {
        policy::DisksOption::On => true,
        policy::DisksOption::Off => false,
        policy::DisksOption::Unset => {
            crate::entry::DISKS_SERVICE.load(Ordering::Relaxed) || !setup_in_progress()
        }
    };
    if !disks {
        rvblk_log!("setup mode: hard-disk images stay hidden (use the \"RAM CD + RAM disks\" entry or disks=on)");
    }
    // SAFETY: SCSIPORT's contract is port::find_adapter's.
    unsafe { port::find_adapter(ext, config, again, false, 1, ExposePolicy { disks }) }
}

/// # Safety
/// SCSIPORT contract.
pub unsafe extern "system" fn hw_initialize(ext: *mut c_void) -> u8 {
    port::initialize(ext)
}

/// No hardware, no interrupts.
///
/// # Safety
/// SCSIPORT contract.
pub unsafe extern "system" fn hw_interrupt(_ext: *mut c_void) -> u8 {
    0
}

/// # Safety
/// SCSIPORT contract.
pub unsafe extern "system" fn hw_reset_bus(_ext: *mut c_void, _path_id: u32) -> u8 {
    // Nothing is ever outstanding: every request completes inside HwStartIo.
    1
}

/// # Safety
/// SCSIPORT contract (see port::adapter_control).
pub unsafe extern "system" fn hw_adapter_control(
    ext: *mut c_void,
    control: u32,
    params: *mut c_void,
) -> u32 {
    // SAFETY: SCSIPORT's contract is port::adapter_control's.
    unsafe { port::adapter_control(ext, control, params) }
}
