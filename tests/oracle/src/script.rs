//! The one CDB list (`docs/scsi-oracle.md` §2): what Windows' disk, CD-ROM and floppy class
//! drivers send (shared knowledge restated in `docs/scsi-oracle.md` §2), plus invalid opcodes,
//! invalid fields, LBAs out of range and short allocation lengths. The same list goes to every
//! device; the answers of a disk to MMC commands are part of the comparison too.
//!
//! Script file format, read by the guest runner and by `rvblk-harness cdbs`:
//! `ID DIR LEN CDB-HEX [DATA-OUT-HEX]` per line.

use std::fmt::Write as _;

/// The devices of one oracle run: the three QEMU devices of the issue plus a floppy-like one
/// (QEMU has no SCSI floppy: a removable `scsi-hd` over a 1.44 MB image).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Cd,
    Disk,
    Floppy,
    /// `scsi-cd` without a medium; rvblk has no such state (a RAM image cannot leave), so its
    /// answers are compared with rvblk's CD and the medium-dependent differences are listed.
    EmptyCd,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 4] = [
        DeviceKind::Cd,
        DeviceKind::Disk,
        DeviceKind::Floppy,
        DeviceKind::EmptyCd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cd => "cd",
            DeviceKind::Disk => "disk",
            DeviceKind::Floppy => "floppy",
            DeviceKind::EmptyCd => "empty",
        }
    }

    pub fn parse(s: &str) -> Option<DeviceKind> {
        DeviceKind::ALL.into_iter().find(|d| d.name() == s)
    }

    /// The kind rvblk serves for this device (`rvblk-harness cdbs --kind`).
    pub fn harness_kind(self) -> &'static str {
        match self {
            DeviceKind::Cd | DeviceKind::EmptyCd => "cd",
            DeviceKind::Disk => "disk",
            DeviceKind::Floppy => "floppy",
        }
    }

    pub fn block_size(self) -> u32 {
        match self {
            DeviceKind::Cd | DeviceKind::EmptyCd => 2048,
            DeviceKind::Disk | DeviceKind::Floppy => 512,
        }
    }

    /// SCSI target id of the device in the guest (`scsi-id=`).
    pub fn scsi_id(self) -> u8 {
        match self {
            DeviceKind::Cd => 1,
            DeviceKind::Disk => 2,
            DeviceKind::EmptyCd => 3,
            DeviceKind::Floppy => 4,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    In,
    Out,
    None,
}

/// How an answer's data is compared (`docs/scsi-oracle.md` §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Byte for byte.
    Exact,
    /// Standard INQUIRY: T10 VENDOR, PRODUCT and REVISION by form (printable ASCII).
    StdInquiry,
    /// VPD 80h: the serial number by form.
    Vpd80,
    /// VPD 83h: designation descriptors by form (well-formed list, code sets, types).
    Vpd83,
    /// MODE SENSE(6)/(10): header fields, block descriptors and each mode page on its own.
    ModeSense,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub dir: Dir,
    pub len: u32,
    pub cdb: Vec<u8>,
    pub out: Vec<u8>,
    pub form: Form,
}

impl Entry {
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} {} {} ",
            self.id,
            match self.dir {
                Dir::In => "in",
                Dir::Out => "out",
                Dir::None => "none",
            },
            self.len
        );
        for b in &self.cdb {
            let _ = write!(s, "{b:02x}");
        }
        if !self.out.is_empty() {
            s.push(' ');
            for b in &self.out {
                let _ = write!(s, "{b:02x}");
            }
        }
        s
    }
}

struct List {
    v: Vec<Entry>,
}

impl List {
    fn push(&mut self, id: impl Into<String>, dir: Dir, len: u32, cdb: &[u8], form: Form) {
        let id = id.into();
        debug_assert!(!self.v.iter().any(|e| e.id == id), "duplicate id {id}");
        self.v.push(Entry {
            id,
            dir,
            len,
            cdb: cdb.to_vec(),
            out: Vec::new(),
            form,
        });
    }
    fn inn(&mut self, id: impl Into<String>, len: u32, cdb: &[u8]) {
        self.push(id, Dir::In, len, cdb, Form::Exact);
    }
    fn mode(&mut self, id: impl Into<String>, len: u32, cdb: &[u8]) {
        self.push(id, Dir::In, len, cdb, Form::ModeSense);
    }
    fn none(&mut self, id: impl Into<String>, cdb: &[u8]) {
        self.push(id, Dir::None, 0, cdb, Form::Exact);
    }
}

