//! MMC-6 behaviour of the CD/DVD-ROM target.

mod scsi_common;

use rvblk_core::image::{DeviceKind, WritePolicy};
use rvblk_core::scsi::{lba_to_msf, DataDirection, ScsiTarget, SenseKey};
use scsi_common::*;

const BS: usize = 2048;
/// A 2000 KiB "CD": 1000 blocks.
const BLOCKS: u64 = 1000;

fn cd() -> (ScsiTarget, VecMedium) {
    setup(DeviceKind::CdRom, BLOCKS, WritePolicy::ReadWrite)
}

/// A DVD-sized image (> 900 MiB) that is never read: the medium stays empty.
fn dvd() -> (ScsiTarget, VecMedium) {
    let blocks = 2_300_000u64; // ~4.4 GiB
    (
        ScsiTarget::new(image(
            DeviceKind::CdRom,
            blocks * 2048,
            WritePolicy::ReadOnly,
        )),
        VecMedium::patterned(0),
    )
}

fn read_toc(msf: bool, format: u8, track: u8, alloc: u16) -> [u8; 10] {
    let a = alloc.to_be_bytes();
    [
        0x43,
        if msf { 0x02 } else { 0 },
        format,
        0,
        0,
        0,
        track,
        a[0],
        a[1],
        0,
    ]
}

fn get_configuration(rt: u8, start: u16, alloc: u16) -> [u8; 10] {
    let s = start.to_be_bytes();
    let a = alloc.to_be_bytes();
    [0x46, rt, s[0], s[1], 0, 0, 0, a[0], a[1], 0]
}

fn gesn(polled: bool, classes: u8, alloc: u16) -> [u8; 10] {
    let a = alloc.to_be_bytes();
    [0x4A, u8::from(polled), 0, 0, classes, 0, 0, a[0], a[1], 0]
}

/// Feature descriptors of a GET CONFIGURATION answer: (code, byte 2, data).
fn features(d: &[u8]) -> Vec<(u16, u8, Vec<u8>)> {
    assert_eq!(be32(d) as usize + 4, d.len(), "data length");
    let mut out = Vec::new();
    let mut at = 8;
    while at < d.len() {
        let len = usize::from(d[at + 3]);
        out.push((be16(&d[at..]), d[at + 2], d[at + 4..at + 4 + len].to_vec()));
        at += 4 + len;
    }
    assert_eq!(at, d.len());
    out
}

#[test]
fn inquiry_cdrom() {
    let (t, m) = cd();
    let d = ok_in(&t, &m, &inquiry(false, 0, 96), 96);
    assert_eq!(d.len(), 36);
    assert_eq!(d[0], 0x05, "CD/DVD device");
    assert_eq!(d[1], 0x80, "removable");
    assert_eq!(&d[16..32], b"RAM CD-ROM      ");
    let d = ok_in(&t, &m, &inquiry(true, 0, 255), 255);
    assert_eq!(&d[..4], &[0x05, 0x00, 0x00, 3]);
    assert_eq!(&d[4..], &[0x00, 0x80, 0x83]);
    let d = ok_in(&t, &m, &inquiry(true, 0x83, 255), 255);
    assert_eq!(d[0], 0x05);
    assert_invalid_field(&data_in(&t, &m, &inquiry(true, 0xB0, 255), 255).0);
}

#[test]
fn capacity_and_reads() {
    let (t, m) = cd();
    let d = ok_in(&t, &m, &cdb10(0x25, 0, 0), 8);
    assert_eq!(be32(&d), BLOCKS as u32 - 1);
    assert_eq!(be32(&d[4..]), 2048);
    let d = ok_in(&t, &m, &cdb10(0x28, 16, 2), 2 * BS);
    assert_eq!(d, expected(&m, BS, 16, 2));
    let d = ok_in(&t, &m, &cdb12(0xA8, BLOCKS as u32 - 1, 1), BS);
    assert_eq!(d, expected(&m, BS, BLOCKS - 1, 1));
    assert_lba_out_of_range(&data_in(&t, &m, &cdb12(0xA8, BLOCKS as u32, 1), BS).0);
    assert_invalid_field(&data_in(&t, &m, &cdb10(0x28, 0, 2), 2 * BS - 1).0);
}

