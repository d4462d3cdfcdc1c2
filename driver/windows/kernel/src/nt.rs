//! ntoskrnl.exe and hal.dll imports (raw-dylib; undecorated names on x86, per
//! `docs/windows-integration.md` §1.11) and thin wrappers stating their contracts.
//!
//! Only functions present on Windows XP/7 are imported, so one binary loads everywhere.
//!
//! This is a kernel-wrapper module: each wrapper states its contract, and a wrapper whose
//! routine has an IRQL rule takes the matching token from `rvblk_irql` instead of saying so in a
//! comment.

use core::ffi::c_void;
#[cfg(target_arch = "x86")]
use rvblk_irql::Dispatch;
use rvblk_irql::{AtMostDispatch, Passive};

/// `raw-dylib` imports from a kernel module: undecorated names on x86
/// (`docs/windows-integration.md` §1.11), `+verbatim` so `ntoskrnl.exe` is not taken as `…exe.dll`.
#[macro_export]
macro_rules! kernel_imports {
    ($dll:literal, $abi:literal { $($body:tt)* }) => {
        #[cfg_attr(target_arch = "x86", link(name = $dll, kind = "raw-dylib", modifiers = "+verbatim", import_name_type = "undecorated"))]
        #[cfg_attr(not(target_arch = "x86"), link(name = $dll, kind = "raw-dylib", modifiers = "+verbatim"))]
        extern $abi { $($body)* }
    };
}

kernel_imports!("ntoskrnl.exe", "system" {
    fn MmMapIoSpace(physical_address: i64, number_of_bytes: usize, cache_type: u32) -> *mut c_void;
    fn MmUnmapIoSpace(base_address: *mut c_void, number_of_bytes: usize);
    fn MmGetPhysicalMemoryRanges() -> *mut rvblk_abi::PhysicalMemoryRange;
    fn ExAllocatePoolWithTag(pool_type: u32, number_of_bytes: usize, tag: u32) -> *mut c_void;
    fn ExFreePoolWithTag(p: *mut c_void, tag: u32);
    fn ZwQuerySystemInformation(class: u32, info: *mut c_void, length: u32, return_length: *mut u32) -> i32;
    fn ZwOpenKey(handle: *mut *mut c_void, access: u32, attributes: *const rvblk_abi::ObjectAttributes) -> i32;
    fn ZwQueryValueKey(handle: *mut c_void, name: *const rvblk_abi::UnicodeString, class: u32, info: *mut c_void, length: u32, result_length: *mut u32) -> i32;
    fn ZwClose(handle: *mut c_void) -> i32;
});

// Only the x86 mapping budget asks for the version (`docs/x86-mapping.md`).
#[cfg(target_arch = "x86")]
kernel_imports!("ntoskrnl.exe", "system" {
    fn RtlGetVersion(info: *mut c_void) -> i32;
});

kernel_imports!("ntoskrnl.exe", "C" {
    fn DbgPrint(format: *const u8, ...) -> u32;
});

// LLVM lowers 64-bit division on x86 MSVC targets to these helpers (callee-cleaned, arguments on
// the stack); ntoskrnl exports them on x86. Only the ones the code really uses end up imported.
#[cfg(target_arch = "x86")]
#[link(
    name = "ntoskrnl.exe",
    kind = "raw-dylib",
    modifiers = "+verbatim",
    import_name_type = "undecorated"
)]
extern "C" {
    #[link_name = "__aulldiv"]
    fn aulldiv();
    #[link_name = "__aullrem"]
    fn aullrem();
    #[link_name = "__alldiv"]
    fn alldiv();
    #[link_name = "__allrem"]
    fn allrem();
    #[link_name = "__allmul"]
    fn allmul();
}
#[cfg(target_arch = "x86")]
#[used]
static X86_ARITHMETIC_HELPERS: [unsafe extern "C" fn(); 5] =
    [aulldiv, aullrem, alldiv, allrem, allmul];

#[cfg(target_arch = "x86")]
#[link(
    name = "hal.dll",
    kind = "raw-dylib",
    modifiers = "+verbatim",
    import_name_type = "undecorated"
)]
extern "fastcall" {
    fn KfAcquireSpinLock(lock: *mut usize) -> u8;
    fn KfReleaseSpinLock(lock: *mut usize, new_irql: u8);
}

