//! SCSI compliance suite, modelled on what classpnp/disk.sys/cdrom.sys send at start and in use
//! and on the HLK SCSI compliance checks, plus a concurrency stress test and a PnP cycle. Every
//! case also fails when the verifier recorded a failure while it ran.

use crate::commands::scenario::{ExpectedLun, Setup};
use crate::commands::scsi::{self, Io, LunInfo};
use crate::emu::kernel::Personality;
use crate::emu::storport::{self as sp, Adapter, Dir, Request};
use rvblk_core::image::WritePolicy;
use std::path::Path;

pub struct Ctx<'a> {
    pub a: &'a Adapter,
    pub setup: &'a Setup,
    pub luns: Vec<(LunInfo, ExpectedLun)>,
}

type Case = fn(&Ctx<'_>) -> Result<(), String>;

pub const CASES: &[(&str, Case)] = &[
    ("inquiry_standard", inquiry_standard),
    ("inquiry_vpd", inquiry_vpd),
    ("read_capacity", read_capacity),
    ("mode_sense", mode_sense),
    ("cd_mmc", cd_mmc),
    ("simple_commands", simple_commands),
    ("full_media_read", full_media_read),
    ("read_opcodes_agree", read_opcodes_agree),
    ("verify_bytchk", verify_bytchk),
    ("write_read_back", write_read_back),
    ("write_protect", write_protect),
    ("bad_cdbs", bad_cdbs),
    ("short_buffers", short_buffers),
    ("no_device", no_device),
    ("srb_functions", srb_functions),
    ("stress", stress),
];

fn ensure(c: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if c {
        Ok(())
    } else {
        Err(msg())
    }
}

fn expect_sense(o: &sp::Outcome, key: u8, asc: &[u8], what: &str) -> Result<(), String> {
    ensure(!o.ok(), || {
        format!("{what}: succeeded, expected CHECK CONDITION")
    })?;
    ensure(
        o.status() == sp::SRB_STATUS_ERROR && o.scsi_status == 2,
        || {
            format!(
                "{what}: SrbStatus {:#04x} ScsiStatus {:#04x}, expected ERROR + CHECK CONDITION",
                o.srb_status, o.scsi_status
            )
        },
    )?;
    match o.sense_key() {
        Some((k, a, _)) if k == key && (asc.is_empty() || asc.contains(&a)) => Ok(()),
        other => Err(format!(
            "{what}: sense {other:?}, expected key {key:#x} ASC {asc:x?}"
        )),
    }
}

fn inquiry_standard(c: &Ctx<'_>) -> Result<(), String> {
    let mut io = Io::new(c.a);
    for (i, e) in &c.luns {
        let (o, d) = io.data_in(i.target, i.lun, &scsi::cdb_inquiry(false, 0, 255), 255);
        ensure(o.ok(), || {
            format!("INQUIRY(255) failed {:#x}", o.srb_status)
        })?;
        ensure(d.len() >= 36, || "INQUIRY shorter than 36 bytes".into())?;
        let want = d[4] as usize + 5;
        ensure(o.transferred as usize == want.min(255), || {
            format!(
                "INQUIRY: DataTransferLength {} but additional length says {want}",
                o.transferred
            )
        })?;
        let dt = d[0] & 0x1f;
        let want_dt = if e.kind == "cdrom" { 5 } else { 0 };
        ensure(dt == want_dt, || {
            format!(
                "{}: peripheral device type {dt}, expected {want_dt}",
                e.kind
            )
        })?;
        ensure(d[0] >> 5 == 0, || "peripheral qualifier not 0".into())?;
        if e.kind != "disk" {
            ensure(d[1] & 0x80 != 0, || {
                format!("{} not reported removable (RMB)", e.kind)
            })?;
        }
        ensure(d[3] & 0x0f == 2, || {
            format!("response data format {} (expected 2)", d[3] & 0xf)
        })?;
        ensure(d[8..36].iter().all(|&b| (0x20..0x7f).contains(&b)), || {
            "vendor/product/revision not printable ASCII".into()
        })?;
        // Allocation length 5 must give exactly 5 bytes (underrun handled by the port).
        let (o, d5) = io.data_in(i.target, i.lun, &scsi::cdb_inquiry(false, 0, 5), 5);
        ensure(o.ok() && d5.len() == 5 && o.transferred == 5, || {
            format!(
                "INQUIRY(5): status {:#x} transferred {}",
                o.srb_status, o.transferred
            )
        })?;
    }
    Ok(())
}

fn vpd(io: &mut Io<'_>, i: &LunInfo, page: u8) -> Result<Vec<u8>, String> {
    let (o, d) = io.data_in(i.target, i.lun, &scsi::cdb_inquiry(true, page, 255), 255);
    ensure(o.ok(), || {
        format!(
            "VPD page {page:#x}: status {:#x} sense {:?}",
            o.srb_status,
            o.sense_key()
        )
    })?;
    ensure(d.len() >= 4 && d[1] == page, || {
        format!("VPD page {page:#x}: bad header {:x?}", &d[..d.len().min(4)])
    })?;
    let n = u16::from_be_bytes([d[2], d[3]]) as usize + 4;
    ensure(o.transferred as usize == n.min(255), || {
        format!(
            "VPD {page:#x}: DataTransferLength {} but page length says {n}",
            o.transferred
        )
    })?;
    Ok(d)
}

fn inquiry_vpd(c: &Ctx<'_>) -> Result<(), String> {
    let mut io = Io::new(c.a);
    let mut ids = Vec::new();
    for (i, _) in &c.luns {
        let p0 = vpd(&mut io, i, 0)?;
        let list = &p0[4..];
        ensure(list.windows(2).all(|w| w[0] < w[1]), || {
            format!("VPD 0x00 list not ascending: {list:x?}")
        })?;
        for need in [0x00, 0x80, 0x83] {
            ensure(list.contains(&need), || {
                format!("VPD 0x00 does not list page {need:#x}: {list:x?}")
            })?;
        }
        for &p in list {
            vpd(&mut io, i, p)?;
        }
        let p80 = vpd(&mut io, i, 0x80)?;
        ensure(p80[4..].iter().all(|&b| (0x20..0x7f).contains(&b)), || {
            "unit serial number not ASCII".into()
        })?;
        let p83 = vpd(&mut io, i, 0x83)?;
        ensure(p83.len() > 8, || "VPD 0x83 has no designator".into())?;
        ids.push((p80, p83));
        // A page not in the list → ILLEGAL REQUEST / INVALID FIELD IN CDB.
        if let Some(bad) = (0xC0u8..0xFF).find(|p| !list.contains(p)) {
            let (o, _) = io.data_in(i.target, i.lun, &scsi::cdb_inquiry(true, bad, 255), 255);
            expect_sense(
                &o,
                scsi::SK_ILLEGAL_REQUEST,
                &[0x24],
                &format!("VPD page {bad:#x} (unsupported)"),
            )?;
        }
        // Page code with EVPD = 0 → INVALID FIELD IN CDB.
        let (o, _) = io.data_in(i.target, i.lun, &scsi::cdb_inquiry(false, 0x80, 255), 255);
        expect_sense(
            &o,
            scsi::SK_ILLEGAL_REQUEST,
            &[0x24],
            "INQUIRY EVPD=0 with page code 0x80",
        )?;
    }
    for a in 0..ids.len() {
        for b in a + 1..ids.len() {
            ensure(ids[a].1 != ids[b].1, || {
                "two LUNs have the same VPD 0x83 identifier".into()
            })?;
            ensure(ids[a].0 != ids[b].0, || {
                "two LUNs have the same serial number".into()
            })?;
        }
    }
    Ok(())
}

fn read_capacity(c: &Ctx<'_>) -> Result<(), String> {
    let mut io = Io::new(c.a);
    for (i, e) in &c.luns {
        let want_bs = if e.kind == "cdrom" { 2048 } else { 512 };
        ensure(i.block_size == want_bs, || {
            format!(
                "{}: block size {}, expected {want_bs}",
                e.kind, i.block_size
            )
        })?;
        ensure(
            i.bytes() >= e.length && i.bytes() - e.length < want_bs as u64,
            || {
                format!(
                    "capacity {} x {} does not cover the image length {:#x}",
                    i.blocks, i.block_size, e.length
                )
            },
        )?;
        let (o, d) = io.data_in(i.target, i.lun, &scsi::cdb_read_capacity16(32), 32);
        ensure(o.ok() && d.len() >= 12, || {
            format!("READ CAPACITY(16) failed {:#x}", o.srb_status)
        })?;
        let last = u64::from_be_bytes(d[0..8].try_into().unwrap());
        let bs = u32::from_be_bytes(d[8..12].try_into().unwrap());
        ensure(last + 1 == i.blocks && bs == i.block_size, || {
            format!(
                "READ CAPACITY(16) says {} x {bs}, (10) says {} x {}",
                last + 1,
                i.blocks,
                i.block_size
            )
        })?;
        let (o, d) = io.data_in(i.target, i.lun, &scsi::cdb_read_capacity10(), 8);
        ensure(o.ok() && o.transferred == 8, || {
            "READ CAPACITY(10) transfer length".into()
        })?;
        let _ = d;
    }
    Ok(())
}

fn mode_sense(c: &Ctx<'_>) -> Result<(), String> {
    let mut io = Io::new(c.a);
    for (i, e) in &c.luns {
        let (o, d6) = io.data_in(i.target, i.lun, &scsi::cdb_mode_sense6(0x3f, 0xff), 0xff);
        ensure(o.ok() && d6.len() >= 4, || {
            format!(
                "MODE SENSE(6) failed {:#x} {:?}",
                o.srb_status,
                o.sense_key()
            )
        })?;
        ensure(d6[0] as usize + 1 == d6.len(), || {
            format!(
                "MODE SENSE(6): mode data length {} but {} bytes transferred",
                d6[0],
                d6.len()
            )
        })?;
        let (o, d10) = io.data_in(i.target, i.lun, &scsi::cdb_mode_sense10(0x3f, 0x400), 0x400);
        ensure(o.ok() && d10.len() >= 8, || {
            format!("MODE SENSE(10) failed {:#x}", o.srb_status)
        })?;
        ensure(
            u16::from_be_bytes([d10[0], d10[1]]) as usize + 2 == d10.len(),
            || "MODE SENSE(10): mode data length mismatch".into(),
        )?;
        let wp6 = d6[2] & 0x80 != 0;
        let wp10 = d10[3] & 0x80 != 0;
        ensure(wp6 == wp10, || {
            "WP differs between MODE SENSE(6) and (10)".into()
        })?;
        if e.kind != "cdrom" {
            let ro = e.policy == WritePolicy::ReadOnly;
            ensure(wp6 == ro, || {
                format!(
                    "WP bit {wp6} but the image is {}",
                    if ro { "read-only" } else { "writable" }
                )
            })?;
        }
        // Small allocation length: truncated, no overrun.
        let (o, d) = io.data_in(i.target, i.lun, &scsi::cdb_mode_sense6(0x3f, 4), 4);
        ensure(o.ok() && d.len() == 4, || {
            format!(
                "MODE SENSE(6) alloc 4: {:#x} transferred {}",
                o.srb_status, o.transferred
            )
        })?;
    }
    Ok(())
}

fn cd_mmc(c: &Ctx<'_>) -> Result<(), String> {
    let mut io = Io::new(c.a);
    for (i, _) in c.luns.iter().filter(|(i, _)| i.is_cd()) {
        let (o, d) = io.data_in(
            i.target,
            i.lun,
            &[scsi::GET_CONFIGURATION, 0, 0, 0, 0, 0, 0, 0x04, 0, 0],
            1024,
        );
        ensure(o.ok() && d.len() >= 8, || {
            format!(
                "GET CONFIGURATION failed {:#x} {:?}",
                o.srb_status,
                o.sense_key()
            )
        })?;
        let len = u32::from_be_bytes(d[0..4].try_into().unwrap()) as usize;
        ensure(len + 4 >= d.len(), || {
            format!(
                "GET CONFIGURATION data length {len} < transferred {}",
                d.len()
            )
        })?;
        let (o, d) = io.data_in(
            i.target,
            i.lun,
            &[scsi::READ_TOC, 0, 0, 0, 0, 0, 1, 0x03, 0x24, 0],
            0x324,
        );
        ensure(o.ok() && d.len() >= 12, || {
            format!("READ TOC failed {:#x} {:?}", o.srb_status, o.sense_key())
        })?;
        let tl = u16::from_be_bytes([d[0], d[1]]) as usize + 2;
        ensure(tl == d.len(), || {
            format!("READ TOC data length {tl} but transferred {}", d.len())
        })?;
        ensure(d[2] == 1 && d[3] >= 1, || {
            format!("READ TOC first/last track {} {}", d[2], d[3])
        })?;
        let (o, d) = io.data_in(
            i.target,
            i.lun,
            &[scsi::READ_DISC_INFORMATION, 0, 0, 0, 0, 0, 0, 0, 34, 0],
            34,
        );
        ensure(o.ok() && d.len() >= 3, || {
            format!(
                "READ DISC INFORMATION failed {:#x} {:?}",
                o.srb_status,
                o.sense_key()
            )
        })?;
        ensure(d[2] & 3 == 2, || {
            format!("disc status {} (expected complete = 2)", d[2] & 3)
        })?;
        // GET EVENT STATUS NOTIFICATION (polled), as cdrom.sys sends it.
        let (o, _) = io.data_in(i.target, i.lun, &[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0], 8);
        ensure(o.ok() || o.sense_key().is_some_and(|s| s.0 == 5), || {
            format!("GET EVENT STATUS NOTIFICATION: {:#x}", o.srb_status)
        })?;
    }
    Ok(())
}

fn simple_commands(c: &Ctx<'_>) -> Result<(), String> {
    let mut io = Io::new(c.a);
    for (i, _) in &c.luns {
        let (t, l) = (i.target, i.lun);
        let o = io.no_data(t, l, &[scsi::TEST_UNIT_READY, 0, 0, 0, 0, 0]);
        ensure(o.ok(), || {
            format!("TEST UNIT READY: {:#x} {:?}", o.srb_status, o.sense_key())
        })?;
        let (o, d) = io.data_in(t, l, &[scsi::REQUEST_SENSE, 0, 0, 0, 18, 0], 18);
        ensure(o.ok() && d.len() >= 8 && d[0] & 0x7f == 0x70, || {
            format!("REQUEST SENSE: {:#x} {:x?}", o.srb_status, d)
        })?;
        let o = io.no_data(t, l, &[0x1E, 0, 0, 0, 0, 0]);
        ensure(o.ok(), || {
            format!(
                "PREVENT ALLOW MEDIUM REMOVAL: {:#x} {:?}",
                o.srb_status,
                o.sense_key()
            )
        })?;
        let o = io.no_data(t, l, &[0x1B, 0, 0, 0, 1, 0]);
        ensure(o.ok(), || {
            format!("START STOP UNIT: {:#x} {:?}", o.srb_status, o.sense_key())
        })?;
        if !i.is_cd() {
            let o = io.no_data(t, l, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            ensure(o.ok(), || {
                format!(
                    "SYNCHRONIZE CACHE(10): {:#x} {:?}",
                    o.srb_status,
                    o.sense_key()
                )
            })?;
            let o = io.no_data(t, l, &[0x2F, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
            ensure(o.ok(), || {
                format!("VERIFY(10): {:#x} {:?}", o.srb_status, o.sense_key())
            })?;
        }
    }
    Ok(())
}

fn full_media_read(c: &Ctx<'_>) -> Result<(), String> {
    let mut io = Io::new(c.a);
    for (i, e) in &c.luns {
        let bs = i.block_size as u64;
        let chunk = ((c.a.cfg.max_transfer as u64).min(1 << 20) / bs).max(1);
        let mut lba = 0;
        let mut src = Vec::new();
        while lba < i.blocks {
            let n = chunk.min(i.blocks - lba);
            let o = io.read(i.target, i.lun, lba, n as u32, bs as u32);
            let len = (n * bs) as usize;
            ensure(o.ok() && o.transferred as usize == len, || {
                format!(
                    "READ at {lba}: {:#x} transferred {}",
                    o.srb_status, o.transferred
                )
            })?;
            let off = lba * bs;
            let m = (e.length.saturating_sub(off) as usize).min(len);
            src.resize(m, 0);
            c.setup.phys.read(e.phys_base + off, &mut src)?;
            let got = io.slot.data(len);
            if got[..m] != src[..] {
                let p = got.iter().zip(&src).position(|(a, b)| a != b).unwrap_or(0);
                return Err(format!(
                    "{} at {:#x}: byte {:#x} differs from the source image",
                    e.kind,
                    e.phys_base,
                    off + p as u64
                ));
            }
            ensure(got[m..].iter().all(|&b| b == 0) || m == len, || {
                "bytes past the image end are not zero".into()
            })?;
            lba += n;
        }
    }
    Ok(())
}

fn read_opcodes_agree(c: &Ctx<'_>) -> Result<(), String> {
    let mut io = Io::new(c.a);
    for (i, _) in &c.luns {
        let bs = i.block_size;
        let lba = (i.blocks / 3).min(0x1f_0000) as u32;
        let n = 4u32.min(i.blocks as u32 - lba);
        let (t, l) = (i.target, i.lun);
        let len = n * bs;
        let cdbs: Vec<Vec<u8>> = vec![
            scsi::cdb_rw10(scsi::READ10, lba, n as u16),
            scsi::cdb_rw16(scsi::READ16, lba as u64, n),
            {
                let x = lba.to_be_bytes();
                let c = n.to_be_bytes();
                vec![
                    scsi::READ12,
                    0,
                    x[0],
                    x[1],
                    x[2],
                    x[3],
                    c[0],
                    c[1],
                    c[2],
                    c[3],
                    0,
                    0,
                ]
            },
            vec![
                scsi::READ6,
                (lba >> 16) as u8 & 0x1f,
                (lba >> 8) as u8,
                lba as u8,
                n as u8,
                0,
            ],
        ];
        let mut first: Option<Vec<u8>> = None;
        for cdb in cdbs {
            let (o, d) = io.data_in(t, l, &cdb, len);
            ensure(o.ok() && d.len() == len as usize, || {
                format!(
                    "READ opcode {:#x}: {:#x} {:?}",
                    cdb[0],
                    o.srb_status,
                    o.sense_key()
                )
            })?;
            match &first {
                None => first = Some(d),
                Some(f) => ensure(*f == d, || {
                    format!("READ opcode {:#x} returns different data", cdb[0])
                })?,
            }
        }
    }
    Ok(())
}

/// VERIFY 10/12/16 with BYTCHK=1: the data-out buffer is compared with the medium. Equal data
/// gives GOOD, one changed byte gives MISCOMPARE. Under the Win7 personality these buffers are
/// unmapped like READ/WRITE ones, so this also checks that the driver fetches their address.
fn verify_bytchk(c: &Ctx<'_>) -> Result<(), String> {
    let mut io = Io::new(c.a);
    for (i, _) in &c.luns {
        let bs = i.block_size;
        let lba = (i.blocks / 2).min(0x1f_0000) as u32;
        let n = 2u32.min(i.blocks as u32 - lba);
        let (t, l) = (i.target, i.lun);
        let (o, good) = io.data_in(t, l, &scsi::cdb_rw10(scsi::READ10, lba, n as u16), n * bs);
        ensure(o.ok(), || {
            format!("READ(10) before VERIFY: {:#x}", o.srb_status)
        })?;
        let (x, c4) = (lba.to_be_bytes(), n.to_be_bytes());
        let cdbs: [Vec<u8>; 3] = [
            vec![0x2F, 0x02, x[0], x[1], x[2], x[3], 0, c4[2], c4[3], 0],
            vec![
                0xAF, 0x02, x[0], x[1], x[2], x[3], c4[0], c4[1], c4[2], c4[3], 0, 0,
            ],
            {
                let x8 = (lba as u64).to_be_bytes();
                let mut v = vec![0x8F, 0x02];
                v.extend_from_slice(&x8);
                v.extend_from_slice(&c4);
                v.extend_from_slice(&[0, 0]);
                v
            },
        ];
        let mut bad = good.clone();
        bad[bs as usize / 2] ^= 0x5A;
        for cdb in &cdbs {
            let o = io.data_out(t, l, cdb, &good);
            ensure(o.ok(), || {
                format!(
                    "VERIFY {:#x} BYTCHK=1 with the medium's own data: {:#x} {:?}",
                    cdb[0],
                    o.srb_status,
                    o.sense_key()
                )
            })?;
            let o = io.data_out(t, l, cdb, &bad);
            ensure(!o.ok() && o.sense_key().map(|k| k.0) == Some(0x0E), || {
                format!(
                    "VERIFY {:#x} BYTCHK=1 with one changed byte: {:#x} {:?}, expected MISCOMPARE",
                    cdb[0],
                    o.srb_status,
                    o.sense_key()
                )
            })?;
        }
    }
    Ok(())
}

fn write_read_back(c: &Ctx<'_>) -> Result<(), String> {
    let mut io = Io::new(c.a);
    for (i, e) in c
        .luns
        .iter()
        .filter(|(_, e)| e.policy != WritePolicy::ReadOnly)
    {
        let bs = i.block_size;
        for lba in [0, i.blocks / 2, i.blocks - 2] {
            let n = 2u32;
            let o = io.read(i.target, i.lun, lba, n, bs);
            ensure(o.ok(), || "read before write failed".into())?;
            let orig = io.slot.data((n * bs) as usize).to_vec();
            let pat: Vec<u8> = (0..orig.len())
                .map(|k| (k as u8) ^ 0xA5 ^ (lba as u8))
                .collect();
            let o = io.write(i.target, i.lun, lba, &pat, bs);
            ensure(o.ok() && o.transferred == n * bs, || {
                format!("WRITE at {lba}: {:#x} {:?}", o.srb_status, o.sense_key())
            })?;
            let o = io.read(i.target, i.lun, lba, n, bs);
            let back = io.slot.data((n * bs) as usize).to_vec();
            if e.policy == WritePolicy::DiscardWrites {
                ensure(o.ok() && back == orig, || {
                    "fake-write disk: written data was kept".into()
                })?;
                continue;
            }
            ensure(o.ok() && back == pat, || {
                format!("WRITE at LBA {lba} does not read back")
            })?;
            let mut ph = vec![0u8; pat.len()];
            c.setup.phys.read(e.phys_base + lba * bs as u64, &mut ph)?;
            ensure(ph == pat, || {
                "write did not land in the image's physical memory".into()
            })?;
            let o = io.write(i.target, i.lun, lba, &orig, bs);
            ensure(o.ok(), || "restore write failed".into())?;
            let o = io.read(i.target, i.lun, lba, n, bs);
            ensure(
                o.ok() && io.slot.data((n * bs) as usize) == &orig[..],
                || "restore did not read back".into(),
            )?;
        }
    }
    Ok(())
}

fn write_protect(c: &Ctx<'_>) -> Result<(), String> {
    let mut io = Io::new(c.a);
    for (i, e) in c
        .luns
        .iter()
        .filter(|(_, e)| e.policy == WritePolicy::ReadOnly)
    {
        let bs = i.block_size;
        let o = io.read(i.target, i.lun, 0, 1, bs);
        ensure(o.ok(), || "read failed".into())?;
        let orig = io.slot.data(bs as usize).to_vec();
        let pat = vec![0xEEu8; bs as usize];
        let o = io.write(i.target, i.lun, 0, &pat, bs);
        expect_sense(
            &o,
            scsi::SK_DATA_PROTECT,
            &[0x27],
            &format!("WRITE(10) to read-only {}", e.kind),
        )?;
        let o = io.data_out(i.target, i.lun, &scsi::cdb_rw16(scsi::WRITE16, 0, 1), &pat);
        expect_sense(
            &o,
            scsi::SK_DATA_PROTECT,
            &[0x27],
            &format!("WRITE(16) to read-only {}", e.kind),
        )?;
        let mut ph = vec![0u8; bs as usize];
        c.setup.phys.read(e.phys_base, &mut ph)?;
        ensure(ph == orig, || {
            "refused write still modified the image".into()
        })?;
    }
    Ok(())
}

fn bad_cdbs(c: &Ctx<'_>) -> Result<(), String> {
    let mut io = Io::new(c.a);
    for (i, _) in &c.luns {
        let (t, l, bs) = (i.target, i.lun, i.block_size);
        let o = io.no_data(t, l, &[0xFF, 0, 0, 0, 0, 0]);
        expect_sense(&o, scsi::SK_ILLEGAL_REQUEST, &[0x20], "unknown opcode 0xFF")?;
        let o = io.no_data(t, l, &[0x02, 0, 0, 0, 0, 0]);
        expect_sense(&o, scsi::SK_ILLEGAL_REQUEST, &[0x20], "unknown opcode 0x02")?;
        let end = i.blocks;
        let o = io.read(t, l, end, 1, bs);
        expect_sense(
            &o,
            scsi::SK_ILLEGAL_REQUEST,
            &[0x21],
            "READ at LBA = capacity",
        )?;
        let o = io.read(t, l, end - 1, 2, bs);
        expect_sense(
            &o,
            scsi::SK_ILLEGAL_REQUEST,
            &[0x21],
            "READ crossing the end",
        )?;
        let o = io.run(&Request::scsi(
            t,
            l,
            &scsi::cdb_rw16(scsi::READ16, u64::MAX - 1, 1),
            Dir::In,
            bs,
        ));
        expect_sense(
            &o,
            scsi::SK_ILLEGAL_REQUEST,
            &[0x21],
            "READ(16) at LBA 2^64-2",
        )?;
        let o = io.run(&Request::scsi(
            t,
            l,
            &[
                scsi::SERVICE_ACTION_IN16,
                0x1f,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                32,
                0,
                0,
            ],
            Dir::In,
            32,
        ));
        expect_sense(
            &o,
            scsi::SK_ILLEGAL_REQUEST,
            &[0x20, 0x24],
            "SERVICE ACTION IN(16) with an unknown service action",
        )?;
        let (o, _) = io.data_in(
            t,
            l,
            &[scsi::MODE_SENSE6, 0x08, 0x3f | 0xC0, 0, 0xff, 0],
            0xff,
        );
        ensure(o.ok() || o.sense_key().is_some_and(|s| s.0 == 5), || {
            "MODE SENSE saved values: neither data nor ILLEGAL REQUEST".into()
        })?;
        // READ of zero blocks: no data moved, success.
        let o = io.run(&Request::scsi(
            t,
            l,
            &scsi::cdb_rw10(scsi::READ10, 0, 0),
            Dir::None,
            0,
        ));
        ensure(o.ok() && o.transferred == 0, || {
            format!(
                "READ(10) of 0 blocks: {:#x} transferred {}",
                o.srb_status, o.transferred
            )
        })?;
        if !i.is_cd() {
            let o = io.no_data(t, l, &[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0]);
            let _ = o;
        }
    }
    Ok(())
}

/// DataTransferLength smaller / larger than the CDB asks for.
fn short_buffers(c: &Ctx<'_>) -> Result<(), String> {
    let mut io = Io::new(c.a);
    for (i, _) in &c.luns {
        let (t, l, bs) = (i.target, i.lun, i.block_size);
        // Buffer too small for 2 blocks: must not overrun it (guard page) nor claim success.
        let o = io.run(&Request::scsi(
            t,
            l,
            &scsi::cdb_rw10(scsi::READ10, 0, 2),
            Dir::In,
            bs,
        ));
        ensure(!o.ok() || o.transferred <= bs, || {
            format!(
                "READ of 2 blocks into a 1-block buffer: {:#x} transferred {}",
                o.srb_status, o.transferred
            )
        })?;
        // Buffer larger than needed: underrun, DataTransferLength = what was moved.
        let o = io.run(&Request::scsi(
            t,
            l,
            &scsi::cdb_rw10(scsi::READ10, 0, 1),
            Dir::In,
            4 * bs,
        ));
        ensure(o.ok() || o.status() == sp::SRB_STATUS_DATA_OVERRUN, || {
            format!("underrun READ: {:#x}", o.srb_status)
        })?;
        if o.ok() {
            ensure(o.transferred == bs || o.transferred == 4 * bs, || {
                format!("underrun READ: DataTransferLength {}", o.transferred)
            })?;
        } else {
            ensure(o.transferred == bs, || {
                format!(
                    "DATA_OVERRUN with DataTransferLength {} (expected {bs})",
                    o.transferred
                )
            })?;
        }
        // No sense buffer (autosense disabled): errors still complete, nothing written.
        let mut r = Request::scsi(t, l, &[0xFF, 0, 0, 0, 0, 0], Dir::None, 0);
        r.sense_len = 0;
        let o = io.run(&r);
        ensure(!o.ok(), || {
            "unknown opcode without sense buffer succeeded".into()
        })?;
        // Tiny sense buffer: sense must be truncated to it.
        let mut r = Request::scsi(t, l, &[0xFF, 0, 0, 0, 0, 0], Dir::None, 0);
        r.sense_len = 8;
        let o = io.run(&r);
        ensure(!o.ok(), || {
            "unknown opcode with 8-byte sense buffer succeeded".into()
        })?;
    }
    Ok(())
}

fn no_device(c: &Ctx<'_>) -> Result<(), String> {
    let mut io = Io::new(c.a);
    let ok_missing = |s: u8| {
        matches!(
            s,
            sp::SRB_STATUS_NO_DEVICE
                | sp::SRB_STATUS_INVALID_LUN
                | sp::SRB_STATUS_SELECTION_TIMEOUT
                | sp::SRB_STATUS_INVALID_TARGET_ID
                | sp::SRB_STATUS_INVALID_PATH_ID
        )
    };
    let present: Vec<(u8, u8)> = c.luns.iter().map(|(i, _)| (i.target, i.lun)).collect();
    let mut probes = vec![
        (0u8, c.a.cfg.max_luns.saturating_sub(1)),
        (c.a.cfg.max_targets.saturating_sub(1), 0),
    ];
    probes.retain(|p| !present.contains(p));
    for (t, l) in probes {
        for cdb in [
            scsi::cdb_inquiry(false, 0, 36),
            scsi::cdb_read_capacity10(),
            scsi::cdb_rw10(scsi::READ10, 0, 1),
        ] {
            let o = io.run(&Request::scsi(t, l, &cdb, Dir::In, 4096));
            ensure(ok_missing(o.status()), || {
                format!(
                    "{}:{} (no LUN) opcode {:#x}: SrbStatus {:#x}",
                    t, l, cdb[0], o.srb_status
                )
            })?;
        }
    }
    let mut r = Request::scsi(0, 0, &scsi::cdb_inquiry(false, 0, 36), Dir::In, 36);
    r.path = 1;
    let o = io.run(&r);
    ensure(ok_missing(o.status()), || {
        format!("path 1: SrbStatus {:#x}", o.srb_status)
    })?;
    Ok(())
}

fn srb_functions(c: &Ctx<'_>) -> Result<(), String> {
    let mut io = Io::new(c.a);
    let (t, l) = c.luns.first().map_or((0, 0), |(i, _)| (i.target, i.lun));
    for f in [0x12u8, 0x13, 0x20, 0x07, 0x08] {
        let mut r = Request::scsi(t, l, &[], Dir::None, 0);
        r.function = f;
        let o = io.run(&r);
        ensure(
            o.ok() || o.status() == sp::SRB_STATUS_INVALID_REQUEST,
            || format!("SRB function {f:#x}: {:#x}", o.srb_status),
        )?;
    }
    for f in [0x10u8, 0x17, 0x26, 0x27, 0x7f] {
        let mut r = Request::scsi(t, l, &[], Dir::None, 0);
        r.function = f;
        let _ = io.run(&r);
    }
    // IO_CONTROL with an unknown signature.
    let mut r = Request::scsi(t, l, &[], Dir::In, 64);
    r.function = 0x02;
    io.slot.data_mut(64).fill(0);
    io.slot.data_mut(64)[0..4].copy_from_slice(&28u32.to_le_bytes());
    io.slot.data_mut(64)[4..12].copy_from_slice(b"NOTOURS!");
    let o = io.run(&r);
    ensure(
        o.status() != sp::SRB_STATUS_SUCCESS || o.transferred <= 64,
        || "IO_CONTROL".into(),
    )?;
    ensure(c.a.reset_bus(), || "HwResetBus returned FALSE".into())?;
    Ok(())
}

/// Several threads issuing random reads and writes with verification against a shadow copy.
fn stress(c: &Ctx<'_>) -> Result<(), String> {
    use std::sync::Mutex;
    let threads = 4usize;
    let per_thread = 300usize;
    for (i, e) in &c.luns {
        let bs = i.block_size as u64;
        let writable = e.policy == WritePolicy::ReadWrite;
        let span = i.blocks.min(4096);
        let mut shadow = vec![0u8; (span * bs) as usize];
        {
            let mut io = Io::new(c.a);
            let o = io.read(i.target, i.lun, 0, 0, bs as u32);
            let _ = o;
            let mut lba = 0;
            while lba < span {
                let n = (span - lba).min(128);
                let o = io.read(i.target, i.lun, lba, n as u32, bs as u32);
                ensure(o.ok(), || "stress: initial read failed".into())?;
                shadow[(lba * bs) as usize..((lba + n) * bs) as usize]
                    .copy_from_slice(io.slot.data((n * bs) as usize));
                lba += n;
            }
        }
        let original = shadow.clone();
        // Each thread owns a disjoint stripe of blocks for writes; reads go anywhere it owns.
        let shadow = Mutex::new(shadow);
        let errors = Mutex::new(Vec::<String>::new());
        std::thread::scope(|s| {
            for th in 0..threads {
                let shadow = &shadow;
                let errors = &errors;
                let a = c.a;
                let i = i.clone();
                s.spawn(move || {
                    let mut io = Io::new(a);
                    let mut x = 0x1234_5678u64 ^ (th as u64 * 0x9E37_79B9);
                    let mut rnd = move || {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x
                    };
                    for _ in 0..per_thread {
                        let mut lba = rnd() % span;
                        lba -= lba % threads as u64;
                        lba += th as u64;
                        if lba >= span {
                            continue;
                        }
                        let n = 1u64;
                        if writable && rnd() % 3 == 0 {
                            let data: Vec<u8> = (0..bs).map(|_| rnd() as u8).collect();
                            let o = io.write(i.target, i.lun, lba, &data, bs as u32);
                            if !o.ok() {
                                errors
                                    .lock()
                                    .unwrap()
                                    .push(format!("stress write failed {:#x}", o.srb_status));
                                return;
                            }
                            shadow.lock().unwrap()[(lba * bs) as usize..((lba + n) * bs) as usize]
                                .copy_from_slice(&data);
                        } else {
                            let o = io.read(i.target, i.lun, lba, n as u32, bs as u32);
                            let want = shadow.lock().unwrap()
                                [(lba * bs) as usize..((lba + n) * bs) as usize]
                                .to_vec();
                            if !o.ok() || io.slot.data(bs as usize) != &want[..] {
                                errors.lock().unwrap().push(format!(
                                    "stress: thread {th} LBA {lba} mismatch (status {:#x})",
                                    o.srb_status
                                ));
                                return;
                            }
                        }
                    }
                });
            }
        });
        let errs = errors.into_inner().unwrap();
        // Restore the original content.
        if writable {
            let mut io = Io::new(c.a);
            let mut lba = 0;
            while lba < span {
                let n = (span - lba).min(128);
                let o = io.write(
                    i.target,
                    i.lun,
                    lba,
                    &original[(lba * bs) as usize..((lba + n) * bs) as usize],
                    bs as u32,
                );
                ensure(o.ok(), || "stress: restore failed".into())?;
                lba += n;
            }
        }
        if let Some(e) = errs.first() {
            return Err(e.clone());
        }
    }
    Ok(())
}

#[derive(Default)]
pub struct SuiteResult {
    pub passed: Vec<String>,
    pub failed: Vec<(String, String)>,
}

pub const SCENARIOS: &[&str] = &[
    "g4d_both",
    "g4d_fd0",
    "memdisk_iso",
    "nfit_ramdisks",
    "grub4efi_page",
    "g4d_6g_top",
];

fn vpd83(a: &Adapter, luns: &[(LunInfo, ExpectedLun)]) -> Vec<Vec<u8>> {
    let mut io = Io::new(a);
    luns.iter()
        .map(|(i, _)| {
            io.data_in(i.target, i.lun, &scsi::cdb_inquiry(true, 0x83, 255), 255)
                .1
        })
        .collect()
}

/// Runs every case against one scenario; records results into `res`.
pub fn run_scenario(
    driver: &[u8],
    setup: &Setup,
    personality: Personality,
    only: Option<&str>,
    verbose: bool,
    res: &mut SuiteResult,
) {
    let tag = format!("{}/{}", setup.name, personality.name());
    let k = setup.kernel(personality, verbose);
    let a = match Adapter::start(driver, k.clone()) {
        Ok(a) => a,
        Err(e) => {
            res.failed.push((
                format!("start [{tag}]"),
                format!("{e}; verifier: {:?}", k.failures()),
            ));
            return;
        }
    };
    let mut a = a;
    let infos = Io::new(&a).enumerate();
    let luns = match infos {
        Ok(v) => v,
        Err(e) => {
            res.failed.push((format!("enumerate [{tag}]"), e));
            return;
        }
    };
    let mut pairs = Vec::new();
    let mut enum_err = None;
    // 32-bit XP has no firmware-table query, so NFIT RAM disks cannot be found there.
    let expected: Vec<&ExpectedLun> = setup
        .expected
        .iter()
        .filter(|e| personality != Personality::Xp || e.source != "nfit")
        .collect();
    if luns.len() != expected.len() {
        enum_err = Some(format!(
            "found {} LUN(s), expected {}",
            luns.len(),
            expected.len()
        ));
    }
    for (n, i) in luns.iter().enumerate() {
        if let Some(&e) = expected.get(n) {
            pairs.push((i.clone(), e.clone()));
        }
    }
    let (log_luns, _, bad) = crate::commands::run::parse_log(&k.log());
    for (n, (_, e)) in pairs.iter().enumerate() {
        match log_luns.iter().find(|l| l.n as usize == n) {
            Some(l) if l.phys_base == e.phys_base && l.source == e.source && l.kind == e.kind => {}
            other => enum_err
                .get_or_insert(format!("log line for LUN {n}: {other:?}, expected {e:?}"))
                .push(' '),
        }
    }
    let f0 = k.failures().len();
    match enum_err.or(bad.first().cloned()) {
        Some(e) => res.failed.push((format!("discovery [{tag}]"), e)),
        None if k.failures().is_empty() => res.passed.push(format!("discovery [{tag}]")),
        None => res
            .failed
            .push((format!("discovery [{tag}]"), k.failures().join("; "))),
    }
    let _ = f0;
    let first_ids = vpd83(&a, &pairs);
    let ctx = Ctx {
        a: &a,
        setup,
        luns: pairs.clone(),
    };
    for (name, case) in CASES {
        if only.is_some_and(|o| o != *name) {
            continue;
        }
        let before = k.failures().len();
        let r = case(&ctx);
        let new: Vec<String> = k.failures()[before..].to_vec();
        let name = format!("{name} [{tag}]");
        match (r, new.is_empty()) {
            (Ok(()), true) => res.passed.push(name),
            (Ok(()), false) => res
                .failed
                .push((name, format!("verifier: {}", new.join("; ")))),
            (Err(e), _) => res.failed.push((
                name,
                if new.is_empty() {
                    e
                } else {
                    format!("{e}; verifier: {}", new.join("; "))
                },
            )),
        }
    }
    // PnP cycle: stop, restart, I/O, remove with no leaks; identifiers stable across restart.
    let before = k.failures().len();
    let mut pnp_err = None;
    if a.stop() != 0 {
        pnp_err = Some("ScsiStopAdapter failed".to_string());
    }
    if a.restart() != 0 {
        pnp_err = Some("ScsiRestartAdapter failed".to_string());
    }
    if vpd83(&a, &pairs) != first_ids {
        pnp_err = Some("VPD 0x83 changed across ScsiRestartAdapter".to_string());
    }
    let leaks = a.remove();
    drop(a);
    if !leaks.is_empty() {
        pnp_err = Some(format!("leaks after remove: {leaks:?}"));
    }
    let new: Vec<String> = k.failures()[before..].to_vec();
    // A legacy SCSIPORT adapter is never stopped or removed: the same steps are no-ops for it,
    // and only registry handles left open count as leaks.
    let name = if personality == Personality::Xp {
        format!("legacy_lifetime [{tag}]")
    } else {
        format!("pnp_stop_restart_remove [{tag}]")
    };
    match (pnp_err, new.is_empty()) {
        (None, true) => res.passed.push(name),
        (e, _) => res.failed.push((
            name,
            format!(
                "{}{}",
                e.unwrap_or_default(),
                if new.is_empty() {
                    String::new()
                } else {
                    format!(" verifier: {}", new.join("; "))
                }
            ),
        )),
    }
    // Identifiers stable across a fresh load of the driver.
    if only.is_none() {
        let k2 = setup.kernel(personality, verbose);
        if let Ok(a2) = Adapter::start(driver, k2) {
            let ids2 = vpd83(&a2, &pairs);
            let name = format!("vpd83_stable_across_loads [{tag}]");
            if ids2 == first_ids {
                res.passed.push(name);
            } else {
                res.failed.push((
                    name,
                    "VPD 0x83 differs between two loads of the same memory".into(),
                ));
            }
        }
    }
}

/// `rvblk-harness suite`: prints one line per case and `N passed, N failed`.
pub fn main(driver: &Path, personality: Personality, only: Option<&str>, verbose: bool) -> i32 {
    let bytes = match std::fs::read(driver) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: {e}", driver.display());
            return 2;
        }
    };
    let arch = if cfg!(target_arch = "x86_64") {
        "x64"
    } else if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x86"
    };
    let mut res = SuiteResult::default();
    for sc in SCENARIOS {
        let setup = match Setup::named(sc) {
            Ok(s) => s,
            Err(e) => {
                res.failed.push((format!("setup {sc}"), e));
                continue;
            }
        };
        run_scenario(&bytes, &setup, personality, only, verbose, &mut res);
    }
    for p in &res.passed {
        println!("PASS {arch} {p}");
    }
    for (n, e) in &res.failed {
        println!("FAIL {arch} {n}: {e}");
    }
    println!(
        "kernel stack high-water mark: {} bytes of {}",
        crate::emu::stack::measure(),
        crate::emu::stack::KERNEL_STACK
    );
    println!("{} passed, {} failed", res.passed.len(), res.failed.len());
    if res.failed.is_empty() {
        0
    } else {
        1
    }
}
