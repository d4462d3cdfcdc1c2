//! A minimal StorPort virtual miniport used to test the harness end to end without the real
//! driver: one 8 MiB disk at a fixed physical address (the g4d_both scenario's HDD), served
//! through MmMapIoSpace. `--cfg double_complete` / `--cfg overread` /
//! `--cfg map_buffers_mismatch` build broken variants.
//! `--cfg scsiport` builds it as a legacy XP SCSIPORT miniport instead; with it,
//! `no_next_request`, `config_past_length` and `again` build broken variants.
//! `--cfg async_disk` (StorPort) adds target 1, a 1 MiB disk served from the harness's
//! emulated disk 0 by a system thread through IRPs, exposed on the disk's arrival with
//! BusChangeDetected, its SRBs completed from the thread (the asynchronous path of issue 11);
//! with it, `no_unregister`, `leak_file`, `lose_srb`, `late_srb`, `complete_twice` and
//! `no_thread_wait` build broken variants.
//! `--cfg scsiport --cfg timer_complete` completes READ/WRITE from HwTimer
//! (RequestTimerCall), not in HwStartIo.
//! `--cfg runtime` (StorPort) answers the control interface's MOUNT FILE (`docs/control.md`)
//! with the runtime-mount imports: the requester's thread referenced in HwStartIo, then in a
//! system thread SeCreateClientSecurity / SeTokenIsAdmin / SeImpersonateClientEx, ZwCreateFile,
//! PsRevertToSelf, ZwQueryInformationFile, an MDL allocated, mapped, read into with ZwReadFile,
//! unmapped and freed; the file becomes target 1 (read-only disk, READs through ZwReadFile)
//! with BusChangeDetected. Broken variants: `leak_handle`, `leak_mdl`, `no_revert`,
//! `share_delete`.
#![no_std]
#![no_main]
#![allow(clippy::missing_safety_doc)]
use core::ffi::c_void;

macro_rules! imports {
    ($dll:literal, $abi:literal, { $($t:tt)* }) => {
        #[cfg_attr(target_arch = "x86", link(name = $dll, kind = "raw-dylib", modifiers = "+verbatim", import_name_type = "undecorated"))]
        #[cfg_attr(not(target_arch = "x86"), link(name = $dll, kind = "raw-dylib", modifiers = "+verbatim"))]
        extern $abi { $($t)* }
    };
}
imports!("storport.sys", "system", {
    fn StorPortInitialize(a: *mut c_void, b: *mut c_void, c: *mut u8, d: *mut c_void) -> u32;
});
imports!("storport.sys", "C", {
    fn StorPortNotification(ty: u32, ext: *mut c_void, ...);
    fn StorPortExtendedFunction(code: u32, ext: *mut c_void, ...) -> u32;
});
#[cfg(scsiport)]
imports!("scsiport.sys", "system", {
    fn ScsiPortInitialize(a: *mut c_void, b: *mut c_void, c: *mut u8, d: *mut c_void) -> u32;
});
#[cfg(scsiport)]
imports!("scsiport.sys", "C", {
    fn ScsiPortNotification(ty: u32, ext: *mut c_void, ...);
});
imports!("ntoskrnl.exe", "system", {
    fn MmMapIoSpace(pa: i64, size: usize, cache: u32) -> *mut u8;
    fn MmUnmapIoSpace(va: *mut u8, size: usize);
});
imports!("ntoskrnl.exe", "C", {
    fn DbgPrint(fmt: *const u8, ...) -> u32;
});
#[cfg(not(target_arch = "x86"))]
imports!("ntoskrnl.exe", "C", {
    fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8;
    fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8;
});

// On x86 the compiler's own memcpy/memset calls name `_memcpy`/`_memset`, which a raw-dylib
// import does not provide: the mock carries its own (byte loops, volatile so they are not
// turned back into calls to themselves).
#[cfg(target_arch = "x86")]
#[no_mangle]
pub unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    for i in 0..n {
        core::ptr::write_volatile(d.add(i), core::ptr::read_volatile(s.add(i)));
    }
    d
}
#[cfg(target_arch = "x86")]
#[no_mangle]
pub unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        core::ptr::write_volatile(d.add(i), c as u8);
    }
    d
}