/// `KfAcquireSpinLock` (x86 HAL, fastcall): raises to DISPATCH_LEVEL and returns the old IRQL.
///
/// # Safety
/// `lock` is a live KSPIN_LOCK word; IRQL ≤ DISPATCH_LEVEL; released with
/// [`release_spin_lock`] and the returned IRQL.
#[cfg(target_arch = "x86")]
pub unsafe fn acquire_spin_lock(lock: *mut usize) -> u8 {
    // SAFETY: per the caller's contract.
    unsafe { KfAcquireSpinLock(lock) }
}

/// `KfReleaseSpinLock` (x86 HAL, fastcall).
///
/// # Safety
/// `lock` is held by this thread; `old` is what [`acquire_spin_lock`] returned.
#[cfg(target_arch = "x86")]
pub unsafe fn release_spin_lock(lock: *mut usize, old: u8) {
    // SAFETY: per the caller's contract.
    unsafe { KfReleaseSpinLock(lock, old) }
}

/// `ZwClose` on a kernel handle (PASSIVE_LEVEL).
///
/// # Safety
/// `handle` is an open kernel handle owned by the caller, closed exactly once, and the caller
/// runs at PASSIVE_LEVEL.
pub unsafe fn close_handle(handle: *mut c_void) {
    // SAFETY: per the caller's contract.
    unsafe { ZwClose(handle) };
}

/// The DriverObject DriverEntry received, for IoRegisterPlugPlayNotification (the only routine
/// that needs it after DriverEntry). Set once, in DriverEntry, before the port calls anything.
static DRIVER_OBJECT: core::sync::atomic::AtomicPtr<c_void> =
    core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

pub fn set_driver_object(driver_object: *mut c_void) {
    DRIVER_OBJECT.store(driver_object, core::sync::atomic::Ordering::Release);
}

pub fn driver_object() -> *mut c_void {
    DRIVER_OBJECT.load(core::sync::atomic::Ordering::Acquire)
}

/// Pool tag `rvbk` (shows as "rvbk" in pool dumps).
pub const POOL_TAG: u32 = u32::from_le_bytes(*b"rvbk");

/// Non-paged pool allocation (IRQL ≤ DISPATCH_LEVEL). `None` on failure.
pub fn alloc_nonpaged(size: usize, _irql: &impl AtMostDispatch) -> Option<*mut u8> {
    // SAFETY: ExAllocatePoolWithTag has no precondition beyond IRQL ≤ DISPATCH_LEVEL for
    // non-paged pool, which the token proves.
    let p = unsafe { ExAllocatePoolWithTag(rvblk_abi::NON_PAGED_POOL, size, POOL_TAG) };
    (!p.is_null()).then_some(p.cast())
}

/// Frees memory from [`alloc_nonpaged`] or from a kernel routine documented to return pool
/// (MmGetPhysicalMemoryRanges).
///
/// # Safety
/// `p` came from pool and is not used afterwards.
pub unsafe fn free_pool(p: *mut u8) {
    // SAFETY: ownership of `p` passes to the pool per the caller's contract; tag 0 matches any.
    unsafe { ExFreePoolWithTag(p.cast(), 0) }
}

/// Maps `len` bytes of physical memory at `phys` into system space (IRQL ≤ DISPATCH_LEVEL).
///
/// Contract: the range must not be RAM that Windows manages (discovery refuses such ranges
/// before anything maps them, `docs/loaders.md` §10 rule 23).
pub fn map_io_space(
    phys: u64,
    len: usize,
    cached: bool,
    _irql: &impl AtMostDispatch,
) -> Option<*mut u8> {
    let phys = i64::try_from(phys).ok()?;
    let cache = if cached {
        rvblk_abi::MM_CACHED
    } else {
        rvblk_abi::MM_NON_CACHED
    };
    // SAFETY: a plain mapping request at an IRQL the token proves; see the contract above.
    let va = unsafe { MmMapIoSpace(phys, len, cache) };
    (!va.is_null()).then_some(va.cast())
}

/// Undoes [`map_io_space`].
///
/// # Safety
/// `va`/`len` are exactly a live mapping from [`map_io_space`] that nothing uses any more;
/// IRQL ≤ DISPATCH_LEVEL (MmUnmapIoSpace DDI requirements).
pub unsafe fn unmap_io_space(va: *mut u8, len: usize) {
    // SAFETY: per the caller's contract.
    unsafe { MmUnmapIoSpace(va.cast(), len) }
}