#[test]
fn every_write_is_data_protect() {
    // Even a CD image whose loader said read-write.
    let (t, m) = cd();
    let block = vec![0u8; BS];
    for c in [
        &write6(0, 1)[..],
        &cdb10(0x2A, 0, 1)[..],
        &cdb12(0xAA, 0, 1)[..],
        &cdb16(0x8A, 0, 1)[..],
    ] {
        assert_write_protected(&data_out(&t, &m, c, &block));
    }
    let (t, m) = setup(DeviceKind::CdRom, BLOCKS, WritePolicy::DiscardWrites);
    assert_write_protected(&data_out(&t, &m, &cdb10(0x2A, 0, 1), &block));
    assert_eq!(m.writes.get(), 0);
}

#[test]
fn toc_format0_lba() {
    let (t, m) = cd();
    let d = ok_in(&t, &m, &read_toc(false, 0, 0, 804), 804);
    assert_eq!(d.len(), 20);
    assert_eq!(be16(&d), 18);
    assert_eq!((d[2], d[3]), (1, 1));
    assert_eq!(&d[4..8], &[0, 0x14, 1, 0]);
    assert_eq!(be32(&d[8..]), 0);
    assert_eq!(&d[12..16], &[0, 0x14, 0xAA, 0]);
    assert_eq!(be32(&d[16..]), BLOCKS as u32, "lead-out at the image end");
}

#[test]
fn toc_format0_msf() {
    let (t, m) = cd();
    let d = ok_in(&t, &m, &read_toc(true, 0, 1, 804), 804);
    assert_eq!(&d[8..12], &[0, 0, 2, 0], "track 1 at 00:02:00");
    // 1000 + 150 = 1150 frames = 0 min 15 s 25 f.
    assert_eq!(&d[16..20], &[0, 0, 15, 25]);
}

#[test]
fn toc_starting_track() {
    let (t, m) = cd();
    let d = ok_in(&t, &m, &read_toc(false, 0, 0xAA, 804), 804);
    assert_eq!(be16(&d), 10);
    assert_eq!(d[6], 0xAA);
    assert_invalid_field(&data_in(&t, &m, &read_toc(false, 0, 2, 804), 804).0);
}

#[test]
fn toc_truncated() {
    let (t, m) = cd();
    let d = ok_in(&t, &m, &read_toc(false, 0, 0, 12), 804);
    assert_eq!(d.len(), 12);
    assert_eq!(be16(&d), 18);
}

#[test]
fn toc_format1_session_info() {
    let (t, m) = cd();
    let d = ok_in(&t, &m, &read_toc(false, 1, 0, 804), 804);
    assert_eq!(d.len(), 12);
    assert_eq!(be16(&d), 10);
    assert_eq!((d[2], d[3]), (1, 1));
    assert_eq!(&d[4..8], &[0, 0x14, 1, 0]);
    assert_eq!(be32(&d[8..]), 0);
    let d = ok_in(&t, &m, &read_toc(true, 1, 0, 804), 804);
    assert_eq!(&d[8..12], &[0, 0, 2, 0]);
}

#[test]
fn toc_format2_full_toc() {
    let (t, m) = cd();
    let d = ok_in(&t, &m, &read_toc(true, 2, 1, 804), 804);
    assert_eq!(d.len(), 4 + 4 * 11);
    assert_eq!(be16(&d), 46);
    let desc: Vec<&[u8]> = d[4..].chunks(11).collect();
    let points: Vec<u8> = desc.iter().map(|x| x[3]).collect();
    assert_eq!(points, [0xA0, 0xA1, 0xA2, 0x01]);
    for x in &desc {
        assert_eq!(x[0], 1, "session 1");
        assert_eq!(x[1], 0x14);
    }
    assert_eq!(desc[0][8], 1, "first track");
    assert_eq!(desc[1][8], 1, "last track");
    assert_eq!(&desc[2][8..11], &[0, 15, 25], "lead-out MSF");
    assert_eq!(&desc[3][8..11], &[0, 2, 0], "track 1 MSF");
}

