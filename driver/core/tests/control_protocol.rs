//! The control protocol on the wire (`docs/control.md` §1–§4): encode → parse round trips for
//! every request, reply writers → decoder round trips, and each malformed request giving its
//! defined error.

mod control_common;

use control_common::{encoded, path, set_u16, set_u32, utf16};
use rvblk_core::control::{
    header, parse, read_reply, reply_error, reply_lun, reply_luns, reply_removed, ControlCode,
    ControlError, LunInfo, Origin, Reply, ReplyError, Request, HEADER_LEN, MAX_PATH_UNITS,
    SIGNATURE, VERSION,
};
use rvblk_core::image::DeviceKind;
use rvblk_core::srb::status;

const KINDS: [DeviceKind; 3] = [DeviceKind::Disk, DeviceKind::CdRom, DeviceKind::Floppy];

#[test]
fn header_matches_the_abi_struct() {
    use core::mem::{offset_of, size_of};
    use rvblk_abi::SrbIoControl;
    assert_eq!(HEADER_LEN, size_of::<SrbIoControl>());
    assert_eq!(
        header::HEADER_LENGTH,
        offset_of!(SrbIoControl, header_length)
    );
    assert_eq!(header::SIGNATURE, offset_of!(SrbIoControl, signature));
    assert_eq!(header::TIMEOUT, offset_of!(SrbIoControl, timeout));
    assert_eq!(header::CONTROL_CODE, offset_of!(SrbIoControl, control_code));
    assert_eq!(header::RETURN_CODE, offset_of!(SrbIoControl, return_code));
    assert_eq!(header::LENGTH, offset_of!(SrbIoControl, length));
}

#[test]
fn encoded_header_fields() {
    let buf = encoded(&Request::ListLuns, 100);
    assert_eq!(buf.len(), HEADER_LEN + 100);
    assert_eq!(&buf[0..4], &28u32.to_le_bytes());
    assert_eq!(&buf[4..12], &SIGNATURE);
    assert_eq!(&buf[12..16], &30u32.to_le_bytes(), "timeout");
    assert_eq!(&buf[16..20], &1u32.to_le_bytes(), "LIST LUNS is code 1");
    assert_eq!(&buf[20..24], &[0; 4], "ReturnCode starts at 0");
    assert_eq!(
        &buf[24..28],
        &100u32.to_le_bytes(),
        "Length = the whole payload area"
    );
    assert_eq!(&buf[28..30], &VERSION.to_le_bytes());
    assert!(buf[30..].iter().all(|&b| b == 0), "room zeroed");
}

#[test]
fn every_request_round_trips() {
    let file = utf16(r"\??\C:\images\win10.iso");
    let long: Vec<u8> = utf16(&format!(r"\{}", "x".repeat(MAX_PATH_UNITS - 1)));
    let mut requests = vec![Request::ListLuns];
    for kind in KINDS {
        for read_only in [false, true] {
            for p in [&file, &long] {
                requests.push(Request::MountFile {
                    kind,
                    read_only,
                    path: path(p),
                });
                requests.push(Request::CreateRamDisk {
                    kind,
                    read_only,
                    size_bytes: 64 << 20,
                    source: Some(path(p)),
                });
            }
            requests.push(Request::CreateRamDisk {
                kind,
                read_only,
                size_bytes: u64::MAX,
                source: None,
            });
        }
    }
    for target_id in [0, 1, 31, 255] {
        requests.push(Request::Remove { target_id });
    }
    for request in &requests {
        for room in [0, 1, 4096] {
            let buf = encoded(request, room);
            let parsed = parse(&buf).unwrap_or_else(|e| panic!("{request:?}: {e}"));
            assert_eq!(parsed.request, *request);
            assert_eq!(parsed.timeout, 30);
            assert_eq!(parsed.length as usize, buf.len() - HEADER_LEN);
        }
    }
}

#[test]
fn encode_refuses_a_buffer_too_short_for_the_request() {
    let p = utf16(r"\??\C:\a.img");
    let request = Request::MountFile {
        kind: DeviceKind::Disk,
        read_only: false,
        path: path(&p),
    };
    let need = request.body_len();
    assert_eq!(need, 8 + p.len());
    let mut buf = vec![0xAB; HEADER_LEN + need - 1];
    assert_eq!(
        rvblk_core::control::encode(&request, 0, &mut buf),
        Err(ControlError::BufferTooSmall {
            needed: need as u32
        })
    );
    assert!(buf.iter().all(|&b| b == 0xAB), "nothing written");
}

