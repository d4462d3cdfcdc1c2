//! Kernel-wrapper module for the asynchronous disk-backed path (`docs/driver.md` "Disk-backed
//! images", `docs/windows-integration.md` §8): spin-locked data, events, one system thread,
//! disk-interface notifications, opening a disk and synchronous IRPs to it, firmware variables.
//!
//! Each wrapper states its contract; those with an IRQL rule take the token of the level the
//! routine needs (§8.1 lists each rule). The safe logic using them is `crate::backed`.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr::{null, null_mut};
use rvblk_abi::{AlignedI64, Guid, IoStatusBlock, KEvent, UnicodeString};
use rvblk_irql::{AtMostDispatch, Dispatch, Passive};

crate::kernel_imports!("ntoskrnl.exe", "system" {
    fn PsCreateSystemThread(
        handle: *mut *mut c_void,
        access: u32,
        attributes: *mut c_void,
        process: *mut c_void,
        client_id: *mut c_void,
        start: unsafe extern "system" fn(*mut c_void),
        context: *mut c_void,
    ) -> i32;
    fn ObReferenceObjectByHandle(
        handle: *mut c_void,
        access: u32,
        object_type: *mut c_void,
        mode: i8,
        object: *mut *mut c_void,
        handle_information: *mut c_void,
    ) -> i32;
    fn KeInitializeEvent(event: *mut KEvent, event_type: u32, state: u8);
    fn KeSetEvent(event: *mut KEvent, increment: i32, wait: u8) -> i32;
    fn KeWaitForSingleObject(
        object: *mut c_void,
        reason: u32,
        mode: i8,
        alertable: u8,
        timeout: *const AlignedI64,
    ) -> i32;
    fn IoRegisterPlugPlayNotification(
        category: u32,
        flags: u32,
        data: *const c_void,
        driver_object: *mut c_void,
        callback: unsafe extern "system" fn(*mut c_void, *mut c_void) -> i32,
        context: *mut c_void,
        entry: *mut *mut c_void,
    ) -> i32;
    fn IoUnregisterPlugPlayNotification(entry: *mut c_void) -> i32;
    fn IoGetDeviceObjectPointer(
        name: *const UnicodeString,
        access: u32,
        file: *mut *mut c_void,
        device: *mut *mut c_void,
    ) -> i32;
    fn IoBuildSynchronousFsdRequest(
        major: u32,
        device: *mut c_void,
        buffer: *mut c_void,
        length: u32,
        offset: *const AlignedI64,
        event: *mut KEvent,
        iosb: *mut IoStatusBlock,
    ) -> *mut c_void;
    fn IoBuildDeviceIoControlRequest(
        code: u32,
        device: *mut c_void,
        input: *mut c_void,
        input_length: u32,
        output: *mut c_void,
        output_length: u32,
        internal: u8,
        event: *mut KEvent,
        iosb: *mut IoStatusBlock,
    ) -> *mut c_void;
    fn IoCancelIrp(irp: *mut c_void) -> u8;
    fn MmGetSystemRoutineAddress(name: *const UnicodeString) -> *mut c_void;
});

// IofCallDriver and ObfDereferenceObject are fastcall on x86 (§8.1), the platform ABI elsewhere.
#[cfg(target_arch = "x86")]
#[link(
    name = "ntoskrnl.exe",
    kind = "raw-dylib",
    modifiers = "+verbatim",
    import_name_type = "undecorated"
)]
extern "fastcall" {
    fn IofCallDriver(device: *mut c_void, irp: *mut c_void) -> i32;
    fn ObfDereferenceObject(object: *mut c_void) -> isize;
}
#[cfg(not(target_arch = "x86"))]
crate::kernel_imports!("ntoskrnl.exe", "system" {
    fn IofCallDriver(device: *mut c_void, irp: *mut c_void) -> i32;
    fn ObfDereferenceObject(object: *mut c_void) -> isize;
});

/// `IofCallDriver` (≤ DISPATCH_LEVEL for the call itself) for the other wrapper modules.
///
/// # Safety
/// `irp` was built for `device` and is sent exactly once; `device` stays referenced until the
/// IRP completes; the caller meets the IRQL rule of the target's dispatch routine for the IRP's
/// major function (§8.5: ≤ APC_LEVEL for a disk's read and write).
pub(crate) unsafe fn call_driver(device: *mut c_void, irp: *mut c_void) -> i32 {
    // SAFETY: per the caller's contract.
    unsafe { IofCallDriver(device, irp) }
}