/// `MmGetPhysicalMemoryRanges` (PASSIVE_LEVEL): pool array ending with a zero entry, or null.
/// The caller frees the result with [`free_pool`].
pub fn physical_memory_ranges(_irql: &Passive) -> *mut rvblk_abi::PhysicalMemoryRange {
    // SAFETY: no arguments; PASSIVE_LEVEL as the token proves.
    unsafe { MmGetPhysicalMemoryRanges() }
}

/// `ZwQuerySystemInformation` (PASSIVE_LEVEL).
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes.
pub unsafe fn query_system_information(
    class: u32,
    buf: *mut u8,
    len: u32,
    ret: &mut u32,
    _irql: &Passive,
) -> i32 {
    // SAFETY: per the caller's contract on `buf`; PASSIVE_LEVEL as the token proves.
    unsafe { ZwQuerySystemInformation(class, buf.cast(), len, ret) }
}

/// Writes one NUL-terminated line through `DbgPrint("%s", line)`: the line is data, never a
/// format string.
pub fn dbg_print_line(line_nul_terminated: &[u8]) {
    debug_assert_eq!(line_nul_terminated.last(), Some(&0));
    // SAFETY: "%s" consumes exactly one pointer to a NUL-terminated string, which the slice is.
    unsafe {
        DbgPrint(c"%s".as_ptr().cast(), line_nul_terminated.as_ptr());
    }
}

/// A kernel spin lock (`KSPIN_LOCK`) for the x86 view cache.
#[cfg(target_arch = "x86")]
pub struct SpinLock(core::cell::UnsafeCell<usize>);

#[cfg(target_arch = "x86")]
// SAFETY: the lock word is only touched by the HAL's interlocked spin-lock routines.
unsafe impl Sync for SpinLock {}

#[cfg(target_arch = "x86")]
impl Default for SpinLock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_arch = "x86")]
impl SpinLock {
    pub const fn new() -> Self {
        Self(core::cell::UnsafeCell::new(0))
    }

    /// Runs `f` with the lock held, at DISPATCH_LEVEL (`f` gets the token). `f` must not take
    /// this lock again. Callable from every callback of these miniports but HwInterrupt (they
    /// all run at ≤ DISPATCH_LEVEL; the I/O path has no token to pass through the core's
    /// `Medium` trait, which is why this wrapper does not demand one).
    pub fn with<R>(&self, f: impl FnOnce(&Dispatch) -> R) -> R {
        // SAFETY: the lock word lives as long as `self`; KfAcquireSpinLock (allowed at the
        // caller's IRQL ≤ DISPATCH_LEVEL) raises to DISPATCH and returns the previous IRQL,
        // which KfReleaseSpinLock restores.
        let old = unsafe { KfAcquireSpinLock(self.0.get()) };
        // SAFETY: the lock holds the IRQL at DISPATCH_LEVEL until the release below, and the
        // token is dropped when `f` returns.
        let dispatch = unsafe { Dispatch::new_unchecked() };
        let r = f(&dispatch);
        // SAFETY: releases the acquisition above with the IRQL it returned.
        unsafe { KfReleaseSpinLock(self.0.get(), old) };
        r
    }
}

/// An open registry key, closed on drop.
struct Key(*mut c_void);

impl Key {
    /// `ZwOpenKey(KEY_QUERY_VALUE)` on an absolute key name (UTF-16 without NUL).
    fn open(name: &[u16], _irql: &Passive) -> Option<Self> {
        use rvblk_abi::*;
        let key_name = unicode_string(name);
        let attributes = ObjectAttributes {
            length: core::mem::size_of::<ObjectAttributes>() as u32,
            root_directory: core::ptr::null_mut(),
            object_name: &key_name,
            attributes: OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE,
            security_descriptor: core::ptr::null_mut(),
            security_quality_of_service: core::ptr::null_mut(),
        };
        let mut handle: *mut c_void = core::ptr::null_mut();
        // SAFETY: all pointers refer to locals that outlive the call; PASSIVE_LEVEL (token).
        let st = unsafe { ZwOpenKey(&mut handle, KEY_QUERY_VALUE, &attributes) };
        // Only a successful open owns a handle (a `Key` closes it on drop).
        if st != status::STATUS_SUCCESS {
            return None;
        }
        Some(Self(handle))
    }

