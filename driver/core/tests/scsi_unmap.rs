//! Thin provisioning of runtime RAM disks (`docs/control.md` §10.2): UNMAP and what tells Windows
//! to send it (Logical Block Provisioning VPD page, Block Limits, READ CAPACITY(16) LBPME).

mod scsi_common;

use std::cell::RefCell;

use rvblk_core::image::DeviceKind;
use rvblk_core::scsi::{Medium, MediumError, ScsiTarget, SenseKey};
use scsi_common::*;

const BLOCKS: u64 = 16_384; // 8 MiB of 512-byte blocks
const GRANULARITY: u32 = 4096;

/// Records the unmapped ranges.
struct Recorder {
    inner: VecMedium,
    unmapped: RefCell<Vec<(u64, u64)>>,
}

impl Medium for Recorder {
    fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), MediumError> {
        self.inner.read(offset, dst)
    }
    fn write(&self, offset: u64, src: &[u8]) -> Result<(), MediumError> {
        self.inner.write(offset, src)
    }
    fn unmap(&self, offset: u64, len: u64) -> Result<(), MediumError> {
        self.unmapped.borrow_mut().push((offset, len));
        Ok(())
    }
}

fn thin(kind: DeviceKind, read_only: bool) -> ScsiTarget {
    ScsiTarget::for_runtime(kind, BLOCKS * 512, read_only, 7).with_unmap(GRANULARITY)
}

fn run(t: &ScsiTarget, cdb: &[u8], data: &mut [u8], m: &Recorder) -> rvblk_core::scsi::Outcome {
    t.execute(cdb, data, rvblk_core::scsi::DataDirection::Out, m)
}

fn recorder() -> Recorder {
    Recorder {
        inner: VecMedium::patterned((BLOCKS * 512) as usize),
        unmapped: RefCell::new(Vec::new()),
    }
}

fn unmap_cdb(param_len: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = 0x42;
    c[7..9].copy_from_slice(&param_len.to_be_bytes());
    c
}

fn param_list(ranges: &[(u64, u32)]) -> Vec<u8> {
    let mut p = vec![0u8; 8];
    let bd = (ranges.len() * 16) as u16;
    p[0..2].copy_from_slice(&(bd + 6).to_be_bytes());
    p[2..4].copy_from_slice(&bd.to_be_bytes());
    for &(lba, n) in ranges {
        p.extend_from_slice(&lba.to_be_bytes());
        p.extend_from_slice(&n.to_be_bytes());
        p.extend_from_slice(&[0; 4]);
    }
    p
}

#[test]
fn thin_disk_reports_provisioning() {
    let t = thin(DeviceKind::Disk, false);
    let m = VecMedium::patterned((BLOCKS * 512) as usize);
    let pages = ok_in(&t, &m, &[0x12, 1, 0x00, 0, 255, 0], 255);
    assert!(pages[4..].contains(&0xB2), "B2 listed: {pages:?}");
    let b0 = ok_in(&t, &m, &[0x12, 1, 0xB0, 0, 255, 0], 255);
    assert_eq!(b0.len(), 64);
    assert_eq!(
        &b0[20..24],
        &u32::MAX.to_be_bytes(),
        "MAXIMUM UNMAP LBA COUNT"
    );
    assert_eq!(
        &b0[24..28],
        &256u32.to_be_bytes(),
        "MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT"
    );
    assert_eq!(
        &b0[28..32],
        &GRANULARITY.to_be_bytes(),
        "OPTIMAL UNMAP GRANULARITY"
    );
    assert_eq!(b0[32] & 0x80, 0x80, "UGAVALID");
    let b2 = ok_in(&t, &m, &[0x12, 1, 0xB2, 0, 255, 0], 255);
    assert_eq!(b2, [0x00, 0xB2, 0x00, 0x04, 0x00, 0x80, 0x02, 0x00]);
    let rc = ok_in(
        &t,
        &m,
        &[0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0],
        32,
    );
    assert_eq!(rc[14] & 0xC0, 0x80, "LBPME set, LBPRZ clear");
}

#[test]
fn ordinary_luns_are_not_thin() {
    for t in [
        thin(DeviceKind::Disk, true),
        thin(DeviceKind::Floppy, false),
        ScsiTarget::for_runtime(DeviceKind::Disk, BLOCKS * 512, false, 1),
    ] {
        let m = VecMedium::patterned((BLOCKS * 512) as usize);
        assert!(!t.thin());
        let (o, _) = data_in(&t, &m, &[0x12, 1, 0xB2, 0, 255, 0], 255);
        assert_invalid_field(&o);
        let rc = ok_in(
            &t,
            &m,
            &[0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0],
            32,
        );
        assert_eq!(rc[14], 0);
        assert_invalid_opcode(&data_out(&t, &m, &unmap_cdb(24), &param_list(&[(0, 8)])));
    }
}

#[test]
fn unmap_hands_each_range_to_the_medium() {
    let t = thin(DeviceKind::Disk, false);
    let m = recorder();
    let mut p = param_list(&[(0, 4096), (8192, 0), (BLOCKS - 8, 8)]);
    let o = run(&t, &unmap_cdb(p.len() as u16), &mut p, &m);
    assert_good(&o, 56);
    assert_eq!(
        *m.unmapped.borrow(),
        [(0, 4096 * 512), ((BLOCKS - 8) * 512, 8 * 512)]
    );
}

#[test]
fn unmap_checks_every_range_first() {
    let t = thin(DeviceKind::Disk, false);
    let m = recorder();
    let mut p = param_list(&[(0, 8), (BLOCKS - 1, 2)]);
    let o = run(&t, &unmap_cdb(p.len() as u16), &mut p, &m);
    assert_lba_out_of_range(&o);
    assert!(m.unmapped.borrow().is_empty(), "nothing unmapped");
    let mut p = param_list(&[(u64::MAX, 1)]);
    assert_lba_out_of_range(&run(&t, &unmap_cdb(p.len() as u16), &mut p, &m));
}

#[test]
fn unmap_parameter_list_rules() {
    let t = thin(DeviceKind::Disk, false);
    let m = recorder();
    // Length 0: nothing, not an error.
    assert_good(&run(&t, &unmap_cdb(0), &mut [], &m), 0);
    // Shorter than the header.
    let o = run(&t, &unmap_cdb(4), &mut [0; 4], &m);
    assert_sense(&o, SenseKey::IllegalRequest, 0x1A, 0x00);
    // Longer than the buffer the SRB carries.
    let mut p = param_list(&[(0, 8)]);
    assert_invalid_field(&run(&t, &unmap_cdb(64), &mut p, &m));
    // ANCHOR is not supported.
    let mut c = unmap_cdb(24);
    c[1] = 1;
    assert_invalid_field(&run(&t, &c, &mut param_list(&[(0, 8)]), &m));
    // Too many descriptors.
    let many: Vec<(u64, u32)> = (0..257).map(|i| (i, 1)).collect();
    let mut p = param_list(&many);
    let o = run(&t, &unmap_cdb(p.len() as u16), &mut p, &m);
    assert_sense(&o, SenseKey::IllegalRequest, 0x26, 0x00);
    assert!(m.unmapped.borrow().is_empty());
}