/// `IoCancelIrp` (≤ DISPATCH_LEVEL) for the other wrapper modules.
///
/// # Safety
/// `irp` is an IRP the caller sent that has not been freed yet (it may have completed).
pub(crate) unsafe fn cancel_irp(irp: *mut c_void) -> bool {
    // SAFETY: per the caller's contract.
    unsafe { IoCancelIrp(irp) != 0 }
}

/// `ObfDereferenceObject` (≤ DISPATCH_LEVEL) for the other wrapper modules.
///
/// # Safety
/// `object` is a referenced kernel object and the caller owns the reference it releases.
pub(crate) unsafe fn dereference_object(object: *mut c_void) -> isize {
    // SAFETY: per the caller's contract.
    unsafe { ObfDereferenceObject(object) }
}

// x64/arm64 spin locks; x86 uses the HAL's fastcall pair (`crate::nt`).
#[cfg(not(target_arch = "x86"))]
crate::kernel_imports!("ntoskrnl.exe", "system" {
    fn KeAcquireSpinLockRaiseToDpc(lock: *mut usize) -> u8;
    fn KeReleaseSpinLock(lock: *mut usize, new_irql: u8);
});

// The performance counter: a HAL export on every Windows version and architecture (Windows 2000
// on), callable at any IRQL (`docs/windows-integration.md` §8.1).
crate::kernel_imports!("hal.dll", "system" {
    fn KeQueryPerformanceCounter(frequency: *mut AlignedI64) -> i64;
});

/// A moment on the performance counter's time line (`KeQueryPerformanceCounter`, any IRQL):
/// what the worker measures its quiet periods and its bounded spin with.
#[derive(Clone, Copy, Debug)]
pub struct Instant {
    ticks: u64,
    /// Counter ticks per second (fixed from boot).
    frequency: u64,
}

impl Instant {
    pub fn now() -> Self {
        let mut frequency = AlignedI64(0);
        // SAFETY: any IRQL; the frequency out-pointer is a local that outlives the call.
        let ticks = unsafe { KeQueryPerformanceCounter(&mut frequency) };
        Self {
            ticks: ticks as u64,
            frequency: (frequency.0 as u64).max(1),
        }
    }

    /// Microseconds from `self` to `later` (0 if `later` is not later).
    pub fn micros_until(&self, later: &Instant) -> u64 {
        // Without 128-bit arithmetic (x86 kernel code has no helper for it); the remainder times
        // 10^6 fits 64 bits for any counter frequency below 18 THz.
        let d = later.ticks.saturating_sub(self.ticks);
        let f = self.frequency;
        (d / f).saturating_mul(1_000_000) + (d % f) * 1_000_000 / f
    }

    /// Microseconds since `self`.
    pub fn elapsed_micros(&self) -> u64 {
        self.micros_until(&Instant::now())
    }

    /// Milliseconds since boot, wrapping at 2^32 (≈ 49 days): differences taken with
    /// `wrapping_sub` measure spans up to that long.
    pub fn millis32(&self) -> u32 {
        let (t, f) = (self.ticks, self.frequency);
        ((t / f).wrapping_mul(1000) + (t % f) * 1000 / f) as u32
    }
}

const STATUS_SUCCESS: i32 = 0;
const STATUS_TIMEOUT: i32 = 0x102;
const STATUS_PENDING: i32 = 0x103;
/// What an IRP that could not even be built reports (no memory for it).
const STATUS_INSUFFICIENT_RESOURCES: i32 = 0xC000_009Au32 as i32;

/// A `T` behind a kernel spin lock: every access runs at DISPATCH_LEVEL with the lock held.
pub struct SpinLocked<T> {
    lock: UnsafeCell<usize>,
    data: UnsafeCell<T>,
}

// SAFETY: `data` is only reached inside `with`, under the lock, one thread at a time; the lock
// word is only touched by the kernel's interlocked spin-lock routines.
unsafe impl<T: Send> Sync for SpinLocked<T> {}
// SAFETY: owning the value on another thread is owning the `T` there.
unsafe impl<T: Send> Send for SpinLocked<T> {}

impl<T: Default> Default for SpinLocked<T> {
    fn default() -> Self {
        Self {
            lock: UnsafeCell::new(0),
            data: UnsafeCell::new(T::default()),
        }
    }
}