    /// `ZwQueryValueKey(KeyValuePartialInformation)` into `info` (u32 words, so the header is
    /// aligned). Returns (type, data length) when the value fits.
    fn query(&self, value: &[u16], info: &mut [u32]) -> Option<(u32, usize)> {
        let value_name = unicode_string(value);
        let len = u32::try_from(core::mem::size_of_val(info)).ok()?;
        let mut got = 0u32;
        // SAFETY: `info` is `len` writable bytes; the handle is open (owned by `self`).
        let st = unsafe {
            ZwQueryValueKey(
                self.0,
                &value_name,
                rvblk_abi::KEY_VALUE_PARTIAL_INFORMATION,
                info.as_mut_ptr().cast(),
                len,
                &mut got,
            )
        };
        // KEY_VALUE_PARTIAL_INFORMATION: TitleIndex, Type, DataLength, Data.
        let data_len = *info.get(2)? as usize;
        (st == rvblk_abi::status::STATUS_SUCCESS && data_len <= (info.len() - 3) * 4)
            .then_some((info[1], data_len))
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by `Key::open` and is closed exactly once, here.
        unsafe { ZwClose(self.0) };
    }
}

fn unicode_string(s: &[u16]) -> rvblk_abi::UnicodeString {
    rvblk_abi::UnicodeString {
        length: (s.len() * 2) as u16,
        maximum_length: (s.len() * 2) as u16,
        buffer: s.as_ptr(),
    }
}

/// Reads a REG_DWORD value (PASSIVE_LEVEL). `key` and `value` are UTF-16 without NUL.
pub fn read_registry_dword(key: &[u16], value: &[u16], irql: &Passive) -> Option<u32> {
    let mut info = [0u32; 4];
    match Key::open(key, irql)?.query(value, &mut info)? {
        (rvblk_abi::REG_DWORD, 4) => Some(info[3]),
        _ => None,
    }
}

/// Reads a REG_SZ value (PASSIVE_LEVEL) into `buf`, returning its UTF-16 units (a trailing NUL
/// included if stored). `None` if absent, of another type, or longer than `buf` allows.
pub fn read_registry_string<'b>(
    key: &[u16],
    value: &[u16],
    buf: &'b mut [u32],
    irql: &Passive,
) -> Option<&'b [u16]> {
    let (ty, len) = Key::open(key, irql)?.query(value, buf)?;
    if ty != rvblk_abi::REG_SZ {
        return None;
    }
    // The data starts at word 3; UTF-16 units are two to a word, little-endian.
    let data = buf.get_mut(3..)?;
    Some(u16_view(data, len / 2))
}

/// The first `units` UTF-16 units stored in `words`.
fn u16_view(words: &mut [u32], units: usize) -> &[u16] {
    let units = units.min(words.len() * 2);
    // SAFETY: u32 storage reinterpreted as twice as many u16 (alignment 4 ≥ 2, no padding, any
    // bit pattern valid), within the slice's bounds; the shared borrow keeps it alive.
    unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u16>(), units) }
}

/// Kernel code cannot unwind. The core returns errors instead of panicking; reaching this is a
/// bug, and spinning keeps it visible under a debugger rather than corrupting state.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// The MSVC toolchain expects this symbol whenever floating point may appear; core's formatting
/// code references it although rvblk does no floating point.
#[no_mangle]
#[used]
static _fltused: i32 = 0;

/// `RTL_OSVERSIONINFOW` (276 bytes; the size field must say so).
#[cfg(target_arch = "x86")]
#[repr(C)]
struct OsVersionInfo {
    size: u32,
    major: u32,
    minor: u32,
    build: u32,
    platform: u32,
    service_pack: [u16; 128],
}

#[cfg(target_arch = "x86")]
const _: () = assert!(core::mem::size_of::<OsVersionInfo>() == 276);

/// The running kernel's (major, minor) version through `RtlGetVersion` (Windows 2000 and later;
/// PASSIVE_LEVEL). `None` if the call fails.
#[cfg(target_arch = "x86")]
pub fn os_version(_irql: &Passive) -> Option<(u32, u32)> {
    let mut info = OsVersionInfo {
        size: core::mem::size_of::<OsVersionInfo>() as u32,
        major: 0,
        minor: 0,
        build: 0,
        platform: 0,
        service_pack: [0; 128],
    };
    // SAFETY: `info` is a writable RTL_OSVERSIONINFOW whose size field is set, as required.
    let st = unsafe { RtlGetVersion(core::ptr::addr_of_mut!(info).cast()) };
    (st == rvblk_abi::status::STATUS_SUCCESS).then_some((info.major, info.minor))
}
