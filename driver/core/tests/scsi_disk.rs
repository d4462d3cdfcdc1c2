//! SBC-3 / SPC-4 behaviour of the disk target.

mod scsi_common;

use rvblk_core::image::{DeviceKind, WritePolicy};
use rvblk_core::scsi::{CommandStatus, DataDirection, MediumError, ScsiTarget, SenseKey};
use scsi_common::*;

const BLOCKS: u64 = 2048; // 1 MiB
const BS: usize = 512;

fn disk() -> (ScsiTarget, VecMedium) {
    setup(DeviceKind::Disk, BLOCKS, WritePolicy::ReadWrite)
}

// ---------------------------------------------------------------- INQUIRY

#[test]
fn inquiry_standard_data() {
    let (t, m) = disk();
    let d = ok_in(&t, &m, &inquiry(false, 0, 255), 255);
    assert_eq!(d.len(), 36);
    assert_eq!(d[0], 0x00, "direct-access, qualifier 0");
    assert_eq!(d[1], 0x00, "fixed disk: RMB clear");
    assert_eq!(d[2], 0x06, "SPC-4");
    assert_eq!(d[3] & 0x0F, 0x02, "response data format 2");
    assert_eq!(usize::from(d[4]) + 5, d.len(), "additional length");
    assert_eq!(&d[8..16], b"RVBLK   ");
    assert_eq!(&d[16..32], b"RAM DISK        ");
    assert!(d[32..36].iter().all(|c| c.is_ascii_graphic() || *c == b' '));
}

#[test]
fn inquiry_allocation_length_truncates() {
    let (t, m) = disk();
    let full = ok_in(&t, &m, &inquiry(false, 0, 255), 255);
    let d = ok_in(&t, &m, &inquiry(false, 0, 5), 255);
    assert_eq!(d, full[..5]);
    // Allocation length 0: nothing transferred, not an error (SPC-4 §4.2.5.6).
    let (o, _) = data_in(&t, &m, &inquiry(false, 0, 0), 255);
    assert_good(&o, 0);
    // A buffer shorter than the allocation length truncates as well.
    let d = ok_in(&t, &m, &inquiry(false, 0, 96), 20);
    assert_eq!(d, full[..20]);
}

#[test]
fn inquiry_page_without_evpd_is_invalid() {
    let (t, m) = disk();
    let (o, _) = data_in(&t, &m, &inquiry(false, 0x80, 255), 255);
    assert_invalid_field(&o);
    // SKSV | C/D | BPV, bit 7, byte 2.
    assert_eq!(sense_key_specific(&o), [0xC8 | 7, 0, 2]);
}

#[test]
fn inquiry_cmddt_is_invalid() {
    let (t, m) = disk();
    let (o, _) = data_in(&t, &m, &[0x12, 0x02, 0, 0, 255, 0], 255);
    assert_invalid_field(&o);
}

#[test]
fn vpd_supported_pages() {
    let (t, m) = disk();
    let d = ok_in(&t, &m, &inquiry(true, 0x00, 255), 255);
    assert_eq!(&d[..4], &[0x00, 0x00, 0x00, 5]);
    assert_eq!(&d[4..], &[0x00, 0x80, 0x83, 0xB0, 0xB1]);
}