fn be16(v: u16) -> [u8; 2] {
    v.to_be_bytes()
}
fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

fn rw10(op: u8, lba: u32, n: u16) -> Vec<u8> {
    let (l, b) = (be32(lba), be16(n));
    vec![op, 0, l[0], l[1], l[2], l[3], 0, b[0], b[1], 0]
}
fn rw12(op: u8, lba: u32, n: u32) -> Vec<u8> {
    let mut c = vec![op, 0];
    c.extend_from_slice(&be32(lba));
    c.extend_from_slice(&be32(n));
    c.extend_from_slice(&[0, 0]);
    c
}
fn rw16(op: u8, lba: u64, n: u32) -> Vec<u8> {
    let mut c = vec![op, 0];
    c.extend_from_slice(&lba.to_be_bytes());
    c.extend_from_slice(&be32(n));
    c.extend_from_slice(&[0, 0]);
    c
}

/// Mode pages asked for: SBC-3 read-write error recovery 01h, flexible disk 05h, caching 08h,
/// control 0Ah (SPC-4), CD device parameters 0Dh, power condition 1Ah, informational
/// exceptions 1Ch, MM capabilities 2Ah (MMC-6 legacy, cdrom.sys), all pages 3Fh.
pub const MODE_PAGES: [u8; 9] = [0x01, 0x05, 0x08, 0x0A, 0x0D, 0x1A, 0x1C, 0x2A, 0x3F];