#[test]
fn parse_does_not_assume_alignment() {
    let p = utf16(r"\Device\HarddiskVolume2\disk.img");
    let request = Request::CreateRamDisk {
        kind: DeviceKind::Disk,
        read_only: false,
        size_bytes: 1 << 30,
        source: Some(path(&p)),
    };
    let buf = encoded(&request, 0);
    for shift in 1..8 {
        let mut shifted = vec![0u8; shift];
        shifted.extend_from_slice(&buf);
        assert_eq!(parse(&shifted[shift..]).map(|p| p.request), Ok(request));
    }
}

#[test]
fn short_buffer_at_every_length() {
    let p = utf16(r"\??\D:\floppy.img");
    let request = Request::MountFile {
        kind: DeviceKind::Floppy,
        read_only: true,
        path: path(&p),
    };
    let buf = encoded(&request, 0);
    for n in 0..buf.len() {
        let want = if n < HEADER_LEN {
            ControlError::ShortBuffer
        } else {
            // The header still claims the full Length.
            ControlError::LengthPastBuffer
        };
        assert_eq!(parse(&buf[..n]).map(|p| p.request), Err(want), "len {n}");
    }
    assert!(parse(&buf).is_ok());
}

#[test]
fn length_field_cut_at_every_value() {
    let p = utf16(r"\??\D:\floppy.img");
    let request = Request::MountFile {
        kind: DeviceKind::Floppy,
        read_only: true,
        path: path(&p),
    };
    let full = encoded(&request, 0);
    let body = full.len() - HEADER_LEN;
    for length in 0..body {
        let mut buf = full.clone();
        set_u32(&mut buf, header::LENGTH, length as u32);
        let want = match length {
            0..=3 => ControlError::Truncated,
            4..=7 => ControlError::Truncated,
            _ => ControlError::BadPathLength,
        };
        assert_eq!(parse(&buf).map(|p| p.request), Err(want), "Length {length}");
    }
}

#[test]
fn lying_header_fields() {
    let base = encoded(&Request::ListLuns, 64);
    for bad in [0u32, 24, 27, 29, 32, u32::MAX] {
        let mut buf = base.clone();
        set_u32(&mut buf, header::HEADER_LENGTH, bad);
        assert_eq!(parse(&buf), Err(ControlError::BadHeaderLength), "{bad}");
    }
    let room = (base.len() - HEADER_LEN) as u32;
    for bad in [room + 1, room + 4096, u32::MAX - 27, u32::MAX] {
        let mut buf = base.clone();
        set_u32(&mut buf, header::LENGTH, bad);
        assert_eq!(parse(&buf), Err(ControlError::LengthPastBuffer), "{bad}");
    }
    for sig in [*b"SCSIDISK", *b"rvblkctl", *b"RVBLKCT\0", [0; 8]] {
        let mut buf = base.clone();
        buf[4..12].copy_from_slice(&sig);
        assert_eq!(parse(&buf), Err(ControlError::WrongSignature));
    }
}

#[test]
fn payload_errors() {
    let p = utf16(r"\??\C:\a.iso");
    let mount = Request::MountFile {
        kind: DeviceKind::CdRom,
        read_only: true,
        path: path(&p),
    };
    let base = encoded(&mount, 0);
    let d = HEADER_LEN;
    let case = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut buf = base.clone();
        f(&mut buf);
        parse(&buf).map(|_| ())
    };
    for code in [0u32, 5, 0x100, u32::MAX] {
        assert_eq!(
            case(&|b| set_u32(b, header::CONTROL_CODE, code)),
            Err(ControlError::UnknownCode)
        );
    }
    for version in [0u16, 2, u16::MAX] {
        assert_eq!(
            case(&|b| set_u16(b, d, version)),
            Err(ControlError::UnsupportedVersion)
        );
    }
    assert_eq!(
        case(&|b| set_u16(b, d + 2, 1)),
        Err(ControlError::ReservedNotZero)
    );
    assert_eq!(
        case(&|b| b[d + 5] = 0x02),
        Err(ControlError::ReservedNotZero),
        "unknown flag bit"
    );
    for kind in [3u8, 0x80, 0xFF] {
        assert_eq!(case(&|b| b[d + 4] = kind), Err(ControlError::BadKind));
    }
    let path_bytes = p.len() as u16;
    for n in [0u16, 1, path_bytes - 1, path_bytes + 2, u16::MAX] {
        assert_eq!(
            case(&|b| set_u16(b, d + 6, n)),
            Err(ControlError::BadPathLength),
            "path bytes {n}"
        );
    }
    // NUL anywhere in the path.
    for unit in 0..p.len() / 2 {
        assert_eq!(
            case(&|b| set_u16(b, d + 8 + 2 * unit, 0)),
            Err(ControlError::PathHasNul),
            "NUL at unit {unit}"
        );
    }
    assert_eq!(
        case(&|b| set_u16(b, d + 8, u16::from(b'C'))),
        Err(ControlError::PathNotAbsolute)
    );
    // REMOVE's reserved bytes.
    let remove = encoded(&Request::Remove { target_id: 3 }, 0);
    for i in 5..8 {
        let mut buf = remove.clone();
        buf[d + i] = 1;
        assert_eq!(parse(&buf), Err(ControlError::ReservedNotZero));
    }
    let mut short = remove.clone();
    set_u32(&mut short, header::LENGTH, 7);
    assert_eq!(parse(&short), Err(ControlError::Truncated));
}

