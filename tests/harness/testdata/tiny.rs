//! A tiny kernel-mode PE used to test the harness loader without the real driver: it calls
//! DbgPrint through the cdecl/win64 variadic ABI, touches relocated data and returns a status.
#![no_std]
#![no_main]
use core::ffi::c_void;

#[cfg_attr(target_arch = "x86", link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim", import_name_type = "undecorated"))]
#[cfg_attr(not(target_arch = "x86"), link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim"))]
extern "C" {
    fn DbgPrint(fmt: *const u8, ...) -> i32;
}

#[cfg(missing)]
#[cfg_attr(target_arch = "x86", link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim", import_name_type = "undecorated"))]
#[cfg_attr(not(target_arch = "x86"), link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim"))]
extern "system" {
    fn IoCreateDevice(a: *mut c_void) -> i32;
}

static GREETING: &[u8] = b"rvblk: tiny driver entry\0";
static mut TABLE: [&[u8]; 2] = [b"one\0", b"two\0"];

#[no_mangle]
pub extern "system" fn DriverEntry(_d: *mut c_void, _r: *mut c_void) -> i32 {
    // SAFETY: test fixture; single-threaded.
    unsafe {
        // Windows arm64 reserves x18 (KPCR/TEB); the harness must catch a driver writing it.
        #[cfg(all(clobber_x18, target_arch = "aarch64"))]
        core::arch::asm!("mov x18, #0x1234");
        DbgPrint(b"%s\0".as_ptr(), GREETING.as_ptr());
        let t = &*core::ptr::addr_of!(TABLE);
        DbgPrint(b"rvblk: n=%d x=%x s=%s\0".as_ptr(), 42i32, 0xbeefu32, t[1].as_ptr());
        // Seven variadic arguments: all of x1-x7 on arm64 (docs/arm64.md §3).
        DbgPrint(
            b"rvblk: seven %d %d %d %d %d %d %s\0".as_ptr(),
            1i32,
            2i32,
            3i32,
            4i32,
            5i32,
            6i32,
            t[0].as_ptr(),
        );
        #[cfg(missing)]
        IoCreateDevice(core::ptr::null_mut());
    }
    0xC000_0001_u32 as i32
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
