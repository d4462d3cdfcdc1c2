//! The export table: each ntoskrnl/hal/storport/scsiport import the driver may bind, as an
//! ABI wrapper in the driver's calling convention (win64, stdcall/cdecl/fastcall on x86,
//! AAPCS64 behind an x18-preserving thunk on arm64) that forwards to the active `Kernel`, and
//! `resolve`, which the PE loader asks for each import.

use super::{current, irql, APC_LEVEL, DISPATCH_LEVEL, STATUS_SUCCESS};
use std::ffi::c_void;

macro_rules! sysfn {
    ($(fn $name:ident($($a:ident: $t:ty),*) $(-> $r:ty)? $body:block)*) => {$(
        #[cfg(target_arch = "x86_64")]
        extern "win64" fn $name($($a: $t),*) $(-> $r)? $body
        #[cfg(target_arch = "x86")]
        extern "stdcall" fn $name($($a: $t),*) $(-> $r)? {
            crate::emu::stack::realigned(|| $body)
        }
        aarch64_sysfn!(fn $name($($a: $t),*) $(-> $r)? $body);
    )*};
}

/// arm64: one calling convention for all exports (variadic ones included: `docs/arm64.md` §3),
/// reached through an x18-preserving thunk.
#[cfg(target_arch = "aarch64")]
macro_rules! aarch64_sysfn {
    (fn $name:ident($($a:ident: $t:ty),*) $(-> $r:ty)? $body:block) => {
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            pub(super) extern "C" fn imp($($a: $t),*) $(-> $r)? $body
        }
        crate::aarch64_export!($name, $name::imp);
    };
}

#[cfg(not(target_arch = "aarch64"))]
macro_rules! aarch64_sysfn {
    ($($t:tt)*) => {};
}

macro_rules! cdeclfn {
    ($(fn $name:ident($($a:ident: $t:ty),*) $(-> $r:ty)? $body:block)*) => {$(
        #[cfg(target_arch = "x86_64")]
        extern "win64" fn $name($($a: $t),*) $(-> $r)? $body
        #[cfg(target_arch = "x86")]
        extern "C" fn $name($($a: $t),*) $(-> $r)? {
            crate::emu::stack::realigned(|| $body)
        }
        aarch64_sysfn!(fn $name($($a: $t),*) $(-> $r)? $body);
    )*};
}

sysfn! {
    fn storport_initialize(drv: *mut c_void, reg: *mut c_void, init: *const u8, ctx: *mut c_void) -> u32 {
        current().storport_initialize(drv, reg, init, ctx)
    }
    fn mm_map_io_space(pa: i64, size: usize, cache: u32) -> *mut u8 {
        current().map_io(pa, size, cache)
    }
    fn mm_unmap_io_space(va: *mut u8, size: usize) {
        current().unmap_io(va, size)
    }
    fn mm_get_physical_memory_ranges() -> *mut u8 {
        current().physical_memory_ranges()
    }
    fn rtl_get_version(info: *mut u8) -> i32 {
        current().get_version(info)
    }
    fn ex_allocate_pool_with_tag(ty: u32, size: usize, tag: u32) -> *mut u8 {
        let k = current();
        let max = if ty & 1 == 1 { APC_LEVEL } else { DISPATCH_LEVEL };
        k.check_irql("ExAllocatePoolWithTag", max);
        k.pool_alloc(ty, size, tag, "ExAllocatePoolWithTag")
    }
    fn ex_free_pool_with_tag(p: *mut u8, tag: u32) {
        let k = current();
        k.check_irql("ExFreePoolWithTag", DISPATCH_LEVEL);
        if k.is_mdl(p as usize) {
            return k.free_mdl(p as usize);
        }
        k.pool_free(p, tag)
    }
    fn ex_free_pool(p: *mut u8) {
        let k = current();
        k.check_irql("ExFreePool", DISPATCH_LEVEL);
        if k.is_mdl(p as usize) {
            return k.free_mdl(p as usize);
        }
        k.pool_free(p, 0)
    }
    fn zw_query_system_information(class: u32, buf: *mut u8, len: u32, ret: *mut u32) -> i32 {
        current().query_system_information(class, buf, len, ret)
    }
    fn zw_open_key(out: *mut usize, access: u32, oa: *const rvblk_abi::ObjectAttributes) -> i32 {
        current().open_key(out, access, oa)
    }
    fn zw_query_value_key(h: usize, name: *const rvblk_abi::UnicodeString, class: u32, info: *mut u8, len: u32, ret: *mut u32) -> i32 {
        current().query_value_key(h, name, class, info, len, ret)
    }
    fn zw_close(h: usize) -> i32 {
        current().close(h)
    }
    fn scsi_port_initialize(drv: *mut c_void, reg: *mut c_void, init: *const u8, ctx: *mut c_void) -> u32 {
        crate::emu::scsiport::initialize(current(), drv, reg, init, ctx) as u32
    }
    fn ke_get_current_irql() -> u8 {
        irql()
    }
    fn ke_are_all_apcs_disabled() -> u8 {
        u8::from(super::irql::apcs_disabled())
    }
}