impl<T> SpinLocked<T> {
    /// Runs `f` on the data with the lock held, at DISPATCH_LEVEL (callers run at ≤ DISPATCH,
    /// the token says so). `f` must not take this lock again (it gets no way to).
    pub fn with<R>(
        &self,
        _irql: &impl AtMostDispatch,
        f: impl FnOnce(&mut T, &Dispatch) -> R,
    ) -> R {
        #[cfg(target_arch = "x86")]
        // SAFETY: the lock word lives as long as `self`; allowed at ≤ DISPATCH (token).
        let old = unsafe { crate::nt::acquire_spin_lock(self.lock.get()) };
        #[cfg(not(target_arch = "x86"))]
        // SAFETY: as above.
        let old = unsafe { KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
        // SAFETY: DISPATCH_LEVEL until the release below; the token dies with `f`.
        let dispatch = unsafe { Dispatch::new_unchecked() };
        // SAFETY: the lock is held, so this is the only reference to the data.
        let data = unsafe { &mut *self.data.get() };
        let r = f(data, &dispatch);
        #[cfg(target_arch = "x86")]
        // SAFETY: releases the acquisition above with the IRQL it returned.
        unsafe {
            crate::nt::release_spin_lock(self.lock.get(), old)
        };
        #[cfg(not(target_arch = "x86"))]
        // SAFETY: as above.
        unsafe {
            KeReleaseSpinLock(self.lock.get(), old)
        };
        r
    }
}

/// A kernel event (`KEVENT`) at a fixed address: it lives inside a pool object and is
/// initialised in place with [`Event::init`] before anything waits on or sets it.
#[derive(Default)]
pub struct Event(UnsafeCell<KEvent>);

// SAFETY: the kernel synchronises every access to a KEVENT (KeSetEvent/KeWait… at ≤ DISPATCH).
unsafe impl Sync for Event {}
// SAFETY: as above.
unsafe impl Send for Event {}

impl Event {
    /// `KeInitializeEvent` (≤ DISPATCH_LEVEL): a synchronization (auto-reset) or notification
    /// event, not signalled. Must happen before any other use, with nobody waiting.
    pub fn init(&self, synchronization: bool, _irql: &impl AtMostDispatch) {
        let ty = if synchronization {
            rvblk_abi::SYNCHRONIZATION_EVENT
        } else {
            rvblk_abi::NOTIFICATION_EVENT
        };
        // SAFETY: our KEVENT storage, non-paged (pool), not in use by anyone yet (contract).
        unsafe { KeInitializeEvent(self.0.get(), ty, 0) };
    }

    /// `KeSetEvent` (≤ DISPATCH_LEVEL, Wait = FALSE). The event was initialised.
    pub fn set(&self, _irql: &impl AtMostDispatch) {
        // SAFETY: an initialised KEVENT (contract of `init`); Wait = FALSE is allowed at any
        // IRQL ≤ DISPATCH_LEVEL.
        unsafe { KeSetEvent(self.0.get(), 0, 0) };
    }

    /// `KeWaitForSingleObject` at PASSIVE_LEVEL: `timeout` in 100 ns units, `None` = forever.
    /// True when signalled, false on timeout.
    pub fn wait(&self, timeout: Option<u64>, irql: &Passive) -> bool {
        wait_object(self.0.get().cast(), timeout, irql)
    }
}

fn wait_object(object: *mut c_void, timeout: Option<u64>, _irql: &Passive) -> bool {
    // Negative = relative time (§8.1).
    let relative = timeout.map(|t| AlignedI64(-(t.min(i64::MAX as u64) as i64)));
    let p = relative.as_ref().map_or(null(), |t| t as *const AlignedI64);
    // SAFETY: `object` is a dispatcher object (an initialised KEVENT or a referenced thread
    // object — both callers guarantee it); at PASSIVE_LEVEL any timeout is allowed; the
    // timeout lives across the call.
    let st = unsafe { KeWaitForSingleObject(object, 0, 0, 0, p) };
    st != STATUS_TIMEOUT
}

/// Why [`SystemThread::spawn`] gave no thread to join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// No thread was created: the routine never runs.
    NotStarted,
    /// The thread runs but could not be referenced, so nobody can wait for it: its context must
    /// never be freed.
    Unjoinable,
}

