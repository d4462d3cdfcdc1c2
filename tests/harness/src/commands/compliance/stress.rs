//! The concurrency case: many threads issuing mixed I/O at once, checked for data integrity.

use super::{ensure, Ctx};
use crate::commands::scsi::Io;
use rvblk_core::image::WritePolicy;

/// Several threads issuing random reads and writes with verification against a shadow copy.
pub(super) fn stress(c: &Ctx<'_>) -> Result<(), String> {
    use std::sync::Mutex;
    let threads = 4usize;
    let per_thread = 300usize;
    for (i, e) in &c.luns {
        let bs = i.block_size as u64;
        let writable = e.policy == WritePolicy::ReadWrite;
        let span = i.blocks.min(4096);
        let mut shadow = vec![0u8; (span * bs) as usize];
        {
            let mut io = Io::new(c.a);
            let o = io.read(i.target, i.lun, 0, 0, bs as u32);
            let _ = o;
            let mut lba = 0;
            while lba < span {
                let n = (span - lba).min(128);
                let o = io.read(i.target, i.lun, lba, n as u32, bs as u32);
                ensure(o.ok(), || "stress: initial read failed".into())?;
                shadow[(lba * bs) as usize..((lba + n) * bs) as usize]
                    .copy_from_slice(io.slot.data((n * bs) as usize));
                lba += n;
            }
        }
        let original = shadow.clone();
        // Each thread owns a disjoint stripe of blocks for writes; reads go anywhere it owns.
        let shadow = Mutex::new(shadow);
        let errors = Mutex::new(Vec::<String>::new());
        std::thread::scope(|s| {
            for th in 0..threads {
                let shadow = &shadow;
                let errors = &errors;
                let a = c.a;
                let i = i.clone();
                s.spawn(move || {
                    let mut io = Io::new(a);
                    let mut x = 0x1234_5678u64 ^ (th as u64 * 0x9E37_79B9);
                    let mut rnd = move || {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x
                    };
                    for _ in 0..per_thread {
                        let mut lba = rnd() % span;
                        lba -= lba % threads as u64;
                        lba += th as u64;
                        if lba >= span {
                            continue;
                        }
                        let n = 1u64;
                        if writable && rnd() % 3 == 0 {
                            let data: Vec<u8> = (0..bs).map(|_| rnd() as u8).collect();
                            let o = io.write(i.target, i.lun, lba, &data, bs as u32);
                            if !o.ok() {
                                errors
                                    .lock()
                                    .unwrap()
                                    .push(format!("stress write failed {:#x}", o.srb_status));
                                return;
                            }
                            shadow.lock().unwrap()[(lba * bs) as usize..((lba + n) * bs) as usize]
                                .copy_from_slice(&data);
                        } else {
                            let o = io.read(i.target, i.lun, lba, n as u32, bs as u32);
                            let want = shadow.lock().unwrap()
                                [(lba * bs) as usize..((lba + n) * bs) as usize]
                                .to_vec();
                            if !o.ok() || io.slot.data(bs as usize) != &want[..] {
                                errors.lock().unwrap().push(format!(
                                    "stress: thread {th} LBA {lba} mismatch (status {:#x})",
                                    o.srb_status
                                ));
                                return;
                            }
                        }
                    }
                });
            }
        });
        let errs = errors.into_inner().unwrap();
        // Restore the original content.
        if writable {
            let mut io = Io::new(c.a);
            let mut lba = 0;
            while lba < span {
                let n = (span - lba).min(128);
                let o = io.write(
                    i.target,
                    i.lun,
                    lba,
                    &original[(lba * bs) as usize..((lba + n) * bs) as usize],
                    bs as u32,
                );
                ensure(o.ok(), || "stress: restore failed".into())?;
                lba += n;
            }
        }
        if let Some(e) = errs.first() {
            return Err(e.clone());
        }
    }
    Ok(())
}
