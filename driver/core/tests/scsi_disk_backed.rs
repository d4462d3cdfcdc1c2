//! Disk-backed targets (`docs/driver.md` "Disk-backed images"): the core target over a medium
//! that follows `rvblk_core::backed::Plan` on a simulated disk, the way the port's worker does —
//! content through fragmented extents, writes landing only inside them, sector alignment with a
//! bounce sector, failures as the contracted sense data.
mod scsi_common;

use std::cell::{Cell, RefCell};

use arrayvec::ArrayVec;
use rvblk_core::backed::{medium_error, Plan, Step};
use rvblk_core::image::{
    BackingSource, DeviceKind, DiskBackedImage, DiskEvidence, Extent, WritePolicy,
};
use rvblk_core::scsi::{
    CommandStatus, DataDirection, Medium, MediumError, Outcome, ScsiTarget, SenseKey,
};
use scsi_common::*;

/// A whole disk in memory, read and written only in whole sectors (as a real disk driver
/// insists), with a count of requests and an optional failure status.
struct Disk {
    bytes: RefCell<Vec<u8>>,
    sector: usize,
    requests: Cell<usize>,
    fail: Cell<Option<u32>>,
}

impl Disk {
    fn new(len: usize, sector: usize) -> Self {
        Self {
            bytes: RefCell::new((0..len as u64).map(|o| pattern(o ^ 0x5A5A)).collect()),
            sector,
            requests: Cell::new(0),
            fail: Cell::new(None),
        }
    }

    fn io(&self, write: bool, at: u64, buf: &mut [u8]) -> Result<(), MediumError> {
        self.requests.set(self.requests.get() + 1);
        if let Some(st) = self.fail.get() {
            return Err(medium_error(st));
        }
        assert_eq!(at as usize % self.sector, 0, "unaligned disk offset {at}");
        assert_eq!(
            buf.len() % self.sector,
            0,
            "unaligned disk length {}",
            buf.len()
        );
        let at = at as usize;
        let mut d = self.bytes.borrow_mut();
        if write {
            d[at..at + buf.len()].copy_from_slice(buf);
        } else {
            buf.copy_from_slice(&d[at..at + buf.len()]);
        }
        Ok(())
    }
}

/// The worker's medium in miniature: the plan, direct requests, a bounce sector.
struct PlannedMedium<'a> {
    image: &'a DiskBackedImage,
    disk: &'a Disk,
}

impl PlannedMedium<'_> {
    fn run(
        &self,
        offset: u64,
        len: usize,
        mut f: impl FnMut(Step, &Disk) -> Result<(), MediumError>,
    ) -> Result<(), MediumError> {
        let plan = Plan::new(self.image, offset, len, self.disk.sector as u32)
            .map_err(|_| MediumError::Unreadable)?;
        for step in plan {
            f(step.map_err(|_| MediumError::Unreadable)?, self.disk)?;
        }
        Ok(())
    }
}

impl Medium for PlannedMedium<'_> {
    fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), MediumError> {
        let ss = self.disk.sector;
        let len = dst.len();
        let dst = RefCell::new(dst);
        self.run(offset, len, |step, disk| match step {
            Step::Direct { disk: at, buf, len } => {
                disk.io(false, at, &mut dst.borrow_mut()[buf..buf + len])
            }
            Step::Bounce {
                disk: at,
                skip,
                buf,
                len,
            } => {
                let mut bounce = vec![0u8; ss];
                disk.io(false, at, &mut bounce)?;
                dst.borrow_mut()[buf..buf + len].copy_from_slice(&bounce[skip..skip + len]);
                Ok(())
            }
        })
    }

    fn write(&self, offset: u64, src: &[u8]) -> Result<(), MediumError> {
        let ss = self.disk.sector;
        self.run(offset, src.len(), |step, disk| match step {
            Step::Direct { disk: at, buf, len } => {
                disk.io(true, at, &mut src[buf..buf + len].to_vec())
            }
            Step::Bounce {
                disk: at,
                skip,
                buf,
                len,
            } => {
                let mut bounce = vec![0u8; ss];
                disk.io(false, at, &mut bounce)?;
                bounce[skip..skip + len].copy_from_slice(&src[buf..buf + len]);
                disk.io(true, at, &mut bounce)
            }
        })
    }
}