// The asynchronous disk path (`docs/harness-disks.md`): threads, events, waits, PnP, IRPs,
// firmware.
sysfn! {
    fn io_build_asynchronous_fsd_request(major: u32, dev: usize, buf: usize, len: u32, offset: *const i64, iosb: usize) -> usize {
        current().build_async_fsd_request(major, dev, buf, len, offset, iosb)
    }
    fn io_free_irp(irp: usize) {
        current().io_free_irp(irp)
    }
    fn io_free_mdl(mdl: usize) {
        current().io_free_mdl(mdl)
    }
    fn mm_unlock_pages(mdl: usize) {
        current().unlock_pages(mdl)
    }
    fn io_get_remaining_stack_size() -> usize {
        crate::emu::stack::remaining()
    }
    fn ke_initialize_event(ev: usize, ty: u32, state: u8) {
        current().initialize_event(ev, ty, state != 0)
    }
    fn ke_set_event(ev: usize, incr: i32, wait: u8) -> i32 {
        let _ = (incr, wait);
        current().set_event(Some("KeSetEvent"), ev)
    }
    fn ke_clear_event(ev: usize) {
        current().clear_event(ev)
    }
    fn ke_wait_for_single_object(obj: usize, reason: u32, mode: u8, alertable: u8, timeout: *const i64) -> i32 {
        current().wait_for_single_object(obj, reason, mode as u32, alertable, timeout)
    }
    fn ps_create_system_thread(out: *mut usize, access: u32, oa: *const rvblk_abi::ObjectAttributes, process: usize, cid: usize, start: usize, ctx: usize) -> i32 {
        current().create_system_thread(out, access, oa, process, cid, start, ctx)
    }
    fn ps_terminate_system_thread(status: i32) -> i32 {
        current().terminate_system_thread(status)
    }
    fn ob_reference_object_by_handle(h: usize, access: u32, ty: usize, mode: u8, obj: *mut usize, info: usize) -> i32 {
        let _ = (access, mode);
        let k = current();
        if ty != 0 || info != 0 {
            k.log_line("[harness] ObReferenceObjectByHandle: ObjectType and HandleInformation are not checked".into());
        }
        k.reference_by_handle(h, obj)
    }
    fn io_register_plug_play_notification(category: u32, flags: u32, data: *const u8, drv: usize, cb: usize, ctx: usize, entry: *mut usize) -> i32 {
        current().register_pnp(category, flags, data, drv, cb, ctx, entry)
    }
    fn io_unregister_plug_play_notification(entry: usize) -> i32 {
        current().unregister_pnp(entry)
    }
    fn ke_query_performance_counter(freq: *mut i64) -> i64 {
        crate::emu::kernel::sync::performance_counter(freq)
    }
    fn io_get_device_object_pointer(name: *const rvblk_abi::UnicodeString, access: u32, file: *mut usize, dev: *mut usize) -> i32 {
        current().get_device_object_pointer(name, access, file, dev)
    }
    fn io_build_synchronous_fsd_request(major: u32, dev: usize, buf: usize, len: u32, off: *const i64, ev: usize, iosb: usize) -> usize {
        current().build_fsd_request(major, dev, buf, len, off, ev, iosb)
    }
    fn io_cancel_irp(irp: usize) -> u8 {
        current().cancel_irp(irp)
    }
    fn mm_get_system_routine_address(name: *const rvblk_abi::UnicodeString) -> usize {
        current().system_routine_address(name)
    }
    fn ex_get_firmware_environment_variable(name: *const rvblk_abi::UnicodeString, vendor: *const u8, value: *mut u8, len: *mut u32, attrs: *mut u32) -> i32 {
        current().firmware_variable(name, vendor, value, len, attrs)
    }
}

