//! `rvblk-harness torture`: an fsx-style data-integrity run (`docs/scsi-oracle.md` §5). Several
//! threads send random READ/WRITE(10/16) and VERIFY(10/16) with BYTCHK of random lengths at
//! random offsets of one writable GRUB4DOS disk image, while every few pool allocations and
//! MmMapIoSpace calls fail (fault injection). Every answer is checked against a shadow copy of
//! the image; at the end the whole image is compared with the shadow too.
//!
//! Overlapping requests are serialised by stripe locks held around each SRB, as Windows'
//! upper layers do for a disk; disjoint requests run concurrently. BUSY answers (a failed
//! mapping on x86) are retried, as StorPort does.

use crate::commands::oracle::{self, flag, Kind};
use crate::commands::scsi::{cdb_rw10, cdb_rw16, Io, READ10, READ16, WRITE10, WRITE16};
use crate::emu::kernel::Personality;
use crate::emu::storport::{self as sp, Adapter};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const BLOCK: usize = 512;
/// Shadow stripes: a request (at most `MAX_BLOCKS` blocks) spans at most two.
const STRIPE: usize = 64 << 10;
const MAX_BLOCKS: u64 = 64;
const VERIFY10: u8 = 0x2F;
const VERIFY16: u8 = 0x8F;
/// VERIFY byte 1: BYTCHK = 01b, compare with the data-out buffer (SBC-3 §5.34, table 84).
const BYTCHK_COMPARE: u8 = 0x02;

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Totals of one run.
#[derive(Default)]
pub struct Totals {
    pub ops: AtomicU64,
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub verifies: AtomicU64,
    pub miscompares_expected: AtomicU64,
    pub out_of_range: AtomicU64,
    pub busy_retries: AtomicU64,
    pub mismatches: AtomicU64,
}

fn verify_cdb(lba: u64, blocks: u32, long: bool) -> Vec<u8> {
    let mut c = if long {
        cdb_rw16(VERIFY16, lba, blocks)
    } else {
        cdb_rw10(VERIFY10, lba as u32, blocks as u16)
    };
    c[1] = BYTCHK_COMPARE;
    c
}