fn rd(t: &ScsiTarget, m: &impl Medium, cdb: &[u8], len: usize) -> (Outcome, Vec<u8>) {
    let mut buf = vec![0u8; len];
    let o = t.execute(cdb, &mut buf, DataDirection::In, m);
    (o, buf)
}

fn rd_ok(t: &ScsiTarget, m: &impl Medium, cdb: &[u8], len: usize) -> Vec<u8> {
    let (o, mut buf) = rd(t, m, cdb, len);
    assert_eq!(o.status(), CommandStatus::Good, "{o:?}");
    buf.truncate(o.transferred());
    buf
}

fn wr(t: &ScsiTarget, m: &impl Medium, cdb: &[u8], data: &[u8]) -> Outcome {
    let mut d = data.to_vec();
    t.execute(cdb, &mut d, DataDirection::Out, m)
}

fn image(
    kind: DeviceKind,
    sector: u32,
    extents: &[(u64, u64)],
    length: u64,
    policy: WritePolicy,
) -> DiskBackedImage {
    DiskBackedImage {
        kind,
        write_policy: policy,
        source: BackingSource::Grub4Dos,
        bios_drive: 0x80,
        emulated_drive: 0x81,
        sector_size: sector,
        extents: extents
            .iter()
            .map(|&(start, sectors)| Extent { start, sectors })
            .collect::<ArrayVec<_, 64>>(),
        length,
        evidence: DiskEvidence::BiosDrive,
        table_address: 0x8000,
        slot: 1,
    }
}

/// The image's bytes as the extents lay them out on the disk.
fn image_bytes(img: &DiskBackedImage, disk: &Disk) -> Vec<u8> {
    let d = disk.bytes.borrow();
    let ss = img.sector_size as usize;
    let mut out = Vec::new();
    for e in &img.extents {
        out.extend_from_slice(&d[e.start as usize * ss..(e.start + e.sectors) as usize * ss]);
    }
    out.truncate(img.length as usize);
    out
}

#[test]
fn fragmented_hdd_image_reads_and_writes_only_inside_its_extents() {
    // 64 KiB disk of 512-byte sectors; a 24-sector image in three fragments out of order.
    let disk = Disk::new(128 * 512, 512);
    let img = image(
        DeviceKind::Disk,
        512,
        &[(40, 8), (10, 8), (90, 8)],
        24 * 512,
        WritePolicy::ReadWrite,
    );
    let t = ScsiTarget::for_disk_backed(&img);
    let m = PlannedMedium {
        image: &img,
        disk: &disk,
    };
    let want = image_bytes(&img, &disk);
    // Every block, and a read across both fragment boundaries.
    let all = rd_ok(&t, &m, &cdb10(0x28, 0, 24), 24 * 512);
    assert_eq!(all, want);
    let mid = rd_ok(&t, &m, &cdb10(0x28, 6, 12), 12 * 512);
    assert_eq!(mid, want[6 * 512..18 * 512]);
    // READ CAPACITY is the image's.
    let cap = rd_ok(&t, &m, &cdb10(0x25, 0, 0), 8);
    assert_eq!((be32(&cap[0..4]), be32(&cap[4..8])), (23, 512));

    // A write across the fragment boundaries changes exactly those bytes on the disk.
    let before = disk.bytes.borrow().clone();
    let data: Vec<u8> = (0..10 * 512).map(|i| (i % 251) as u8 ^ 0xC3).collect();
    assert_good(&wr(&t, &m, &cdb10(0x2A, 5, 10), &data), 10 * 512);
    let after = disk.bytes.borrow().clone();
    let mut expect = before.clone();
    // image blocks 5..15: 5..8 in extent 0 (disk 45..48), 8..15 in extent 1 (disk 10..17).
    expect[45 * 512..48 * 512].copy_from_slice(&data[..3 * 512]);
    expect[10 * 512..17 * 512].copy_from_slice(&data[3 * 512..]);
    assert_eq!(
        after, expect,
        "bytes outside the written extent range changed"
    );
    assert_eq!(rd_ok(&t, &m, &cdb10(0x28, 5, 10), 10 * 512), data);
    // Past the end: LBA OUT OF RANGE, no disk request.
    let n = disk.requests.get();
    let (o, _) = rd(&t, &m, &cdb10(0x28, 23, 2), 1024);
    assert_lba_out_of_range(&o);
    assert_eq!(disk.requests.get(), n);
}

