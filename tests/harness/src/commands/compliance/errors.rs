//! Cases for what must fail cleanly: malformed CDBs, short buffers, absent targets/LUNs and
//! SRB functions other than EXECUTE_SCSI.

use super::{ensure, expect_sense, Ctx};
use crate::commands::scsi::{self, Io};
use crate::emu::storport::{self as sp, Dir, Request};

pub(super) fn bad_cdbs(c: &Ctx<'_>) -> Result<(), String> {
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
pub(super) fn short_buffers(c: &Ctx<'_>) -> Result<(), String> {
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

pub(super) fn no_device(c: &Ctx<'_>) -> Result<(), String> {
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

pub(super) fn srb_functions(c: &Ctx<'_>) -> Result<(), String> {
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