#[cfg(any(async_disk, runtime))]
imports!("ntoskrnl.exe", "system", {
    fn KeInitializeEvent(e: *mut u8, ty: u32, state: u8);
    fn KeSetEvent(e: *mut u8, incr: i32, wait: u8) -> i32;
    fn KeWaitForSingleObject(o: *mut u8, reason: u32, mode: u8, alertable: u8, t: *const i64) -> i32;
    fn PsCreateSystemThread(h: *mut usize, access: u32, oa: *mut c_void, p: usize, cid: *mut c_void, start: unsafe extern "system" fn(*mut u8), ctx: *mut u8) -> i32;
    fn PsTerminateSystemThread(st: i32) -> i32;
    fn ObReferenceObjectByHandle(h: usize, access: u32, ty: *mut c_void, mode: u8, o: *mut *mut u8, info: *mut c_void) -> i32;
    fn ZwClose(h: usize) -> i32;
    fn IoRegisterPlugPlayNotification(cat: u32, flags: u32, data: *const u8, drv: *mut c_void, cb: unsafe extern "system" fn(*const u8, *mut u8) -> i32, ctx: *mut u8, entry: *mut *mut u8) -> i32;
    fn IoUnregisterPlugPlayNotification(entry: *mut u8) -> i32;
    fn IoGetDeviceObjectPointer(name: *const u8, access: u32, file: *mut *mut u8, dev: *mut *mut u8) -> i32;
    fn IoBuildSynchronousFsdRequest(major: u32, dev: *mut u8, buf: *mut u8, len: u32, off: *const i64, ev: *mut u8, iosb: *mut usize) -> *mut u8;
    fn IoBuildDeviceIoControlRequest(code: u32, dev: *mut u8, i: *const u8, il: u32, o: *mut u8, ol: u32, internal: u8, ev: *mut u8, iosb: *mut usize) -> *mut u8;
});
// Fastcall on x86 (ECX, EDX), the plain convention elsewhere.
#[cfg(all(any(async_disk, runtime), target_arch = "x86"))]
imports!("ntoskrnl.exe", "fastcall", {
    fn ObfDereferenceObject(o: *mut u8) -> isize;
    fn ObfReferenceObject(o: *mut u8) -> isize;
    fn IofCallDriver(dev: *mut u8, irp: *mut u8) -> i32;
});
#[cfg(all(any(async_disk, runtime), not(target_arch = "x86")))]
imports!("ntoskrnl.exe", "system", {
    fn ObfDereferenceObject(o: *mut u8) -> isize;
    fn ObfReferenceObject(o: *mut u8) -> isize;
    fn IofCallDriver(dev: *mut u8, irp: *mut u8) -> i32;
});
#[cfg(runtime)]
imports!("ntoskrnl.exe", "system", {
    fn SeCreateClientSecurity(t: *mut u8, qos: *const u8, remote: u8, ctx: *mut u8) -> i32;
    fn SeTokenIsAdmin(t: *mut u8) -> u8;
    fn SeImpersonateClientEx(ctx: *mut u8, server: *mut u8) -> i32;
    fn PsRevertToSelf();
    fn ZwCreateFile(h: *mut usize, access: u32, oa: *const usize, iosb: *mut usize, alloc: *const i64, attrs: u32, share: u32, disp: u32, options: u32, ea: *const u8, ealen: u32) -> i32;
    fn ZwQueryInformationFile(h: usize, iosb: *mut usize, buf: *mut u8, len: u32, class: u32) -> i32;
    fn ZwReadFile(h: usize, ev: usize, apc: usize, apcctx: usize, iosb: *mut usize, buf: *mut u8, len: u32, off: *const i64, key: *const u32) -> i32;
    fn MmAllocatePagesForMdlEx(low: i64, high: i64, skip: i64, bytes: usize, cache: u32, flags: u32) -> *mut u8;
    fn MmMapLockedPagesSpecifyCache(mdl: *mut u8, mode: u8, cache: u32, base: *mut u8, bugcheck: u32, prio: u32) -> *mut u8;
    fn MmUnmapLockedPages(va: *mut u8, mdl: *mut u8);
    fn MmFreePagesFromMdl(mdl: *mut u8);
    fn ExFreePool(p: *mut u8);
});

const BASE: i64 = 0x0F3C_E000;
const LEN: usize = 8 << 20;
const BLOCKS: u32 = (LEN / 512) as u32;

#[cfg(target_pointer_width = "64")]
mod off {
    pub const SIZE: u32 = 208;
    pub const VSIZE: u32 = 176;
    pub const XP_SIZE: u32 = 128;
    pub const MAP_BUFFERS: usize = 88;
    pub const ADAPTER_CONTROL: usize = 120;
    pub const FREE: usize = 136;
    pub const FEATURES: usize = 184;
    pub const C_BUSES: usize = 72;
    pub const C_SG: usize = 81;
    pub const C_MASTER: usize = 82;
    pub const C_MAPBUF: usize = 89;
    pub const C_TARGETS: usize = 97;
    pub const C_LUNS: usize = 146;
    pub const C_SYNC: usize = 148;
    pub const C_VIRTUAL: usize = 196;
    pub const S_DATA: usize = 24;
    pub const S_SENSE: usize = 32;
    pub const S_ORIG: usize = 48;
    pub const S_CDB: usize = 72;
    pub const IRP_MODE: usize = 0x40;
    pub const IRP_THREAD: usize = 0x98;
    pub const CTX_TOKEN: usize = 16;
    pub const MDL_BYTES: usize = 40;
}
#[cfg(target_pointer_width = "32")]
mod off {
    pub const SIZE: u32 = 128;
    pub const VSIZE: u32 = 104;
    pub const XP_SIZE: u32 = 80;
    pub const MAP_BUFFERS: usize = 56;
    pub const ADAPTER_CONTROL: usize = 76;
    pub const FREE: usize = 84;
    pub const FEATURES: usize = 108;
    pub const C_BUSES: usize = 64;
    pub const C_SG: usize = 73;
    pub const C_MASTER: usize = 74;
    pub const C_MAPBUF: usize = 81;
    pub const C_TARGETS: usize = 89;
    pub const C_LUNS: usize = 138;
    pub const C_SYNC: usize = 140;
    pub const C_VIRTUAL: usize = 180;
    pub const S_DATA: usize = 24;
    pub const S_SENSE: usize = 28;
    pub const S_ORIG: usize = 36;
    pub const S_CDB: usize = 48;
    pub const IRP_MODE: usize = 0x20;
    pub const IRP_THREAD: usize = 0x50;
    pub const CTX_TOKEN: usize = 12;
    pub const MDL_BYTES: usize = 20;
}
const P: usize = core::mem::size_of::<usize>();

unsafe fn w<T>(p: *mut u8, o: usize, v: T) {
    (p.add(o) as *mut T).write_unaligned(v)
}
unsafe fn r<T: Copy>(p: *const u8, o: usize) -> T {
    (p.add(o) as *const T).read_unaligned()
}

/// The asynchronous disk of `--cfg async_disk`: state shared by HwStartIo, the PnP callback
/// and the worker thread.
#[cfg(async_disk)]
mod adisk {
    use super::*;
    use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