/// One worker: `ops` random requests. Problems are reported through `report` (first few kept).
#[allow(clippy::too_many_arguments)]
fn worker(
    a: &Adapter,
    target: u8,
    lun: u8,
    blocks: u64,
    shadow: &[Mutex<Vec<u8>>],
    ops: u64,
    seed: u64,
    t: &Totals,
    report: &Mutex<Vec<String>>,
) {
    let mut r = rng(seed);
    let mut io = Io::new(a);
    io.slot.light = true;
    let fail = |msg: String| {
        t.mismatches.fetch_add(1, Ordering::Relaxed);
        let mut g = report.lock().unwrap_or_else(|e| e.into_inner());
        if g.len() < 20 {
            g.push(msg);
        }
    };
    // Runs one request, retrying BUSY.
    let run = |io: &mut Io, cdb: &[u8], dir: sp::Dir, data: Option<&[u8]>, len: usize| loop {
        if let Some(d) = data {
            io.slot.data_mut(len).copy_from_slice(d);
        }
        let o = io.run(&sp::Request::scsi(target, lun, cdb, dir, len as u32));
        if o.status() == sp::SRB_STATUS_BUSY {
            t.busy_retries.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        return o;
    };
    for _ in 0..ops {
        t.ops.fetch_add(1, Ordering::Relaxed);
        let n = 1 + r() % MAX_BLOCKS;
        let lba = r() % (blocks - n + 1);
        let long = r().is_multiple_of(4);
        let (off, len) = ((lba as usize) * BLOCK, n as usize * BLOCK);
        let kind = r() % 100;
        if kind >= 97 {
            // Past the end: LOGICAL BLOCK ADDRESS OUT OF RANGE, nothing moved.
            t.out_of_range.fetch_add(1, Ordering::Relaxed);
            let lba = blocks - n + 1 + r() % 8;
            let cdb = if long {
                cdb_rw16(READ16, lba, n as u32)
            } else {
                cdb_rw10(READ10, lba as u32, n as u16)
            };
            let o = run(&mut io, &cdb, sp::Dir::In, None, len);
            if o.sense_key() != Some((5, 0x21, 0)) {
                fail(format!(
                    "READ past the end (LBA {lba}, {n} blocks): status {:#x} sense {:?}",
                    o.srb_status,
                    o.sense_key()
                ));
            }
            continue;
        }
        // Lock the stripes the request touches, in order.
        let (s0, s1) = (off / STRIPE, (off + len - 1) / STRIPE);
        let mut guards: Vec<_> = (s0..=s1)
            .map(|s| shadow[s].lock().unwrap_or_else(|e| e.into_inner()))
            .collect();
        let expected = |guards: &Vec<std::sync::MutexGuard<Vec<u8>>>| {
            let mut v = Vec::with_capacity(len);
            let mut pos = off;
            while pos < off + len {
                let (s, within) = (pos / STRIPE, pos % STRIPE);
                let take = (STRIPE - within).min(off + len - pos);
                v.extend_from_slice(&guards[s - s0][within..within + take]);
                pos += take;
            }
            v
        };
        if kind < 45 {
            t.reads.fetch_add(1, Ordering::Relaxed);
            let cdb = if long {
                cdb_rw16(READ16, lba, n as u32)
            } else {
                cdb_rw10(READ10, lba as u32, n as u16)
            };
            let o = run(&mut io, &cdb, sp::Dir::In, None, len);
            if !o.ok() || o.transferred as usize != len {
                fail(format!(
                    "READ LBA {lba} x{n}: status {:#x} sense {:?} transferred {}",
                    o.srb_status,
                    o.sense_key(),
                    o.transferred
                ));
            } else if io.slot.data(len) != expected(&guards).as_slice() {
                fail(format!("READ LBA {lba} x{n}: data differs from the shadow"));
            }
        } else if kind < 80 {
            t.writes.fetch_add(1, Ordering::Relaxed);
            let data: Vec<u8> = (0..len / 8).flat_map(|_| r().to_le_bytes()).collect();
            let cdb = if long {
                cdb_rw16(WRITE16, lba, n as u32)
            } else {
                cdb_rw10(WRITE10, lba as u32, n as u16)
            };
            let o = run(&mut io, &cdb, sp::Dir::Out, Some(&data), len);
            if !o.ok() {
                fail(format!(
                    "WRITE LBA {lba} x{n}: status {:#x} sense {:?}",
                    o.srb_status,
                    o.sense_key()
                ));
            } else {
                let mut pos = off;
                while pos < off + len {
                    let (s, within) = (pos / STRIPE, pos % STRIPE);
                    let take = (STRIPE - within).min(off + len - pos);
                    guards[s - s0][within..within + take]
                        .copy_from_slice(&data[pos - off..pos - off + take]);
                    pos += take;
                }
            }
        } else {
            t.verifies.fetch_add(1, Ordering::Relaxed);
            let mut data = expected(&guards);
            let corrupt = kind >= 92;
            if corrupt {
                let i = (r() % len as u64) as usize;
                data[i] ^= 1 + (r() % 255) as u8;
                t.miscompares_expected.fetch_add(1, Ordering::Relaxed);
            }
            let o = run(
                &mut io,
                &verify_cdb(lba, n as u32, long),
                sp::Dir::Out,
                Some(&data),
                len,
            );
            // SBC-3 §5.34: a difference is MISCOMPARE / MISCOMPARE DURING VERIFY OPERATION.
            let good = if corrupt {
                o.sense_key() == Some((0x0E, 0x1D, 0))
            } else {
                o.ok()
            };
            if !good {
                fail(format!(
                    "VERIFY LBA {lba} x{n} (corrupted: {corrupt}): status {:#x} sense {:?}",
                    o.srb_status,
                    o.sense_key()
                ));
            }
        }
        drop(guards);
        // Fault injection: re-arm the next pool allocation / mapping failure a few calls ahead.
        let k = &a.k;
        for (calls, at) in [
            (&k.pool_calls, &k.fail_pool_at),
            (&k.map_calls, &k.fail_map_at),
        ] {
            let c = calls.load(Ordering::SeqCst);
            if at.load(Ordering::SeqCst) <= c {
                at.store(c + 1 + r() % 4, Ordering::SeqCst);
            }
        }
    }
}

/// What to run.
pub struct Options {
    pub ops: u64,
    pub threads: u64,
    pub size: u64,
    pub seed: u64,
    /// Self-check of the checker: flip one image byte in emulated RAM, behind the driver's
    /// back, before the final read-back; the run must then report a mismatch.
    pub corrupt_behind_driver: bool,
}

/// What a run found.
pub struct Report {
    pub line: String,
    pub mismatches: u64,
    pub problems: Vec<String>,
    pub verifier_failures: Vec<String>,
}

/// Runs the torture against `driver` (bytes of a .sys of this process's architecture).
pub fn run(driver: &[u8], name: &str, o: &Options) -> Result<Report, String> {
    let (ops, threads, size, seed) = (o.ops, o.threads.clamp(1, 64), o.size, o.seed);
    let mut r = rng(seed);
    let image: Vec<u8> = (0..size / 8).flat_map(|_| r().to_le_bytes()).collect();
    let setup = oracle::setup_for(&image, Kind::Disk, true)?;
    let k = setup.kernel(Personality::Win8, false);
    let mut a = Adapter::start(driver, k.clone())
        .map_err(|e| format!("adapter did not start: {e:?}; {:?}", k.failures()))?;
    let luns = Io::new(&a).enumerate()?;
    let [lun] = luns.as_slice() else {
        return Err(format!("expected one LUN, got {}", luns.len()));
    };
    if lun.block_size as usize != BLOCK || lun.bytes() != size {
        return Err(format!("unexpected LUN {lun:?}"));
    }
    let shadow: Vec<Mutex<Vec<u8>>> = image
        .chunks(STRIPE)
        .map(|c| Mutex::new(c.to_vec()))
        .collect();
    drop(image);
    let totals = Totals::default();
    let report = Mutex::new(Vec::new());
    let t0 = std::time::Instant::now();
    let (map0, pool0) = (
        k.map_calls.load(Ordering::SeqCst),
        k.pool_calls.load(Ordering::SeqCst),
    );
    std::thread::scope(|s| {
        for i in 0..threads {
            let per = ops / threads + u64::from(i < ops % threads);
            let (a, shadow, totals, report) = (&a, &shadow, &totals, &report);
            let seed = seed ^ (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            s.spawn(move || {
                worker(
                    a, lun.target, lun.lun, lun.blocks, shadow, per, seed, totals, report,
                )
            });
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    // No more injected faults for the final read-back.
    k.fail_map_at.store(0, Ordering::SeqCst);
    k.fail_pool_at.store(0, Ordering::SeqCst);
    let injected = k
        .log()
        .iter()
        .filter(|l| l.contains("fault injection"))
        .count();
    if o.corrupt_behind_driver {
        let at = oracle::IMAGE_BASE + size / 3;
        let mut b = [0u8];
        setup.phys.read(at, &mut b)?;
        b[0] ^= 0x40;
        setup.phys.write(at, &b)?;
    }
    let mut final_diff = 0u64;
    {
        let mut io = Io::new(&a);
        let per = (STRIPE / BLOCK) as u32;
        for (i, stripe) in shadow.iter().enumerate() {
            let stripe = stripe.lock().unwrap_or_else(|e| e.into_inner());
            let lba = (i * STRIPE / BLOCK) as u64;
            let o = loop {
                let o = io.read(lun.target, lun.lun, lba, per, BLOCK as u32);
                if o.status() != sp::SRB_STATUS_BUSY {
                    break o;
                }
            };
            if !o.ok() || io.slot.data(STRIPE) != stripe.as_slice() {
                final_diff += 1;
            }
        }
    }
    a.remove();
    let failures = k.failures();
    let arch = if cfg!(target_arch = "x86_64") {
        "x64"
    } else {
        "x86"
    };
    let mismatches = totals.mismatches.load(Ordering::Relaxed) + final_diff;
    let g = |x: &AtomicU64| x.load(Ordering::Relaxed);
    let line = format!(
        "torture {arch} {name}: {} operations ({} reads, {} writes, {} verifies of which {} expected miscompares, {} out of range) by {threads} threads over {} MiB in {secs:.1} s; {injected} injected faults ({} MmMapIoSpace, {} pool calls), {} BUSY retries; final image check: {} of {} stripes differ; {mismatches} mismatches; {} verifier failures",
        g(&totals.ops),
        g(&totals.reads),
        g(&totals.writes),
        g(&totals.verifies),
        g(&totals.miscompares_expected),
        g(&totals.out_of_range),
        size >> 20,
        k.map_calls.load(Ordering::SeqCst) - map0,
        k.pool_calls.load(Ordering::SeqCst) - pool0,
        g(&totals.busy_retries),
        final_diff,
        shadow.len(),
        failures.len()
    );
    let problems = report.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(Report {
        line,
        mismatches,
        problems,
        verifier_failures: failures,
    })
}

/// `rvblk-harness torture --driver X.sys [--ops N] [--threads T] [--size-mib M] [--seed S]`.
pub fn main(argv: &[String]) -> Result<i32, String> {
    let path = oracle::driver_arg(argv)?;
    let driver = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let num = |name: &str, default: u64| -> Result<u64, String> {
        flag(argv, name).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| format!("{name}: not a number: {v:?}"))
        })
    };
    let opts = Options {
        ops: num("--ops", 1_000_000)?,
        threads: num("--threads", 4)?,
        // Above the x86 whole-mapping limit of every Windows version (256 MiB on NT 6+,
        // `docs/x86-mapping.md`) and above its windows (32 × 8 MiB), so that the x86 driver
        // serves it through its view cache and remaps: where I/O-time faults land.
        size: num("--size-mib", 320)?.max(1) << 20,
        seed: num("--seed", 0x5eed_f00d)?,
        corrupt_behind_driver: false,
    };
    let r = run(&driver, &path.display().to_string(), &opts)?;
    println!("{}", r.line);
    for m in &r.problems {
        println!("MISMATCH {m}");
    }
    for f in &r.verifier_failures {
        println!("VERIFIER FAILURE {f}");
    }
    Ok(i32::from(
        r.mismatches != 0 || !r.verifier_failures.is_empty(),
    ))
}