// The runtime mounts (`docs/harness-runtime.md`): requester security, files, MDL pages.
sysfn! {
    fn se_create_client_security(thread: usize, qos: *const u8, remote: u8, ctx: *mut u8) -> i32 {
        current().create_client_security(thread, qos, remote, ctx)
    }
    fn se_token_is_admin(token: usize) -> u8 {
        current().token_is_admin(token)
    }
    fn se_impersonate_client_ex(ctx: *const u8, server: usize) -> i32 {
        current().impersonate_client(ctx, server)
    }
    fn ps_revert_to_self() {
        current().revert_to_self()
    }
    fn zw_query_information_file(h: usize, iosb: *mut usize, buf: *mut u8, len: u32, class: u32) -> i32 {
        current().query_information_file(h, iosb, buf, len, class)
    }
    fn mm_allocate_pages_for_mdl_ex(low: i64, high: i64, skip: i64, bytes: usize, cache: u32, flags: u32) -> usize {
        current().allocate_pages_for_mdl(low, high, skip, bytes, cache, flags)
    }
    fn mm_map_locked_pages_specify_cache(mdl: usize, mode: u8, cache: u32, base: usize, bugcheck: u32, priority: u32) -> usize {
        current().map_locked_pages(mdl, mode, cache, base, bugcheck, priority)
    }
    fn mm_unmap_locked_pages(va: usize, mdl: usize) {
        current().unmap_locked_pages(va, mdl)
    }
    fn mm_free_pages_from_mdl(mdl: usize) {
        current().free_pages_from_mdl(mdl)
    }
}

/// Exports with more than eight arguments. x64 and x86 take them natively; on arm64 the
/// arguments past the eighth are on the caller's stack, which the generic thunk
/// (`aarch64_export!`) does not forward, so each gets a thunk that copies `$stack` stack slots
/// (8 bytes each, AAPCS64) to the stack of its call to the body (`docs/arm64.md` §3).
macro_rules! widefn {
    ($stack:tt; fn $name:ident($($a:ident: $t:ty),*) -> $r:ty $body:block) => {
        #[cfg(target_arch = "x86_64")]
        #[allow(clippy::too_many_arguments)]
        extern "win64" fn $name($($a: $t),*) -> $r $body
        #[cfg(target_arch = "x86")]
        #[allow(clippy::too_many_arguments)]
        extern "stdcall" fn $name($($a: $t),*) -> $r {
            crate::emu::stack::realigned(|| $body)
        }
        #[cfg(target_arch = "aarch64")]
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[allow(clippy::too_many_arguments)]
            pub(super) extern "C" fn imp($($a: $t),*) -> $r $body
            aarch64_stack_thunk!($stack, thunk, imp);
        }
        #[cfg(target_arch = "aarch64")]
        use $name::thunk as $name;
    };
}