    pub const DISK_BLOCKS: u32 = 2048;
    pub static DRV: AtomicUsize = AtomicUsize::new(0);
    // A KEVENT: 16 bytes on x86, 24 on 64-bit.
    pub static mut WORK: [u64; 3] = [0; 3];
    pub static THREAD: AtomicUsize = AtomicUsize::new(0);
    pub static ENTRY: AtomicUsize = AtomicUsize::new(0);
    pub static FILE: AtomicUsize = AtomicUsize::new(0);
    pub static DEV: AtomicUsize = AtomicUsize::new(0);
    pub static STOP: AtomicBool = AtomicBool::new(false);
    pub static ARRIVED: AtomicBool = AtomicBool::new(false);
    pub static REMOVED: AtomicBool = AtomicBool::new(false);
    pub static OPEN: AtomicBool = AtomicBool::new(false);
    pub static QUEUE: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];
    /// `--cfg late_srb`: the first READ, held back until the worker stops.
    pub static HELD: AtomicUsize = AtomicUsize::new(0);
    pub static HELD_ONCE: AtomicBool = AtomicBool::new(false);
    /// `--cfg complete_twice`: whether a READ was already completed twice.
    pub static TWICE_ONCE: AtomicBool = AtomicBool::new(false);
    pub static mut NAME: [u16; 256] = [0; 256];
    pub static mut NAME_US: [usize; 2] = [0; 2];
    const GUID_DISK: [u8; 16] = [0x07, 0x63, 0xf5, 0x53, 0xbf, 0xb6, 0xd0, 0x11, 0x94, 0xf2, 0x00, 0xa0, 0xc9, 0x1e, 0xfb, 0x8b];

    pub fn work() -> *mut u8 {
        core::ptr::addr_of_mut!(WORK) as *mut u8
    }

    pub unsafe fn start(ext: *mut u8) {
        KeInitializeEvent(work(), 1, 0);
        let mut h = 0usize;
        if PsCreateSystemThread(&mut h, 0x1F_FFFF, core::ptr::null_mut(), 0, core::ptr::null_mut(), worker, ext) != 0 {
            return;
        }
        let mut t: *mut u8 = core::ptr::null_mut();
        ObReferenceObjectByHandle(h, 0x1F_FFFF, core::ptr::null_mut(), 0, &mut t, core::ptr::null_mut());
        THREAD.store(t as usize, SeqCst);
        ZwClose(h);
        let mut e: *mut u8 = core::ptr::null_mut();
        IoRegisterPlugPlayNotification(2, 1, GUID_DISK.as_ptr(), DRV.load(SeqCst) as *mut c_void, callback, ext, &mut e);
        ENTRY.store(e as usize, SeqCst);
    }

    pub unsafe fn stop() {
        STOP.store(true, SeqCst);
        KeSetEvent(work(), 0, 0);
        let t = THREAD.swap(0, SeqCst) as *mut u8;
        if !t.is_null() {
            // `--cfg no_thread_wait`: returns without waiting for the worker.
            #[cfg(not(no_thread_wait))]
            KeWaitForSingleObject(t, 0, 0, 0, core::ptr::null());
            ObfDereferenceObject(t);
        }
        #[cfg(not(no_unregister))]
        IoUnregisterPlugPlayNotification(ENTRY.swap(0, SeqCst) as *mut u8);
        let f = FILE.swap(0, SeqCst) as *mut u8;
        #[cfg(not(leak_file))]
        if !f.is_null() {
            ObfDereferenceObject(f);
        }
    }

    unsafe extern "system" fn callback(n: *const u8, _ctx: *mut u8) -> i32 {
        let arrival = *n.add(4) == 0x04;
        if arrival && !ARRIVED.load(SeqCst) {
            // SymbolicLinkName: @36 on x86, @40 on 64-bit; UNICODE_STRING.Buffer at P.
            let us = r::<usize>(n, if P == 8 { 40 } else { 36 }) as *const u8;
            let len = (r::<u16>(us, 0) as usize / 2).min(255);
            let buf = r::<usize>(us, P) as *const u16;
            let name = core::ptr::addr_of_mut!(NAME) as *mut u16;
            core::ptr::copy_nonoverlapping(buf, name, len);
            let nu = core::ptr::addr_of_mut!(NAME_US) as *mut u8;
            w(nu, 0, (len * 2) as u16);
            w(nu, 2, (len * 2) as u16);
            w(nu, P, name as usize);
            ARRIVED.store(true, SeqCst);
        } else if !arrival {
            REMOVED.store(true, SeqCst);
        }
        KeSetEvent(work(), 0, 0);
        0
    }

    /// One synchronous IRP: (status, information).
    unsafe fn irp(build: impl FnOnce(*mut u8, *mut usize) -> *mut u8) -> (i32, usize) {
        let mut ev = [0u64; 3];
        let mut iosb = [0usize; 2];
        let e = ev.as_mut_ptr() as *mut u8;
        KeInitializeEvent(e, 0, 0);
        let i = build(e, iosb.as_mut_ptr());
        if i.is_null() {
            return (-1, 0);
        }
        let st = IofCallDriver(DEV.load(SeqCst) as *mut u8, i);
        if st == 0x103 {
            KeWaitForSingleObject(e, 0, 0, 0, core::ptr::null());
            (iosb[0] as u32 as i32, iosb[1])
        } else {
            (st, iosb[1])
        }
    }

    unsafe fn serve(ext: *mut u8, srb: *mut u8) {
        let c = srb.add(off::S_CDB);
        let op: u8 = r(c, 0);
        let (lba, cnt) = match op {
            0x28 | 0x2A => (u32::from_be_bytes(r(c, 2)) as u64, u16::from_be_bytes(r(c, 7)) as u64),
            _ => (u64::from_be_bytes(r(c, 2)), u32::from_be_bytes(r(c, 10)) as u64),
        };
        if lba.checked_add(cnt).is_none_or(|e| e > DISK_BLOCKS as u64) {
            sense(srb, 5, 0x21);
        } else if !OPEN.load(SeqCst) || REMOVED.load(SeqCst) {
            sense(srb, 2, 0x3a);
        } else {
            let buf = system_address(ext, srb);
            let len = (cnt * 512) as u32;
            let offset = (lba * 512) as i64;
            let major = if op == 0x2A || op == 0x8A { 4 } else { 3 };
            let (st, info) = irp(|e, iosb| IoBuildSynchronousFsdRequest(major, DEV.load(SeqCst) as *mut u8, buf, len, &offset, e, iosb));
            if st == 0 && info == len as usize {
                w(srb, 16, len);
                w(srb, 3, 1u8);
            } else {
                sense(srb, 2, 0x3a);
            }
        }
        StorPortNotification(0, ext as *mut c_void, srb);
        // `--cfg complete_twice`: the first READ is completed twice from this thread.
        if cfg!(complete_twice) && op == 0x28 && !TWICE_ONCE.swap(true, SeqCst) {
            StorPortNotification(0, ext as *mut c_void, srb);
        }
    }

    unsafe extern "system" fn worker(ext: *mut u8) {
        let timeout: i64 = -1_000_000;
        loop {
            KeWaitForSingleObject(work(), 0, 0, 0, &timeout);
            if ARRIVED.load(SeqCst) && !OPEN.load(SeqCst) && !REMOVED.load(SeqCst) {
                let (mut f, mut d): (*mut u8, *mut u8) = (core::ptr::null_mut(), core::ptr::null_mut());
                let name = core::ptr::addr_of!(NAME_US) as *const u8;
                if IoGetDeviceObjectPointer(name, 3, &mut f, &mut d) == 0 {
                    FILE.store(f as usize, SeqCst);
                    DEV.store(d as usize, SeqCst);
                    let mut g = [0u8; 40];
                    let (st, _) = irp(|e, iosb| IoBuildDeviceIoControlRequest(0x700A0, d, core::ptr::null(), 0, g.as_mut_ptr(), 40, 0, e, iosb));
                    if st == 0 && u64::from_le_bytes(g[24..32].try_into().unwrap()) == DISK_BLOCKS as u64 * 512 {
                        OPEN.store(true, SeqCst);
                        DbgPrint(b"%s\0".as_ptr(), b"rvblk: lun 1: kind=disk block_size=512 blocks=2048 read_only=0 source=grub4dos phys_base=0x0 length=0x100000\0".as_ptr());
                        StorPortNotification(7, ext as *mut c_void, 0usize);
                    }
                }
            }
            for q in QUEUE.iter() {
                let srb = q.swap(0, SeqCst) as *mut u8;
                // `--cfg lose_srb`: a READ is dropped and never completed (a hang).
                if srb.is_null() {
                    continue;
                }
                let read = r::<u8>(srb.add(off::S_CDB), 0) == 0x28;
                // `--cfg late_srb`: the first READ is held back past the port's hang limit.
                if cfg!(late_srb) && read && !HELD_ONCE.swap(true, SeqCst) {
                    HELD.store(srb as usize, SeqCst);
                } else if !(cfg!(lose_srb) && read) {
                    serve(ext, srb);
                }
            }
            if STOP.load(SeqCst) {
                // `--cfg late_srb`: the held READ is completed (aborted) only now, long after
                // the port gave up on it.
                let held = HELD.swap(0, SeqCst) as *mut u8;
                if !held.is_null() {
                    w(held, 3, 2u8);
                    StorPortNotification(0, ext as *mut c_void, held);
                }
                break;
            }
        }
        // `--cfg no_thread_wait`: the worker takes 300 ms to wind down.
        #[cfg(no_thread_wait)]
        {
            let mut ev = [0u64; 3];
            let t: i64 = -3_000_000;
            KeInitializeEvent(ev.as_mut_ptr() as *mut u8, 0, 0);
            KeWaitForSingleObject(ev.as_mut_ptr() as *mut u8, 0, 0, 0, &t);
        }
        PsTerminateSystemThread(0);
    }

    /// HwStartIo for target 1: INQUIRY etc. answered at once (no device until the disk is
    /// open), READ/WRITE queued for the worker. None: not handled here.
    pub unsafe fn start_io(ext: *mut u8, srb: *mut u8) -> Option<u8> {
        let _ = ext;
        let (tgt, lun): (u8, u8) = (r(srb, 6), r(srb, 7));
        if tgt != 1 || lun != 0 || r::<u8>(srb, 2) != 0 {
            return None;
        }
        if !OPEN.load(SeqCst) {
            w(srb, 3, 8u8);
            StorPortNotification(0, ext as *mut c_void, srb);
            return Some(1);
        }
        let op: u8 = r(srb.add(off::S_CDB), 0);
        if matches!(op, 0x28 | 0x2A | 0x88 | 0x8A) {
            for q in QUEUE.iter() {
                if q.compare_exchange(0, srb as usize, SeqCst, SeqCst).is_ok() {
                    KeSetEvent(work(), 0, 0);
                    return Some(1);
                }
            }
            w(srb, 3, 5u8);
            StorPortNotification(0, ext as *mut c_void, srb);
            return Some(1);
        }
        None
    }
}


