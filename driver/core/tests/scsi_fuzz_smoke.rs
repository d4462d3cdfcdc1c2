//! The always-run short fuzz: the checks of `fuzz/fuzz_targets/cdb.rs` over ~200k inputs from a
//! seeded xorshift, biased toward known opcodes and small field values so that most CDBs get
//! past decoding and reach the range checks and the medium.

mod rng;

use std::cell::Cell;

use rng::XorShift;
use rvblk_core::image::{DeviceKind, LoaderSource, MemoryImage, WritePolicy};
use rvblk_core::scsi::{CommandStatus, DataDirection, Medium, MediumError, ScsiTarget};
use rvblk_core::srb::{self, SrbFlags};

const ITERATIONS: u32 = 200_000;

/// Opcodes the targets know, plus a few they do not.
const OPCODES: &[u8] = &[
    0x00, 0x03, 0x08, 0x0A, 0x12, 0x1A, 0x1B, 0x1E, 0x25, 0x28, 0x2A, 0x2F, 0x35, 0x43, 0x46, 0x4A,
    0x51, 0x52, 0x5A, 0x88, 0x8A, 0x8F, 0x91, 0x9E, 0xA0, 0xA8, 0xAA, 0xAF, 0xBB, 0xBD, 0xBE, 0x15,
    0x55, 0xAD, 0xFF,
];

struct SynthMedium {
    len: u64,
    fail: Option<MediumError>,
    reads: Cell<u32>,
    writes: Cell<u32>,
}

impl Medium for SynthMedium {
    fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), MediumError> {
        let end = offset
            .checked_add(dst.len() as u64)
            .expect("offset overflow");
        assert!(end <= self.len, "read beyond the image");
        self.reads.set(self.reads.get() + 1);
        if let Some(e) = self.fail {
            return Err(e);
        }
        // Content only needs to be deterministic here; leave the buffer as the target gave it.
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

/// Small and boundary block counts, and capacities past 32 bits.
fn blocks(rng: &mut XorShift) -> u64 {
    match rng.below(8) {
        0 => 0,
        1 => 1,
        2 => 2880,
        3 => (1 << 32) - 1,
        4 => 1 << 32,
        5 => rng.below(u64::MAX / 2048),
        _ => rng.below(4096),
    }
}

fn cdb(rng: &mut XorShift) -> Vec<u8> {
    let len = match rng.below(4) {
        0 => rng.below(17) as usize,
        1 => 6,
        2 => 10,
        _ => 16,
    };
    let mut c: Vec<u8> = (0..len)
        .map(|_| match rng.below(4) {
            0 | 1 => 0,
            2 => rng.below(8) as u8,
            _ => rng.next() as u8,
        })
        .collect();
    if let Some(op) = c.first_mut() {
        if rng.below(8) != 0 {
            *op = OPCODES[rng.below(OPCODES.len() as u64) as usize];
        }
    }
    c
}

#[test]
fn random_cdbs_never_misbehave() {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let mut good = 0u32;
    let mut moved = 0u32;
    for _ in 0..ITERATIONS {
        let kind = match rng.below(3) {
            0 => DeviceKind::Disk,
            1 => DeviceKind::CdRom,
            _ => DeviceKind::Floppy,
        };
        let write_policy = match rng.below(3) {
            0 => WritePolicy::ReadWrite,
            1 => WritePolicy::ReadOnly,
            _ => WritePolicy::DiscardWrites,
        };
        let length = blocks(&mut rng) * u64::from(kind.block_size());
        let image = MemoryImage {
            kind,
            phys_base: 0x100_0000,
            length,
            write_policy,
            source: LoaderSource::Memdisk,
            table_address: 0,
            slot: 0,
            bios_drive: 0xFF,
        };
        let dir = match rng.below(6) {
            0 => DataDirection::None,
            1 => DataDirection::Out,
            2 => DataDirection::Unspecified,
            _ => DataDirection::In,
        };
        let medium = SynthMedium {
            len: length,
            fail: match rng.below(16) {
                0 => Some(MediumError::Busy),
                1 => Some(MediumError::Unreadable),
                _ => None,
            },
            reads: Cell::new(0),
            writes: Cell::new(0),
        };
        let cdb = cdb(&mut rng);
        let buf_len = match rng.below(8) {
            0 => 0,
            1 | 2 => rng.below(64) as usize,
            3..=6 => rng.below(8192) as usize,
            _ => rng.below(1 << 17) as usize,
        };
        let mut data = vec![0xA5u8; buf_len];

        let target = ScsiTarget::new(image);
        let outcome = target.execute(&cdb, &mut data, dir, &medium);

        assert!(outcome.transferred() <= data.len(), "{cdb:02X?}");
        match outcome.status() {
            CommandStatus::Good => {
                assert!(outcome.sense().is_none());
                good += 1;
                if outcome.transferred() > 0 {
                    moved += 1;
                }
            }
            CommandStatus::CheckCondition => {
                assert!(outcome.sense().is_some());
                assert_eq!(outcome.transferred(), 0);
            }
            CommandStatus::Busy => assert_eq!(outcome.transferred(), 0),
        }
        if !dir.allows(DataDirection::In) {
            assert!(
                data.iter().all(|&b| b == 0xA5),
                "{cdb:02X?} modified a data-out buffer"
            );
        }
        if image.is_read_only() || write_policy == WritePolicy::DiscardWrites {
            assert_eq!(
                medium.writes.get(),
                0,
                "{cdb:02X?} wrote to a protected medium"
            );
        }
        assert!(
            medium.reads.get() + medium.writes.get() <= 1
                || cdb[0] == 0x2F
                || cdb[0] == 0x8F
                || cdb[0] == 0xAF
        );

        let mut sense = vec![0u8; rng.below(40) as usize];
        let c = srb::complete(&outcome, SrbFlags::DATA_IN, &mut sense);
        assert!(usize::from(c.sense_length) <= sense.len());
        assert!(c.data_transfer_length as usize <= data.len());
    }
    // The generator must reach real work, or the smoke test proves nothing.
    assert!(good > ITERATIONS / 20, "only {good} GOOD outcomes");
    assert!(moved > ITERATIONS / 100, "only {moved} data transfers");
}