/// A referenced system thread object (`PsCreateSystemThread` + `ObReferenceObjectByHandle`):
/// waitable, dereferenced by [`SystemThread::join`].
pub struct SystemThread(core::ptr::NonNull<c_void>);

impl SystemThread {
    /// Starts `start(context)` on a new system thread (PASSIVE_LEVEL).
    ///
    /// # Safety
    /// `start` is safe to call once with `context` on another thread at PASSIVE_LEVEL, and
    /// whatever `context` points at outlives the thread (the caller joins it before freeing).
    pub unsafe fn spawn(
        start: unsafe extern "system" fn(*mut c_void),
        context: *mut c_void,
        _irql: &Passive,
    ) -> Result<Self, SpawnError> {
        let mut handle: *mut c_void = null_mut();
        // SAFETY: PASSIVE_LEVEL (token); `start`/`context` per the caller's contract; no object
        // attributes, system process, no client id.
        let st = unsafe {
            PsCreateSystemThread(
                &mut handle,
                rvblk_abi::THREAD_ALL_ACCESS,
                null_mut(),
                null_mut(),
                null_mut(),
                start,
                context,
            )
        };
        if st != STATUS_SUCCESS {
            return Err(SpawnError::NotStarted);
        }
        let mut object: *mut c_void = null_mut();
        // SAFETY: `handle` is the thread handle just returned; kernel mode, no type check.
        let st =
            unsafe { ObReferenceObjectByHandle(handle, 0, null_mut(), 0, &mut object, null_mut()) };
        // SAFETY: the handle is ours and closed exactly once, here; the object reference (if
        // any) keeps the thread object alive.
        unsafe { crate::nt::close_handle(handle) };
        match core::ptr::NonNull::new(object) {
            Some(object) if st == STATUS_SUCCESS => Ok(Self(object)),
            _ => Err(SpawnError::Unjoinable),
        }
    }

    /// Waits until the thread has ended (its object is signalled), then drops the reference.
    pub fn join(self, irql: &Passive) {
        wait_object(self.0.as_ptr(), None, irql);
        // SAFETY: the reference taken in `spawn`, released exactly once (self is consumed).
        unsafe { ObfDereferenceObject(self.0.as_ptr()) };
    }
}

/// A device-interface change registration (`IoRegisterPlugPlayNotification`).
pub struct PnpRegistration(core::ptr::NonNull<c_void>);

impl PnpRegistration {
    /// Registers `callback(notification, context)` for disk interfaces, existing ones included
    /// (PASSIVE_LEVEL).
    ///
    /// # Safety
    /// `driver_object` is the DriverObject DriverEntry received; `callback` may be called with
    /// `context` on any thread at PASSIVE_LEVEL until [`PnpRegistration::unregister`] returns,
    /// and `context` stays valid until then.
    pub unsafe fn register(
        driver_object: *mut c_void,
        callback: unsafe extern "system" fn(*mut c_void, *mut c_void) -> i32,
        context: *mut c_void,
        _irql: &Passive,
    ) -> Result<Self, i32> {
        let mut entry: *mut c_void = null_mut();
        let guid: *const Guid = &rvblk_abi::GUID_DEVINTERFACE_DISK;
        // SAFETY: PASSIVE_LEVEL (token); the GUID is a static; the rest per the contract.
        let st = unsafe {
            IoRegisterPlugPlayNotification(
                rvblk_abi::EVENT_CATEGORY_DEVICE_INTERFACE_CHANGE,
                rvblk_abi::PNPNOTIFY_INCLUDE_EXISTING_INTERFACES,
                guid.cast(),
                driver_object,
                callback,
                context,
                &mut entry,
            )
        };
        match core::ptr::NonNull::new(entry) {
            Some(entry) if st == STATUS_SUCCESS => Ok(Self(entry)),
            _ => Err(st),
        }
    }

    /// `IoUnregisterPlugPlayNotification` (PASSIVE_LEVEL): no callback runs after this returns.
    pub fn unregister(self, _irql: &Passive) {
        // SAFETY: the entry from `register`, unregistered exactly once (self is consumed).
        unsafe { IoUnregisterPlugPlayNotification(self.0.as_ptr()) };
    }
}

