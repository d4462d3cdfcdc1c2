//! The always-run short fuzz of the control protocol: the checks of
//! `fuzz/fuzz_targets/control.rs` over ~100k inputs from a seeded xorshift. Inputs start as valid
//! requests (so most get past the header) and are then truncated, have header fields set to
//! boundary values, or bytes flipped. Parsing must never panic; whatever parses must re-encode to
//! the same request; replies must stay within Length; admission must pick a free, existing target;
//! `serve` (the port's entry point) refuses exactly what the parser refuses.

mod control_common;
mod rng;

use control_common::{encoded, path, utf16};
use rng::XorShift;
use rvblk_core::control::{
    admit, encode, header, parse, reply_error, reply_lun, reply_luns, reply_removed, serve,
    ControlError, Decision, Limits, LunInfo, LunSummary, Origin, Request, Served, Services,
    HEADER_LEN,
};
use rvblk_core::image::DeviceKind;
use rvblk_core::srb::status;

const ITERATIONS: u32 = 100_000;

fn kind(rng: &mut XorShift) -> DeviceKind {
    [DeviceKind::Disk, DeviceKind::CdRom, DeviceKind::Floppy][rng.below(3) as usize]
}

fn valid(rng: &mut XorShift, p: &[u8]) -> Vec<u8> {
    let request = match rng.below(4) {
        0 => Request::ListLuns,
        1 => Request::MountFile {
            kind: kind(rng),
            read_only: rng.below(2) == 0,
            path: path(p),
        },
        2 => Request::CreateRamDisk {
            kind: kind(rng),
            read_only: rng.below(2) == 0,
            size_bytes: [0, 512, 1 << 20, u64::MAX, rng.next()][rng.below(5) as usize],
            source: (rng.below(2) == 0).then(|| path(p)),
        },
        _ => Request::Remove {
            target_id: rng.next() as u8,
        },
    };
    encoded(&request, rng.below(96) as usize)
}

fn boundary(rng: &mut XorShift, len: usize) -> u32 {
    let l = len as u32;
    [
        0,
        1,
        27,
        28,
        29,
        l.wrapping_sub(28),
        l.wrapping_sub(27),
        l,
        u32::MAX,
        rng.next() as u32,
    ][rng.below(10) as usize]
}