/// The runtime-mount mock of `--cfg runtime`: state shared by HwStartIo and the worker.
#[cfg(runtime)]
mod rt {
    use super::*;
    use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};

    // A KEVENT: 16 bytes on x86, 24 on 64-bit.
    pub static mut WORK: [u64; 3] = [0; 3];
    pub static THREAD: AtomicUsize = AtomicUsize::new(0);
    pub static STOP: AtomicBool = AtomicBool::new(false);
    /// The MOUNT SRB the worker serves, its requester's thread and RequestorMode.
    pub static REQ: AtomicUsize = AtomicUsize::new(0);
    pub static THR: AtomicUsize = AtomicUsize::new(0);
    pub static MODE: AtomicUsize = AtomicUsize::new(0);
    pub static HANDLE: AtomicUsize = AtomicUsize::new(0);
    pub static BLOCKS: AtomicU64 = AtomicU64::new(0);
    pub static MOUNTED: AtomicBool = AtomicBool::new(false);
    pub static QUEUE: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];
    pub static mut NAME: [u16; 1100] = [0; 1100];

    fn work() -> *mut u8 {
        core::ptr::addr_of_mut!(WORK) as *mut u8
    }

    pub unsafe fn start(ext: *mut u8) {
        KeInitializeEvent(work(), 1, 0);
        let mut h = 0usize;
        if PsCreateSystemThread(&mut h, 0x1F_FFFF, core::ptr::null_mut(), 0, core::ptr::null_mut(), worker, ext) != 0 {
            return;
        }
        let mut t: *mut u8 = core::ptr::null_mut();
        ObReferenceObjectByHandle(h, 0x1F_FFFF, core::ptr::null_mut(), 0, &mut t, core::ptr::null_mut());
        THREAD.store(t as usize, SeqCst);
        ZwClose(h);
    }

    pub unsafe fn stop() {
        STOP.store(true, SeqCst);
        KeSetEvent(work(), 0, 0);
        let t = THREAD.swap(0, SeqCst) as *mut u8;
        if !t.is_null() {
            KeWaitForSingleObject(t, 0, 0, 0, core::ptr::null());
            ObfDereferenceObject(t);
        }
        let h = HANDLE.swap(0, SeqCst);
        // `--cfg leak_handle`: the file handle is never closed.
        if h != 0 && !cfg!(leak_handle) {
            ZwClose(h);
        }
    }

    /// Completes a control SRB with `code` (0: success with `len` payload bytes).
    unsafe fn answer(ext: *mut u8, srb: *mut u8, code: u32, len: u32) {
        let b: *mut u8 = r::<usize>(srb, off::S_DATA) as *mut u8;
        w(b, 20, code);
        w(b, 24, len);
        w(srb, 16, 28 + len);
        w(srb, 3, 1u8);
        StorPortNotification(0, ext as *mut c_void, srb);
    }

    unsafe fn mount(ext: *mut u8, srb: *mut u8) {
        let b: *mut u8 = r::<usize>(srb, off::S_DATA) as *mut u8;
        let thr = THR.swap(0, SeqCst) as *mut u8;
        let user = MODE.load(SeqCst) == 1;
        // SECURITY_CLIENT_CONTEXT: 72 bytes on 64-bit, 60 on x86.
        let mut ctx = [0usize; 18];
        let ctxp = ctx.as_mut_ptr() as *mut u8;
        let mut token: *mut u8 = core::ptr::null_mut();
        if user {
            let mut qos = [0u8; 12];
            qos[0] = 12;
            qos[4] = 2;
            if SeCreateClientSecurity(thr, qos.as_ptr(), 0, ctxp) != 0 {
                ObfDereferenceObject(thr);
                return answer(ext, srb, 0x302, 0);
            }
            token = r::<usize>(ctxp, off::CTX_TOKEN) as *mut u8;
            if SeTokenIsAdmin(token) == 0 {
                ObfDereferenceObject(token);
                ObfDereferenceObject(thr);
                return answer(ext, srb, 0x302, 0);
            }
            SeImpersonateClientEx(ctxp, core::ptr::null_mut());
        }
        let units = (r::<u16>(b, 34) as usize / 2).min(1100);
        let name = core::ptr::addr_of_mut!(NAME) as *mut u16;
        core::ptr::copy_nonoverlapping(b.add(36) as *const u16, name, units);
        let us: [usize; 2] = [(units * 2) as usize | ((units * 2) << 16), name as usize];
        let oa: [usize; 6] = [6 * P, 0, us.as_ptr() as usize, 0x240 | if user { 0x400 } else { 0 }, 0, 0];
        let mut iosb = [0usize; 2];
        let mut h = 0usize;
        let share = if cfg!(share_delete) { 5 } else { 1 };
        let st = ZwCreateFile(&mut h, 0x8010_0000, oa.as_ptr(), iosb.as_mut_ptr(), core::ptr::null(), 0, share, 1, 0x60, core::ptr::null(), 0);
        // `--cfg no_revert`: the impersonation is never reverted.
        if user && !cfg!(no_revert) {
            PsRevertToSelf();
        }
        if !token.is_null() {
            ObfDereferenceObject(token);
        }
        ObfDereferenceObject(thr);
        if st != 0 {
            let code = match st as u32 {
                0xC000_0034 | 0xC000_003A => 0x304,
                0xC000_0022 => 0x303,
                0xC000_0043 => 0x306,
                _ => 0x308,
            };
            return answer(ext, srb, code, 0);
        }
        let mut std_info = [0u8; 24];
        ZwQueryInformationFile(h, iosb.as_mut_ptr(), std_info.as_mut_ptr(), 24, 5);
        let blocks = u64::from_le_bytes(std_info[8..16].try_into().unwrap()) / 512;
        if blocks == 0 {
            ZwClose(h);
            return answer(ext, srb, 0x305, 0);
        }
        // A 64 KiB MDL: allocated, its ByteCount checked, mapped, read into, unmapped, freed.
        let mdl = MmAllocatePagesForMdlEx(0, -1, 0, 65536, 1, 4);
        if mdl.is_null() || r::<u32>(mdl, off::MDL_BYTES) != 65536 {
            ZwClose(h);
            return answer(ext, srb, 0x307, 0);
        }
        let va = MmMapLockedPagesSpecifyCache(mdl, 0, 1, core::ptr::null_mut(), 0, 16 | 0x4000_0000);
        let zero: i64 = 0;
        ZwReadFile(h, 0, 0, 0, iosb.as_mut_ptr(), va, 512, &zero, core::ptr::null());
        // `--cfg leak_mdl`: the MDL stays mapped and is never freed.
        if !cfg!(leak_mdl) {
            MmUnmapLockedPages(va, mdl);
            MmFreePagesFromMdl(mdl);
            ExFreePool(mdl);
        }
        HANDLE.store(h, SeqCst);
        BLOCKS.store(blocks, SeqCst);
        MOUNTED.store(true, SeqCst);
        // The reply: version 1, then the LUN entry of target 1 (disk, file, read-only).
        let p = b.add(28);
        w(p, 0, 1u16);
        w(p, 2, 0u16);
        w(p, 4, [1u8, 0, 1, 1]);
        w(p, 8, 512u32);
        w(p, 12, blocks);
        w(p, 20, 0u32);
        answer(ext, srb, 0, 24);
        StorPortNotification(7, ext as *mut c_void, 0usize);
    }

    unsafe fn read(ext: *mut u8, srb: *mut u8) {
        let c = srb.add(off::S_CDB);
        let op: u8 = r(c, 0);
        let (lba, cnt) = match op {
            0x28 => (u32::from_be_bytes(r(c, 2)) as u64, u16::from_be_bytes(r(c, 7)) as u64),
            _ => (u64::from_be_bytes(r(c, 2)), u32::from_be_bytes(r(c, 10)) as u64),
        };
        if lba.checked_add(cnt).is_none_or(|e| e > BLOCKS.load(SeqCst)) {
            sense(srb, 5, 0x21);
        } else {
            let buf = system_address(ext, srb);
            let len = (cnt * 512) as u32;
            let offset = (lba * 512) as i64;
            let mut iosb = [0usize; 2];
            let st = ZwReadFile(HANDLE.load(SeqCst), 0, 0, 0, iosb.as_mut_ptr(), buf, len, &offset, core::ptr::null());
            if st == 0 && iosb[1] == len as usize {
                w(srb, 16, len);
                w(srb, 3, 1u8);
            } else {
                sense(srb, 2, 0x3a);
            }
        }
        StorPortNotification(0, ext as *mut c_void, srb);
    }

    unsafe extern "system" fn worker(ext: *mut u8) {
        let timeout: i64 = -1_000_000;
        loop {
            KeWaitForSingleObject(work(), 0, 0, 0, &timeout);
            let srb = REQ.swap(0, SeqCst) as *mut u8;
            if !srb.is_null() {
                mount(ext, srb);
            }
            for q in QUEUE.iter() {
                let srb = q.swap(0, SeqCst) as *mut u8;
                if !srb.is_null() {
                    read(ext, srb);
                }
            }
            if STOP.load(SeqCst) {
                break;
            }
        }
        PsTerminateSystemThread(0);
    }

    /// HwStartIo's part: control requests (MOUNT queued to the worker) and target 1's READs.
    pub unsafe fn start_io(ext: *mut u8, srb: *mut u8) -> Option<u8> {
        let func: u8 = r(srb, 2);
        if func == 2 {
            let b: *mut u8 = r::<usize>(srb, off::S_DATA) as *mut u8;
            if r::<u32>(srb, 16) < 36 || r::<[u8; 8]>(b, 4) != *b"RVBLKCTL" {
                return None;
            }
            if r::<u32>(b, 16) != 2 || MOUNTED.load(SeqCst) {
                answer(ext, srb, 0x209, 0);
                return Some(1);
            }
            let irp = r::<usize>(srb, off::S_ORIG) as *const u8;
            let thr = if irp.is_null() { 0 } else { r::<usize>(irp, off::IRP_THREAD) };
            if thr == 0 {
                answer(ext, srb, 0x302, 0);
                return Some(1);
            }
            ObfReferenceObject(thr as *mut u8);
            THR.store(thr, SeqCst);
            MODE.store(r::<u8>(irp, off::IRP_MODE) as usize, SeqCst);
            REQ.store(srb as usize, SeqCst);
            KeSetEvent(work(), 0, 0);
            return Some(1);
        }
        let (tgt, lun): (u8, u8) = (r(srb, 6), r(srb, 7));
        if func != 0 || tgt != 1 || lun != 0 {
            return None;
        }
        if !MOUNTED.load(SeqCst) {
            w(srb, 3, 8u8);
            StorPortNotification(0, ext as *mut c_void, srb);
            return Some(1);
        }
        let c = srb.add(off::S_CDB);
        match r::<u8>(c, 0) {
            0x28 | 0x88 => {
                for q in QUEUE.iter() {
                    if q.compare_exchange(0, srb as usize, SeqCst, SeqCst).is_ok() {
                        KeSetEvent(work(), 0, 0);
                        return Some(1);
                    }
                }
                w(srb, 3, 5u8);
            }
            0x2A | 0x8A => sense(srb, 7, 0x27),
            0x25 => {
                let mut d = [0u8; 8];
                d[0..4].copy_from_slice(&(BLOCKS.load(SeqCst) as u32 - 1).to_be_bytes());
                d[4..8].copy_from_slice(&512u32.to_be_bytes());
                reply(srb, &d);
            }
            0x1A => reply(srb, &[3, 0, 0x80, 0]),
            _ => return None,
        }
        StorPortNotification(0, ext as *mut c_void, srb);
        Some(1)
    }
}