/// The CDB list for `device` with `blocks` logical blocks.
pub fn entries(device: DeviceKind, blocks: u64) -> Vec<Entry> {
    let bs = device.block_size();
    let mut l = List { v: Vec::new() };
    let last = blocks.saturating_sub(1);
    let blocks32 = blocks as u32;

    // Start-up: what a class driver sends first.
    l.none("tur", &[0x00, 0, 0, 0, 0, 0]);
    l.inn("request-sense", 18, &[0x03, 0, 0, 0, 18, 0]);
    l.inn("request-sense-252", 252, &[0x03, 0, 0, 0, 252, 0]);
    l.inn("request-sense-desc", 252, &[0x03, 1, 0, 0, 252, 0]);

    // INQUIRY (SPC-4 §6.4).
    l.push(
        "inquiry",
        Dir::In,
        36,
        &[0x12, 0, 0, 0, 36, 0],
        Form::StdInquiry,
    );
    l.push(
        "inquiry-96",
        Dir::In,
        96,
        &[0x12, 0, 0, 0, 96, 0],
        Form::StdInquiry,
    );
    l.inn("inquiry-alloc5", 5, &[0x12, 0, 0, 0, 5, 0]);
    l.inn("inquiry-alloc0", 0, &[0x12, 0, 0, 0, 0, 0]);
    l.inn("inquiry-page-no-evpd", 36, &[0x12, 0, 0x80, 0, 36, 0]);
    l.inn("inquiry-cmddt", 36, &[0x12, 0x02, 0, 0, 36, 0]);
    for (p, form) in [
        (0x00u8, Form::Exact),
        (0x80, Form::Vpd80),
        (0x83, Form::Vpd83),
        (0xB0, Form::Exact),
        (0xB1, Form::Exact),
        (0xB2, Form::Exact),
    ] {
        l.push(
            format!("vpd-{p:02x}"),
            Dir::In,
            255,
            &[0x12, 1, p, 0, 255, 0],
            form,
        );
    }
    l.inn("vpd-00-alloc4", 4, &[0x12, 1, 0, 0, 4, 0]);
    l.push(
        "vpd-83-alloc4",
        Dir::In,
        4,
        &[0x12, 1, 0x83, 0, 4, 0],
        Form::Vpd83,
    );
    l.inn("vpd-ff", 255, &[0x12, 1, 0xFF, 0, 255, 0]);

    // READ CAPACITY (SBC-3 §5.15, §5.16).
    l.inn("read-capacity10", 8, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    l.inn(
        "read-capacity10-pmi-lba",
        8,
        &[0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0],
    );
    let mut rc16 = vec![0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0];
    l.inn("read-capacity16", 32, &rc16);
    rc16[13] = 12;
    l.inn("read-capacity16-alloc12", 12, &rc16);
    rc16[13] = 32;
    rc16[1] = 0x11;
    l.inn("service-action-in-bad-sa", 32, &rc16);

    // MODE SENSE (SPC-4 §6.11, §6.12): every page, every page control, both CDB sizes.
    for page in MODE_PAGES {
        for pc in 0..4u8 {
            let b2 = (pc << 6) | page;
            l.mode(
                format!("mode-sense6-{page:02x}-pc{pc}"),
                255,
                &[0x1A, 0, b2, 0, 255, 0],
            );
            l.mode(
                format!("mode-sense10-{page:02x}-pc{pc}"),
                512,
                &[0x5A, 0, b2, 0, 0, 0, 0, 0x02, 0x00, 0],
            );
        }
    }
    l.mode("mode-sense6-3f-dbd", 255, &[0x1A, 0x08, 0x3F, 0, 255, 0]);
    l.mode(
        "mode-sense10-3f-dbd",
        512,
        &[0x5A, 0x08, 0x3F, 0, 0, 0, 0, 2, 0, 0],
    );
    l.mode("mode-sense6-3f-alloc4", 4, &[0x1A, 0, 0x3F, 0, 4, 0]);
    l.mode(
        "mode-sense10-3f-alloc8",
        8,
        &[0x5A, 0, 0x3F, 0, 0, 0, 0, 0, 8, 0],
    );
    l.mode("mode-sense6-page-3e", 255, &[0x1A, 0, 0x3E, 0, 255, 0]);
    l.mode(
        "mode-sense6-subpage-ff",
        255,
        &[0x1A, 0, 0x3F, 0xFF, 255, 0],
    );

    // GET CONFIGURATION (MMC-6 §6.6) with each RT.
    for (rt, start, alloc) in [
        (0u8, 0u16, 8u16),
        (0, 0, 0x400),
        (1, 0, 0x400),
        (1, 0x0001, 0x400),
        (1, 0x001E, 0x400),
        (2, 0x0000, 0x400),
        (2, 0x0001, 0x400),
        (2, 0x0003, 0x400),
        (2, 0x001E, 0x400),
        (2, 0x001F, 0x400),
        (2, 0x0107, 0x400),
        (3, 0, 0x400),
    ] {
        let (s, a) = (be16(start), be16(alloc));
        l.inn(
            format!("get-configuration-rt{rt}-{start:04x}-{alloc}"),
            u32::from(alloc),
            &[0x46, rt, s[0], s[1], 0, 0, 0, a[0], a[1], 0],
        );
    }

    // READ TOC/PMA/ATIP (MMC-6 §6.26) formats 0/1/2, LBA and MSF.
    for format in 0..3u8 {
        for msf in [false, true] {
            let track = if format == 0 { 1 } else { 0 };
            l.inn(
                format!("read-toc-f{format}-{}", if msf { "msf" } else { "lba" }),
                0x324,
                &[
                    0x43,
                    if msf { 2 } else { 0 },
                    format,
                    0,
                    0,
                    0,
                    track,
                    0x03,
                    0x24,
                    0,
                ],
            );
        }
    }
    l.inn(
        "read-toc-f0-track0",
        0x324,
        &[0x43, 0, 0, 0, 0, 0, 0, 3, 0x24, 0],
    );
    l.inn(
        "read-toc-f0-leadout",
        0x324,
        &[0x43, 0, 0, 0, 0, 0, 0xAA, 3, 0x24, 0],
    );
    l.inn(
        "read-toc-f0-track2",
        0x324,
        &[0x43, 0, 0, 0, 0, 0, 2, 3, 0x24, 0],
    );
    l.inn("read-toc-f0-alloc4", 4, &[0x43, 0, 0, 0, 0, 0, 1, 0, 4, 0]);
    l.inn(
        "read-toc-f0-alloc12",
        12,
        &[0x43, 0, 0, 0, 0, 0, 1, 0, 12, 0],
    );
    // Legacy format in the control byte's vendor bits (ATAPI/SFF-8020: 40h = session info).
    l.inn(
        "read-toc-control-40h",
        12,
        &[0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0x40],
    );
    l.inn("read-toc-f5", 0x324, &[0x43, 0, 5, 0, 0, 0, 0, 3, 0x24, 0]);

    // READ DISC INFORMATION, READ TRACK INFORMATION (MMC-6 §6.22, §6.27).
    l.inn(
        "read-disc-information",
        34,
        &[0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0],
    );
    l.inn(
        "read-disc-information-alloc2",
        2,
        &[0x51, 0, 0, 0, 0, 0, 0, 0, 2, 0],
    );
    l.inn(
        "read-disc-information-type7",
        34,
        &[0x51, 7, 0, 0, 0, 0, 0, 0, 34, 0],
    );
    l.inn(
        "read-track-information-track1",
        36,
        &[0x52, 1, 0, 0, 0, 1, 0, 0, 36, 0],
    );
    l.inn(
        "read-track-information-lba0",
        36,
        &[0x52, 0, 0, 0, 0, 0, 0, 0, 36, 0],
    );
    l.inn(
        "read-track-information-track2",
        36,
        &[0x52, 1, 0, 0, 0, 2, 0, 0, 36, 0],
    );

    // GET EVENT STATUS NOTIFICATION (MMC-6 §6.7), polled; MECHANISM STATUS (MMC-6 §6.11).
    l.inn("gesn-media", 8, &[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0]);
    l.inn("gesn-all", 8, &[0x4A, 1, 0, 0, 0x7E, 0, 0, 0, 8, 0]);
    l.inn("gesn-none", 8, &[0x4A, 1, 0, 0, 0, 0, 0, 0, 8, 0]);
    l.inn("gesn-async", 8, &[0x4A, 0, 0, 0, 0x10, 0, 0, 0, 8, 0]);
    l.inn(
        "gesn-media-alloc4",
        4,
        &[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 4, 0],
    );
    l.inn(
        "mechanism-status",
        8,
        &[0xBD, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0],
    );

    // READ 6/10/12/16 (SBC-3 §5.8-5.11; MMC-6 §6.15 for READ 10/12): first, middle, last
    // block; a range crossing the end; past the end; zero length.
    let mid = (blocks / 2) as u32;
    if bs == 512 {
        l.inn("read6-lba0", 512, &[0x08, 0, 0, 0, 1, 0]);
        l.inn(
            "read6-last",
            512,
            &[0x08, 0, (last >> 8) as u8, last as u8, 1, 0],
        );
    } else {
        l.inn("read6-lba0", bs, &[0x08, 0, 0, 0, 1, 0]);
    }
    l.inn("read10-lba0", bs, &rw10(0x28, 0, 1));
    l.inn("read10-mid-x4", 4 * bs, &rw10(0x28, mid, 4));
    l.inn("read10-last", bs, &rw10(0x28, last as u32, 1));
    l.inn("read10-crossing-end", 2 * bs, &rw10(0x28, last as u32, 2));
    l.inn("read10-past-end", bs, &rw10(0x28, blocks32, 1));
    l.inn("read10-lba-max", bs, &rw10(0x28, u32::MAX, 1));
    l.none("read10-len0", &rw10(0x28, 0, 0));
    l.none("read10-len0-past-end", &rw10(0x28, blocks32 + 1, 0));
    let mut fua = rw10(0x28, 0, 1);
    fua[1] = 0x08;
    l.inn("read10-fua", bs, &fua);
    let mut rdprotect = rw10(0x28, 0, 1);
    rdprotect[1] = 0x20;
    l.inn("read10-rdprotect", bs, &rdprotect);
    l.inn("read12-mid", 2 * bs, &rw12(0xA8, mid, 2));
    l.inn("read12-past-end", bs, &rw12(0xA8, blocks32, 1));
    l.inn("read16-mid", 2 * bs, &rw16(0x88, u64::from(mid), 2));
    l.inn("read16-last", bs, &rw16(0x88, last, 1));
    l.inn("read16-past-end", bs, &rw16(0x88, blocks, 1));
    l.inn("read16-lba-huge", bs, &rw16(0x88, 1 << 40, 1));

    // VERIFY 10/16 without data (SBC-3 §5.33, §5.35).
    l.none("verify10", &rw10(0x2F, 0, 8));
    l.none("verify10-past-end", &rw10(0x2F, blocks32, 1));
    l.none("verify16", &rw16(0x8F, last, 1));
    l.none("verify16-past-end", &rw16(0x8F, blocks, 1));

    // WRITE to a read-only medium: DATA PROTECT / WRITE PROTECTED (SBC-3 §4.11).
    let zeros = vec![0u8; bs as usize];
    l.v.push(Entry {
        id: "write10-read-only".into(),
        dir: Dir::Out,
        len: bs,
        cdb: rw10(0x2A, 0, 1),
        out: zeros.clone(),
        form: Form::Exact,
    });
    l.v.push(Entry {
        id: "write16-past-end".into(),
        dir: Dir::Out,
        len: bs,
        cdb: rw16(0x8A, blocks, 1),
        out: zeros,
        form: Form::Exact,
    });

    // SYNCHRONIZE CACHE 10/16 (SBC-3 §5.22, §5.23).
    l.none("synchronize-cache10", &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    l.none("synchronize-cache10-past-end", &rw10(0x35, blocks32, 1));
    l.none(
        "synchronize-cache16",
        &[0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    );

    // REPORT LUNS (SPC-4 §6.33).
    let rl = |select: u8, alloc: u32| {
        let a = be32(alloc);
        vec![0xA0, 0, select, 0, 0, 0, a[0], a[1], a[2], a[3], 0, 0]
    };
    l.inn("report-luns", 16, &rl(0, 16));
    l.inn("report-luns-select1", 16, &rl(1, 16));
    l.inn("report-luns-select2", 16, &rl(2, 16));
    l.inn("report-luns-select-bad", 16, &rl(0x80, 16));
    l.inn("report-luns-alloc4", 4, &rl(0, 4));

    // Invalid opcodes (SPC-4 §4.5.6: INVALID COMMAND OPERATION CODE).
    for op in [0x02u8, 0x06, 0x0C, 0xC5, 0xE7] {
        l.inn(format!("opcode-{op:02x}"), 16, &[op, 0, 0, 0, 16, 0]);
    }

    // PREVENT ALLOW MEDIUM REMOVAL, START STOP UNIT (SBC-3 §5.13, §5.19; MMC-6 §6.39, §6.40).
    l.none("prevent-removal", &[0x1E, 0, 0, 0, 1, 0]);
    l.none("allow-removal", &[0x1E, 0, 0, 0, 0, 0]);
    l.none("start-unit", &[0x1B, 0, 0, 0, 1, 0]);
    l.none("start-unit-immed", &[0x1B, 1, 0, 0, 1, 0]);
    l.none("stop-unit", &[0x1B, 0, 0, 0, 0, 0]);
    l.none("start-unit-again", &[0x1B, 0, 0, 0, 1, 0]);
    l.none("tur-after-start", &[0x00, 0, 0, 0, 0, 0]);
    l.v
}

/// The script text for `entries`.
pub fn text(entries: &[Entry]) -> String {
    let mut s = String::new();
    for e in entries {
        s.push_str(&e.line());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_lines_well_formed() {
        for d in DeviceKind::ALL {
            let e = entries(d, 2048);
            let mut ids: Vec<_> = e.iter().map(|e| e.id.as_str()).collect();
            ids.sort();
            let n = ids.len();
            ids.dedup();
            assert_eq!(ids.len(), n, "duplicate ids for {d:?}");
            assert!(n > 100, "only {n} CDBs");
            for x in &e {
                assert!(!x.cdb.is_empty() && x.cdb.len() <= 16);
                assert_eq!(
                    x.line().split_whitespace().count(),
                    4 + usize::from(x.dir == Dir::Out)
                );
            }
        }
    }
}
