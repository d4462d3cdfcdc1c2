//! A minimal StorPort virtual miniport used to test the harness end to end without the real
//! driver: one 8 MiB disk at a fixed physical address (the g4d_both scenario's HDD), served
//! through MmMapIoSpace. `--cfg double_complete` / `--cfg overread` /
//! `--cfg map_buffers_mismatch` build broken variants.
//! `--cfg scsiport` builds it as a legacy XP SCSIPORT miniport instead; with it,
//! `no_next_request`, `config_past_length` and `again` build broken variants.
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
    fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8;
    fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8;
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
    pub const S_CDB: usize = 72;
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
    pub const S_CDB: usize = 48;
}
const P: usize = core::mem::size_of::<usize>();

unsafe fn w<T>(p: *mut u8, o: usize, v: T) {
    (p.add(o) as *mut T).write_unaligned(v)
}
unsafe fn r<T: Copy>(p: *const u8, o: usize) -> T {
    (p.add(o) as *const T).read_unaligned()
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
    w(ci, off::C_TARGETS, 1u8);
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
    1
}

unsafe extern "system" fn hw_initialize(_e: *mut u8) -> u8 {
    1
}
unsafe extern "system" fn hw_reset_bus(_e: *mut u8, _p: u32) -> u8 {
    1
}
unsafe extern "system" fn hw_free(ext: *mut u8) {
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
    let func: u8 = r(srb, 2);
    let (path, tgt, lun): (u8, u8, u8) = (r(srb, 5), r(srb, 6), r(srb, 7));
    let c = srb.add(off::S_CDB);
    let op: u8 = r(c, 0);
    if func != 0 {
        w(srb, 3, if func == 0x12 || func == 0x13 || func == 0x20 { 1u8 } else { 6u8 });
    } else if path != 0 || tgt != 0 || lun != 0 {
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
                d[0..4].copy_from_slice(&(BLOCKS - 1).to_be_bytes());
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
    complete(ext, srb);
    1
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