#[cfg(scsiport)]
#[no_mangle]
pub unsafe extern "system" fn DriverEntry(d: *mut c_void, rp: *mut c_void) -> i32 {
    let mut init = [0u8; 256];
    let i = init.as_mut_ptr();
    w(i, 0, off::XP_SIZE);
    w(i, 4, 1u32);
    w(i, 8, hw_initialize as usize);
    w(i, 8 + P, hw_start_io as usize);
    w(i, 8 + 3 * P, hw_find_adapter_legacy as usize);
    w(i, 8 + 4 * P, hw_reset_bus as usize);
    w(i, 8 + 7 * P, 64u32);
    w(i, off::MAP_BUFFERS, 1u8);
    ScsiPortInitialize(d, rp, i, core::ptr::null_mut()) as i32
}

#[cfg(scsiport)]
unsafe extern "system" fn hw_find_adapter_legacy(ext: *mut u8, c: *mut c_void, b: *mut c_void, a: *const u8, ci: *mut u8, again: *mut u8) -> u32 {
    let r = hw_find_adapter(ext, c, b, core::ptr::null_mut(), a, ci, again);
    #[cfg(again)]
    {
        *again = 1;
    }
    r
}

/// Completes `srb` the way the port expects.
unsafe fn complete(ext: *mut u8, srb: *mut u8) {
    #[cfg(not(scsiport))]
    StorPortNotification(0, ext as *mut c_void, srb);
    #[cfg(scsiport)]
    {
        ScsiPortNotification(0, ext as *mut c_void, srb);
        #[cfg(not(no_next_request))]
        ScsiPortNotification(1, ext as *mut c_void);
    }
}