/// What a device-interface change notification says.
pub enum InterfaceChange<'a> {
    Arrival(&'a [u16]),
    Removal(&'a [u16]),
    Other,
}

/// Reads a `DEVICE_INTERFACE_CHANGE_NOTIFICATION`.
///
/// # Safety
/// `notification` is the first argument of a device-interface change callback, valid (with the
/// symbolic link name it points at) for `'a`.
pub unsafe fn interface_change<'a>(notification: *mut c_void) -> InterfaceChange<'a> {
    if notification.is_null() {
        return InterfaceChange::Other;
    }
    // SAFETY: a valid notification (contract).
    let n = unsafe { &*notification.cast::<rvblk_abi::DeviceInterfaceChangeNotification>() };
    let name = n.symbolic_link_name;
    if name.is_null() {
        return InterfaceChange::Other;
    }
    // SAFETY: a valid UNICODE_STRING (contract).
    let name = unsafe { &*name };
    let units = usize::from(name.length / 2);
    let link: &[u16] = if name.buffer.is_null() || units == 0 {
        &[]
    } else {
        // SAFETY: Buffer holds Length bytes of UTF-16 (UNICODE_STRING invariant; contract).
        unsafe { core::slice::from_raw_parts(name.buffer, units) }
    };
    if n.event == rvblk_abi::GUID_DEVICE_INTERFACE_ARRIVAL {
        InterfaceChange::Arrival(link)
    } else if n.event == rvblk_abi::GUID_DEVICE_INTERFACE_REMOVAL {
        InterfaceChange::Removal(link)
    } else {
        InterfaceChange::Other
    }
}

/// An `IO_STATUS_BLOCK` the I/O manager writes while an IRP completes, possibly from another
/// thread: never behind a Rust reference that claims it does not change, read only after the
/// completion (volatile, so no earlier read is reused).
#[derive(Default)]
struct IoStatus(UnsafeCell<IoStatusBlock>);

impl IoStatus {
    fn as_ptr(&self) -> *mut IoStatusBlock {
        self.0.get()
    }

    /// The block as the completion left it; call only after the IRP completed.
    fn read(&self) -> IoStatusBlock {
        // SAFETY: our own storage; the IRP has completed (the caller waited for it or got its
        // final status from IofCallDriver), so nothing writes it any more.
        unsafe { core::ptr::read_volatile(self.0.get()) }
    }
}

/// Why a disk request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoFailure {
    /// The IRP completed with this NTSTATUS (or could not be built: no memory).
    Status(i32),
    /// No completion within the timeout: the IRP was cancelled and has completed since.
    TimedOut,
}

/// Longest wait for one disk IRP before it is cancelled (`docs/driver.md` "Disk-backed images").
pub const IRP_TIMEOUT_100NS: u64 = 10 * 10_000_000;

/// An opened disk: the file object reference `IoGetDeviceObjectPointer` took and the device it
/// names. Dropped with [`OpenDisk::close`] (exactly once, consumed).
pub struct OpenDisk {
    file: *mut c_void,
    device: *mut c_void,
}

// SAFETY: the references are plain kernel object pointers, usable from any thread.
unsafe impl Send for OpenDisk {}

impl OpenDisk {
    /// `IoGetDeviceObjectPointer(name, access)` (PASSIVE_LEVEL); `name` is UTF-16 without NUL.
    pub fn open(name: &[u16], write: bool, _irql: &Passive) -> Result<Self, i32> {
        let bytes = u16::try_from(name.len() * 2).map_err(|_| 0xC000_0033u32 as i32)?;
        let us = UnicodeString {
            length: bytes,
            maximum_length: bytes,
            buffer: name.as_ptr(),
        };
        let access = rvblk_abi::FILE_READ_DATA | if write { rvblk_abi::FILE_WRITE_DATA } else { 0 };
        let (mut file, mut device) = (null_mut(), null_mut());
        // SAFETY: PASSIVE_LEVEL (token); the name lives across the call; out pointers are
        // locals.
        let st = unsafe { IoGetDeviceObjectPointer(&us, access, &mut file, &mut device) };
        if st != STATUS_SUCCESS || file.is_null() || device.is_null() {
            return Err(st);
        }
        Ok(Self { file, device })
    }

    /// The disk's device object (valid while the disk is open).
    pub fn device(&self) -> *mut c_void {
        self.device
    }