#[test]
fn small_blocks_on_a_4k_disk_go_through_the_bounce_sector() {
    // A 512-byte-block disk image (Ventoy IMG) on a 4096-byte-sector stick: two extents.
    let disk = Disk::new(64 * 4096, 4096);
    let img = image(
        DeviceKind::Disk,
        4096,
        &[(3, 2), (20, 3)],
        5 * 4096,
        WritePolicy::ReadWrite,
    );
    let t = ScsiTarget::for_disk_backed(&img);
    let m = PlannedMedium {
        image: &img,
        disk: &disk,
    };
    let want = image_bytes(&img, &disk);
    for (lba, blocks) in [(0u32, 1u16), (1, 7), (7, 2), (15, 9), (3, 30), (39, 1)] {
        let got = rd_ok(&t, &m, &cdb10(0x28, lba, blocks), blocks as usize * 512);
        let at = lba as usize * 512;
        assert_eq!(
            got,
            want[at..at + blocks as usize * 512],
            "lba {lba} blocks {blocks}"
        );
    }
    // One 512-byte write in the middle of a disk sector: read-modify-write of that sector only.
    let before = disk.bytes.borrow().clone();
    assert_good(&wr(&t, &m, &cdb10(0x2A, 9, 1), &[0xEE; 512]), 512);
    let after = disk.bytes.borrow().clone();
    let mut expect = before;
    // Image block 9 = image byte 4608 = extent 0, sector 1 (disk sector 4), offset 512.
    expect[4 * 4096 + 512..4 * 4096 + 1024].fill(0xEE);
    assert_eq!(after, expect);
}

#[test]
fn read_only_kinds_are_refused_before_the_disk() {
    let disk = Disk::new(64 * 2048, 2048);
    let img = image(
        DeviceKind::CdRom,
        2048,
        &[(4, 20)],
        20 * 2048,
        WritePolicy::ReadWrite,
    );
    let t = ScsiTarget::for_disk_backed(&img);
    let m = PlannedMedium {
        image: &img,
        disk: &disk,
    };
    assert_write_protected(&wr(&t, &m, &cdb10(0x2A, 0, 1), &[0; 2048]));
    assert_eq!(disk.requests.get(), 0);
    let want = image_bytes(&img, &disk);
    assert_eq!(
        rd_ok(&t, &m, &cdb10(0x28, 16, 1), 2048),
        want[16 * 2048..17 * 2048]
    );
}

#[test]
fn disk_failures_become_the_contracted_sense() {
    let disk = Disk::new(64 * 512, 512);
    let img = image(
        DeviceKind::Disk,
        512,
        &[(8, 16)],
        16 * 512,
        WritePolicy::ReadWrite,
    );
    let t = ScsiTarget::for_disk_backed(&img);
    let m = PlannedMedium {
        image: &img,
        disk: &disk,
    };
    let read = |st: u32| {
        disk.fail.set(Some(st));
        rd(&t, &m, &cdb10(0x28, 0, 1), 512).0
    };
    let write = |st: u32| {
        disk.fail.set(Some(st));
        wr(&t, &m, &cdb10(0x2A, 0, 1), &[1; 512])
    };
    // Removed stick.
    assert_sense(&read(0xC000_000E), SenseKey::NotReady, 0x3A, 0x00);
    assert_sense(&write(0xC000_02B6), SenseKey::NotReady, 0x3A, 0x00);
    // Other errors.
    assert_sense(&read(0xC000_0185), SenseKey::MediumError, 0x11, 0x00);
    assert_sense(&write(0xC000_0185), SenseKey::MediumError, 0x0C, 0x00);
    // Timed out and cancelled.
    assert_sense(&read(0xC000_0120), SenseKey::AbortedCommand, 0x00, 0x00);
    // No memory for the IRP: retried.
    assert_eq!(read(0xC000_009A).status(), CommandStatus::Busy);
}

#[test]
fn identity_is_stable_and_independent_of_table_addresses() {
    let a = image(
        DeviceKind::CdRom,
        512,
        &[(100, 40)],
        10 * 2048,
        WritePolicy::ReadOnly,
    );
    let mut b = a.clone();
    b.table_address = 0x9_0000;
    assert_eq!(
        ScsiTarget::for_disk_backed(&a).identity(),
        ScsiTarget::for_disk_backed(&b).identity()
    );
    let mut c = a.clone();
    c.extents[0].start = 101;
    assert_ne!(
        ScsiTarget::for_disk_backed(&a).identity(),
        ScsiTarget::for_disk_backed(&c).identity()
    );
}
