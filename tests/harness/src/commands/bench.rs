//! Benchmarks through HwStartIo over a RAM image, against a plain memcpy baseline.
//!
//! Baseline and driver alternate in short rounds and each ratio is the median over the rounds'
//! ratios, so a noisy neighbour on a shared machine hits both sides of a ratio alike; the
//! spread (min..max of the round ratios) is printed next to it.
//!
//! Verifier checks stay on (guarded SRB/data/sense buffers, completion and status checks, IRQL,
//! kernel stacks); the only lightening is that the SRB extension is not re-filled with a
//! pattern per I/O. Buffers are reused across SRBs, so per-SRB harness cost is small.

use crate::commands::scenario::Setup;
use crate::commands::scsi::Io;
use crate::emu::kernel::Personality;
use crate::emu::storport::Adapter;
use std::path::Path;
use std::time::{Duration, Instant};

/// One measurement of one side; a ratio takes `ROUNDS` alternating pairs.
const ROUND: Duration = Duration::from_millis(300);
const ROUNDS: usize = 5;

/// Median and (min, max) of the per-round ratios.
fn summarise(mut ratios: Vec<f64>) -> (f64, f64, f64) {
    ratios.sort_by(f64::total_cmp);
    (
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1],
    )
}

fn rng(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn memcpy_seq(src: &[u8], blk: usize) -> f64 {
    let mut dst = vec![0u8; blk];
    let t = Instant::now();
    let mut bytes = 0u64;
    while t.elapsed() < ROUND {
        for c in src.chunks_exact(blk) {
            dst.copy_from_slice(c);
            std::hint::black_box(&mut dst);
        }
        bytes += (src.len() / blk * blk) as u64;
    }
    bytes as f64 / t.elapsed().as_secs_f64() / 1e6
}

fn memcpy_rand(src: &[u8], blk: usize) -> f64 {
    let mut dst = vec![0u8; blk];
    let mut r = rng(0x1234_5678_9abc);
    let n = (src.len() / blk) as u64;
    let t = Instant::now();
    let mut ops = 0u64;
    while t.elapsed() < ROUND {
        for _ in 0..4096 {
            let o = (r() % n) as usize * blk;
            dst.copy_from_slice(&src[o..o + blk]);
            std::hint::black_box(&mut dst);
        }
        ops += 4096;
    }
    ops as f64 / t.elapsed().as_secs_f64()
}

fn seq_read(a: &Adapter, t: u8, l: u8, blocks: u64, bs: u32, range: (u64, u64)) -> (f64, bool) {
    let mut io = Io::new(a);
    io.slot.light = true;
    let per = 65536 / bs;
    let _ = blocks;
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut ok = true;
    while start.elapsed() < ROUND {
        let mut lba = range.0;
        while lba + per as u64 <= range.1 {
            let o = io.read(t, l, lba, per, bs);
            ok &= o.ok();
            lba += per as u64;
            bytes += 65536;
        }
    }
    (bytes as f64 / start.elapsed().as_secs_f64() / 1e6, ok)
}

pub fn main(driver: &Path, size_mib: u64, prefix: &str, verbose: bool) -> i32 {
    let bytes = match std::fs::read(driver) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: {e}", driver.display());
            return 2;
        }
    };
    let size = size_mib.max(256) << 20;
    let setup = match Setup::big_disk(size) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench setup: {e}");
            return 2;
        }
    };
    let k = setup.kernel(Personality::Win8, verbose);
    let mut a = match Adapter::start(&bytes, k.clone()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: adapter did not start: {e}; {:?}", k.failures());
            return 1;
        }
    };
    let info = match Io::new(&a).enumerate() {
        Ok(v) if !v.is_empty() => v[0].clone(),
        other => {
            eprintln!("bench: no LUN found: {other:?}");
            return 1;
        }
    };
    let (t, l, bs) = (info.target, info.lun, info.block_size);
    // Baseline source: ordinary memory as big as the image.
    let mut src = vec![0u8; size as usize];
    for (i, c) in src.chunks_mut(4096).enumerate() {
        c[0] = i as u8;
    }
    // Warm-up pass (faults the image pages in), then alternating rounds.
    let _ = seq_read(&a, t, l, info.blocks, bs, (0, info.blocks));
    let (mut memcpy64, mut seq, mut ok1) = (0.0, 0.0, true);
    let mut seq_ratios = Vec::new();
    for _ in 0..ROUNDS {
        let m = memcpy_seq(&src, 65536);
        let (d, ok) = seq_read(&a, t, l, info.blocks, bs, (0, info.blocks));
        ok1 &= ok;
        memcpy64 += m / ROUNDS as f64;
        seq += d / ROUNDS as f64;
        seq_ratios.push(d / m);
    }
    // Random 4 KiB reads.
    let mut io = Io::new(&a);
    io.slot.light = true;
    let mut r = rng(0xfeed_beef);
    let per = 4096 / bs;
    let n = info.blocks / per as u64;
    let (mut memcpy4_ops, mut rand_iops, mut ok2) = (0.0, 0.0, true);
    let mut rand_ratios = Vec::new();
    for _ in 0..ROUNDS {
        let m = memcpy_rand(&src, 4096);
        let start = Instant::now();
        let mut ops = 0u64;
        while start.elapsed() < ROUND {
            for _ in 0..1024 {
                let lba = (r() % n) * per as u64;
                ok2 &= io.read(t, l, lba, per, bs).ok();
            }
            ops += 1024;
        }
        let d = ops as f64 / start.elapsed().as_secs_f64();
        memcpy4_ops += m / ROUNDS as f64;
        rand_iops += d / ROUNDS as f64;
        rand_ratios.push(d / m);
    }
    drop(io);
    drop(src);
    // Two threads, each on its own half.
    let half = info.blocks / 2;
    let two: Vec<(f64, bool)> = std::thread::scope(|s| {
        let a = &a;
        let h1 = s.spawn(move || seq_read(a, t, l, info.blocks, bs, (0, half)));
        let h2 = s.spawn(move || seq_read(a, t, l, info.blocks, bs, (half, info.blocks)));
        vec![h1.join().unwrap(), h2.join().unwrap()]
    });
    let seq2: f64 = two.iter().map(|x| x.0).sum();
    let ok3 = two.iter().all(|x| x.1);
    a.remove();
    drop(a);
    let fails = k.failures();
    println!("{prefix}memcpy_64k_MBps: {memcpy64:.0}");
    println!("{prefix}seq_read_64k_MBps: {seq:.0}");
    let (seq_ratio, seq_lo, seq_hi) = summarise(seq_ratios);
    println!("{prefix}ratio_seq_read_64k_vs_memcpy: {seq_ratio:.3}");
    println!("{prefix}ratio_seq_read_64k_vs_memcpy_spread: {seq_lo:.3}..{seq_hi:.3}");
    println!("{prefix}rand_read_4k_kiops: {:.1}", rand_iops / 1000.0);
    println!("{prefix}memcpy_rand_4k_kiops: {:.1}", memcpy4_ops / 1000.0);
    let (rand_ratio, rand_lo, rand_hi) = summarise(rand_ratios);
    println!("{prefix}ratio_rand_read_4k_vs_memcpy: {rand_ratio:.3}");
    println!("{prefix}ratio_rand_read_4k_vs_memcpy_spread: {rand_lo:.3}..{rand_hi:.3}");
    println!("{prefix}scaling_2_threads: {:.2}", seq2 / seq);
    println!("{prefix}image_MiB: {}", size >> 20);
    println!("{prefix}verifier_mode: light (SRB extension not pattern-filled per I/O; guards, completion/status/IRQL/stack checks on)");
    println!("{prefix}verifier_failures: {}", fails.len());
    for f in &fails {
        eprintln!("VERIFIER FAILURE: {f}");
    }
    if !(ok1 && ok2 && ok3) {
        eprintln!("bench: some reads failed");
        return 1;
    }
    i32::from(!fails.is_empty())
}