#[test]
fn ram_disk_path_is_optional_but_checked_when_present() {
    let request = Request::CreateRamDisk {
        kind: DeviceKind::Disk,
        read_only: false,
        size_bytes: 64 << 20,
        source: None,
    };
    let mut buf = encoded(&request, 32);
    assert_eq!(parse(&buf).unwrap().request, request);
    // A path byte count over zero-filled room: a NUL path.
    set_u16(&mut buf, HEADER_LEN + 6, 4);
    assert_eq!(parse(&buf), Err(ControlError::PathHasNul));
    set_u16(&mut buf, HEADER_LEN + 6, 3);
    assert_eq!(parse(&buf), Err(ControlError::BadPathLength));
}

#[test]
fn nt_path_rules() {
    use rvblk_core::control::NtPath;
    assert_eq!(NtPath::new(&[]), Err(ControlError::BadPathLength));
    assert_eq!(NtPath::new(b"\\"), Err(ControlError::BadPathLength));
    assert_eq!(
        NtPath::new(&utf16("C:\\x")),
        Err(ControlError::PathNotAbsolute)
    );
    assert_eq!(NtPath::new(&utf16("\\a\0b")), Err(ControlError::PathHasNul));
    let max = utf16(&format!("\\{}", "y".repeat(MAX_PATH_UNITS - 1)));
    assert!(NtPath::new(&max).is_ok());
    let over = utf16(&format!("\\{}", "y".repeat(MAX_PATH_UNITS)));
    assert_eq!(NtPath::new(&over), Err(ControlError::BadPathLength));
    let p = utf16("\\??\\C:\\ä€😀");
    let nt = NtPath::new(&p).unwrap();
    let units: Vec<u16> = "\\??\\C:\\ä€😀".encode_utf16().collect();
    assert_eq!(nt.units().collect::<Vec<_>>(), units);
    let mut dst = vec![0u16; units.len()];
    assert_eq!(nt.copy_units(&mut dst), Some(units.len()));
    assert_eq!(dst, units);
    assert_eq!(nt.copy_units(&mut dst[..units.len() - 1]), None);
}

fn luns(file: &[u8]) -> Vec<LunInfo<'_>> {
    vec![
        LunInfo {
            target_id: 0,
            kind: DeviceKind::CdRom,
            origin: Origin::Loader,
            read_only: true,
            block_size: 2048,
            blocks: 2_500_000,
            path: None,
        },
        LunInfo {
            target_id: 1,
            kind: DeviceKind::Disk,
            origin: Origin::File,
            read_only: false,
            block_size: 512,
            blocks: 1 << 33,
            path: Some(path(file)),
        },
        LunInfo {
            target_id: 7,
            kind: DeviceKind::Floppy,
            origin: Origin::RamDisk,
            read_only: false,
            block_size: 512,
            blocks: 2880,
            path: None,
        },
    ]
}

#[test]
fn list_reply_round_trips() {
    let file = utf16(r"\??\C:\vm\disk.img");
    let luns = luns(&file);
    let mut buf = encoded(&Request::ListLuns, 4096);
    let c = reply_luns(&mut buf, &luns);
    let needed = 8 + 3 * 20 + file.len();
    assert_eq!(c.srb_status, status::SUCCESS);
    assert_eq!(c.return_code, Some(0));
    assert_eq!(c.data_transfer_length as usize, HEADER_LEN + needed);
    let out = &buf[..c.data_transfer_length as usize];
    let Ok(Reply::Luns(entries)) = read_reply(ControlCode::ListLuns, out) else {
        panic!("not a LUN list");
    };
    assert_eq!(entries.len(), 3);
    assert_eq!(entries.collect::<Vec<_>>(), luns);

    // An empty adapter.
    let mut buf = encoded(&Request::ListLuns, 8);
    let c = reply_luns(&mut buf, &[]);
    assert_eq!(c.data_transfer_length as usize, HEADER_LEN + 8);
    let Ok(Reply::Luns(entries)) = read_reply(ControlCode::ListLuns, &buf) else {
        panic!("not a LUN list");
    };
    assert!(entries.is_empty());
}