fn mutate(rng: &mut XorShift, buf: &mut Vec<u8>) {
    for _ in 0..=rng.below(3) {
        match rng.below(6) {
            0 => {
                let n = rng.below(buf.len() as u64 + 1) as usize;
                buf.truncate(n);
            }
            1 if buf.len() >= 28 => {
                let at = [header::HEADER_LENGTH, header::CONTROL_CODE, header::LENGTH]
                    [rng.below(3) as usize];
                let v = boundary(rng, buf.len());
                buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            2 | 3 if !buf.is_empty() => {
                let at = rng.below(buf.len() as u64) as usize;
                buf[at] = rng.next() as u8;
            }
            4 if buf.len() > HEADER_LEN + 8 => {
                // Path length field of MOUNT / CREATE RAM DISK.
                let v = [0u16, 1, 2, 3, 0xFFFF, rng.next() as u16][rng.below(6) as usize];
                buf[HEADER_LEN + 6..HEADER_LEN + 8].copy_from_slice(&v.to_le_bytes());
            }
            _ => buf.extend((0..rng.below(8)).map(|_| rng.next() as u8)),
        }
    }
}

#[test]
fn control_smoke_fuzz() {
    let mut rng = XorShift(0x5256_424C_4B43_544C);
    let paths = [
        utf16(r"\??\C:\a.iso"),
        utf16(r"\Device\HarddiskVolume3\images\win.img"),
        utf16("\\"),
    ];
    let (mut parsed, mut refused) = (0u32, 0u32);
    for _ in 0..ITERATIONS {
        let p = &paths[rng.below(3) as usize];
        let mut buf = valid(&mut rng, p);
        if rng.below(8) != 0 {
            mutate(&mut rng, &mut buf);
        }
        match parse(&buf) {
            Ok(req) => {
                parsed += 1;
                // Re-encoding gives the same request (canonical form).
                let mut again = vec![0u8; HEADER_LEN + req.length as usize];
                encode(&req.request, req.timeout, &mut again).expect("re-encode");
                let back = parse(&again).expect("re-parse");
                assert_eq!(back.request, req.request);
                assert_eq!(back.length, req.length);
                check_replies(&mut rng, &buf, &req.request);
                check_admission(&mut rng, &req.request);
            }
            Err(e) => {
                refused += 1;
                // The port's entry point gives the same answer as the parser.
                let mut served = buf.clone();
                let limits = Limits {
                    max_targets: 32,
                    ram_bytes: 1 << 30,
                    max_path_units: 1024,
                    services: Services::all(),
                };
                assert_eq!(
                    serve(&mut served, &[], &limits),
                    Served::Done(reply_error(&mut buf.clone(), e))
                );
                let mut out = buf.clone();
                let c = reply_error(&mut out, e);
                assert_eq!(c.srb_status, e.srb_status());
                if e.reaches_requester() {
                    assert_eq!(out[..20], buf[..20]);
                    assert_eq!(out[28..], buf[28..]);
                } else {
                    assert_eq!(out, buf, "{e:?} wrote into an untrusted buffer");
                }
            }
        }
    }
    // The corpus must exercise both sides.
    assert!(parsed > ITERATIONS / 10, "parsed {parsed}");
    assert!(refused > ITERATIONS / 10, "refused {refused}");
}

/// Reply writers on the request's own buffer: never past Length (canary), and either the reply
/// or BUFFER TOO SMALL.
fn check_replies(rng: &mut XorShift, buf: &[u8], request: &Request<'_>) {
    let length = u32::from_le_bytes(buf[24..28].try_into().unwrap()) as usize;
    let mut out = buf.to_vec();
    out.extend_from_slice(&[0xC3; 16]);
    // Make the canary region start right after Length.
    let end = HEADER_LEN + length;
    let info = LunInfo {
        target_id: rng.next() as u8,
        kind: kind(rng),
        origin: Origin::File,
        read_only: false,
        block_size: 512,
        blocks: rng.next(),
        path: request.path(),
    };
    let c = match rng.below(3) {
        0 => reply_luns(&mut out, &[info, info]),
        1 => reply_lun(&mut out, &info),
        _ => reply_removed(&mut out, info.target_id),
    };
    assert_eq!(c.srb_status, status::SUCCESS);
    assert!(c.data_transfer_length as usize <= end);
    assert_eq!(
        &out[end..end + buf.len() - end],
        &buf[end..],
        "wrote past Length"
    );
    assert!(out[out.len() - 16..].iter().all(|&b| b == 0xC3));
    let rc = u32::from_le_bytes(out[20..24].try_into().unwrap());
    assert_eq!(Some(rc), c.return_code);
    if rc != 0 {
        assert_eq!(
            ControlError::from_return_code(rc, 0),
            Some(ControlError::BufferTooSmall { needed: 0 })
        );
        let needed = u32::from_le_bytes(out[24..28].try_into().unwrap()) as usize;
        assert!(needed > length);
    }
}

fn check_admission(rng: &mut XorShift, request: &Request<'_>) {
    let limits = Limits {
        max_targets: rng.below(40) as u8,
        ram_bytes: [0, 1 << 20, 1 << 32, u64::MAX][rng.below(4) as usize],
        max_path_units: rng.below(64) as usize,
        services: Services::from_bits_truncate(rng.below(8) as u8),
    };
    let luns: Vec<LunSummary> = (0..rng.below(40))
        .map(|_| LunSummary {
            target_id: rng.below(48) as u8,
            origin: [Origin::Loader, Origin::File, Origin::RamDisk][rng.below(3) as usize],
        })
        .collect();
    match admit(request, &luns, &limits) {
        Ok(Decision::Mount { target_id } | Decision::CreateRamDisk { target_id }) => {
            assert!(target_id < limits.max_targets);
            assert!(luns.iter().all(|l| l.target_id != target_id));
            assert!(request
                .path()
                .is_none_or(|p| p.len_units() <= limits.max_path_units));
            if let Request::CreateRamDisk {
                size_bytes, kind, ..
            } = *request
            {
                assert!(size_bytes > 0 && size_bytes <= limits.ram_bytes);
                assert_eq!(size_bytes % u64::from(kind.block_size()), 0);
            }
        }
        Ok(Decision::Remove { target_id }) => {
            let l = luns.iter().find(|l| l.target_id == target_id).unwrap();
            assert_ne!(l.origin, Origin::Loader);
        }
        Ok(Decision::List) => assert_eq!(*request, Request::ListLuns),
        Err(e) => assert!(e.reaches_requester()),
    }
    // The service check is the last one: with every service the same request is admitted, to
    // work that needs exactly the service that was missing.
    if admit(request, &luns, &limits) == Err(ControlError::NotAvailable) {
        let all = Limits {
            services: Services::all(),
            ..limits
        };
        let needs = match admit(request, &luns, &all).expect("admitted with every service") {
            Decision::Mount { .. } => Services::MOUNT_FILE,
            Decision::CreateRamDisk { .. } => Services::RAM_DISK,
            Decision::Remove { .. } => Services::REMOVE,
            Decision::List => panic!("LIST refused as not available"),
        };
        assert!(!limits.services.contains(needs));
    }
}
