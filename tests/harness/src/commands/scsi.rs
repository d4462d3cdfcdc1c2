//! CDB builders and small helpers to talk to a LUN through an `Adapter`.

use crate::emu::storport::{Adapter, Dir, Outcome, Request, SrbSlot};

pub const TEST_UNIT_READY: u8 = 0x00;
pub const REQUEST_SENSE: u8 = 0x03;
pub const INQUIRY: u8 = 0x12;
pub const MODE_SENSE6: u8 = 0x1A;
pub const MODE_SENSE10: u8 = 0x5A;
pub const READ_CAPACITY10: u8 = 0x25;
pub const SERVICE_ACTION_IN16: u8 = 0x9E;
pub const READ10: u8 = 0x28;
pub const WRITE10: u8 = 0x2A;
pub const READ16: u8 = 0x88;
pub const WRITE16: u8 = 0x8A;
pub const READ6: u8 = 0x08;
pub const READ12: u8 = 0xA8;
pub const REPORT_LUNS: u8 = 0xA0;
pub const READ_TOC: u8 = 0x43;
pub const GET_CONFIGURATION: u8 = 0x46;
pub const READ_DISC_INFORMATION: u8 = 0x51;

pub const SK_NOT_READY: u8 = 2;
pub const SK_ILLEGAL_REQUEST: u8 = 5;
pub const SK_DATA_PROTECT: u8 = 7;

pub fn cdb_inquiry(evpd: bool, page: u8, alloc: u16) -> Vec<u8> {
    let a = alloc.to_be_bytes();
    vec![INQUIRY, evpd as u8, page, a[0], a[1], 0]
}

pub fn cdb_report_luns(alloc: u32) -> Vec<u8> {
    let a = alloc.to_be_bytes();
    vec![REPORT_LUNS, 0, 0, 0, 0, 0, a[0], a[1], a[2], a[3], 0, 0]
}

pub fn cdb_read_capacity10() -> Vec<u8> {
    vec![READ_CAPACITY10, 0, 0, 0, 0, 0, 0, 0, 0, 0]
}

pub fn cdb_read_capacity16(alloc: u32) -> Vec<u8> {
    let mut c = vec![
        SERVICE_ACTION_IN16,
        0x10,
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
        0,
        0,
        0,
    ];
    c[10..14].copy_from_slice(&alloc.to_be_bytes());
    c
}

pub fn cdb_rw10(op: u8, lba: u32, blocks: u16) -> Vec<u8> {
    let l = lba.to_be_bytes();
    let b = blocks.to_be_bytes();
    vec![op, 0, l[0], l[1], l[2], l[3], 0, b[0], b[1], 0]
}

pub fn cdb_rw16(op: u8, lba: u64, blocks: u32) -> Vec<u8> {
    let mut c = vec![op, 0];
    c.extend_from_slice(&lba.to_be_bytes());
    c.extend_from_slice(&blocks.to_be_bytes());
    c.extend_from_slice(&[0, 0]);
    c
}

pub fn cdb_mode_sense6(page: u8, alloc: u8) -> Vec<u8> {
    vec![MODE_SENSE6, 0x08, page, 0, alloc, 0]
}

pub fn cdb_mode_sense10(page: u8, alloc: u16) -> Vec<u8> {
    let a = alloc.to_be_bytes();
    vec![MODE_SENSE10, 0x08, page, 0, 0, 0, 0, a[0], a[1], 0]
}

/// What INQUIRY / READ CAPACITY / MODE SENSE say about a LUN.
#[derive(Clone, Debug, Default)]
pub struct LunInfo {
    pub target: u8,
    pub lun: u8,
    pub device_type: u8,
    pub removable: bool,
    pub vendor: String,
    pub product: String,
    pub block_size: u32,
    pub blocks: u64,
    pub write_protected: bool,
    /// READ CAPACITY answered NOT READY / MEDIUM NOT PRESENT (02/3A): a unit without medium
    /// (a disk-backed LUN whose stick was pulled); no capacity. Only the re-enumeration
    /// ([`Io::rescan`]) reports such LUNs.
    pub no_medium: bool,
}

