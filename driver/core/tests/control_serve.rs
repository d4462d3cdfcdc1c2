//! `serve`, the port's entry point (`docs/control.md` §4, §5): LIST answered from the table,
//! every refusal written with its code and nothing else changed, foreign requests untouched,
//! admitted work handed back only to a port that offers the service.

mod control_common;

use control_common::{encoded, path, utf16};
use rvblk_core::control::{
    read_reply, serve, ControlCode, ControlError, Decision, Limits, LunInfo, Origin, Reply,
    ReplyError, Request, Served, Services, HEADER_LEN, LUN_PATH_UNITS,
};
use rvblk_core::image::DeviceKind;
use rvblk_core::srb::status;

const LIMITS: Limits = Limits {
    max_targets: 32,
    ram_bytes: 512 << 20,
    max_path_units: LUN_PATH_UNITS,
    services: Services::empty(),
};

fn table() -> [LunInfo<'static>; 3] {
    let info = |target_id, kind: DeviceKind, read_only, blocks| LunInfo {
        target_id,
        kind,
        origin: Origin::Loader,
        read_only,
        block_size: kind.block_size(),
        blocks,
        path: None,
    };
    [
        info(0, DeviceKind::CdRom, true, 300),
        info(1, DeviceKind::Disk, false, 2048),
        info(2, DeviceKind::Floppy, true, 2880),
    ]
}

fn done(s: Served) -> rvblk_core::control::Completion {
    match s {
        Served::Done(c) => c,
        other => panic!("expected a completion, got {other:?}"),
    }
}

#[test]
fn list_is_the_table() {
    let luns = table();
    let mut buf = encoded(&Request::ListLuns, 8 + 3 * 20);
    let c = done(serve(&mut buf, &luns, &LIMITS));
    assert_eq!(c.srb_status, status::SUCCESS);
    assert_eq!(c.return_code, Some(0));
    assert_eq!(c.data_transfer_length as usize, HEADER_LEN + 8 + 3 * 20);
    let Ok(Reply::Luns(got)) = read_reply(ControlCode::ListLuns, &buf) else {
        panic!("not a LUN list")
    };
    assert_eq!(got.collect::<Vec<_>>(), luns.to_vec());

    // One byte short: BUFFER TOO SMALL naming the Length that fits, and a retry with it works.
    let mut short = encoded(&Request::ListLuns, 8 + 3 * 20 - 1);
    let c = done(serve(&mut short, &luns, &LIMITS));
    assert_eq!(c.srb_status, status::SUCCESS);
    assert_eq!(c.data_transfer_length as usize, HEADER_LEN);
    let Err(ReplyError::Refused(ControlError::BufferTooSmall { needed })) =
        read_reply(ControlCode::ListLuns, &short)
    else {
        panic!("not BUFFER TOO SMALL")
    };
    let mut retry = encoded(&Request::ListLuns, needed as usize);
    done(serve(&mut retry, &luns, &LIMITS));
    assert!(matches!(
        read_reply(ControlCode::ListLuns, &retry),
        Ok(Reply::Luns(l)) if l.len() == 3
    ));

    // An empty adapter lists nothing.
    let mut empty = encoded(&Request::ListLuns, 8);
    done(serve(&mut empty, &[], &LIMITS));
    assert!(matches!(
        read_reply(ControlCode::ListLuns, &empty),
        Ok(Reply::Luns(l)) if l.is_empty()
    ));
}

#[test]
fn refusals_carry_their_code_and_change_nothing_else() {
    let luns = table();
    let iso = utf16(r"\??\C:\images\a.iso");
    let long = utf16(&format!("\\{}", "p".repeat(LUN_PATH_UNITS)));
    let fits = utf16(&format!("\\{}", "p".repeat(LUN_PATH_UNITS - 1)));
    let ram = |size_bytes| Request::CreateRamDisk {
        kind: DeviceKind::Disk,
        read_only: false,
        size_bytes,
        source: None,
    };
    let mount = |p| Request::MountFile {
        kind: DeviceKind::CdRom,
        read_only: true,
        path: path(p),
    };
    let cases = [
        (ram(0), ControlError::ZeroSize),
        (ram(LIMITS.ram_bytes + 512), ControlError::SizeExceedsMemory),
        (ram(LIMITS.ram_bytes), ControlError::NotAvailable),
        (mount(&long), ControlError::PathTooLong),
        (mount(&fits), ControlError::NotAvailable),
        (mount(&iso), ControlError::NotAvailable),
        (Request::Remove { target_id: 0 }, ControlError::BootImage),
        (Request::Remove { target_id: 7 }, ControlError::NoSuchTarget),
    ];
    for (request, want) in cases {
        let before = encoded(&request, 64);
        let mut buf = before.clone();
        let c = done(serve(&mut buf, &luns, &LIMITS));
        assert_eq!(c.srb_status, status::SUCCESS, "{want:?}");
        assert_eq!(c.return_code, Some(want.return_code()));
        assert_eq!(c.data_transfer_length as usize, HEADER_LEN);
        assert_eq!(
            read_reply(request.code(), &buf),
            Err(ReplyError::Refused(want))
        );
        // Only ReturnCode (20..24) and Length (24..28) of the header change.
        assert_eq!(buf[..20], before[..20]);
        assert_eq!(buf[HEADER_LEN..], before[HEADER_LEN..], "{want:?}");
    }

    // Malformed: unknown code, wrong version; header-level: foreign signature, short buffer.
    let mut unknown = encoded(&Request::ListLuns, 8);
    unknown[16] = 9;
    done(serve(&mut unknown, &luns, &LIMITS));
    assert_eq!(
        read_reply(ControlCode::ListLuns, &unknown),
        Err(ReplyError::Refused(ControlError::UnknownCode))
    );
    let mut foreign = encoded(&Request::ListLuns, 8);
    foreign[4..12].copy_from_slice(b"SCSIDISK");
    let before = foreign.clone();
    let c = done(serve(&mut foreign, &luns, &LIMITS));
    assert_eq!(c.srb_status, status::INVALID_REQUEST);
    assert_eq!(c.data_transfer_length, 0);
    assert_eq!(foreign, before);
    let mut short = encoded(&Request::ListLuns, 8)[..27].to_vec();
    let before = short.clone();
    assert_eq!(
        done(serve(&mut short, &luns, &LIMITS)).srb_status,
        status::INVALID_REQUEST
    );
    assert_eq!(short, before);
}

#[test]
fn admitted_work_goes_back_to_a_port_that_offers_it() {
    let luns = table();
    let iso = utf16(r"\??\C:\a.iso");
    let request = Request::MountFile {
        kind: DeviceKind::CdRom,
        read_only: true,
        path: path(&iso),
    };
    let mut buf = encoded(&request, 64);
    let before = buf.clone();
    let all = Limits {
        services: Services::all(),
        ..LIMITS
    };
    assert_eq!(
        serve(&mut buf, &luns, &all),
        Served::Admitted {
            decision: Decision::Mount { target_id: 3 },
            timeout: 30
        }
    );
    assert_eq!(buf, before, "admitted work is not answered yet");
}
