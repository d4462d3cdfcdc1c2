#![no_main]
//! Arbitrary CDBs, buffer sizes and directions against every kind of ScsiTarget: no panic, no
//! transfer beyond the buffer, no medium access beyond the image, no write to a protected image.
//! `driver/core/tests/scsi_fuzz_smoke.rs` runs the same checks over a seeded PRNG.
//!
//! Per-input cost is kept small and memory flat (`docs/fuzzing.md`): the data buffer is one
//! reused allocation, buffer sizes are log-uniform (most inputs use small buffers; 1 MiB stays
//! reachable), and the synthetic medium fills by copying, not byte by byte.

use std::cell::{Cell, RefCell};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rvblk_core::image::{DeviceKind, LoaderSource, MemoryImage, WritePolicy};
use rvblk_core::scsi::{CommandStatus, DataDirection, Medium, MediumError, ScsiTarget};
use rvblk_core::srb::{self, SrbFlags};

const MAX_BUF: usize = 1 << 20;
const FILL: u8 = 0xA5;
/// Byte `i` of the medium is `i as u8`: a ramp long enough to copy any chunk from.
const RAMP_CHUNK: usize = 64 * 1024;

thread_local! {
    static DATA: RefCell<Vec<u8>> = RefCell::new(vec![FILL; MAX_BUF]);
    static FILLED: Vec<u8> = vec![FILL; MAX_BUF];
    static RAMP: Vec<u8> = (0..RAMP_CHUNK + 256).map(|i| i as u8).collect();
}

/// Content computed from the offset, so images of any size cost no memory.
struct SynthMedium {
    len: u64,
    fail: Option<MediumError>,
    writes: Cell<u32>,
}

impl Medium for SynthMedium {
    fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), MediumError> {
        let end = offset
            .checked_add(dst.len() as u64)
            .expect("offset overflow");
        assert!(end <= self.len, "read beyond the image");
        if let Some(e) = self.fail {
            return Err(e);
        }
        let phase = (offset % 256) as usize;
        RAMP.with(|ramp| {
            for chunk in dst.chunks_mut(RAMP_CHUNK) {
                chunk.copy_from_slice(&ramp[phase..phase + chunk.len()]);
            }
        });
        Ok(())
    }

    fn write(&self, offset: u64, src: &[u8]) -> Result<(), MediumError> {
        let end = offset
            .checked_add(src.len() as u64)
            .expect("offset overflow");
        assert!(end <= self.len, "write beyond the image");
        self.writes.set(self.writes.get() + 1);
        self.fail.map_or(Ok(()), Err)
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    kind: u8,
    blocks: u64,
    policy: u8,
    dir: u8,
    fail: u8,
    /// Low 20 bits: size; bits 20..24: how far to shift it down (log-uniform sizes).
    buf_len: u32,
    sense_len: u8,
    cdb: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let kind = match input.kind % 3 {
        0 => DeviceKind::Disk,
        1 => DeviceKind::CdRom,
        _ => DeviceKind::Floppy,
    };
    let write_policy = match input.policy % 3 {
        0 => WritePolicy::ReadWrite,
        1 => WritePolicy::ReadOnly,
        _ => WritePolicy::DiscardWrites,
    };
    let blocks = input.blocks % (u64::MAX / 2048);
    let length = blocks * u64::from(kind.block_size());
    let image = MemoryImage {
        kind,
        phys_base: 0x100_0000,
        length,
        write_policy,
        source: LoaderSource::Grub4Dos,
        table_address: 0,
        slot: 0,
        bios_drive: 0xFF,
    };
    let dir = match input.dir % 4 {
        0 => DataDirection::None,
        1 => DataDirection::In,
        2 => DataDirection::Out,
        _ => DataDirection::Unspecified,
    };
    let medium = SynthMedium {
        len: length,
        fail: match input.fail % 8 {
            0 => Some(MediumError::Busy),
            1 => Some(MediumError::Unreadable),
            _ => None,
        },
        writes: Cell::new(0),
    };
    let cdb = &input.cdb[..input.cdb.len().min(16)];
    let buf_len = (input.buf_len as usize & (MAX_BUF - 1)) >> ((input.buf_len >> 20) & 15);

    DATA.with(|data| {
        let mut data = data.borrow_mut();
        let data = &mut data[..buf_len];
        data.fill(FILL);

        let target = ScsiTarget::new(image);
        let outcome = target.execute(cdb, data, dir, &medium);

        assert!(outcome.transferred() <= data.len());
        match outcome.status() {
            CommandStatus::Good => assert!(outcome.sense().is_none()),
            CommandStatus::CheckCondition => {
                assert!(outcome.sense().is_some());
                assert_eq!(outcome.transferred(), 0);
            }
            CommandStatus::Busy => assert_eq!(outcome.transferred(), 0),
        }
        if !dir.allows(DataDirection::In) {
            let untouched = FILLED.with(|f| *data == f[..buf_len]);
            assert!(untouched, "data-out buffer modified");
        }
        if image.is_read_only() || write_policy == WritePolicy::DiscardWrites {
            assert_eq!(medium.writes.get(), 0, "write reached a protected medium");
        }

        let mut sense = [0u8; 256];
        let sense = &mut sense[..usize::from(input.sense_len)];
        let c = srb::complete(&outcome, SrbFlags::DATA_IN, sense);
        assert!(usize::from(c.sense_length) <= sense.len());
        assert!(c.data_transfer_length as usize <= data.len());
    });
});