/// Saves x18 (the KPCR), copies the caller's first `$stack` stack arguments to the stack of the
/// call to `$imp`, and restores x18 (`docs/arm64.md` §2, §3).
#[cfg(target_arch = "aarch64")]
macro_rules! aarch64_stack_thunk {
    (1, $thunk:ident, $imp:ident) => {
        #[unsafe(naked)]
        pub(super) unsafe extern "C" fn $thunk() {
            std::arch::naked_asm!(
                "stp x29, x30, [sp, #-32]!",
                "mov x29, sp",
                "str x18, [sp, #16]",
                "ldr x9, [sp, #32]",
                "str x9, [sp, #-16]!",
                "bl {imp}",
                "add sp, sp, #16",
                "ldr x18, [sp, #16]",
                "ldp x29, x30, [sp], #32",
                "ret",
                imp = sym $imp,
            )
        }
    };
    (3, $thunk:ident, $imp:ident) => {
        #[unsafe(naked)]
        pub(super) unsafe extern "C" fn $thunk() {
            std::arch::naked_asm!(
                "stp x29, x30, [sp, #-32]!",
                "mov x29, sp",
                "str x18, [sp, #16]",
                "sub sp, sp, #32",
                "ldr x9, [sp, #64]",
                "str x9, [sp]",
                "ldr x9, [sp, #72]",
                "str x9, [sp, #8]",
                "ldr x9, [sp, #80]",
                "str x9, [sp, #16]",
                "bl {imp}",
                "add sp, sp, #32",
                "ldr x18, [sp, #16]",
                "ldp x29, x30, [sp], #32",
                "ret",
                imp = sym $imp,
            )
        }
    };
}

widefn! { 1; fn io_build_device_io_control_request(code: u32, dev: usize, inp: usize, inlen: u32, out: usize, outlen: u32, internal: u8, ev: usize, iosb: usize) -> usize {
    current().build_ioctl_request(code, dev, inp, inlen, out, outlen, internal, ev, iosb)
} }

widefn! { 3; fn zw_create_file(out: *mut usize, access: u32, oa: *const rvblk_abi::ObjectAttributes, iosb: *mut usize, alloc: usize, attrs: u32, share: u32, disposition: u32, options: u32, ea: usize, ea_len: u32) -> i32 {
    current().create_file(out, access, oa, iosb, alloc, attrs, share, disposition, options, ea, ea_len)
} }

widefn! { 1; fn zw_read_file(h: usize, event: usize, apc: usize, apc_ctx: usize, iosb: *mut usize, buf: *mut u8, len: u32, offset: *const i64, key: usize) -> i32 {
    let _ = apc_ctx;
    current().read_write_file(false, h, event, apc, iosb, buf, len, offset, key)
} }

widefn! { 1; fn zw_write_file(h: usize, event: usize, apc: usize, apc_ctx: usize, iosb: *mut usize, buf: *mut u8, len: u32, offset: *const i64, key: usize) -> i32 {
    let _ = apc_ctx;
    current().read_write_file(true, h, event, apc, iosb, buf, len, offset, key)
} }

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
sysfn! {
    fn iof_call_driver(dev: usize, irp: usize) -> i32 {
        current().call_driver(dev, irp)
    }
    fn obf_dereference_object(obj: usize) -> isize {
        current().check_irql("ObfDereferenceObject", DISPATCH_LEVEL);
        current().dereference(obj)
    }
    fn obf_reference_object(obj: usize) -> isize {
        let k = current();
        k.check_irql("ObfReferenceObject", DISPATCH_LEVEL);
        k.reference("ObfReferenceObject", obj);
        1
    }
}

// Fastcall on x86 (first two arguments in ECX, EDX).
#[cfg(target_arch = "x86")]
extern "fastcall" fn iof_call_driver(dev: usize, irp: usize) -> i32 {
    crate::emu::stack::realigned(|| current().call_driver(dev, irp))
}

#[cfg(target_arch = "x86")]
extern "fastcall" fn obf_dereference_object(obj: usize) -> isize {
    crate::emu::stack::realigned(|| {
        current().check_irql("ObfDereferenceObject", DISPATCH_LEVEL);
        current().dereference(obj)
    })
}