/// The data buffer's system address (Win7 StorPort maps READ/WRITE buffers only on request).
unsafe fn system_address(ext: *mut u8, srb: *mut u8) -> *mut u8 {
    #[cfg(not(scsiport))]
    {
        let mut buf: *mut u8 = core::ptr::null_mut();
        StorPortExtendedFunction(5, ext as *mut c_void, srb, &mut buf as *mut *mut u8);
        buf
    }
    #[cfg(scsiport)]
    {
        let _ = ext;
        r::<usize>(srb, off::S_DATA) as *mut u8
    }
}

#[cfg(not(scsiport))]
#[no_mangle]
pub unsafe extern "system" fn DriverEntry(d: *mut c_void, rp: *mut c_void) -> i32 {
    #[cfg(async_disk)]
    adisk::DRV.store(d as usize, core::sync::atomic::Ordering::SeqCst);
    let mut init = [0u8; 256];
    let i = init.as_mut_ptr();
    w(i, 0, off::SIZE);
    w(i, 8, hw_initialize as usize);
    w(i, 8 + P, hw_start_io as usize);
    w(i, 8 + 3 * P, hw_find_adapter as usize);
    w(i, 8 + 4 * P, hw_reset_bus as usize);
    w(i, 8 + 7 * P, 64u32);
    // `--cfg map_buffers_mismatch`: the Vista/7 defect, init data 1 but ConfigInfo 3.
    w(i, off::MAP_BUFFERS, if cfg!(map_buffers_mismatch) { 1u8 } else { 3u8 });
    w(i, off::MAP_BUFFERS + 2, 1u8);
    w(i, off::MAP_BUFFERS + 3, 1u8);
    w(i, off::MAP_BUFFERS + 4, 1u8);
    w(i, off::ADAPTER_CONTROL, hw_adapter_control as usize);
    w(i, off::FREE, hw_free as usize);
    w(i, off::FEATURES, 1u32);
    w(i, off::FEATURES + 4, 1u32);
    let mut st = StorPortInitialize(d, rp, i, core::ptr::null_mut());
    if st == 0xC000_0059 {
        w(i, 0, off::VSIZE);
        st = StorPortInitialize(d, rp, i, core::ptr::null_mut());
    }
    st as i32
}

