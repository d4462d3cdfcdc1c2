//! Shared helpers for the SCSI target tests: a Vec-backed medium and CDB builders.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};

use rvblk_core::image::{DeviceKind, LoaderSource, MemoryImage, WritePolicy};
use rvblk_core::scsi::{
    CommandStatus, DataDirection, Medium, MediumError, Outcome, ScsiTarget, SenseKey,
};

/// Image bytes in a Vec; counts calls, can fail on demand, and panics on any access outside
/// the image (the target promised to check bounds first).
pub struct VecMedium {
    pub bytes: RefCell<Vec<u8>>,
    pub fail: Cell<Option<MediumError>>,
    pub reads: Cell<usize>,
    pub writes: Cell<usize>,
}

/// Deterministic content: every 512-byte sector differs and every byte within it too.
pub fn pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(31) ^ (offset >> 9).wrapping_mul(0x9D)) as u8
}

impl VecMedium {
    pub fn patterned(len: usize) -> Self {
        Self {
            bytes: RefCell::new((0..len as u64).map(pattern).collect()),
            fail: Cell::new(None),
            reads: Cell::new(0),
            writes: Cell::new(0),
        }
    }

    pub fn snapshot(&self) -> Vec<u8> {
        self.bytes.borrow().clone()
    }
}

impl Medium for VecMedium {
    fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), MediumError> {
        self.reads.set(self.reads.get() + 1);
        if let Some(e) = self.fail.get() {
            return Err(e);
        }
        let bytes = self.bytes.borrow();
        let start = offset as usize;
        let end = start.checked_add(dst.len()).expect("offset overflow");
        assert!(end <= bytes.len(), "read beyond the image: {start}..{end}");
        dst.copy_from_slice(&bytes[start..end]);
        Ok(())
    }

    fn write(&self, offset: u64, src: &[u8]) -> Result<(), MediumError> {
        self.writes.set(self.writes.get() + 1);
        if let Some(e) = self.fail.get() {
            return Err(e);
        }
        let mut bytes = self.bytes.borrow_mut();
        let start = offset as usize;
        let end = start.checked_add(src.len()).expect("offset overflow");
        assert!(end <= bytes.len(), "write beyond the image: {start}..{end}");
        bytes[start..end].copy_from_slice(src);
        Ok(())
    }
}

pub fn image(kind: DeviceKind, length: u64, write_policy: WritePolicy) -> MemoryImage {
    MemoryImage {
        kind,
        phys_base: 0x1000_0000,
        length,
        write_policy,
        source: LoaderSource::Grub4Dos,
        table_address: 0x9_F000,
        slot: 0,
        bios_drive: 0x80,
    }
}

/// A target of `blocks` blocks with patterned content.
pub fn setup(kind: DeviceKind, blocks: u64, policy: WritePolicy) -> (ScsiTarget, VecMedium) {
    let len = blocks * u64::from(kind.block_size());
    (
        ScsiTarget::new(image(kind, len, policy)),
        VecMedium::patterned(len as usize),
    )
}

/// Runs a data-in command with a buffer of `buf_len` bytes; returns the outcome and the bytes
/// the target reported as transferred.
pub fn data_in(t: &ScsiTarget, m: &VecMedium, cdb: &[u8], buf_len: usize) -> (Outcome, Vec<u8>) {
    let mut buf = vec![0xEEu8; buf_len];
    let o = t.execute(cdb, &mut buf, DataDirection::In, m);
    assert!(o.transferred() <= buf_len);
    buf.truncate(o.transferred());
    (o, buf)
}

/// Runs a data-in command that must succeed; returns the data.
pub fn ok_in(t: &ScsiTarget, m: &VecMedium, cdb: &[u8], buf_len: usize) -> Vec<u8> {
    let (o, data) = data_in(t, m, cdb, buf_len);
    assert_eq!(o.status(), CommandStatus::Good, "{cdb:02X?} -> {o:?}");
    data
}

pub fn no_data(t: &ScsiTarget, m: &VecMedium, cdb: &[u8]) -> Outcome {
    t.execute(cdb, &mut [], DataDirection::None, m)
}

pub fn data_out(t: &ScsiTarget, m: &VecMedium, cdb: &[u8], data: &[u8]) -> Outcome {
    let mut buf = data.to_vec();
    let o = t.execute(cdb, &mut buf, DataDirection::Out, m);
    assert_eq!(buf, data, "a data-out buffer must not be modified");
    o
}