#[test]
fn list_reply_too_big_reports_the_size_needed_and_stays_in_bounds() {
    let file = utf16(r"\??\C:\vm\disk.img");
    let luns = luns(&file);
    let needed = 8 + 3 * 20 + file.len();
    for room in 0..needed {
        // Room declared in Length; the buffer is longer (canary) and must not be touched past it.
        let mut buf = encoded(&Request::ListLuns, room.max(4));
        set_u32(&mut buf, header::LENGTH, room.max(4) as u32);
        buf.extend_from_slice(&[0x5A; 64]);
        let before = buf.clone();
        let c = reply_luns(&mut buf, &luns);
        assert_eq!(c.srb_status, status::SUCCESS);
        assert_eq!(c.data_transfer_length as usize, HEADER_LEN);
        assert_eq!(
            read_reply(ControlCode::ListLuns, &buf),
            Err(ReplyError::Refused(ControlError::BufferTooSmall {
                needed: needed as u32
            }))
        );
        // Only ReturnCode and Length changed.
        for (i, (a, b)) in before.iter().zip(&buf).enumerate() {
            if !(20..28).contains(&i) {
                assert_eq!(a, b, "byte {i} changed with room {room}");
            }
        }
    }
}

#[test]
fn lun_and_remove_replies_round_trip() {
    let file = utf16(r"\??\C:\iso\debian.iso");
    for kind in KINDS {
        let info = LunInfo {
            target_id: 4,
            kind,
            origin: Origin::File,
            read_only: kind == DeviceKind::CdRom,
            block_size: kind.block_size(),
            blocks: 12345,
            path: Some(path(&file)),
        };
        let request = Request::MountFile {
            kind,
            read_only: false,
            path: path(&file),
        };
        let mut buf = encoded(&request, 4 + 20 + file.len());
        let c = reply_lun(&mut buf, &info);
        assert_eq!(c.return_code, Some(0));
        let out = &buf[..c.data_transfer_length as usize];
        assert_eq!(
            read_reply(ControlCode::MountFile, out),
            Ok(Reply::Lun(info))
        );
    }
    // A CD is reported read-only even if the caller's info says otherwise.
    let cd = LunInfo {
        target_id: 2,
        kind: DeviceKind::CdRom,
        origin: Origin::RamDisk,
        read_only: false,
        block_size: 2048,
        blocks: 10,
        path: None,
    };
    let mut buf = encoded(&Request::ListLuns, 64);
    reply_lun(&mut buf, &cd);
    let Ok(Reply::Lun(got)) = read_reply(ControlCode::CreateRamDisk, &buf) else {
        panic!()
    };
    assert!(got.read_only);

    let mut buf = encoded(&Request::Remove { target_id: 9 }, 0);
    let c = reply_removed(&mut buf, 9);
    assert_eq!(c.data_transfer_length as usize, HEADER_LEN + 8);
    assert_eq!(
        read_reply(ControlCode::Remove, &buf),
        Ok(Reply::Removed { target_id: 9 })
    );
}

#[test]
fn error_codes_are_unique_and_mapped() {
    let all = ControlError::ALL;
    for (i, a) in all.iter().enumerate() {
        assert_ne!(a.return_code(), 0);
        for b in &all[i + 1..] {
            assert_ne!(a.return_code(), b.return_code(), "{a:?} / {b:?}");
        }
        let back = ControlError::from_return_code(a.return_code(), 0);
        assert_eq!(back, Some(*a));
        let header_level = matches!(
            a,
            ControlError::ShortBuffer
                | ControlError::BadHeaderLength
                | ControlError::LengthPastBuffer
                | ControlError::WrongSignature
        );
        assert_eq!(a.reaches_requester(), !header_level);
        let want = if header_level {
            status::INVALID_REQUEST
        } else {
            status::SUCCESS
        };
        assert_eq!(a.srb_status(), want);
        assert!(!a.message().is_empty());
    }
    assert_eq!(ControlError::from_return_code(0, 0), None);
    assert_eq!(ControlError::from_return_code(0xDEAD, 0), None);
}

