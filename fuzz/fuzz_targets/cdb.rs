#![no_main]
//! Arbitrary CDBs, buffer sizes and directions against every kind of ScsiTarget: no panic, no
//! transfer beyond the buffer, no medium access beyond the image, no write to a protected image.
//! `driver/core/tests/scsi_fuzz_smoke.rs` runs the same checks over a seeded PRNG.

use std::cell::Cell;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rvblk_core::image::{DeviceKind, LoaderSource, MemoryImage, WritePolicy};
use rvblk_core::scsi::{CommandStatus, DataDirection, Medium, MediumError, ScsiTarget};
use rvblk_core::srb::{self, SrbFlags};

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
        for (i, b) in dst.iter_mut().enumerate() {
            *b = (offset + i as u64) as u8;
        }
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
    let mut data = vec![0xA5u8; (input.buf_len % (1 << 20)) as usize];

    let target = ScsiTarget::new(image);
    let outcome = target.execute(cdb, &mut data, dir, &medium);

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
        assert!(data.iter().all(|&b| b == 0xA5), "data-out buffer modified");
    }
    if image.is_read_only() || write_policy == WritePolicy::DiscardWrites {
        assert_eq!(medium.writes.get(), 0, "write reached a protected medium");
    }

    let mut sense = vec![0u8; usize::from(input.sense_len)];
    let c = srb::complete(&outcome, SrbFlags::DATA_IN, &mut sense);
    assert!(usize::from(c.sense_length) <= sense.len());
    assert!(c.data_transfer_length as usize <= data.len());
});
