//! The IRP and IO_STACK_LOCATION fields the asynchronous disk path uses
//! (`docs/windows-integration.md` §8.5): the driver builds a READ/WRITE IRP with
//! `IoBuildAsynchronousFsdRequest`, writes its completion routine into the next stack location
//! itself (`IoSetCompletionRoutine` and `IoGetNextIrpStackLocation` are macros) and reads the
//! IRP's status and MDL chain in the completion routine. Sizes: IRP 0x70 / 0xD0,
//! IO_STACK_LOCATION 0x24 / 0x48 (x86 / x64); checked in `layout.rs`.

use crate::{IoCompletionRoutine, IrpHead};
use core::ffi::c_void;

/// `IRP`: the head the control path already reads (`IrpHead`, up to `Tail.Overlay.Thread`), then
/// the rest of `Tail.Overlay` and the tail of the `Tail` union (its `Apc` member is longer).
#[repr(C)]
#[derive(Debug)]
pub struct Irp {
    pub head: IrpHead,
    pub auxiliary_buffer: *mut c_void,
    pub list_entry: [usize; 2],
    /// `Tail.Overlay.CurrentStackLocation`: one past the last location before the IRP is sent;
    /// `IoGetNextIrpStackLocation(irp)` is this minus one.
    pub current_stack_location: *mut IoStackLocation,
    pub original_file_object: *mut c_void,
    /// The part of `Tail.Apc` (a KAPC) beyond `Tail.Overlay`.
    pub apc_tail: [u8; 8],
}

/// `IO_STACK_LOCATION` with `Parameters` as raw words (`Parameters.Read/Write` = Length (ULONG),
/// Key (pointer-aligned ULONG), ByteOffset (LARGE_INTEGER, packed to 4 on x86)).
#[repr(C)]
#[derive(Debug)]
pub struct IoStackLocation {
    pub major_function: u8,
    pub minor_function: u8,
    pub flags: u8,
    pub control: u8,
    pub parameters: [usize; 4],
    pub device_object: *mut c_void,
    pub file_object: *mut c_void,
    pub completion_routine: Option<IoCompletionRoutine>,
    pub context: *mut c_void,
}

impl IoStackLocation {
    /// `Parameters.Read.Length` / `Parameters.Write.Length`.
    pub fn rw_length(&self) -> u32 {
        self.parameters[0] as u32
    }

    /// `Parameters.Read.ByteOffset` / `Parameters.Write.ByteOffset`.
    pub fn rw_offset(&self) -> u64 {
        if cfg!(target_pointer_width = "32") {
            (self.parameters[2] as u64) | ((self.parameters[3] as u64) << 32)
        } else {
            self.parameters[2] as u64
        }
    }

    /// Sets `Parameters.Read/Write` (Key 0).
    pub fn set_rw(&mut self, length: u32, offset: u64) {
        self.parameters = [0; 4];
        self.parameters[0] = length as usize;
        if cfg!(target_pointer_width = "32") {
            self.parameters[2] = offset as u32 as usize;
            self.parameters[3] = (offset >> 32) as u32 as usize;
        } else {
            self.parameters[2] = offset as usize;
        }
    }
}

/// `IO_STACK_LOCATION.Control` bits of `IoSetCompletionRoutine`.
pub const SL_INVOKE_ON_CANCEL: u8 = 0x20;
pub const SL_INVOKE_ON_SUCCESS: u8 = 0x40;
pub const SL_INVOKE_ON_ERROR: u8 = 0x80;
/// `IO_STACK_LOCATION.Control`: the IRP was pended at this level (`IoMarkIrpPending`).
pub const SL_PENDING_RETURNED: u8 = 0x01;

/// What a completion routine returns to keep the IRP (the I/O manager stops its completion).
pub const STATUS_MORE_PROCESSING_REQUIRED: i32 = 0xC000_0016u32 as i32;

/// `MDL.MdlFlags`: the pages were locked by `MmProbeAndLockPages` (unlock before `IoFreeMdl`).
pub const MDL_PAGES_LOCKED: i16 = 0x0002;

/// The head of `DEVICE_OBJECT` up to `Flags`: the fast path sends its IRPs only to a device that
/// does direct I/O (`DO_DIRECT_IO`), because an IRP from `IoBuildAsynchronousFsdRequest` to a
/// buffered-I/O device gets a pool buffer that only the I/O manager's own completion copies back
/// and frees, which the fast path's completion routine (it frees the IRP itself) skips
/// (`docs/windows-integration.md` §8.5).
#[repr(C)]
#[derive(Debug)]
pub struct DeviceObjectHead {
    pub type_: i16,
    pub size: u16,
    pub reference_count: i32,
    pub driver_object: *mut c_void,
    pub next_device: *mut c_void,
    pub attached_device: *mut c_void,
    pub current_irp: *mut c_void,
    pub timer: *mut c_void,
    pub flags: u32,
}

/// `DEVICE_OBJECT.Flags`: the device takes MDLs for reads and writes.
pub const DO_DIRECT_IO: u32 = 0x10;
/// `DEVICE_OBJECT.Flags`: the device takes a system buffer for reads and writes.
pub const DO_BUFFERED_IO: u32 = 0x04;