#[test]
fn vpd_unit_serial_number() {
    let (t, m) = disk();
    let d = ok_in(&t, &m, &inquiry(true, 0x80, 255), 255);
    assert_eq!(&d[..4], &[0x00, 0x80, 0x00, 16]);
    assert_eq!(d.len(), 20);
    assert!(d[4..].iter().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(&d[4..], &t.identity().serial);
}

#[test]
fn vpd_device_identification() {
    let (t, m) = disk();
    let d = ok_in(&t, &m, &inquiry(true, 0x83, 255), 255);
    assert_eq!(&d[..2], &[0x00, 0x83]);
    assert_eq!(usize::from(be16(&d[2..])), d.len() - 4);
    assert_eq!(d.len(), 4 + 12 + 28);
    // NAA designator: binary, LU association, type 3, length 8, NAA 3h (locally assigned).
    assert_eq!(&d[4..8], &[0x01, 0x03, 0x00, 0x08]);
    assert_eq!(d[8] >> 4, 0x3);
    assert_eq!(be64(&d[8..]), t.identity().naa());
    // T10 vendor id designator: ASCII, type 1.
    assert_eq!(&d[16..20], &[0x02, 0x01, 0x00, 24]);
    assert_eq!(&d[20..28], b"RVBLK   ");
    assert_eq!(&d[28..44], &t.identity().serial);
}

#[test]
fn identifiers_are_stable_and_distinct() {
    let a = ScsiTarget::new(image(DeviceKind::Disk, 1 << 20, WritePolicy::ReadWrite));
    let b = ScsiTarget::new(image(DeviceKind::Disk, 1 << 20, WritePolicy::ReadWrite));
    assert_eq!(a.identity(), b.identity());
    let mut other = image(DeviceKind::Disk, 1 << 20, WritePolicy::ReadWrite);
    other.phys_base += 0x10_0000;
    let c = ScsiTarget::new(other);
    assert_ne!(a.identity().serial, c.identity().serial);
    assert_ne!(a.identity().naa(), c.identity().naa());
    let d = ScsiTarget::new(image(DeviceKind::Disk, 2 << 20, WritePolicy::ReadWrite));
    assert_ne!(a.identity().naa(), d.identity().naa());
    let e = ScsiTarget::new(image(DeviceKind::Floppy, 1 << 20, WritePolicy::ReadWrite));
    assert_ne!(a.identity().naa(), e.identity().naa());
}

#[test]
fn vpd_block_limits_and_characteristics() {
    let (t, m) = disk();
    let d = ok_in(&t, &m, &inquiry(true, 0xB0, 255), 255);
    assert_eq!(&d[..4], &[0x00, 0xB0, 0x00, 0x3C]);
    assert_eq!(d.len(), 64);
    let d = ok_in(&t, &m, &inquiry(true, 0xB1, 255), 255);
    assert_eq!(&d[..4], &[0x00, 0xB1, 0x00, 0x3C]);
    assert_eq!(d.len(), 64);
    assert_eq!(be16(&d[4..]), 0x0001, "non-rotating medium");
}

#[test]
fn vpd_unsupported_page() {
    let (t, m) = disk();
    for page in [0x01, 0x81, 0x86, 0xB2, 0xFF] {
        let (o, _) = data_in(&t, &m, &inquiry(true, page, 255), 255);
        assert_invalid_field(&o);
    }
}

#[test]
fn vpd_truncated_keeps_true_page_length() {
    let (t, m) = disk();
    let d = ok_in(&t, &m, &inquiry(true, 0x83, 6), 255);
    assert_eq!(d.len(), 6);
    assert_eq!(
        be16(&d[2..]),
        40,
        "page length is the full length, not the truncated one"
    );
}

// ---------------------------------------------------------------- small commands

#[test]
fn test_unit_ready_and_friends() {
    let (t, m) = disk();
    assert_good(&no_data(&t, &m, &[0x00; 6]), 0);
    assert_good(&no_data(&t, &m, &[0x1B, 0, 0, 0, 0x01, 0]), 0);
    assert_good(&no_data(&t, &m, &[0x1B, 0, 0, 0, 0x02, 0]), 0);
    assert_good(&no_data(&t, &m, &[0x1E, 0, 0, 0, 0x01, 0]), 0);
    assert_good(&no_data(&t, &m, &cdb10(0x35, 0, 0)), 0);
    assert_good(&no_data(&t, &m, &cdb16(0x91, 0, 0)), 0);
    assert_eq!(m.reads.get() + m.writes.get(), 0, "medium untouched");
}

#[test]
fn synchronize_cache_range() {
    let (t, m) = disk();
    assert_good(&no_data(&t, &m, &cdb10(0x35, BLOCKS as u32 - 1, 1)), 0);
    assert_lba_out_of_range(&no_data(&t, &m, &cdb10(0x35, BLOCKS as u32 - 1, 2)));
    assert_lba_out_of_range(&no_data(&t, &m, &cdb16(0x91, u64::MAX, 1)));
}

#[test]
fn request_sense_is_stateless_no_sense() {
    let (t, m) = disk();
    // An error first: it must not leak into REQUEST SENSE.
    assert_invalid_opcode(&no_data(&t, &m, &[0xFF, 0, 0, 0, 0, 0]));
    let d = ok_in(&t, &m, &[0x03, 0, 0, 0, 18, 0], 255);
    assert_eq!(d.len(), 18);
    assert_eq!(d[0], 0x70);
    assert_eq!(d[2] & 0x0F, 0);
    assert_eq!(d[7], 10);
    assert_eq!((d[12], d[13]), (0, 0));
    let d = ok_in(&t, &m, &[0x03, 0, 0, 0, 8, 0], 255);
    assert_eq!(d.len(), 8);
    // Descriptor format requested: not supported.
    let (o, _) = data_in(&t, &m, &[0x03, 0x01, 0, 0, 18, 0], 255);
    assert_invalid_field(&o);
}

#[test]
fn report_luns_lists_lun0() {
    let (t, m) = disk();
    let mut c = [0u8; 12];
    c[0] = 0xA0;
    c[6..10].copy_from_slice(&256u32.to_be_bytes());
    let d = ok_in(&t, &m, &c, 256);
    assert_eq!(d.len(), 16);
    assert_eq!(be32(&d), 8);
    assert!(d[4..].iter().all(|&b| b == 0));
    // Allocation length < 16 is invalid (SPC-4 §6.27).
    c[6..10].copy_from_slice(&15u32.to_be_bytes());
    assert_invalid_field(&data_in(&t, &m, &c, 256).0);
    // Unknown SELECT REPORT.
    c[6..10].copy_from_slice(&16u32.to_be_bytes());
    c[2] = 0x10;
    assert_invalid_field(&data_in(&t, &m, &c, 256).0);
    // Well-known LUNs only: an empty list.
    c[2] = 0x01;
    let d = ok_in(&t, &m, &c, 256);
    assert_eq!(be32(&d), 0);
}

#[test]
fn mmc_commands_are_not_disk_commands() {
    let (t, m) = disk();
    for op in [0x43u8, 0x46, 0x4A, 0x51, 0x52, 0xBB, 0xBD, 0xBE] {
        let mut c = [0u8; 12];
        c[0] = op;
        c[1] = 1;
        c[8] = 8;
        assert_invalid_opcode(&data_in(&t, &m, &c, 255).0);
    }
}

#[test]
fn unknown_opcodes() {
    let (t, m) = disk();
    for op in [0x01u8, 0x04, 0x15, 0x55, 0x2B, 0x42, 0xA1, 0xC0, 0xFF] {
        let mut c = [0u8; 16];
        c[0] = op;
        assert_invalid_opcode(&data_in(&t, &m, &c, 512).0);
    }
    // Empty CDB.
    assert_invalid_opcode(&data_in(&t, &m, &[], 512).0);
}

#[test]
fn short_cdb_is_invalid_opcode() {
    let (t, m) = disk();
    let full = cdb10(0x28, 0, 1);
    for len in 1..10 {
        let (o, _) = data_in(&t, &m, &full[..len], 512);
        assert_invalid_opcode(&o);
    }
    assert_eq!(m.reads.get(), 0);
    // Longer than needed is fine (ports pad CDBs).
    let mut padded = [0u8; 16];
    padded[..10].copy_from_slice(&full);
    let d = ok_in(&t, &m, &padded, 512);
    assert_eq!(d, expected(&m, BS, 0, 1));
}

#[test]
fn naca_is_rejected() {
    let (t, m) = disk();
    let o = no_data(&t, &m, &[0x00, 0, 0, 0, 0, 0x04]);
    assert_invalid_field(&o);
    assert_eq!(sense_key_specific(&o), [0xC8 | 2, 0, 5]);
}

// ---------------------------------------------------------------- capacity

#[test]
fn read_capacity_10() {
    let (t, m) = disk();
    let d = ok_in(&t, &m, &cdb10(0x25, 0, 0), 8);
    assert_eq!(d.len(), 8);
    assert_eq!(be32(&d), BLOCKS as u32 - 1, "last LBA, the full image");
    assert_eq!(be32(&d[4..]), 512);
    // LBA without PMI is an invalid field (SBC-3 §5.15.1).
    assert_invalid_field(&data_in(&t, &m, &cdb10(0x25, 5, 0), 8).0);
}

#[test]
fn read_capacity_10_saturates_above_32_bits() {
    // 2^32 + 8 blocks of 512 bytes; the medium is never touched so it can stay tiny.
    let blocks = (1u64 << 32) + 8;
    let t = ScsiTarget::new(image(
        DeviceKind::Disk,
        blocks * 512,
        WritePolicy::ReadWrite,
    ));
    let m = VecMedium::patterned(0);
    let d = ok_in(&t, &m, &cdb10(0x25, 0, 0), 8);
    assert_eq!(be32(&d), 0xFFFF_FFFF);
    let d = ok_in(&t, &m, &read_capacity16(32), 32);
    assert_eq!(be64(&d), blocks - 1);
    // Exactly 2^32 blocks: last LBA 0xFFFFFFFF is itself the "too big" marker.
    let t = ScsiTarget::new(image(
        DeviceKind::Disk,
        (1u64 << 32) * 512,
        WritePolicy::ReadWrite,
    ));
    let d = ok_in(&t, &m, &cdb10(0x25, 0, 0), 8);
    assert_eq!(be32(&d), 0xFFFF_FFFF);
    // READ(16) addresses past 32 bits are range-checked against the 64-bit capacity.
    assert_lba_out_of_range(&data_in(&t, &m, &cdb16(0x88, 1u64 << 32, 1), 512).0);
    assert_eq!(m.reads.get(), 0);
}

#[test]
fn read_capacity_16() {
    let (t, m) = disk();
    let d = ok_in(&t, &m, &read_capacity16(32), 64);
    assert_eq!(d.len(), 32);
    assert_eq!(be64(&d), BLOCKS - 1);
    assert_eq!(be32(&d[8..]), 512);
    assert!(d[12..].iter().all(|&b| b == 0));
    // Allocation length truncates.
    let d = ok_in(&t, &m, &read_capacity16(12), 64);
    assert_eq!(d.len(), 12);
    // Other service actions of SERVICE ACTION IN(16) are not implemented.
    let mut c = read_capacity16(32);
    c[1] = 0x12;
    assert_invalid_field(&data_in(&t, &m, &c, 64).0);
}

// ---------------------------------------------------------------- READ / WRITE

#[test]
fn read_all_sizes() {
    let (t, m) = disk();
    let d = ok_in(&t, &m, &read6(3, 2), 1024);
    assert_eq!(d, expected(&m, BS, 3, 2));
    let d = ok_in(&t, &m, &cdb10(0x28, 100, 4), 4 * BS);
    assert_eq!(d, expected(&m, BS, 100, 4));
    let d = ok_in(&t, &m, &cdb12(0xA8, 7, 3), 3 * BS);
    assert_eq!(d, expected(&m, BS, 7, 3));
    let d = ok_in(&t, &m, &cdb16(0x88, 2000, 48), 48 * BS);
    assert_eq!(d, expected(&m, BS, 2000, 48));
    assert_eq!(m.reads.get(), 4, "one medium call per command");
}

#[test]
fn read6_zero_length_means_256_blocks() {
    let (t, m) = disk();
    let d = ok_in(&t, &m, &read6(10, 0), 256 * BS);
    assert_eq!(d.len(), 256 * BS);
    assert_eq!(d, expected(&m, BS, 10, 256));
    // And the buffer has to hold all of them.
    let (o, _) = data_in(&t, &m, &read6(10, 0), 255 * BS);
    assert_invalid_field(&o);
}

#[test]
fn read6_uses_21_bit_lba() {
    let (t, m) = disk();
    // Bits 7-5 of byte 1 are not part of the LBA.
    let c = [0x08, 0xE0, 0x00, 0x05, 1, 0];
    let d = ok_in(&t, &m, &c, BS);
    assert_eq!(d, expected(&m, BS, 5, 1));
}

#[test]
fn read_boundaries() {
    let (t, m) = disk();
    let last = BLOCKS as u32 - 1;
    let d = ok_in(&t, &m, &cdb10(0x28, last, 1), BS);
    assert_eq!(d, expected(&m, BS, u64::from(last), 1));
    assert_lba_out_of_range(&data_in(&t, &m, &cdb10(0x28, last + 1, 1), BS).0);
    assert_lba_out_of_range(&data_in(&t, &m, &cdb10(0x28, last, 2), 2 * BS).0);
    assert_lba_out_of_range(&data_in(&t, &m, &cdb16(0x88, u64::MAX, 1), BS).0);
    assert_lba_out_of_range(&data_in(&t, &m, &cdb16(0x88, u64::MAX - 1, 2), 2 * BS).0);
    assert_lba_out_of_range(&data_in(&t, &m, &cdb16(0x88, 0, u32::MAX), BS).0);
    assert_lba_out_of_range(&data_in(&t, &m, &read6(0x1F_FFFF, 1), BS).0);
    // Zero-length transfers are not errors, up to the capacity.
    assert_good(&data_in(&t, &m, &cdb10(0x28, BLOCKS as u32, 0), 0).0, 0);
    assert_lba_out_of_range(&data_in(&t, &m, &cdb10(0x28, BLOCKS as u32 + 1, 0), 0).0);
    assert_eq!(m.reads.get(), 1);
}

#[test]
fn read_into_short_buffer_is_rejected_without_touching_it() {
    let (t, m) = disk();
    let mut buf = vec![0xEE; 3 * BS];
    let o = t.execute(&cdb10(0x28, 0, 4), &mut buf, DataDirection::In, &m);
    assert_invalid_field(&o);
    assert_eq!(
        sense_key_specific(&o),
        [0xC8 | 7, 0, 7],
        "points at TRANSFER LENGTH"
    );
    assert!(buf.iter().all(|&b| b == 0xEE));
    assert_eq!(m.reads.get(), 0);
}

#[test]
fn read_into_larger_buffer_reports_underrun() {
    let (t, m) = disk();
    let (o, d) = data_in(&t, &m, &cdb10(0x28, 0, 2), 8 * BS);
    assert_good(&o, 2 * BS);
    assert_eq!(d, expected(&m, BS, 0, 2));
}

#[test]
fn direction_mismatch() {
    let (t, m) = disk();
    let mut buf = vec![0u8; BS];
    let o = t.execute(&cdb10(0x28, 0, 1), &mut buf, DataDirection::Out, &m);
    assert_invalid_field(&o);
    let o = t.execute(&cdb10(0x28, 0, 1), &mut buf, DataDirection::None, &m);
    assert_invalid_field(&o);
    let o = t.execute(&cdb10(0x2A, 0, 1), &mut buf, DataDirection::In, &m);
    assert_invalid_field(&o);
    let o = t.execute(&inquiry(false, 0, 36), &mut buf, DataDirection::Out, &m);
    assert_invalid_field(&o);
    assert_eq!(m.reads.get() + m.writes.get(), 0);
    // Unspecified direction lets the command decide.
    let o = t.execute(&cdb10(0x28, 0, 1), &mut buf, DataDirection::Unspecified, &m);
    assert_good(&o, BS);
}

#[test]
fn protection_fields_are_rejected() {
    let (t, m) = disk();
    let mut c = cdb10(0x28, 0, 1);
    c[1] = 0x20; // RDPROTECT 001b
    assert_invalid_field(&data_in(&t, &m, &c, BS).0);
    // DPO/FUA are accepted.
    c[1] = 0x18;
    assert_good(&data_in(&t, &m, &c, BS).0, BS);
}

#[test]
fn write_all_sizes() {
    let (t, m) = disk();
    let payload: Vec<u8> = (0..4 * BS).map(|i| (i * 13 + 1) as u8).collect();
    assert_good(&data_out(&t, &m, &write6(1, 1), &payload[..BS]), BS);
    assert_eq!(expected(&m, BS, 1, 1), payload[..BS]);
    assert_good(
        &data_out(&t, &m, &cdb10(0x2A, 10, 2), &payload[..2 * BS]),
        2 * BS,
    );
    assert_eq!(expected(&m, BS, 10, 2), payload[..2 * BS]);
    assert_good(
        &data_out(&t, &m, &cdb12(0xAA, 20, 3), &payload[..3 * BS]),
        3 * BS,
    );
    assert_eq!(expected(&m, BS, 20, 3), payload[..3 * BS]);
    let last = BLOCKS - 4;
    assert_good(&data_out(&t, &m, &cdb16(0x8A, last, 4), &payload), 4 * BS);
    assert_eq!(expected(&m, BS, last, 4), payload);
    assert_eq!(m.writes.get(), 4);
    // Unchanged elsewhere.
    assert_eq!(m.bytes.borrow()[0], pattern(0));
    // Read back through the target.
    let d = ok_in(&t, &m, &cdb10(0x28, 10, 2), 2 * BS);
    assert_eq!(d, payload[..2 * BS]);
}

#[test]
fn write_boundaries_and_short_buffer() {
    let (t, m) = disk();
    let before = m.snapshot();
    let block = vec![0x55u8; 2 * BS];
    assert_lba_out_of_range(&data_out(
        &t,
        &m,
        &cdb10(0x2A, BLOCKS as u32, 1),
        &block[..BS],
    ));
    assert_lba_out_of_range(&data_out(
        &t,
        &m,
        &cdb10(0x2A, BLOCKS as u32 - 1, 2),
        &block,
    ));
    assert_lba_out_of_range(&data_out(&t, &m, &cdb16(0x8A, u64::MAX, 2), &block));
    assert_invalid_field(&data_out(&t, &m, &cdb10(0x2A, 0, 3), &block));
    assert_eq!(m.snapshot(), before);
    assert_good(
        &data_out(&t, &m, &cdb10(0x2A, BLOCKS as u32 - 1, 1), &block[..BS]),
        BS,
    );
}

#[test]
fn write_protected_disk() {
    let (t, m) = setup(DeviceKind::Disk, BLOCKS, WritePolicy::ReadOnly);
    let before = m.snapshot();
    let block = vec![0x55u8; BS];
    for c in [
        &write6(0, 1)[..],
        &cdb10(0x2A, 0, 1)[..],
        &cdb12(0xAA, 0, 1)[..],
        &cdb16(0x8A, 0, 1)[..],
    ] {
        assert_write_protected(&data_out(&t, &m, c, &block));
    }
    assert_eq!(m.writes.get(), 0);
    assert_eq!(m.snapshot(), before);
    // Reads still work.
    assert_eq!(
        ok_in(&t, &m, &cdb10(0x28, 0, 1), BS),
        expected(&m, BS, 0, 1)
    );
}

#[test]
fn discard_writes_succeed_and_leave_the_medium_alone() {
    let (t, m) = setup(DeviceKind::Disk, BLOCKS, WritePolicy::DiscardWrites);
    let before = m.snapshot();
    let block = vec![0x55u8; 2 * BS];
    assert_good(&data_out(&t, &m, &cdb10(0x2A, 5, 2), &block), 2 * BS);
    assert_good(
        &data_out(&t, &m, &cdb16(0x8A, BLOCKS - 1, 1), &block[..BS]),
        BS,
    );
    assert_eq!(m.writes.get(), 0);
    assert_eq!(m.snapshot(), before);
    // Still bounds-checked.
    assert_lba_out_of_range(&data_out(
        &t,
        &m,
        &cdb10(0x2A, BLOCKS as u32, 1),
        &block[..BS],
    ));
    // And not write-protected as far as MODE SENSE is concerned.
    let d = ok_in(&t, &m, &mode_sense6(true, 0, 0x08, 255), 255);
    assert_eq!(d[2] & 0x80, 0);
}

#[test]
fn medium_errors() {
    let (t, m) = disk();
    m.fail.set(Some(MediumError::Busy));
    let (o, _) = data_in(&t, &m, &cdb10(0x28, 0, 1), BS);
    assert_eq!(o.status(), CommandStatus::Busy);
    assert!(o.sense().is_none());
    assert_eq!(o.transferred(), 0);
    assert_eq!(
        data_out(&t, &m, &cdb10(0x2A, 0, 1), &[0; BS]).status(),
        CommandStatus::Busy
    );

    m.fail.set(Some(MediumError::Unreadable));
    let (o, _) = data_in(&t, &m, &cdb10(0x28, 0, 1), BS);
    assert_sense(&o, SenseKey::MediumError, 0x11, 0x00);
    let o = data_out(&t, &m, &cdb10(0x2A, 0, 1), &[0; BS]);
    assert_sense(&o, SenseKey::MediumError, 0x0C, 0x00);
    // Commands answered from the target's state do not care.
    ok_in(&t, &m, &cdb10(0x25, 0, 0), 8);
}

// ---------------------------------------------------------------- VERIFY

#[test]
fn verify_without_bytchk_checks_range_only() {
    let (t, m) = disk();
    assert_good(&no_data(&t, &m, &cdb10(0x2F, 0, 100)), 0);
    assert_good(&no_data(&t, &m, &cdb16(0x8F, BLOCKS - 1, 1)), 0);
    assert_good(&no_data(&t, &m, &cdb12(0xAF, 1, 1)), 0);
    assert_lba_out_of_range(&no_data(&t, &m, &cdb10(0x2F, BLOCKS as u32 - 1, 2)));
    assert_lba_out_of_range(&no_data(&t, &m, &cdb16(0x8F, u64::MAX, 1)));
    assert_eq!(m.reads.get(), 0);
}

#[test]
fn verify_with_bytchk_compares() {
    let (t, m) = disk();
    let mut c = cdb10(0x2F, 8, 6);
    c[1] = 0x02; // BYTCHK 01b
    let same = expected(&m, BS, 8, 6);
    assert_good(&data_out(&t, &m, &c, &same), 6 * BS);
    let mut different = same.clone();
    different[5 * BS + 100] ^= 1;
    assert_sense(
        &data_out(&t, &m, &c, &different),
        SenseKey::Miscompare,
        0x1D,
        0x00,
    );
    // Short data-out buffer.
    assert_invalid_field(&data_out(&t, &m, &c, &same[..5 * BS]));
    // BYTCHK 11b is not supported.
    c[1] = 0x06;
    assert_invalid_field(&data_out(&t, &m, &c, &same));
    let mut c16 = cdb16(0x8F, BLOCKS - 1, 1);
    c16[1] = 0x02;
    assert_good(
        &data_out(&t, &m, &c16, &expected(&m, BS, BLOCKS - 1, 1)),
        BS,
    );
}

// ---------------------------------------------------------------- MODE SENSE

#[test]
fn mode_sense6_caching_page_with_block_descriptor() {
    let (t, m) = disk();
    let d = ok_in(&t, &m, &mode_sense6(false, 0, 0x08, 255), 255);
    assert_eq!(usize::from(d[0]) + 1, d.len(), "mode data length");
    assert_eq!(d[2], 0x10, "not write protected, DPOFUA");
    assert_eq!(d[3], 8, "block descriptor length");
    assert_eq!(be32(&d[4..]), BLOCKS as u32);
    assert_eq!(&d[9..12], &[0x00, 0x02, 0x00], "512-byte blocks");
    assert_eq!(&d[12..14], &[0x08, 0x12]);
    assert_eq!(d.len(), 4 + 8 + 20);
    assert_eq!(d[14] & 0x04, 0, "WCE clear");
}

#[test]
fn mode_sense_dbd_and_all_pages() {
    let (t, m) = disk();
    let d = ok_in(&t, &m, &mode_sense6(true, 0, 0x3F, 255), 255);
    assert_eq!(d[3], 0);
    assert_eq!(&d[4..6], &[0x08, 0x12]);
    assert_eq!(d.len(), 4 + 20);
    // Subpage FFh with page 3Fh is the same.
    let mut c = mode_sense6(true, 0, 0x3F, 255);
    c[3] = 0xFF;
    assert_eq!(ok_in(&t, &m, &c, 255), d);
    // Another subpage is not.
    c[3] = 0x01;
    assert_invalid_field(&data_in(&t, &m, &c, 255).0);
}

#[test]
fn mode_sense_write_protect_bit() {
    let (t, m) = setup(DeviceKind::Disk, BLOCKS, WritePolicy::ReadOnly);
    let d = ok_in(&t, &m, &mode_sense6(true, 0, 0x3F, 255), 255);
    assert_eq!(d[2] & 0x80, 0x80);
    let d = ok_in(&t, &m, &mode_sense10(true, false, 0, 0x3F, 255), 255);
    assert_eq!(d[3] & 0x80, 0x80);
}

#[test]
fn mode_sense10_header_and_long_descriptor() {
    let (t, m) = disk();
    let d = ok_in(&t, &m, &mode_sense10(false, false, 0, 0x08, 255), 255);
    assert_eq!(usize::from(be16(&d)) + 2, d.len());
    assert_eq!(d[4] & 1, 0);
    assert_eq!(be16(&d[6..]), 8);
    assert_eq!(be32(&d[8..]), BLOCKS as u32);
    assert_eq!(d.len(), 8 + 8 + 20);
    let d = ok_in(&t, &m, &mode_sense10(false, true, 0, 0x08, 255), 255);
    assert_eq!(d[4] & 1, 1, "LONGLBA");
    assert_eq!(be16(&d[6..]), 16);
    assert_eq!(be64(&d[8..]), BLOCKS);
    assert_eq!(be32(&d[20..]), 512);
    assert_eq!(d.len(), 8 + 16 + 20);
}

#[test]
fn mode_sense_truncation_keeps_full_length_field() {
    let (t, m) = disk();
    let d = ok_in(&t, &m, &mode_sense6(false, 0, 0x3F, 4), 255);
    assert_eq!(d.len(), 4);
    assert_eq!(d[0], 4 + 8 + 20 - 1);
}

#[test]
fn mode_sense_page_control() {
    let (t, m) = disk();
    let current = ok_in(&t, &m, &mode_sense6(true, 0, 0x08, 255), 255);
    let default = ok_in(&t, &m, &mode_sense6(true, 2, 0x08, 255), 255);
    assert_eq!(current, default);
    let changeable = ok_in(&t, &m, &mode_sense6(true, 1, 0x08, 255), 255);
    assert_eq!(changeable.len(), current.len());
    assert_eq!(&changeable[4..6], &[0x08, 0x12]);
    assert!(changeable[6..].iter().all(|&b| b == 0));
    // Saved values are not supported (SPC-4: SAVING PARAMETERS NOT SUPPORTED).
    let (o, _) = data_in(&t, &m, &mode_sense6(true, 3, 0x08, 255), 255);
    assert_sense(&o, SenseKey::IllegalRequest, 0x39, 0x00);
}

#[test]
fn mode_sense_unsupported_pages() {
    let (t, m) = disk();
    for page in [0x01u8, 0x05, 0x0A, 0x1C, 0x2A] {
        let (o, _) = data_in(&t, &m, &mode_sense6(false, 0, page, 255), 255);
        assert_invalid_field(&o);
        assert_eq!(sense_key_specific(&o), [0xC8 | 5, 0, 2]);
    }
}

#[test]
fn target_is_shareable_between_cpus() {
    fn assert_sync_send<T: Sync + Send>() {}
    assert_sync_send::<ScsiTarget>();
}