#[cfg(target_arch = "x86")]
extern "fastcall" fn obf_reference_object(obj: usize) -> isize {
    crate::emu::stack::realigned(|| {
        let k = current();
        k.check_irql("ObfReferenceObject", DISPATCH_LEVEL);
        k.reference("ObfReferenceObject", obj);
        1
    })
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
sysfn! {
    fn ke_acquire_spin_lock_raise_to_dpc(lock: *mut usize) -> u8 {
        current().acquire(lock)
    }
    fn ke_release_spin_lock(lock: *mut usize, old: u8) {
        current().release(lock, old)
    }
}

#[cfg(target_arch = "x86")]
extern "fastcall" fn kf_acquire_spin_lock(lock: *mut usize) -> u8 {
    crate::emu::stack::realigned(|| current().acquire(lock))
}

#[cfg(target_arch = "x86")]
extern "fastcall" fn kf_release_spin_lock(lock: *mut usize, old: u8) {
    crate::emu::stack::realigned(|| current().release(lock, old))
}

cdeclfn! {
    fn storport_notification(ty: u32, ext: usize, a1: usize, a2: usize, a3: usize) {
        current().notification("StorPort", ty, ext, [a1, a2, a3])
    }
    fn scsi_port_notification(ty: u32, ext: usize, a1: usize, a2: usize, a3: usize) {
        current().notification("ScsiPort", ty, ext, [a1, a2, a3])
    }
    fn storport_extended_function(code: u32, ext: usize, a1: usize, a2: usize, a3: usize) -> u32 {
        let _ = a3;
        current().extended_function(code, ext, a1, a2)
    }
    fn dbg_print(fmt: *const u8, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize, a6: usize, a7: usize) -> i32 {
        current().dbg_print(fmt, &[a1, a2, a3, a4, a5, a6, a7]);
        STATUS_SUCCESS
    }
    fn k_memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
        // SAFETY: memcpy contract: the driver passes valid, non-overlapping ranges.
        unsafe { std::ptr::copy_nonoverlapping(s, d, n) };
        d
    }
    fn k_memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
        // SAFETY: memmove contract: valid ranges, overlap allowed.
        unsafe { std::ptr::copy(s, d, n) };
        d
    }
    fn k_memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
        // SAFETY: memset contract: `d..d+n` is writable.
        unsafe { std::ptr::write_bytes(d, c as u8, n) };
        d
    }
    fn k_memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: memcmp contract: both ranges are readable.
        let x = unsafe { std::slice::from_raw_parts(a, n) };
        // SAFETY: as above.
        let y = unsafe { std::slice::from_raw_parts(b, n) };
        match x.cmp(y) {
            std::cmp::Ordering::Less => -1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => 1,
        }
    }
}

#[cfg(target_arch = "x86")]
mod x86_helpers {
    // 64-bit arithmetic helpers of the MSVC x86 runtime: both operands on the stack, callee
    // pops them, result in edx:eax (exactly `extern "stdcall" fn(u64, u64) -> u64`).
    pub extern "stdcall" fn aulldiv(a: u64, b: u64) -> u64 {
        a / b
    }
    pub extern "stdcall" fn aullrem(a: u64, b: u64) -> u64 {
        a % b
    }
    pub extern "stdcall" fn alldiv(a: i64, b: i64) -> i64 {
        a.wrapping_div(b)
    }
    pub extern "stdcall" fn allrem(a: i64, b: i64) -> i64 {
        a.wrapping_rem(b)
    }
    pub extern "stdcall" fn allmul(a: u64, b: u64) -> u64 {
        a.wrapping_mul(b)
    }
}