#[test]
fn toc_legacy_format_in_control_byte() {
    let (t, m) = cd();
    let mut c = read_toc(false, 0, 0, 804);
    c[9] = 0x40;
    let d = ok_in(&t, &m, &c, 804);
    assert_eq!(d, ok_in(&t, &m, &read_toc(false, 1, 0, 804), 804));
    c[9] = 0x80;
    let d = ok_in(&t, &m, &c, 804);
    assert_eq!(d, ok_in(&t, &m, &read_toc(false, 2, 0, 804), 804));
}

#[test]
fn toc_unsupported_formats() {
    let (t, m) = cd();
    for f in 3..=15u8 {
        assert_invalid_field(&data_in(&t, &m, &read_toc(false, f, 0, 804), 804).0);
    }
}

#[test]
fn msf_conversion() {
    assert_eq!(lba_to_msf(0), [0, 2, 0]);
    assert_eq!(lba_to_msf(16), [0, 2, 16]);
    assert_eq!(lba_to_msf(4500 - 150), [1, 0, 0]);
    assert_eq!(lba_to_msf(449_849), [99, 59, 74]);
    assert_eq!(lba_to_msf(u64::MAX), [0xFF, 59, 74]);
}

#[test]
fn dvd_toc_msf_saturates() {
    let (t, m) = dvd();
    let d = ok_in(&t, &m, &read_toc(true, 0, 0, 804), 804);
    assert_eq!(&d[16..20], &[0, 0xFF, 59, 74]);
    let d = ok_in(&t, &m, &read_toc(false, 0, 0, 804), 804);
    assert_eq!(be32(&d[16..]), 2_300_000);
}

#[test]
fn get_configuration_cd_profile() {
    let (t, m) = cd();
    let d = ok_in(&t, &m, &get_configuration(0, 0, 1024), 1024);
    assert_eq!(be16(&d[6..]), 0x0008, "current profile CD-ROM");
    let f = features(&d);
    let codes: Vec<u16> = f.iter().map(|x| x.0).collect();
    assert_eq!(
        codes,
        [0x0000, 0x0001, 0x0002, 0x0003, 0x0010, 0x001E, 0x001F]
    );
    // Profile list: DVD-ROM (not current), CD-ROM (current).
    assert_eq!(f[0].2, [0x00, 0x10, 0x00, 0x00, 0x00, 0x08, 0x01, 0x00]);
    assert_eq!(f[0].1 & 0x03, 0x03, "persistent, current");
    // Random readable: 2048-byte blocks, blocking 1.
    assert_eq!(be32(&f[4].2), 2048);
    assert_eq!(be16(&f[4].2[4..]), 1);
    assert_eq!(f[5].1 & 1, 1, "CD read current");
    assert_eq!(f[6].1 & 1, 0, "DVD read not current");
}

#[test]
fn get_configuration_dvd_profile() {
    let (t, m) = dvd();
    let d = ok_in(&t, &m, &get_configuration(0, 0, 1024), 1024);
    assert_eq!(be16(&d[6..]), 0x0010, "current profile DVD-ROM");
    let f = features(&d);
    assert_eq!(f[0].2, [0x00, 0x10, 0x01, 0x00, 0x00, 0x08, 0x00, 0x00]);
    assert_eq!(be16(&f[4].2[4..]), 16);
    assert_eq!(f[5].1 & 1, 0);
    assert_eq!(f[6].1 & 1, 1);
}

#[test]
fn get_configuration_profile_threshold() {
    let at = |bytes: u64| {
        let t = ScsiTarget::new(image(DeviceKind::CdRom, bytes, WritePolicy::ReadOnly));
        let m = VecMedium::patterned(0);
        be16(&ok_in(&t, &m, &get_configuration(0, 0, 8), 8)[6..])
    };
    assert_eq!(at(900 * 1024 * 1024), 0x0008);
    assert_eq!(at(900 * 1024 * 1024 + 2048), 0x0010);
}