impl LunInfo {
    pub fn bytes(&self) -> u64 {
        self.blocks * self.block_size as u64
    }
    pub fn is_cd(&self) -> bool {
        self.device_type == 5
    }
}

/// Small helper bundling an adapter and a slot.
pub struct Io<'a> {
    pub a: &'a Adapter,
    pub slot: SrbSlot,
}

impl<'a> Io<'a> {
    pub fn new(a: &'a Adapter) -> Io<'a> {
        Io {
            a,
            slot: a.new_slot(),
        }
    }

    pub fn run(&mut self, req: &Request) -> Outcome {
        self.a.execute(&mut self.slot, req)
    }

    /// Data-in command; returns the outcome and the transferred bytes.
    pub fn data_in(&mut self, t: u8, l: u8, cdb: &[u8], len: u32) -> (Outcome, Vec<u8>) {
        let o = self.run(&Request::scsi(t, l, cdb, Dir::In, len));
        let n = (o.transferred.min(len)) as usize;
        let d = self.slot.data(len as usize)[..n].to_vec();
        (o, d)
    }

    pub fn no_data(&mut self, t: u8, l: u8, cdb: &[u8]) -> Outcome {
        self.run(&Request::scsi(t, l, cdb, Dir::None, 0))
    }

    pub fn data_out(&mut self, t: u8, l: u8, cdb: &[u8], data: &[u8]) -> Outcome {
        self.slot.data_mut(data.len()).copy_from_slice(data);
        self.run(&Request::scsi(t, l, cdb, Dir::Out, data.len() as u32))
    }

    /// Reads `blocks` blocks at `lba` with READ(10) or READ(16) into the slot buffer.
    pub fn read(&mut self, t: u8, l: u8, lba: u64, blocks: u32, bs: u32) -> Outcome {
        let cdb = if lba + blocks as u64 <= u32::MAX as u64 && blocks <= 0xffff {
            cdb_rw10(READ10, lba as u32, blocks as u16)
        } else {
            cdb_rw16(READ16, lba, blocks)
        };
        self.run(&Request::scsi(t, l, &cdb, Dir::In, blocks * bs))
    }

    pub fn write(&mut self, t: u8, l: u8, lba: u64, data: &[u8], bs: u32) -> Outcome {
        let blocks = (data.len() / bs as usize) as u32;
        let cdb = if lba + blocks as u64 <= u32::MAX as u64 && blocks <= 0xffff {
            cdb_rw10(WRITE10, lba as u32, blocks as u16)
        } else {
            cdb_rw16(WRITE16, lba, blocks)
        };
        self.data_out(t, l, &cdb, data)
    }

    /// INQUIRY + READ CAPACITY + MODE SENSE for one (target, lun); None when there is no LUN.
    pub fn probe(&mut self, t: u8, l: u8) -> Result<Option<LunInfo>, String> {
        self.probe_as(t, l, false)
    }

    /// [`Io::probe`]; with `no_medium_ok`, a LUN whose READ CAPACITY fails with CHECK CONDITION,
    /// NOT READY / MEDIUM NOT PRESENT (02/3A/xx) is a unit without medium (`LunInfo::no_medium`)
    /// rather than an error, as disk.sys sees a removable unit with no medium.
    fn probe_as(&mut self, t: u8, l: u8, no_medium_ok: bool) -> Result<Option<LunInfo>, String> {
        let (o, inq) = self.data_in(t, l, &cdb_inquiry(false, 0, 36), 36);
        if !o.ok() {
            return Ok(None);
        }
        if inq.len() < 36 {
            return Err(format!(
                "INQUIRY to {t}:{l} returned {} bytes (< 36)",
                inq.len()
            ));
        }
        if inq[0] >> 5 != 0 {
            return Ok(None);
        }
        let mut info = LunInfo {
            target: t,
            lun: l,
            device_type: inq[0] & 0x1f,
            removable: inq[1] & 0x80 != 0,
            vendor: String::from_utf8_lossy(&inq[8..16]).trim().to_string(),
            product: String::from_utf8_lossy(&inq[16..32]).trim().to_string(),
            ..Default::default()
        };
        let (o, cap) = self.data_in(t, l, &cdb_read_capacity10(), 8);
        if no_medium_ok
            && o.status() == crate::emu::storport::SRB_STATUS_ERROR
            && o.scsi_status == 2
            && matches!(o.sense_key(), Some((2, 0x3a, _)))
        {
            info.no_medium = true;
            return Ok(Some(info));
        }
        if !o.ok() || cap.len() < 8 {
            return Err(format!(
                "READ CAPACITY(10) to {t}:{l} failed: status {:#x} sense {:?}",
                o.srb_status,
                o.sense_key()
            ));
        }
        let last = u32::from_be_bytes(cap[0..4].try_into().unwrap());
        info.block_size = u32::from_be_bytes(cap[4..8].try_into().unwrap());
        if last == u32::MAX {
            let (o, c16) = self.data_in(t, l, &cdb_read_capacity16(32), 32);
            if !o.ok() || c16.len() < 12 {
                return Err(format!("READ CAPACITY(16) to {t}:{l} failed"));
            }
            info.blocks = u64::from_be_bytes(c16[0..8].try_into().unwrap()) + 1;
            info.block_size = u32::from_be_bytes(c16[8..12].try_into().unwrap());
        } else {
            info.blocks = last as u64 + 1;
        }
        if info.block_size == 0 {
            return Err(format!("READ CAPACITY to {t}:{l}: block size 0"));
        }
        let (o, ms) = self.data_in(t, l, &cdb_mode_sense6(0x3f, 0xff), 0xff);
        if o.ok() && ms.len() >= 4 {
            info.write_protected = ms[2] & 0x80 != 0;
        } else {
            let (o, ms) = self.data_in(t, l, &cdb_mode_sense10(0x3f, 0x200), 0x200);
            if o.ok() && ms.len() >= 8 {
                info.write_protected = ms[3] & 0x80 != 0;
            }
        }
        Ok(Some(info))
    }

    /// The re-enumeration after BusChangeDetected, as StorPort and disk.sys do it: REPORT LUNS
    /// to LUN 0 of every target, then INQUIRY (and the rest of `probe`) on every LUN it lists;
    /// a target that refuses REPORT LUNS is scanned LUN by LUN like `enumerate`.
    pub fn rescan(&mut self) -> Result<Vec<LunInfo>, String> {
        let mut out = Vec::new();
        let (nt, nl) = (self.a.cfg.max_targets, self.a.cfg.max_luns);
        for t in 0..nt {
            let alloc = 8 + 8 * nl as u32;
            let (o, d) = self.data_in(t, 0, &cdb_report_luns(alloc), alloc);
            let listed: Option<Vec<u8>> = (o.ok() && d.len() >= 8).then(|| {
                let n = u32::from_be_bytes(d[0..4].try_into().expect("4 bytes")) as usize / 8;
                d[8..]
                    .chunks_exact(8)
                    .take(n)
                    // Peripheral device addressing, single level: the LUN is byte 1.
                    .filter(|e| e[0] & 0xc0 == 0 && e[0] == 0)
                    .map(|e| e[1])
                    .filter(|&l| l < nl)
                    .collect()
            });
            match listed {
                Some(luns) => {
                    for l in luns {
                        if let Some(i) = self.probe_as(t, l, true)? {
                            out.push(i);
                        }
                    }
                }
                None => {
                    for l in 0..nl {
                        match self.probe_as(t, l, true)? {
                            Some(i) => out.push(i),
                            None => break,
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Enumerates LUNs as Storport's bus scan does: INQUIRY to every target's LUN 0, then
    /// further LUNs of a present target until one is missing.
    pub fn enumerate(&mut self) -> Result<Vec<LunInfo>, String> {
        let mut out = Vec::new();
        let (nt, nl) = (self.a.cfg.max_targets, self.a.cfg.max_luns);
        for t in 0..nt {
            for l in 0..nl {
                match self.probe(t, l)? {
                    Some(i) => out.push(i),
                    None => break,
                }
            }
        }
        Ok(out)
    }
}