unsafe extern "system" fn hw_find_adapter(ext: *mut u8, _c: *mut c_void, _b: *mut c_void, _l: *mut c_void, _a: *const u8, ci: *mut u8, _again: *mut u8) -> u32 {
    let va = MmMapIoSpace(BASE, LEN, 1);
    if va.is_null() {
        DbgPrint(b"%s\0".as_ptr(), b"rvblk: refused: source=grub4dos phys_base=0xf3ce000 length=0x800000 reason=cannot map\0".as_ptr());
        return 0;
    }
    w(ext, 0, va as usize);
    let len: u32 = r(ci, 0);
    w(ci, 24, 1u32 << 20);
    w(ci, 28, 257u32);
    w(ci, off::C_BUSES, 1u8);
    w(ci, off::C_SG, 1u8);
    w(ci, off::C_MASTER, 1u8);
    w(ci, off::C_MAPBUF, 3u8);
    w(ci, off::C_TARGETS, if cfg!(async_disk) || cfg!(runtime) { 2u8 } else { 1u8 });
    w(ci, off::C_LUNS, 1u8);
    // A legacy miniport with no hardware declares no DMA (`--cfg legacy_dma` declares it).
    #[cfg(all(scsiport, not(legacy_dma)))]
    {
        w(ci, off::C_SG, 0u8);
        w(ci, off::C_MASTER, 0u8);
        w(ci, off::C_MAPBUF, 1u8);
    }
    if (len as usize) > off::C_SYNC {
        w(ci, off::C_SYNC, 1u32);
    }
    if (len as usize) > off::C_VIRTUAL || cfg!(config_past_length) {
        w(ci, off::C_VIRTUAL, 1u8);
    }
    DbgPrint(b"%s\0".as_ptr(), b"rvblk: lun 0: kind=disk block_size=512 blocks=16384 read_only=0 source=grub4dos phys_base=0xf3ce000 length=0x800000\0".as_ptr());
    #[cfg(async_disk)]
    adisk::start(ext);
    #[cfg(runtime)]
    rt::start(ext);
    1
}

unsafe extern "system" fn hw_initialize(_e: *mut u8) -> u8 {
    1
}
unsafe extern "system" fn hw_reset_bus(_e: *mut u8, _p: u32) -> u8 {
    1
}
unsafe extern "system" fn hw_free(ext: *mut u8) {
    #[cfg(async_disk)]
    adisk::stop();
    #[cfg(runtime)]
    rt::stop();
    let va: usize = r(ext, 0);
    if va != 0 {
        MmUnmapIoSpace(va as *mut u8, LEN);
        w(ext, 0, 0usize);
    }
}
unsafe extern "system" fn hw_adapter_control(_e: *mut u8, ty: u32, p: *mut u8) -> u32 {
    if ty == 0 {
        let max: u32 = r(p, 0);
        for t in 0..3u32.min(max) {
            w(p, 4 + t as usize, 1u8);
        }
    }
    0
}

unsafe fn sense(srb: *mut u8, key: u8, asc: u8) {
    let sb: *mut u8 = r::<usize>(srb, off::S_SENSE) as *mut u8;
    let sl: u8 = r(srb, 11);
    w(srb, 4, 2u8);
    if sb.is_null() || sl == 0 || r::<u32>(srb, 12) & 0x20 != 0 {
        w(srb, 3, 4u8);
        return;
    }
    let mut s = [0u8; 18];
    s[0] = 0x70;
    s[2] = key;
    s[7] = 10;
    s[12] = asc;
    let n = (sl as usize).min(18);
    core::ptr::copy_nonoverlapping(s.as_ptr(), sb, n);
    w(srb, 11, n as u8);
    w(srb, 3, 0x84u8);
}

unsafe fn reply(srb: *mut u8, data: &[u8]) {
    let db: *mut u8 = r::<usize>(srb, off::S_DATA) as *mut u8;
    let n = (r::<u32>(srb, 16) as usize).min(data.len());
    core::ptr::copy_nonoverlapping(data.as_ptr(), db, n);
    w(srb, 16, n as u32);
    w(srb, 3, 1u8);
}