#[test]
fn get_configuration_rt() {
    let (t, m) = cd();
    // RT 1: current features from 0x0010 on: random readable and CD read.
    let d = ok_in(&t, &m, &get_configuration(1, 0x0010, 1024), 1024);
    let codes: Vec<u16> = features(&d).iter().map(|x| x.0).collect();
    assert_eq!(codes, [0x0010, 0x001E]);
    // RT 2: exactly one feature.
    let d = ok_in(&t, &m, &get_configuration(2, 0x0003, 1024), 1024);
    let f = features(&d);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].0, 0x0003);
    assert_eq!(f[0].2[0] & 0xE0, 0x20, "tray loader");
    // RT 2 for an absent feature: header only.
    let d = ok_in(&t, &m, &get_configuration(2, 0x0107, 1024), 1024);
    assert_eq!(d.len(), 8);
    assert_eq!(be32(&d), 4);
    assert_eq!(be16(&d[6..]), 0x0008);
    // RT 0 from 0x0002.
    let d = ok_in(&t, &m, &get_configuration(0, 0x0002, 1024), 1024);
    assert_eq!(features(&d)[0].0, 0x0002);
    // RT 3 is reserved.
    assert_invalid_field(&data_in(&t, &m, &get_configuration(3, 0, 1024), 1024).0);
    // Allocation length 8: the header only, with the full data length.
    let d = ok_in(&t, &m, &get_configuration(0, 0, 8), 1024);
    assert_eq!(d.len(), 8);
    assert!(be32(&d) > 4);
}

#[test]
fn read_disc_information() {
    let (t, m) = cd();
    let c = [0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0];
    let d = ok_in(&t, &m, &c, 255);
    assert_eq!(d.len(), 34);
    assert_eq!(be16(&d), 32);
    assert_eq!(d[2] & 0x03, 0x02, "complete disc");
    assert_eq!((d[3], d[4], d[5], d[6]), (1, 1, 1, 1));
    assert_eq!(d[8], 0x00, "CD-ROM disc type");
    let mut c2 = c;
    c2[1] = 0x01;
    assert_invalid_field(&data_in(&t, &m, &c2, 255).0);
}

#[test]
fn read_track_information() {
    let (t, m) = cd();
    let rti = |kind: u8, addr: u32| {
        let a = addr.to_be_bytes();
        [0x52, kind, a[0], a[1], a[2], a[3], 0, 0, 48, 0]
    };
    let d = ok_in(&t, &m, &rti(1, 1), 255);
    assert_eq!(d.len(), 48);
    assert_eq!(be16(&d), 46);
    assert_eq!((d[2], d[3]), (1, 1));
    assert_eq!(d[5] & 0x0F, 0x04, "data track");
    assert_eq!(d[6] & 0x0F, 0x01, "mode 1");
    assert_eq!(be32(&d[8..]), 0, "start");
    assert_eq!(be32(&d[24..]), BLOCKS as u32, "track size");
    assert_eq!(be32(&d[28..]), BLOCKS as u32 - 1, "last recorded");
    assert_eq!(ok_in(&t, &m, &rti(0, BLOCKS as u32 - 1), 255), d);
    assert_eq!(ok_in(&t, &m, &rti(2, 1), 255), d);
    assert_lba_out_of_range(&data_in(&t, &m, &rti(0, BLOCKS as u32), 255).0);
    assert_invalid_field(&data_in(&t, &m, &rti(1, 2), 255).0);
    assert_invalid_field(&data_in(&t, &m, &rti(1, 0), 255).0);
    assert_invalid_field(&data_in(&t, &m, &rti(2, 2), 255).0);
    assert_invalid_field(&data_in(&t, &m, &rti(3, 1), 255).0);
}

#[test]
fn get_event_status_notification() {
    let (t, m) = cd();
    let d = ok_in(&t, &m, &gesn(true, 0x10, 8), 255);
    assert_eq!(d, [0x00, 0x06, 0x04, 0x10, 0x00, 0x02, 0x00, 0x00]);
    // Operational change class only: no event available, media class supported.
    let d = ok_in(&t, &m, &gesn(true, 0x02, 8), 255);
    assert_eq!(d, [0x00, 0x02, 0x80, 0x10]);
    // Header-only allocation.
    let d = ok_in(&t, &m, &gesn(true, 0x10, 4), 255);
    assert_eq!(d, [0x00, 0x06, 0x04, 0x10]);
    // Asynchronous mode is not supported.
    let (o, _) = data_in(&t, &m, &gesn(false, 0x10, 8), 255);
    assert_invalid_field(&o);
    assert_eq!(sense_key_specific(&o), [0xC8, 0, 1]);
}