    /// Whether the disk's device object does direct I/O (`DO_DIRECT_IO` in its Flags): the only
    /// kind the fast path sends IRPs to (§8.5).
    pub fn does_direct_io(&self) -> bool {
        // SAFETY: `device` is the DEVICE_OBJECT IoGetDeviceObjectPointer returned, kept alive by
        // the file object reference this value holds; its head (`DeviceObjectHead`, checked in
        // rvblk_abi's layout tests) is readable at any IRQL (non-paged), and Flags is a plain
        // ULONG.
        let flags = unsafe { (*self.device.cast::<rvblk_abi::DeviceObjectHead>()).flags };
        flags & rvblk_abi::DO_DIRECT_IO != 0
    }

    /// Releases the file object reference.
    pub fn close(self, _irql: &impl AtMostDispatch) {
        // SAFETY: the one reference `open` took, released once (self is consumed).
        unsafe { ObfDereferenceObject(self.file) };
    }

    /// Sends one built IRP and waits for it (PASSIVE_LEVEL): waits only on STATUS_PENDING, and
    /// after `IRP_TIMEOUT_100NS` cancels it and waits for its completion without limit.
    fn send(
        &self,
        irp: *mut c_void,
        event: &Event,
        iosb: &IoStatus,
        irql: &Passive,
    ) -> Result<usize, IoFailure> {
        if irp.is_null() {
            return Err(IoFailure::Status(STATUS_INSUFFICIENT_RESOURCES));
        }
        // SAFETY: `irp` was built for this device with `event` and `iosb`, which outlive its
        // completion (we wait for it below); the IRP is sent exactly once.
        let st = unsafe { IofCallDriver(self.device, irp) };
        let mut timed_out = false;
        let st = if st == STATUS_PENDING {
            if !event.wait(Some(IRP_TIMEOUT_100NS), irql) {
                timed_out = true;
                // SAFETY: the IRP is still pending (not yet completed: the event is not set),
                // so the I/O manager still owns a live IRP; cancelling is allowed at ≤ DISPATCH.
                unsafe { IoCancelIrp(irp) };
                event.wait(None, irql);
            }
            iosb.read().ntstatus()
        } else {
            st
        };
        if timed_out {
            return Err(IoFailure::TimedOut);
        }
        if st < 0 {
            return Err(IoFailure::Status(st));
        }
        Ok(iosb.read().information)
    }

    /// Reads disk bytes at `offset` into `buf` (PASSIVE_LEVEL). `offset` and `buf.len()` are
    /// whole sectors of the disk; `buf` is non-paged memory (pool, a locked SRB data buffer, or
    /// the stack of a thread that waits in kernel mode, which stays resident).
    pub fn read(&self, offset: u64, buf: &mut [u8], irql: &Passive) -> Result<(), IoFailure> {
        self.transfer(
            rvblk_abi::IRP_MJ_READ,
            offset,
            buf.as_mut_ptr(),
            buf.len(),
            irql,
        )
    }

    /// Writes `buf` to the disk at `offset` (PASSIVE_LEVEL), as [`OpenDisk::read`].
    pub fn write(&self, offset: u64, buf: &[u8], irql: &Passive) -> Result<(), IoFailure> {
        // A write IRP only reads its buffer, so the pointer's mutability is never used.
        self.transfer(
            rvblk_abi::IRP_MJ_WRITE,
            offset,
            buf.as_ptr().cast_mut(),
            buf.len(),
            irql,
        )
    }

    fn transfer(
        &self,
        major: u32,
        offset: u64,
        buf: *mut u8,
        len: usize,
        irql: &Passive,
    ) -> Result<(), IoFailure> {
        const STATUS_INVALID_PARAMETER: i32 = 0xC000_000Du32 as i32;
        let len32 = u32::try_from(len).map_err(|_| IoFailure::Status(STATUS_INVALID_PARAMETER))?;
        let offset = i64::try_from(offset)
            .map(AlignedI64)
            .map_err(|_| IoFailure::Status(STATUS_INVALID_PARAMETER))?;
        let event = Event::default();
        event.init(false, irql);
        let iosb = IoStatus::default();
        // SAFETY: PASSIVE_LEVEL (token); `buf` is `len` bytes borrowed by the caller for the
        // whole call (read: writable, write: only read by the IRP); the offset, event and status
        // block are locals that outlive the IRP (`send` waits for its completion).
        let irp = unsafe {
            IoBuildSynchronousFsdRequest(
                major,
                self.device,
                buf.cast(),
                len32,
                &offset,
                event.0.get(),
                iosb.as_ptr(),
            )
        };
        let moved = self.send(irp, &event, &iosb, irql)?;
        if moved < len {
            // A short transfer is an error for a disk (the bytes past `moved` are not there).
            return Err(IoFailure::Status(0xC000_0011u32 as i32));
        }
        Ok(())
    }