#[test]
fn reply_error_reaches_the_requester_only_for_trusted_headers() {
    let base = encoded(&Request::ListLuns, 16);
    for e in ControlError::ALL {
        let mut buf = base.clone();
        let c = reply_error(&mut buf, e);
        assert_eq!(c.srb_status, e.srb_status());
        if e.reaches_requester() {
            assert_eq!(c.return_code, Some(e.return_code()));
            assert_eq!(c.data_transfer_length as usize, HEADER_LEN);
            assert_eq!(
                read_reply(ControlCode::ListLuns, &buf),
                Err(ReplyError::Refused(e))
            );
        } else {
            assert_eq!(c.return_code, None);
            assert_eq!(c.data_transfer_length, 0);
            assert_eq!(buf, base, "header-level error wrote into the buffer");
        }
    }
    // A foreign request is never written to, whatever error the port tries to give.
    let mut foreign = base.clone();
    foreign[4..12].copy_from_slice(b"SCSIDISK");
    let before = foreign.clone();
    let c = reply_error(&mut foreign, ControlError::UnknownCode);
    assert_eq!(c.srb_status, status::INVALID_REQUEST);
    assert_eq!(foreign, before);
    // Nor a buffer too short for a header.
    let mut tiny = [0u8; 27];
    assert_eq!(
        reply_luns(&mut tiny, &[]).srb_status,
        status::INVALID_REQUEST
    );
    assert_eq!(tiny, [0u8; 27]);
}

#[test]
fn reply_decoder_rejects_malformed_replies() {
    let mut buf = encoded(&Request::ListLuns, 64);
    let c = reply_luns(&mut buf, &[]);
    let n = c.data_transfer_length as usize;
    // Count claims an entry that is not there.
    let mut bad = buf[..n].to_vec();
    set_u32(&mut bad, HEADER_LEN + 4, 1);
    assert_eq!(
        read_reply(ControlCode::ListLuns, &bad),
        Err(ReplyError::Malformed("LUN entry"))
    );
    // Length past the returned bytes.
    let mut bad = buf[..n].to_vec();
    set_u32(&mut bad, header::LENGTH, 1000);
    assert!(matches!(
        read_reply(ControlCode::ListLuns, &bad),
        Err(ReplyError::Malformed(_))
    ));
    // Unknown return code from a newer driver.
    let mut bad = buf[..n].to_vec();
    set_u32(&mut bad, header::RETURN_CODE, 0x7777);
    assert_eq!(
        read_reply(ControlCode::ListLuns, &bad),
        Err(ReplyError::UnknownReturnCode(0x7777))
    );
    assert!(read_reply(ControlCode::ListLuns, &buf[..10]).is_err());
}

#[test]
fn buffer_len_fits_request_and_reply_exactly() {
    use rvblk_core::control::{buffer_len, encode, reply_len};
    let p = utf16(r"\??\C:\images\some-long-name.iso");
    let requests = [
        Request::ListLuns,
        Request::MountFile {
            kind: DeviceKind::CdRom,
            read_only: true,
            path: path(&p),
        },
        Request::CreateRamDisk {
            kind: DeviceKind::Disk,
            read_only: false,
            size_bytes: 1 << 20,
            source: Some(path(&p)),
        },
        Request::CreateRamDisk {
            kind: DeviceKind::Floppy,
            read_only: false,
            size_bytes: 1474560,
            source: None,
        },
        Request::Remove { target_id: 5 },
    ];
    for request in &requests {
        let info = LunInfo {
            target_id: 5,
            kind: DeviceKind::Disk,
            origin: Origin::File,
            read_only: false,
            block_size: 512,
            blocks: 1,
            path: request.path(),
        };
        let reply = |buf: &mut [u8]| match request {
            Request::ListLuns => reply_luns(buf, &[]),
            Request::Remove { target_id } => reply_removed(buf, *target_id),
            _ => reply_lun(buf, &info),
        };
        let n = buffer_len(request);
        let mut buf = vec![0u8; n];
        encode(request, 0, &mut buf).unwrap();
        assert_eq!(parse(&buf).unwrap().request, *request);
        let c = reply(&mut buf);
        assert_eq!(c.return_code, Some(0), "{request:?}");
        assert_eq!(
            c.data_transfer_length as usize,
            HEADER_LEN + reply_len(request)
        );
        // One byte less of room is BUFFER TOO SMALL when the reply is the larger part.
        if reply_len(request) > request.body_len() {
            let mut buf = vec![0u8; n - 1];
            encode(request, 0, &mut buf).unwrap();
            let c = reply(&mut buf);
            assert_eq!(
                c.return_code,
                Some(ControlError::BufferTooSmall { needed: 0 }.return_code())
            );
        }
    }
}
