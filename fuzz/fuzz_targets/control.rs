#![no_main]
//! Arbitrary bytes as the DataBuffer of an SRB_FUNCTION_IO_CONTROL: parsing never panics; a
//! request that parses re-encodes to the same request; reply writers stay within the declared
//! Length; a header-level error leaves the buffer untouched; `serve`, the port's entry point,
//! stays inside the buffer and admits nothing a port without services cannot do. `driver/core/tests/
//! control_fuzz_smoke.rs` runs the same checks over a seeded PRNG.

use libfuzzer_sys::fuzz_target;
use rvblk_core::control::{
    encode, parse, reply_error, reply_lun, reply_luns, serve, Limits, LunInfo, Origin, Served,
    Services, HEADER_LEN,
};
use rvblk_core::image::DeviceKind;

fuzz_target!(|data: &[u8]| {
    // The port's entry point (HwStartIo's IO_CONTROL arm) on the same bytes, with a driver that
    // serves nothing but LIST: it never writes past the buffer it was given, never grows
    // DataTransferLength, and never admits work it was told it cannot do.
    let mut served = data.to_vec();
    let limits = Limits {
        max_targets: 32,
        ram_bytes: 1 << 30,
        max_path_units: 1024,
        services: Services::empty(),
    };
    match serve(&mut served, &[], &limits) {
        Served::Done(c) => assert!(c.data_transfer_length as usize <= data.len()),
        Served::Admitted { .. } => panic!("admitted without services"),
    }
    match parse(data) {
        Ok(parsed) => {
            let mut again = vec![0u8; HEADER_LEN + parsed.length as usize];
            encode(&parsed.request, parsed.timeout, &mut again).expect("re-encode");
            let back = parse(&again).expect("re-parse");
            assert_eq!(back.request, parsed.request);
            assert_eq!(back.timeout, parsed.timeout);

            let end = HEADER_LEN + parsed.length as usize;
            let info = LunInfo {
                target_id: 1,
                kind: DeviceKind::Disk,
                origin: Origin::File,
                read_only: false,
                block_size: 512,
                blocks: 1,
                path: parsed.request.path(),
            };
            for list in [true, false] {
                let mut out = data.to_vec();
                let c = if list {
                    reply_luns(&mut out, &[info, info])
                } else {
                    reply_lun(&mut out, &info)
                };
                assert!(c.data_transfer_length as usize <= end);
                assert_eq!(out[end..], data[end..], "reply past Length");
            }
        }
        Err(e) => {
            let mut out = data.to_vec();
            let c = reply_error(&mut out, e);
            assert_eq!(c.srb_status, e.srb_status());
            if !e.reaches_requester() {
                assert_eq!(out, data);
            }
        }
    }
});
