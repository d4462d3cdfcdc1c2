//! The floppy target: a removable direct-access device with 512-byte blocks.

mod scsi_common;

use rvblk_core::image::{DeviceKind, WritePolicy};
use scsi_common::*;

const BS: usize = 512;

#[test]
fn inquiry_floppy_is_removable_disk() {
    let (t, m) = setup(DeviceKind::Floppy, 2880, WritePolicy::ReadWrite);
    let d = ok_in(&t, &m, &inquiry(false, 0, 36), 36);
    assert_eq!(d[0], 0x00);
    assert_eq!(d[1], 0x80, "RMB");
    assert_eq!(&d[16..32], b"RAM FLOPPY      ");
    let d = ok_in(&t, &m, &inquiry(true, 0, 255), 255);
    assert_eq!(&d[4..], &[0x00, 0x80, 0x83, 0xB0, 0xB1]);
}

#[test]
fn capacity_is_the_whole_image() {
    let (t, m) = setup(DeviceKind::Floppy, 2880, WritePolicy::ReadWrite);
    let d = ok_in(&t, &m, &cdb10(0x25, 0, 0), 8);
    assert_eq!(be32(&d), 2879);
    assert_eq!(be32(&d[4..]), 512);
}

#[test]
fn flexible_disk_page_geometry() {
    for (blocks, cyl, heads, spt) in [
        (2880u64, 80u16, 2u8, 18u8),
        (1440, 80, 2, 9),
        (720, 40, 2, 9),
        (2400, 80, 2, 15),
        (5760, 80, 2, 36),
        (3360, 80, 2, 21),
        (4000, 112, 2, 18),
    ] {
        let (t, m) = setup(DeviceKind::Floppy, blocks, WritePolicy::ReadWrite);
        let d = ok_in(&t, &m, &mode_sense6(true, 0, 0x05, 255), 255);
        assert_eq!(d.len(), 4 + 32, "{blocks}");
        let p = &d[4..];
        assert_eq!((p[0], p[1]), (0x05, 0x1E));
        assert_eq!(p[4], heads, "{blocks}");
        assert_eq!(p[5], spt, "{blocks}");
        assert_eq!(be16(&p[6..]), 512);
        assert_eq!(be16(&p[8..]), cyl, "{blocks}");
        assert!(u64::from(cyl) * u64::from(heads) * u64::from(spt) >= blocks);
    }
}

#[test]
fn all_pages_in_ascending_order() {
    let (t, m) = setup(DeviceKind::Floppy, 2880, WritePolicy::ReadWrite);
    let d = ok_in(&t, &m, &mode_sense10(false, false, 0, 0x3F, 512), 512);
    assert_eq!(usize::from(be16(&d)) + 2, d.len());
    assert_eq!(be16(&d[6..]), 8);
    assert_eq!(be32(&d[8..]), 2880);
    let pages = &d[16..];
    assert_eq!(pages[0], 0x05);
    assert_eq!(pages[32], 0x08);
    assert_eq!(pages.len(), 32 + 20);
}

#[test]
fn read_write_and_protect() {
    let (t, m) = setup(DeviceKind::Floppy, 2880, WritePolicy::ReadWrite);
    let payload = vec![0xA5u8; BS];
    assert_good(&data_out(&t, &m, &cdb10(0x2A, 2879, 1), &payload), BS);
    assert_eq!(ok_in(&t, &m, &cdb10(0x28, 2879, 1), BS), payload);
    assert_lba_out_of_range(&data_in(&t, &m, &cdb10(0x28, 2880, 1), BS).0);

    let (t, m) = setup(DeviceKind::Floppy, 2880, WritePolicy::ReadOnly);
    assert_write_protected(&data_out(&t, &m, &write6(0, 1), &payload));
    let d = ok_in(&t, &m, &mode_sense6(true, 0, 0x3F, 255), 255);
    assert_eq!(d[2] & 0x80, 0x80);
    assert_eq!(m.writes.get(), 0);
}

#[test]
fn mmc_commands_are_rejected() {
    let (t, m) = setup(DeviceKind::Floppy, 2880, WritePolicy::ReadWrite);
    assert_invalid_opcode(&data_in(&t, &m, &[0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0], 12).0);
    assert_invalid_field(&data_in(&t, &m, &mode_sense6(true, 0, 0x2A, 255), 255).0);
}