/// Address of the harness implementation of `dll!name` (dll lower-case).
pub fn resolve(dll: &str, name: &str) -> Option<usize> {
    let f: usize = match (dll, name) {
        ("storport.sys", "StorPortInitialize") => storport_initialize as *const () as usize,
        ("storport.sys", "StorPortNotification") => storport_notification as *const () as usize,
        ("storport.sys", "StorPortExtendedFunction") => {
            storport_extended_function as *const () as usize
        }
        ("scsiport.sys", "ScsiPortInitialize") => scsi_port_initialize as *const () as usize,
        ("scsiport.sys", "ScsiPortNotification") => scsi_port_notification as *const () as usize,
        ("ntoskrnl.exe", "RtlGetVersion") => rtl_get_version as *const () as usize,
        ("ntoskrnl.exe", "ZwOpenKey") => zw_open_key as *const () as usize,
        ("ntoskrnl.exe", "ZwQueryValueKey") => zw_query_value_key as *const () as usize,
        ("ntoskrnl.exe", "ZwClose") => zw_close as *const () as usize,
        ("ntoskrnl.exe", "MmMapIoSpace") => mm_map_io_space as *const () as usize,
        ("ntoskrnl.exe", "MmUnmapIoSpace") => mm_unmap_io_space as *const () as usize,
        ("ntoskrnl.exe", "MmGetPhysicalMemoryRanges") => {
            mm_get_physical_memory_ranges as *const () as usize
        }
        ("ntoskrnl.exe", "ExAllocatePoolWithTag") => {
            ex_allocate_pool_with_tag as *const () as usize
        }
        ("ntoskrnl.exe", "ExFreePoolWithTag") => ex_free_pool_with_tag as *const () as usize,
        ("ntoskrnl.exe", "ExFreePool") => ex_free_pool as *const () as usize,
        ("ntoskrnl.exe", "DbgPrint") => dbg_print as *const () as usize,
        ("ntoskrnl.exe", "ZwQuerySystemInformation") => {
            zw_query_system_information as *const () as usize
        }
        ("ntoskrnl.exe", "KeInitializeEvent") => ke_initialize_event as *const () as usize,
        ("ntoskrnl.exe", "KeSetEvent") => ke_set_event as *const () as usize,
        ("ntoskrnl.exe", "KeClearEvent") => ke_clear_event as *const () as usize,
        ("ntoskrnl.exe", "KeWaitForSingleObject") => {
            ke_wait_for_single_object as *const () as usize
        }
        ("ntoskrnl.exe", "PsCreateSystemThread") => ps_create_system_thread as *const () as usize,
        ("ntoskrnl.exe", "PsTerminateSystemThread") => {
            ps_terminate_system_thread as *const () as usize
        }
        ("ntoskrnl.exe", "ObReferenceObjectByHandle") => {
            ob_reference_object_by_handle as *const () as usize
        }
        ("ntoskrnl.exe", "ObfDereferenceObject") => obf_dereference_object as *const () as usize,
        ("ntoskrnl.exe", "ObfReferenceObject") => obf_reference_object as *const () as usize,
        ("ntoskrnl.exe", "IoRegisterPlugPlayNotification") => {
            io_register_plug_play_notification as *const () as usize
        }
        ("ntoskrnl.exe", "IoUnregisterPlugPlayNotification") => {
            io_unregister_plug_play_notification as *const () as usize
        }
        ("ntoskrnl.exe", "IoGetDeviceObjectPointer") => {
            io_get_device_object_pointer as *const () as usize
        }
        ("ntoskrnl.exe", "IoBuildSynchronousFsdRequest") => {
            io_build_synchronous_fsd_request as *const () as usize
        }
        ("ntoskrnl.exe", "IoBuildDeviceIoControlRequest") => {
            io_build_device_io_control_request as *const () as usize
        }
        ("ntoskrnl.exe", "IofCallDriver") => iof_call_driver as *const () as usize,
        ("ntoskrnl.exe", "IoBuildAsynchronousFsdRequest") => {
            io_build_asynchronous_fsd_request as *const () as usize
        }
        ("ntoskrnl.exe", "IoFreeIrp") => io_free_irp as *const () as usize,
        ("ntoskrnl.exe", "IoFreeMdl") => io_free_mdl as *const () as usize,
        ("ntoskrnl.exe", "MmUnlockPages") => mm_unlock_pages as *const () as usize,
        ("ntoskrnl.exe", "IoGetRemainingStackSize") => {
            io_get_remaining_stack_size as *const () as usize
        }
        ("ntoskrnl.exe", "IoCancelIrp") => io_cancel_irp as *const () as usize,
        // A HAL export on every architecture (`docs/harness-disks.md` §1).
        ("hal.dll", "KeQueryPerformanceCounter") => {
            ke_query_performance_counter as *const () as usize
        }
        ("ntoskrnl.exe", "MmGetSystemRoutineAddress") => {
            mm_get_system_routine_address as *const () as usize
        }
        ("ntoskrnl.exe", "ExGetFirmwareEnvironmentVariable") => {
            ex_get_firmware_environment_variable as *const () as usize
        }
        ("ntoskrnl.exe", "SeCreateClientSecurity") => {
            se_create_client_security as *const () as usize
        }
        ("ntoskrnl.exe", "SeTokenIsAdmin") => se_token_is_admin as *const () as usize,
        ("ntoskrnl.exe", "SeImpersonateClientEx") => se_impersonate_client_ex as *const () as usize,
        ("ntoskrnl.exe", "PsRevertToSelf") => ps_revert_to_self as *const () as usize,
        ("ntoskrnl.exe", "ZwCreateFile") => zw_create_file as *const () as usize,
        ("ntoskrnl.exe", "ZwQueryInformationFile") => {
            zw_query_information_file as *const () as usize
        }
        ("ntoskrnl.exe", "ZwReadFile") => zw_read_file as *const () as usize,
        ("ntoskrnl.exe", "ZwWriteFile") => zw_write_file as *const () as usize,
        ("ntoskrnl.exe", "MmAllocatePagesForMdlEx") => {
            mm_allocate_pages_for_mdl_ex as *const () as usize
        }
        ("ntoskrnl.exe", "MmMapLockedPagesSpecifyCache") => {
            mm_map_locked_pages_specify_cache as *const () as usize
        }
        ("ntoskrnl.exe", "MmUnmapLockedPages") => mm_unmap_locked_pages as *const () as usize,
        ("ntoskrnl.exe", "MmFreePagesFromMdl") => mm_free_pages_from_mdl as *const () as usize,
        ("ntoskrnl.exe", "memcpy") => k_memcpy as *const () as usize,
        ("ntoskrnl.exe", "memmove") => k_memmove as *const () as usize,
        ("ntoskrnl.exe", "memset") => k_memset as *const () as usize,
        ("ntoskrnl.exe", "memcmp") => k_memcmp as *const () as usize,
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        ("ntoskrnl.exe", "KeGetCurrentIrql") => ke_get_current_irql as *const () as usize,
        ("ntoskrnl.exe", "KeAreAllApcsDisabled") => ke_are_all_apcs_disabled as *const () as usize,
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        ("ntoskrnl.exe", "KeAcquireSpinLockRaiseToDpc") => {
            ke_acquire_spin_lock_raise_to_dpc as *const () as usize
        }
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        ("ntoskrnl.exe", "KeReleaseSpinLock") => ke_release_spin_lock as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("hal.dll", "KeGetCurrentIrql") => ke_get_current_irql as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("hal.dll", "KfAcquireSpinLock") => kf_acquire_spin_lock as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("hal.dll", "KfReleaseSpinLock") => kf_release_spin_lock as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("ntoskrnl.exe", "_aulldiv") => x86_helpers::aulldiv as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("ntoskrnl.exe", "_aullrem") => x86_helpers::aullrem as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("ntoskrnl.exe", "_alldiv") => x86_helpers::alldiv as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("ntoskrnl.exe", "_allrem") => x86_helpers::allrem as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("ntoskrnl.exe", "_allmul") => x86_helpers::allmul as *const () as usize,
        _ => return None,
    };
    Some(f)
}