/// Asserts CHECK CONDITION with the given sense key / ASC / ASCQ and checks the fixed-format
/// sense bytes agree.
#[track_caller]
pub fn assert_sense(o: &Outcome, key: SenseKey, asc: u8, ascq: u8) {
    assert_eq!(o.status(), CommandStatus::CheckCondition, "{o:?}");
    assert_eq!(o.transferred(), 0);
    let s = o.sense().expect("sense data");
    let b = s.to_bytes();
    assert_eq!(b[0], 0x70);
    assert_eq!(b[7], 10);
    assert_eq!(
        (b[2] & 0x0F, b[12], b[13]),
        (key as u8, asc, ascq),
        "sense {b:02X?}"
    );
}

#[track_caller]
pub fn assert_invalid_field(o: &Outcome) {
    assert_sense(o, SenseKey::IllegalRequest, 0x24, 0x00);
}

#[track_caller]
pub fn assert_invalid_opcode(o: &Outcome) {
    assert_sense(o, SenseKey::IllegalRequest, 0x20, 0x00);
}

#[track_caller]
pub fn assert_lba_out_of_range(o: &Outcome) {
    assert_sense(o, SenseKey::IllegalRequest, 0x21, 0x00);
}

#[track_caller]
pub fn assert_write_protected(o: &Outcome) {
    assert_sense(o, SenseKey::DataProtect, 0x27, 0x00);
}

#[track_caller]
pub fn assert_good(o: &Outcome, transferred: usize) {
    assert_eq!(o.status(), CommandStatus::Good, "{o:?}");
    assert_eq!(o.transferred(), transferred);
}

/// Field pointer bytes 15..18 of the fixed sense data.
pub fn sense_key_specific(o: &Outcome) -> [u8; 3] {
    let b = o.sense().expect("sense").to_bytes();
    [b[15], b[16], b[17]]
}

pub fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes(b[..2].try_into().unwrap())
}

pub fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

pub fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().unwrap())
}

pub fn read6(lba: u32, len: u8) -> [u8; 6] {
    let l = lba.to_be_bytes();
    [0x08, l[1] & 0x1F, l[2], l[3], len, 0]
}

pub fn write6(lba: u32, len: u8) -> [u8; 6] {
    let mut c = read6(lba, len);
    c[0] = 0x0A;
    c
}

pub fn cdb10(op: u8, lba: u32, len: u16) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let n = len.to_be_bytes();
    [op, 0, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0]
}

pub fn cdb12(op: u8, lba: u32, len: u32) -> [u8; 12] {
    let l = lba.to_be_bytes();
    let n = len.to_be_bytes();
    [op, 0, l[0], l[1], l[2], l[3], n[0], n[1], n[2], n[3], 0, 0]
}

pub fn cdb16(op: u8, lba: u64, len: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = op;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&len.to_be_bytes());
    c
}

pub fn inquiry(evpd: bool, page: u8, alloc: u16) -> [u8; 6] {
    let a = alloc.to_be_bytes();
    [0x12, u8::from(evpd), page, a[0], a[1], 0]
}

pub fn mode_sense6(dbd: bool, pc: u8, page: u8, alloc: u8) -> [u8; 6] {
    [
        0x1A,
        if dbd { 0x08 } else { 0 },
        (pc << 6) | page,
        0,
        alloc,
        0,
    ]
}

pub fn mode_sense10(dbd: bool, llbaa: bool, pc: u8, page: u8, alloc: u16) -> [u8; 10] {
    let a = alloc.to_be_bytes();
    let flags = if dbd { 0x08 } else { 0 } | if llbaa { 0x10 } else { 0 };
    [0x5A, flags, (pc << 6) | page, 0, 0, 0, 0, a[0], a[1], 0]
}

pub fn read_capacity16(alloc: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x9E;
    c[1] = 0x10;
    c[10..14].copy_from_slice(&alloc.to_be_bytes());
    c
}

/// Expected medium bytes for `blocks` blocks starting at `lba`.
pub fn expected(m: &VecMedium, bs: usize, lba: u64, blocks: usize) -> Vec<u8> {
    let start = lba as usize * bs;
    m.bytes.borrow()[start..start + blocks * bs].to_vec()
}