#[test]
fn mode_sense_capabilities_page() {
    let (t, m) = cd();
    let d = ok_in(&t, &m, &mode_sense10(false, false, 0, 0x2A, 255), 255);
    assert_eq!(usize::from(be16(&d)) + 2, d.len());
    assert_eq!(be16(&d[6..]), 0, "no block descriptor for MM devices");
    assert_eq!(d[8], 0x2A);
    assert_eq!(usize::from(d[9]) + 2, d.len() - 8);
    assert_eq!(d[11], 0, "no write capability");
    assert_eq!(d[14] & 0xE0, 0x20, "tray");
    assert_eq!(d[14] & 0x08, 0x08, "eject");
    let all = ok_in(&t, &m, &mode_sense10(false, false, 0, 0x3F, 255), 255);
    assert_eq!(all, d);
    let d6 = ok_in(&t, &m, &mode_sense6(false, 0, 0x2A, 255), 255);
    assert_eq!(&d6[4..], &d[8..]);
    assert_invalid_field(&data_in(&t, &m, &mode_sense10(false, false, 0, 0x08, 255), 255).0);
    assert_invalid_field(&data_in(&t, &m, &mode_sense10(false, false, 0, 0x0E, 255), 255).0);
}

#[test]
fn mechanism_status_and_set_speed() {
    let (t, m) = cd();
    let d = ok_in(&t, &m, &[0xBD, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], 255);
    assert_eq!(d, [0; 8]);
    assert_good(
        &no_data(&t, &m, &[0xBB, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0]),
        0,
    );
    // Eject and lock are accepted; the medium stays.
    assert_good(&no_data(&t, &m, &[0x1B, 0, 0, 0, 0x02, 0]), 0);
    assert_good(&no_data(&t, &m, &[0x1E, 0, 0, 0, 0x01, 0]), 0);
    assert_good(&no_data(&t, &m, &[0x00; 6]), 0);
}

fn read_cd(sector_type: u8, lba: u32, len: u32, byte9: u8) -> [u8; 12] {
    let l = lba.to_be_bytes();
    let n = len.to_be_bytes();
    [
        0xBE,
        sector_type << 2,
        l[0],
        l[1],
        l[2],
        l[3],
        n[1],
        n[2],
        n[3],
        byte9,
        0,
        0,
    ]
}

#[test]
fn read_cd_user_data() {
    let (t, m) = cd();
    for st in [0u8, 2] {
        let d = ok_in(&t, &m, &read_cd(st, 3, 2, 0x10), 2 * BS);
        assert_eq!(d, expected(&m, BS, 3, 2));
    }
    assert_good(&data_in(&t, &m, &read_cd(0, 3, 2, 0x00), 2 * BS).0, 0);
    assert_lba_out_of_range(&data_in(&t, &m, &read_cd(0, BLOCKS as u32, 1, 0x10), BS).0);
    assert_lba_out_of_range(&data_in(&t, &m, &read_cd(0, BLOCKS as u32, 1, 0x00), BS).0);
    // Raw sectors (sync + header + user data + EDC) are not synthesised.
    assert_invalid_field(&data_in(&t, &m, &read_cd(0, 0, 1, 0xF8), 2352).0);
    // CD-DA and mode 2 sectors do not exist on this disc.
    for st in [1u8, 3, 4, 5] {
        let (o, _) = data_in(&t, &m, &read_cd(st, 0, 1, 0x10), BS);
        assert_sense(&o, SenseKey::IllegalRequest, 0x64, 0x00);
    }
    assert_invalid_field(&data_in(&t, &m, &read_cd(6, 0, 1, 0x10), BS).0);
    // Sub-channel data is not supported.
    let mut c = read_cd(0, 0, 1, 0x10);
    c[10] = 0x01;
    assert_invalid_field(&data_in(&t, &m, &c, BS + 96).0);
}

#[test]
fn gesn_direction() {
    let (t, m) = cd();
    let mut buf = [0u8; 8];
    let o = t.execute(&gesn(true, 0x10, 8), &mut buf, DataDirection::Out, &m);
    assert_invalid_field(&o);
}