    /// A device I/O control request with `input` and `output` buffers (PASSIVE_LEVEL). Returns
    /// the bytes written to `output`.
    pub fn ioctl(
        &self,
        code: u32,
        input: &mut [u8],
        output: &mut [u8],
        irql: &Passive,
    ) -> Result<usize, IoFailure> {
        let event = Event::default();
        event.init(false, irql);
        let iosb = IoStatus::default();
        let (in_len, out_len) = (input.len() as u32, output.len() as u32);
        let nonempty = |b: &mut [u8]| {
            if b.is_empty() {
                null_mut()
            } else {
                b.as_mut_ptr().cast::<c_void>()
            }
        };
        let (input, output_ptr) = (nonempty(input), nonempty(output));
        // SAFETY: PASSIVE_LEVEL (token); the buffers, event and status block outlive the IRP
        // (`send` waits for its completion); an external (not internal) request.
        let irp = unsafe {
            IoBuildDeviceIoControlRequest(
                code,
                self.device,
                input,
                in_len,
                output_ptr,
                out_len,
                0,
                event.0.get(),
                iosb.as_ptr(),
            )
        };
        let n = self.send(irp, &event, &iosb, irql)?;
        Ok(n.min(output.len()))
    }
}

/// `ExGetFirmwareEnvironmentVariable`'s type (stdcall on x86).
type GetFirmwareVariable = unsafe extern "system" fn(
    name: *const UnicodeString,
    vendor: *const Guid,
    value: *mut c_void,
    length: *mut u32,
    attributes: *mut u32,
) -> i32;

/// `MmGetSystemRoutineAddress` (PASSIVE_LEVEL) of the ASCII `name` (at most 64 characters):
/// the ntoskrnl or HAL export of that name, NULL when this Windows lacks it.
pub fn system_routine(name: &[u8], _irql: &Passive) -> *mut c_void {
    let mut wide = [0u16; 64];
    let Some(units) = wide.get_mut(..name.len()) else {
        return null_mut();
    };
    for (w, &b) in units.iter_mut().zip(name) {
        *w = u16::from(b);
    }
    let bytes = (name.len() * 2) as u16;
    let routine = UnicodeString {
        length: bytes,
        maximum_length: bytes,
        buffer: wide.as_ptr(),
    };
    // SAFETY: PASSIVE_LEVEL (token); a valid UNICODE_STRING over `wide`, which outlives the call.
    unsafe { MmGetSystemRoutineAddress(&routine) }
}

/// Reads the UEFI variable `name` of `vendor` into `buf` (PASSIVE_LEVEL): `Some(bytes)` when it
/// exists and fits. `None` when the kernel lacks the routine, the machine has no UEFI
/// variables, the variable is absent or too long, or any other failure (§8.4).
pub fn firmware_variable<'b>(
    name: &[u16],
    vendor: &Guid,
    buf: &'b mut [u8],
    _irql: &Passive,
) -> Option<&'b [u8]> {
    let p = system_routine(b"ExGetFirmwareEnvironmentVariable", _irql);
    if p.is_null() {
        return None;
    }
    // SAFETY: the kernel export of that name has exactly this documented signature.
    let get: GetFirmwareVariable =
        unsafe { core::mem::transmute::<*mut c_void, GetFirmwareVariable>(p) };
    let bytes = u16::try_from(name.len() * 2).ok()?;
    let var = UnicodeString {
        length: bytes,
        maximum_length: bytes,
        buffer: name.as_ptr(),
    };
    let mut len = u32::try_from(buf.len()).ok()?;
    let mut attributes = 0u32;
    // SAFETY: PASSIVE_LEVEL (token); `buf` is `len` writable bytes; all pointers are locals or
    // statics that outlive the call.
    let st = unsafe {
        get(
            &var,
            vendor,
            buf.as_mut_ptr().cast(),
            &mut len,
            &mut attributes,
        )
    };
    if st != STATUS_SUCCESS {
        return None;
    }
    buf.get(..len as usize)
}