unsafe extern "system" fn hw_start_io(ext: *mut u8, srb: *mut u8) -> u8 {
    #[cfg(async_disk)]
    if let Some(r) = adisk::start_io(ext, srb) {
        return r;
    }
    #[cfg(runtime)]
    if let Some(r) = rt::start_io(ext, srb) {
        return r;
    }
    let func: u8 = r(srb, 2);
    let (path, tgt, lun): (u8, u8, u8) = (r(srb, 5), r(srb, 6), r(srb, 7));
    let c = srb.add(off::S_CDB);
    let op: u8 = r(c, 0);
    if func != 0 {
        w(srb, 3, if func == 0x12 || func == 0x13 || func == 0x20 { 1u8 } else { 6u8 });
    } else if path != 0 || (tgt != 0 && !((cfg!(async_disk) || cfg!(runtime)) && tgt == 1)) || lun != 0 {
        w(srb, 3, 8u8);
    } else {
        match op {
            0x12 => {
                let evpd = r::<u8>(c, 1) & 1 != 0;
                let page: u8 = r(c, 2);
                if !evpd && page != 0 {
                    sense(srb, 5, 0x24);
                } else if !evpd {
                    let mut d = [0x20u8; 36];
                    d[0] = 0;
                    d[1] = 0;
                    d[2] = 5;
                    d[3] = 2;
                    d[4] = 31;
                    d[5] = 0;
                    d[6] = 0;
                    d[7] = 0;
                    d[8..13].copy_from_slice(b"RVBLK");
                    d[16..20].copy_from_slice(b"MOCK");
                    d[32..36].copy_from_slice(b"0001");
                    reply(srb, &d);
                } else {
                    match page {
                        0 => reply(srb, &[0, 0, 0, 3, 0, 0x80, 0x83]),
                        0x80 => reply(srb, &[0, 0x80, 0, 8, b'M', b'O', b'C', b'K', b'0', b'0', b'0', b'1']),
                        0x83 => reply(srb, &[0, 0x83, 0, 12, 2, 1, 0, 8, b'R', b'V', b'B', b'L', b'K', b'0', b'0', b'1']),
                        _ => sense(srb, 5, 0x24),
                    }
                }
            }
            0x25 => {
                let mut d = [0u8; 8];
                #[cfg(async_disk)]
                let blocks = if tgt == 1 { adisk::DISK_BLOCKS } else { BLOCKS };
                #[cfg(not(async_disk))]
                let blocks = BLOCKS;
                d[0..4].copy_from_slice(&(blocks - 1).to_be_bytes());
                d[4..8].copy_from_slice(&512u32.to_be_bytes());
                reply(srb, &d);
            }
            0x9E if r::<u8>(c, 1) & 0x1f == 0x10 => {
                let mut d = [0u8; 32];
                d[0..8].copy_from_slice(&(BLOCKS as u64 - 1).to_be_bytes());
                d[8..12].copy_from_slice(&512u32.to_be_bytes());
                reply(srb, &d);
            }
            0x1A => reply(srb, &[3, 0, 0, 0]),
            0x5A => reply(srb, &[0, 6, 0, 0, 0, 0, 0, 0]),
            0x03 => {
                let mut d = [0u8; 18];
                d[0] = 0x70;
                d[7] = 10;
                reply(srb, &d)
            }
            0x00 | 0x35 | 0x2F | 0x1E | 0x1B => w(srb, 3, 1u8),
            0x28 | 0x2A | 0x88 | 0x8A | 0x08 | 0xA8 => {
                let (lba, cnt): (u64, u64) = match op {
                    0x28 | 0x2A => (u32::from_be_bytes(r(c, 2)) as u64, u16::from_be_bytes(r(c, 7)) as u64),
                    0x88 | 0x8A => (u64::from_be_bytes(r(c, 2)), u32::from_be_bytes(r(c, 10)) as u64),
                    0xA8 => (u32::from_be_bytes(r(c, 2)) as u64, u32::from_be_bytes(r(c, 6)) as u64),
                    _ => (((r::<u8>(c, 1) as u64 & 0x1f) << 16) | (r::<u8>(c, 2) as u64) << 8 | r::<u8>(c, 3) as u64, match r::<u8>(c, 4) { 0 => 256, n => n as u64 }),
                };
                let len = (cnt * 512) as usize;
                let xfer: u32 = r(srb, 16);
                if lba.checked_add(cnt).is_none_or(|e| e > BLOCKS as u64) {
                    sense(srb, 5, 0x21);
                } else if len > xfer as usize {
                    w(srb, 3, 6u8);
                } else {
                    let buf = system_address(ext, srb);
                    let img = (r::<usize>(ext, 0) as *mut u8).add((lba * 512) as usize);
                    if op == 0x2A || op == 0x8A {
                        core::ptr::copy_nonoverlapping(buf, img, len);
                    } else {
                        core::ptr::copy_nonoverlapping(img, buf, len);
                        #[cfg(overread)]
                        core::ptr::read_volatile(buf.add(xfer as usize));
                    }
                    w(srb, 16, len as u32);
                    w(srb, 3, 1u8);
                    #[cfg(double_complete)]
                    if op == 0x28 {
                        complete(ext, srb);
                    }
                }
            }
            _ => sense(srb, 5, 0x20),
        }
    }
    // `--cfg timer_complete` (SCSIPORT): READ/WRITE completed later from HwTimer, the only
    // place a worker's results may be completed under SCSIPORT (issue 11).
    #[cfg(all(scsiport, timer_complete))]
    if func == 0 && matches!(op, 0x28 | 0x2A | 0x88 | 0x8A | 0x08 | 0xA8) {
        TIMER_SRB.store(srb as usize, core::sync::atomic::Ordering::SeqCst);
        ScsiPortNotification(6, ext as *mut c_void, hw_timer as usize, 1000u32);
        ScsiPortNotification(1, ext as *mut c_void);
        return 1;
    }
    complete(ext, srb);
    1
}

#[cfg(all(scsiport, timer_complete))]
static TIMER_SRB: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

#[cfg(all(scsiport, timer_complete))]
unsafe extern "system" fn hw_timer(ext: *mut u8) {
    let srb = TIMER_SRB.swap(0, core::sync::atomic::Ordering::SeqCst) as *mut u8;
    if !srb.is_null() {
        complete(ext, srb);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
