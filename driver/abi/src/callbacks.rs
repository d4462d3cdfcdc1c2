//! Miniport callback signatures (`docs/windows-integration.md` §1.4), in the Windows calling
//! convention of each architecture: `"system"` when building for Windows, and the same
//! convention spelled explicitly (stdcall, win64) on a Linux host, where the harness runs the
//! driver.

use crate::ScsiRequestBlock;
use core::ffi::c_void;

macro_rules! windows_fn_types {
    ($( $(#[$m:meta])* $name:ident = fn($($arg:ty),*) $(-> $ret:ty)?; )*) => {
        $(
            $(#[$m])*
            #[cfg(windows)]
            pub type $name = unsafe extern "system" fn($($arg),*) $(-> $ret)?;
            $(#[$m])*
            #[cfg(all(not(windows), target_arch = "x86"))]
            pub type $name = unsafe extern "stdcall" fn($($arg),*) $(-> $ret)?;
            $(#[$m])*
            #[cfg(all(not(windows), target_arch = "x86_64"))]
            pub type $name = unsafe extern "win64" fn($($arg),*) $(-> $ret)?;
            $(#[$m])*
            #[cfg(all(not(windows), not(any(target_arch = "x86", target_arch = "x86_64"))))]
            pub type $name = unsafe extern "C" fn($($arg),*) $(-> $ret)?;
        )*
    };
}

windows_fn_types! {
    /// `HwInitialize(DeviceExtension) -> BOOLEAN`.
    HwInitializeFn = fn(*mut c_void) -> u8;
    /// `HwStartIo(DeviceExtension, Srb) -> BOOLEAN` (also HwBuildIo).
    HwStartIoFn = fn(*mut c_void, *mut ScsiRequestBlock) -> u8;
    /// `HwInterrupt(DeviceExtension) -> BOOLEAN`.
    HwInterruptFn = fn(*mut c_void) -> u8;
    /// Virtual StorPort miniport: `HwFindAdapter(DeviceExtension, HwContext, BusInformation,
    /// LowerDevice, ArgumentString, ConfigInfo, Again) -> ULONG` (7 parameters, §0 item 2).
    VirtualHwFindAdapterFn = fn(*mut c_void, *mut c_void, *mut c_void, *mut c_void, *const u8,
        *mut crate::PortConfigurationInformation, *mut u8) -> u32;
    /// SCSIPORT / physical StorPort: `HwFindAdapter(DeviceExtension, HwContext, BusInformation,
    /// ArgumentString, ConfigInfo, Again) -> ULONG` (6 parameters).
    HwFindAdapterFn = fn(*mut c_void, *mut c_void, *mut c_void, *const u8,
        *mut crate::PortConfigurationInformation, *mut u8) -> u32;
    /// `HwResetBus(DeviceExtension, PathId) -> BOOLEAN`.
    HwResetBusFn = fn(*mut c_void, u32) -> u8;
    /// `HwAdapterControl(DeviceExtension, ControlType, Parameters) -> SCSI_ADAPTER_CONTROL_STATUS`.
    HwAdapterControlFn = fn(*mut c_void, u32, *mut c_void) -> u32;
    /// `HwFreeAdapterResources(DeviceExtension)`.
    HwFreeAdapterResourcesFn = fn(*mut c_void);
    /// `HwTimer(DeviceExtension)` (SCSIPORT RequestTimerCall).
    HwTimerFn = fn(*mut c_void);
    /// `DriverEntry(DriverObject, RegistryPath) -> NTSTATUS`.
    DriverEntryFn = fn(*mut c_void, *mut c_void) -> i32;
    /// `IO_COMPLETION_ROUTINE(DeviceObject, Irp, Context) -> NTSTATUS` (stdcall on x86: kernel
    /// code is built with it as the default convention; `docs/windows-integration.md` §8.5).
    IoCompletionRoutine = fn(*mut c_void, *mut crate::Irp, *mut c_void) -> i32;
}
