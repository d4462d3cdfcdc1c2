//! Cases that move medium data: full reads, every READ opcode agreeing, VERIFY with BYTCHK,
//! writes read back, and write protection.

use super::{ensure, expect_sense, Ctx};
use crate::commands::scsi::{self, Io};
use rvblk_core::image::WritePolicy;

pub(super) fn full_media_read(c: &Ctx<'_>) -> Result<(), String> {
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

pub(super) fn read_opcodes_agree(c: &Ctx<'_>) -> Result<(), String> {
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
pub(super) fn verify_bytchk(c: &Ctx<'_>) -> Result<(), String> {
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

pub(super) fn write_read_back(c: &Ctx<'_>) -> Result<(), String> {
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

pub(super) fn write_protect(c: &Ctx<'_>) -> Result<(), String> {
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
