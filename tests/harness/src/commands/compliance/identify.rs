//! Cases for what the class drivers (disk.sys, cdrom.sys, classpnp) ask a LUN at start:
//! INQUIRY and its VPD pages, READ CAPACITY, MODE SENSE, the MMC configuration commands and
//! the simple no-data commands.

use super::{ensure, expect_sense, Ctx};
use crate::commands::scsi::{self, Io, LunInfo};
use rvblk_core::image::WritePolicy;

pub(super) fn inquiry_standard(c: &Ctx<'_>) -> Result<(), String> {
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

pub(super) fn inquiry_vpd(c: &Ctx<'_>) -> Result<(), String> {
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

pub(super) fn read_capacity(c: &Ctx<'_>) -> Result<(), String> {
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

pub(super) fn mode_sense(c: &Ctx<'_>) -> Result<(), String> {
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

pub(super) fn cd_mmc(c: &Ctx<'_>) -> Result<(), String> {
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

pub(super) fn simple_commands(c: &Ctx<'_>) -> Result<(), String> {
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
