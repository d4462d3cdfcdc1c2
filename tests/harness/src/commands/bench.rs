//! Benchmarks through HwStartIo over a RAM image, against a plain memcpy baseline.
//!
//! Baseline and driver alternate in short rounds and each ratio is the median over the rounds'
//! ratios, so a noisy neighbour on a shared machine hits both sides of a ratio alike; the
//! spread (min..max of the round ratios) is printed next to it.
//!
//! Verifier checks stay on (guarded SRB/data/sense buffers, completion and status checks, IRQL,
//! kernel stacks); the only lightening is that the SRB extension is not re-filled with a
//! pattern per I/O. Buffers are reused across SRBs, so per-SRB harness cost is small.
//!
//! Next to the ratios the bench prints how many `MmMapIoSpace` calls each GiB read cost
//! (`view_maps_per_gib_*`): the emulation makes a mapping cheap, but on real Windows every
//! replaced x86 view is an unmap with a TLB flush on every processor
//! (`docs/x86-mapping.md`). The x86 host also runs a sequential pass over a 3 GiB image, larger
//! than any x86 mapping budget (`big_*`). After the timed rounds two threads read samples of
//! the image at once and check them against its content, so a fast path that returns wrong
//! bytes fails the bench.
//!
//! Runtime mounts (issue 14, `docs/harness-runtime.md` §6): sequential 64 KiB reads through a
//! file-backed LUN against `pread` of the same host file, and a 64 MiB RAM disk's sequential
//! 64 KiB and random 4 KiB reads against memcpy, in the same alternating rounds. A driver that
//! does not serve runtime mounts gets a `not measured: …` line for each, not a failure.

use crate::commands::scenario::Setup;
use crate::commands::scsi::{cdb_rw10, Io, READ10};
use crate::emu::kernel::Personality;
use crate::emu::storport::{Adapter, Dir, Outcome, Request};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// One measurement of one side; a ratio takes `ROUNDS` alternating pairs.
const ROUND: Duration = Duration::from_millis(300);
const ROUNDS: usize = 5;
/// Pairs for the disk-backed ratios: single rounds of a `pread` stream from the page cache
/// spread wider on this host (e.g. 0.83..1.00 in one run) than the distance between the median
/// and its target, so their median takes more pairs (`docs/bench.md` "The disk-backed path").
const DISK_ROUNDS: usize = 9;

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

/// Keeps the CPU from starting the next copy before this one's loads are done: the position a
/// copy inside any request path is in, since the path between two copies (port, miniport,
/// completion) is longer than the out-of-order window (`docs/bench.md`).
fn isolate() {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    // SAFETY: LFENCE has no operands and no effect on memory or registers.
    unsafe {
        std::arch::asm!("lfence", options(nostack, preserves_flags))
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: barriers only; no memory or register effects.
    unsafe {
        std::arch::asm!("dsb ld", "isb", options(nostack, preserves_flags))
    };
}

/// Random `blk`-byte memcpys for one round, in operations per second; `isolated` puts
/// [`isolate`] after each copy.
fn memcpy_rand(src: &[u8], blk: usize, isolated: bool) -> f64 {
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
            if isolated {
                isolate();
            }
        }
        ops += 4096;
    }
    ops as f64 / t.elapsed().as_secs_f64()
}

/// One READ request reused for every read of a loop: the bench times the port and the
/// miniport, not the building of CDB vectors (READ(10) while the LBA fits, else READ(16)).
struct Reader {
    req: Request,
}

impl Reader {
    fn new(t: u8, l: u8, blocks: u32, bs: u32) -> Reader {
        let blocks16 = u16::try_from(blocks).expect("bench reads fit READ(10)");
        Reader {
            req: Request::scsi(t, l, &cdb_rw10(READ10, 0, blocks16), Dir::In, blocks * bs),
        }
    }

    fn read(&mut self, io: &mut Io<'_>, lba: u64) -> Outcome {
        match u32::try_from(lba) {
            Ok(l) => {
                self.req.cdb[2..6].copy_from_slice(&l.to_be_bytes());
                io.run(&self.req)
            }
            Err(_) => {
                let (t, l, len) = (self.req.target, self.req.lun, self.req.len);
                let blocks = u32::from(u16::from_be_bytes([self.req.cdb[7], self.req.cdb[8]]));
                io.read(t, l, lba, blocks, len / blocks)
            }
        }
    }
}

/// Sequential 64 KiB reads over `range` (in blocks) for one round: (MB/s, bytes, all ok).
fn seq_read(a: &Adapter, t: u8, l: u8, bs: u32, range: (u64, u64)) -> (f64, u64, bool) {
    let mut io = Io::new(a);
    io.slot.light = true;
    let per = 65536 / bs;
    let mut rd = Reader::new(t, l, per, bs);
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut ok = true;
    while start.elapsed() < ROUND {
        let mut lba = range.0;
        while lba + per as u64 <= range.1 {
            let o = rd.read(&mut io, lba);
            ok &= o.ok();
            lba += per as u64;
            bytes += 65536;
        }
    }
    (
        bytes as f64 / start.elapsed().as_secs_f64() / 1e6,
        bytes,
        ok,
    )
}

/// Mean time of `op` over one round, in nanoseconds.
fn ns_per_op(mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut ops = 0u64;
    while start.elapsed() < ROUND {
        for _ in 0..1024 {
            op();
        }
        ops += 1024;
    }
    start.elapsed().as_secs_f64() * 1e9 / ops as f64
}

/// The 8 bytes at image offset `pos` (8-aligned) as `Setup::big_disk` writes them.
fn expected_u64(pos: u64) -> u64 {
    pos.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5a5a_1234
}

/// Reads a sample of the image and compares it with the content `Setup::big_disk` wrote:
/// `count` reads of 1–128 blocks at random block offsets (seeded by `seed`), then 64 KiB spans
/// straddling every 4 MiB boundary of the first 64 MiB and the last one (x86 view windows are
/// 4 or 8 MiB).
fn verify_content(
    a: &Adapter,
    (t, l, blocks, bs): (u8, u8, u64, u32),
    seed: u64,
    count: usize,
) -> Result<(), String> {
    let mut io = Io::new(a);
    let bytes = blocks * u64::from(bs);
    let mut r = rng(seed);
    let mut spans: Vec<(u64, u32)> = (0..count)
        .map(|_| {
            let n = 1 + (r() % 128) as u32;
            let lba = r() % (blocks - u64::from(n));
            (lba * u64::from(bs), n * bs)
        })
        .collect();
    for b in (1..16u64).map(|k| k << 22).chain([bytes - (4 << 20)]) {
        if b >= 32 << 10 && b + (32 << 10) <= bytes {
            spans.push((b - (32 << 10), 65536));
        }
    }
    for (off, len) in spans {
        let o = io.read(t, l, off / u64::from(bs), len / bs, bs);
        if !o.ok() {
            return Err(format!("read at {off:#x}+{len:#x} failed: {o:?}"));
        }
        let got = io.slot.data(len as usize);
        for (i, w) in got.chunks_exact(8).enumerate() {
            let pos = off + 8 * i as u64;
            let v = u64::from_le_bytes(w.try_into().unwrap());
            if v != expected_u64(pos) {
                return Err(format!(
                    "wrong data at image offset {pos:#x}: {v:#018x}, expected {:#018x}",
                    expected_u64(pos)
                ));
            }
        }
    }
    Ok(())
}

/// Map operations per GiB read.
fn per_gib(maps: u64, bytes: f64) -> f64 {
    if bytes <= 0.0 {
        0.0
    } else {
        maps as f64 / (bytes / f64::from(1u32 << 30))
    }
}

/// `bench --only runtime` (the runtime-mount figures alone) or `--only file` (the file-backed
/// figures alone, no RAM disk).
pub fn runtime_only(driver: &Path, prefix: &str, verbose: bool, ram: bool) -> i32 {
    match std::fs::read(driver) {
        Ok(b) => runtime_figures(&b, prefix, verbose, ram),
        Err(e) => {
            eprintln!("{}: {e}", driver.display());
            2
        }
    }
}

/// `bench --only disk`: the disk-backed figures alone.
pub fn disk_backed_only(driver: &Path, prefix: &str, verbose: bool) -> i32 {
    match std::fs::read(driver) {
        Ok(b) => disk_backed(driver, &b, prefix, verbose),
        Err(e) => {
            eprintln!("{}: {e}", driver.display());
            2
        }
    }
}

/// The image of the x86 big-image pass: 3 GiB, like a real x86 Windows ISO, and larger than
/// any x86 mapping budget (`docs/x86-mapping.md`).
const BIG_MIB: u64 = 3072;

pub fn main(driver: &Path, size_mib: u64, prefix: &str, verbose: bool) -> i32 {
    let bytes = match std::fs::read(driver) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: {e}", driver.display());
            return 2;
        }
    };
    // Baseline source: ordinary memory as big as the (default) image.
    let size = size_mib.max(256) << 20;
    let mut src = vec![0u8; size as usize];
    for (i, c) in src.chunks_mut(4096).enumerate() {
        c[0] = i as u8;
    }
    let code = run(&bytes, size, &src, prefix, verbose, true);
    let code = code.max(disk_backed(driver, &bytes, prefix, verbose));
    let code = code.max(runtime_figures(&bytes, prefix, verbose, true));
    // The 32-bit host runs the x86 driver: add the big image, sequential only (its baseline is
    // the same memcpy over the smaller buffer: both stream from DRAM).
    if cfg!(target_pointer_width = "32") && code == 0 {
        return run(
            &bytes,
            BIG_MIB << 20,
            &src,
            &format!("{prefix}big_"),
            verbose,
            false,
        );
    }
    code
}

/// One image of `size` bytes: sequential rounds, and (if `full`) random 4 KiB rounds and the
/// two-thread run. Prints `{prefix}…` lines; returns the exit code.
fn run(drv: &[u8], size: u64, src: &[u8], prefix: &str, verbose: bool, full: bool) -> i32 {
    let setup = match Setup::big_disk(size) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench setup: {e}");
            return 2;
        }
    };
    let k = setup.kernel(Personality::Win8, verbose);
    let mut a = match Adapter::start(drv, k.clone()) {
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
    let maps = || k.map_calls.load(Ordering::SeqCst);
    // Warm-up pass (faults the image pages in), then alternating rounds.
    let _ = seq_read(&a, t, l, bs, (0, info.blocks));
    let (mut memcpy64, mut seq, mut ok1) = (0.0, 0.0, true);
    let mut seq_ratios = Vec::new();
    let (maps0, mut seq_bytes) = (maps(), 0u64);
    for _ in 0..ROUNDS {
        let m = memcpy_seq(src, 65536);
        let (d, b, ok) = seq_read(&a, t, l, bs, (0, info.blocks));
        ok1 &= ok;
        seq_bytes += b;
        memcpy64 += m / ROUNDS as f64;
        seq += d / ROUNDS as f64;
        seq_ratios.push(d / m);
    }
    let seq_maps = per_gib(maps() - maps0, seq_bytes as f64);
    println!("{prefix}memcpy_64k_MBps: {memcpy64:.0}");
    println!("{prefix}seq_read_64k_MBps: {seq:.0}");
    let (seq_ratio, seq_lo, seq_hi) = summarise(seq_ratios);
    println!("{prefix}ratio_seq_read_64k_vs_memcpy: {seq_ratio:.3}");
    println!("{prefix}ratio_seq_read_64k_vs_memcpy_spread: {seq_lo:.3}..{seq_hi:.3}");
    println!("{prefix}view_maps_per_gib_seq: {seq_maps:.1}");

    let mut ok2 = true;
    let mut ok3 = true;
    if full {
        // Random 4 KiB reads.
        let mut io = Io::new(&a);
        io.slot.light = true;
        let mut r = rng(0xfeed_beef);
        let per = 4096 / bs;
        let n = info.blocks / per as u64;
        let mut rd = Reader::new(t, l, per, bs);
        let (mut memcpy4_ops, mut iso_ops, mut rand_iops) = (0.0, 0.0, 0.0);
        let (mut rand_ratios, mut iso_ratios) = (Vec::new(), Vec::new());
        let (maps0, mut rand_ops) = (maps(), 0u64);
        for _ in 0..ROUNDS {
            let m = memcpy_rand(src, 4096, false);
            let mi = memcpy_rand(src, 4096, true);
            let start = Instant::now();
            let mut ops = 0u64;
            while start.elapsed() < ROUND {
                for _ in 0..1024 {
                    let lba = (r() % n) * per as u64;
                    ok2 &= rd.read(&mut io, lba).ok();
                }
                ops += 1024;
            }
            let d = ops as f64 / start.elapsed().as_secs_f64();
            rand_ops += ops;
            memcpy4_ops += m / ROUNDS as f64;
            iso_ops += mi / ROUNDS as f64;
            rand_iops += d / ROUNDS as f64;
            rand_ratios.push(d / m);
            iso_ratios.push(d / mi);
        }
        let rand_maps = per_gib(maps() - maps0, (rand_ops * 4096) as f64);
        // Where a random 4 KiB read's time goes: an SRB to a LUN that does not exist costs the
        // harness's per-SRB work (SRB set-up, guards, completion checks, kernel stack) plus
        // the driver's dispatch; TEST UNIT READY adds the driver's SCSI path without data;
        // the read adds the copy.
        let absent = info.lun.wrapping_add(1) & 7;
        let absent_tur = Request::scsi(t, absent, &[0; 6], Dir::None, 0);
        let tur = Request::scsi(t, l, &[0; 6], Dir::None, 0);
        let ns_absent = ns_per_op(|| {
            io.run(&absent_tur);
        });
        let ns_tur = ns_per_op(|| {
            io.run(&tur);
        });
        let ns_read = ns_per_op(|| {
            let lba = (r() % n) * per as u64;
            rd.read(&mut io, lba);
        });
        // The baseline's random memcpy with an SRB to the absent LUN after each copy: if this
        // costs more than the two apart, the harness's per-SRB work slows the copies down
        // (caches and TLB), not just adds its own time.
        let mut dst = vec![0u8; 4096];
        let src_blocks = (src.len() / 4096) as u64;
        let ns_mixed = ns_per_op(|| {
            let o = (r() % src_blocks) as usize * 4096;
            dst.copy_from_slice(&src[o..o + 4096]);
            std::hint::black_box(&mut dst);
            io.run(&absent_tur);
        });
        drop(io);
        // Two threads, each on its own half, against one thread over the same ranges, in
        // alternating rounds like the ratios above.
        let half = info.blocks / 2;
        let mut scaling = Vec::new();
        for _ in 0..ROUNDS {
            let (one, _, ok) = seq_read(&a, t, l, bs, (0, info.blocks));
            ok3 &= ok;
            let two: Vec<(f64, u64, bool)> = std::thread::scope(|s| {
                let a = &a;
                let h1 = s.spawn(move || seq_read(a, t, l, bs, (0, half)));
                let h2 = s.spawn(move || seq_read(a, t, l, bs, (half, info.blocks)));
                vec![h1.join().unwrap(), h2.join().unwrap()]
            });
            ok3 &= two.iter().all(|x| x.2);
            scaling.push(two.iter().map(|x| x.0).sum::<f64>() / one);
        }
        println!("{prefix}rand_read_4k_kiops: {:.1}", rand_iops / 1000.0);
        println!("{prefix}memcpy_rand_4k_kiops: {:.1}", memcpy4_ops / 1000.0);
        let (rand_ratio, rand_lo, rand_hi) = summarise(rand_ratios);
        println!("{prefix}ratio_rand_read_4k_vs_memcpy: {rand_ratio:.3}");
        println!("{prefix}ratio_rand_read_4k_vs_memcpy_spread: {rand_lo:.3}..{rand_hi:.3}");
        let (iso_ratio, iso_lo, iso_hi) = summarise(iso_ratios);
        println!("{prefix}ratio_rand_read_4k_vs_isolated_memcpy: {iso_ratio:.3}");
        println!("{prefix}ratio_rand_read_4k_vs_isolated_memcpy_spread: {iso_lo:.3}..{iso_hi:.3}");
        println!("{prefix}view_maps_per_gib_rand4k: {rand_maps:.1}");
        println!("{prefix}srb_ns_absent_lun: {ns_absent:.0}");
        println!("{prefix}srb_ns_test_unit_ready: {ns_tur:.0}");
        println!("{prefix}srb_ns_read_4k_random: {ns_read:.0}");
        println!("{prefix}memcpy_ns_4k_random: {:.0}", 1e9 / memcpy4_ops);
        println!("{prefix}memcpy_ns_4k_random_isolated: {:.0}", 1e9 / iso_ops);
        println!("{prefix}memcpy_4k_random_plus_absent_srb_ns: {ns_mixed:.0}");
        let (sc, sc_lo, sc_hi) = summarise(scaling);
        println!("{prefix}scaling_2_threads: {sc:.2}");
        println!("{prefix}scaling_2_threads_spread: {sc_lo:.2}..{sc_hi:.2}");
    }
    // Two threads at once, so that on x86 views are pinned, missed and replaced concurrently.
    let lun = (t, l, info.blocks, bs);
    let checked = std::thread::scope(|s| {
        let a = &a;
        let h: Vec<_> = [0x5eed_1234u64, 0xbad_5eed]
            .into_iter()
            .map(|seed| s.spawn(move || verify_content(a, lun, seed, 2048)))
            .collect();
        h.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Result<Vec<()>, String>>()
    });
    a.remove();
    drop(a);
    let fails = k.failures();
    println!("{prefix}image_MiB: {}", size >> 20);
    println!(
        "{prefix}content_check: {}",
        checked.as_ref().map_or_else(|e| e.as_str(), |_| "ok")
    );
    println!("{prefix}verifier_mode: light (SRB extension not pattern-filled per I/O; guards, completion/status/IRQL/stack checks on)");
    println!("{prefix}verifier_failures: {}", fails.len());
    for f in &fails {
        eprintln!("VERIFIER FAILURE: {f}");
    }
    if !(ok1 && ok2 && ok3) || checked.is_err() {
        eprintln!("bench: some reads failed or returned wrong data");
        return 1;
    }
    i32::from(!fails.is_empty())
}

/// The disk-backed pass: a 64 MiB ISO that GRUB4DOS mapped without `--mem`, one run on its
/// stick (`rvblk_memimage::backed`).
const DISK_BACKED_BLOCKS: u64 = 32768;

/// `ratio_disk_backed_seq_read_64k_vs_backing_disk` (issue 11): sequential 64 KiB reads of a
/// disk-backed image through the driver (its asynchronous path to the emulated stick) against
/// 64 KiB reads of the same bytes straight from the stick's file at the image's extents, in
/// alternating rounds like the RAM ratios. The kernel is `run`'s (`run::make_kernel`, the options
/// of `run --no-write --disk STICK --disk-pend-every 0` over the scenario's RAM dump). When the
/// driver exposes no disk-backed LUN the line says "not measured" and why, and the rest of the
/// bench still counts; wrong data, failed reads or verifier failures fail the bench.
fn disk_backed(driver: &Path, drv: &[u8], prefix: &str, verbose: bool) -> i32 {
    // HwStartIo at PASSIVE_LEVEL (the fast path serves every READ) and at DISPATCH_LEVEL (every
    // READ takes the worker): how often a real StorPort calls a virtual miniport's HwStartIo
    // below DISPATCH_LEVEL is not known (`docs/driver.md` "The fast path"), so both are shown.
    let passive = disk_backed_at(driver, drv, prefix, "", 0, verbose);
    let dispatch = disk_backed_at(driver, drv, prefix, "_startio_at_dispatch", 1, verbose);
    passive.max(dispatch)
}

/// One disk-backed measurement; `suffix` ends every line's name, `startio_dispatch_every` is
/// the harness's `--startio-dispatch-every` (`docs/harness-disks.md` §3).
fn disk_backed_at(
    driver: &Path,
    drv: &[u8],
    prefix: &str,
    suffix: &str,
    startio_dispatch_every: u64,
    verbose: bool,
) -> i32 {
    use crate::commands::run::{make_kernel, RunOptions};
    use rvblk_memimage::backed;

    let name = format!("{prefix}ratio_disk_backed_seq_read_64k_vs_backing_disk{suffix}");
    let s = backed::g4d_direct_iso_sized(DISK_BACKED_BLOCKS, backed::Layout::Contiguous);
    let dir = std::env::temp_dir().join(format!("rvblk-bench-stick-{}", std::process::id()));
    let files = match s.write_files(&dir) {
        Ok(f) => f,
        Err(e) => {
            println!(
                "{name}: not measured: writing the stick to {}: {e}",
                dir.display()
            );
            return 0;
        }
    };
    let opts = RunOptions {
        driver: driver.to_path_buf(),
        ram: Some(files.ram.clone()),
        os_ram: s.os_ram.iter().map(|r| (r.start, r.length)).collect(),
        expect: vec![files.image.display().to_string()],
        personality: Personality::Win8,
        nfit: None,
        verbose,
        no_write: true,
        read_kib: None,
        legacy: Default::default(),
        // The stick arrives at once; its IRPs complete at once (no emulated latency), so the
        // ratio is the cost of the driver's path, not of a simulated USB delay.
        machine: crate::emu::kernel::MachineConfig {
            disks: vec![crate::emu::kernel::DiskSpec {
                path: files.disk.clone(),
                sector: 512,
                read_only: true,
            }],
            pend_every: 0,
            startio_dispatch_every,
            ..Default::default()
        },
    };
    let code = match make_kernel(&opts) {
        Ok(k) => disk_backed_rounds(drv, k, &s, &files.disk, &name, prefix, suffix),
        Err(e) => {
            println!("{name}: not measured: {e}");
            0
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    code
}

/// Image offset `pos` on the stick: (byte offset, bytes left in that extent).
fn on_stick(ranges: &[(u64, u64)], mut pos: u64) -> Option<(u64, u64)> {
    for &(off, len) in ranges {
        if pos < len {
            return Some((off + pos, len - pos));
        }
        pos -= len;
    }
    None
}

/// The baseline: one round of sequential 64 KiB reads of the image's bytes from the stick's
/// file (`pread` at the extents), the way the emulated disk underneath the driver reads them.
/// (MB/s, all reads whole).
fn stick_seq(f: &std::fs::File, ranges: &[(u64, u64)], len: u64) -> (f64, bool) {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 65536];
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut ok = true;
    while start.elapsed() < ROUND {
        let mut pos = 0;
        while pos + 65536 <= len {
            let mut done = 0usize;
            while done < buf.len() {
                let Some((at, run)) = on_stick(ranges, pos + done as u64) else {
                    ok = false;
                    break;
                };
                let n = (run as usize).min(buf.len() - done);
                ok &= f.read_exact_at(&mut buf[done..done + n], at).is_ok();
                done += n;
            }
            std::hint::black_box(&mut buf);
            pos += 65536;
            bytes += 65536;
        }
    }
    (bytes as f64 / start.elapsed().as_secs_f64() / 1e6, ok)
}

fn disk_backed_rounds(
    drv: &[u8],
    k: std::sync::Arc<crate::emu::kernel::Kernel>,
    s: &rvblk_memimage::backed::BackedScenario,
    stick: &Path,
    name: &str,
    prefix: &str,
    suffix: &str,
) -> i32 {
    let verdict = |k: &crate::emu::kernel::Kernel| {
        let fails = k.failures();
        println!(
            "{prefix}disk_backed_verifier_failures{suffix}: {}",
            fails.len()
        );
        for f in &fails {
            eprintln!("VERIFIER FAILURE: {f}");
        }
        i32::from(!fails.is_empty())
    };
    let mut a = match Adapter::start(drv, k.clone()) {
        Ok(a) => a,
        Err(e) => {
            println!("{name}: not measured: the adapter did not start ({e})");
            return verdict(&k);
        }
    };
    // The LUN appears once the driver has identified the stick and reported a bus change.
    let deadline = Instant::now() + Duration::from_secs(10);
    let info = loop {
        match Io::new(&a).enumerate() {
            Ok(v) if !v.is_empty() => break Some(v[0].clone()),
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => break None,
        }
    };
    let len = s.image.len() as u64;
    let info = match info {
        Some(i) if i.bytes() == len => i,
        other => {
            match other {
                None => println!(
                    "{name}: not measured: the driver exposed no disk-backed LUN within 10 s"
                ),
                Some(i) => println!(
                    "{name}: not measured: the only LUN has {} bytes, the image {len}",
                    i.bytes()
                ),
            }
            a.remove();
            drop(a);
            return verdict(&k);
        }
    };
    let (t, l, bs) = (info.target, info.lun, info.block_size);
    // The whole image once, checked against the file (also the warm-up of both sides).
    let mut io = Io::new(&a);
    let per = 65536 / bs;
    let mut content = Ok(());
    let mut lba = 0u64;
    while lba < info.blocks && content.is_ok() {
        let n = (per as u64).min(info.blocks - lba) as u32;
        let o = io.read(t, l, lba, n, bs);
        let off = (lba * u64::from(bs)) as usize;
        let want = &s.image[off..off + (n * bs) as usize];
        if !o.ok() {
            content = Err(format!("READ at LBA {lba} failed: {o:?}"));
        } else if io.slot.data(want.len()) != want {
            content = Err(format!("wrong data at image offset {off:#x}"));
        }
        lba += u64::from(n);
    }
    drop(io);
    let f = match std::fs::File::open(stick) {
        Ok(f) => f,
        Err(e) => {
            println!("{name}: not measured: {}: {e}", stick.display());
            a.remove();
            drop(a);
            return verdict(&k);
        }
    };
    let ranges = s.image_ranges();
    // Where a request's time goes (`docs/bench.md` "The disk-backed path"): a one-block READ
    // goes through the worker thread and one IRP with almost no data; TEST UNIT READY is
    // answered in HwStartIo.
    let (read_1, tur) = {
        let mut io = Io::new(&a);
        io.slot.light = true;
        let read_1 = ns_per_op(|| {
            io.read(t, l, 0, 1, bs);
        });
        let tur = ns_per_op(|| {
            io.no_data(t, l, &[0u8; 6]);
        });
        (read_1, tur)
    };
    let _ = stick_seq(&f, &ranges, len);
    let (mut base, mut drv_mbps, mut ok) = (0.0, 0.0, true);
    let mut ratios = Vec::new();
    let (irps, mut srbs) = (k.disk_irps_sent(), 0u64);
    for _ in 0..DISK_ROUNDS {
        let (m, ok_m) = stick_seq(&f, &ranges, len);
        let (d, bytes, ok_d) = seq_read(&a, t, l, bs, (0, info.blocks));
        srbs += bytes / 65536;
        ok &= ok_m && ok_d;
        base += m / DISK_ROUNDS as f64;
        drv_mbps += d / DISK_ROUNDS as f64;
        ratios.push(d / m);
    }
    let per = (k.disk_irps_sent() - irps) as f64 / srbs.max(1) as f64;
    a.remove();
    drop(a);
    let (ratio, lo, hi) = summarise(ratios);
    println!("{prefix}backing_disk_read_64k_MBps{suffix}: {base:.0}");
    // IRPs to the stick per 64 KiB READ (`docs/bench.md` "The disk-backed path"): 1 when each
    // READ goes to the disk (fast path or worker), ≈ 0.25 when read-ahead serves them.
    println!("{prefix}disk_backed_irps_per_read{suffix}: {per:.3}");
    println!("{prefix}disk_backed_seq_read_64k_MBps{suffix}: {drv_mbps:.0}");
    println!("{prefix}disk_backed_srb_ns_read_1_block{suffix}: {read_1:.0}");
    println!("{prefix}disk_backed_srb_ns_test_unit_ready{suffix}: {tur:.0}");
    println!("{name}: {ratio:.3}");
    println!("{name}_spread: {lo:.3}..{hi:.3}");
    println!(
        "{prefix}disk_backed_content_check{suffix}: {}",
        content.as_ref().map_or_else(|e| e.as_str(), |_| "ok")
    );
    let code = verdict(&k);
    if !ok || content.is_err() {
        eprintln!("bench: disk-backed reads failed or returned wrong data");
        return 1;
    }
    code
}

/// The runtime-mount figures' names, printed with "not measured: …" when they cannot be.
const RUNTIME_FIGURES: [&str; 3] = [
    "ratio_file_backed_seq_read_64k_vs_file_read",
    "ratio_ramdisk_seq_read_64k_vs_memcpy",
    "ratio_ramdisk_rand_read_4k_vs_memcpy",
];

fn not_measured(out: &mut Vec<String>, prefix: &str, names: &[&str], why: &str) {
    for n in names {
        out.push(format!("{prefix}{n}: not measured: {why}"));
    }
}

/// Sequential 64 KiB `pread`s of `f` (`len` bytes) for one round: MB/s.
fn pread_seq(f: &std::fs::File, len: u64) -> f64 {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 65536];
    let start = Instant::now();
    let mut bytes = 0u64;
    while start.elapsed() < ROUND {
        let mut off = 0;
        while off + 65536 <= len {
            if f.read_exact_at(&mut buf, off).is_err() {
                return 0.0;
            }
            std::hint::black_box(&mut buf);
            off += 65536;
            bytes += 65536;
        }
    }
    bytes as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// Random 4 KiB reads of a LUN for one round: operations per second, all ok.
fn rand_read(a: &Adapter, t: u8, bs: u32, blocks: u64) -> (f64, bool) {
    let mut io = Io::new(a);
    io.slot.light = true;
    let mut r = rng(0xabad_1dea);
    let per = 4096 / bs;
    let n = blocks / u64::from(per);
    let start = Instant::now();
    let (mut ops, mut ok) = (0u64, true);
    while start.elapsed() < ROUND {
        for _ in 0..1024 {
            ok &= io.read(t, 0, (r() % n) * u64::from(per), per, bs).ok();
        }
        ops += 1024;
    }
    (ops as f64 / start.elapsed().as_secs_f64(), ok)
}

/// The runtime-mount figures (module docs), printed; returns the exit code.
fn runtime_figures(drv: &[u8], prefix: &str, verbose: bool, ram: bool) -> i32 {
    let (lines, code) = runtime_figure_lines(drv, prefix, verbose, ram);
    for l in lines {
        println!("{l}");
    }
    code
}

/// `ratio_file_backed_seq_read_64k_vs_file_read{suffix}` and its companions for the mounted
/// file LUN `target` (64 MiB of `file`), at the HwStartIo IRQL the adapter is set to. False when
/// a READ failed or returned wrong data.
#[allow(clippy::too_many_arguments)]
fn file_backed_lines(
    a: &Adapter,
    k: &crate::emu::kernel::Kernel,
    out: &mut Vec<String>,
    prefix: &str,
    suffix: &str,
    target: u8,
    file: &Path,
) -> bool {
    let want = match std::fs::read(file) {
        Ok(w) => w,
        Err(e) => {
            out.push(format!(
                "{prefix}ratio_file_backed_seq_read_64k_vs_file_read{suffix}: not measured: {}: {e}",
                file.display()
            ));
            return true;
        }
    };
    let blocks = want.len() as u64 / 512;
    // The whole file once through SRBs, checked (also the warm-up of both sides).
    let mut io = Io::new(a);
    let mut ok = true;
    for (i, c) in want.chunks(65536).enumerate() {
        let o = io.read(target, 0, (i * 128) as u64, (c.len() / 512) as u32, 512);
        ok &= o.ok() && io.slot.data(c.len()) == c;
    }
    drop(io);
    let Ok(f) = std::fs::File::open(file) else {
        return false;
    };
    let (mut ratios, mut mbps, mut base) = (Vec::new(), 0.0, 0.0);
    let (mut srbs, calls, inline) = (0u64, k.file_read_calls(), k.inline_file_read_calls());
    for _ in 0..ROUNDS {
        let p = pread_seq(&f, want.len() as u64);
        let (d, bytes, o) = seq_read(a, target, 0, 512, (0, blocks));
        srbs += bytes / 65536;
        ok &= o;
        ratios.push(d / p);
        mbps += d / ROUNDS as f64;
        base += p / ROUNDS as f64;
    }
    let (r, lo, hi) = summarise(ratios);
    out.push(format!("{prefix}file_read_64k_MBps{suffix}: {base:.0}"));
    out.push(format!(
        "{prefix}file_backed_seq_read_64k_MBps{suffix}: {mbps:.0}"
    ));
    out.push(format!(
        "{prefix}ratio_file_backed_seq_read_64k_vs_file_read{suffix}: {r:.3}"
    ));
    out.push(format!(
        "{prefix}ratio_file_backed_seq_read_64k_vs_file_read{suffix}_spread: {lo:.3}..{hi:.3}"
    ));
    // Who read the file (`docs/control.md` §10.4–10.5): ZwReadFile calls per READ (≈ 0.25
    // when read-ahead serves every READ with 256 KiB fills, 1 without it) and the share of
    // them HwStartIo made inline.
    let n = k.file_read_calls() - calls;
    let per = n as f64 / srbs.max(1) as f64;
    out.push(format!(
        "{prefix}file_backed_zwreadfile_per_read{suffix}: {per:.3}"
    ));
    let inline = (k.inline_file_read_calls() - inline) as f64 / n.max(1) as f64;
    out.push(format!(
        "{prefix}file_backed_zwreadfile_inline_share{suffix}: {inline:.3}"
    ));
    out.push(format!(
        "{prefix}file_backed_content_check{suffix}: {}",
        if ok { "ok" } else { "FAILED" }
    ));
    if !ok {
        eprintln!("bench: file-backed reads failed or returned wrong data");
    }
    ok
}

/// The runtime-mount figures as `name: value` lines, and the exit code (1 only for wrong data
/// or a verifier failure, never because the driver does not serve runtime mounts). `ram`:
/// the RAM-disk figures too.
pub fn runtime_figure_lines(
    drv: &[u8],
    prefix: &str,
    verbose: bool,
    ram: bool,
) -> (Vec<String>, i32) {
    let mut out = Vec::new();
    use crate::commands::control::{create_lun, mount_file};
    use crate::emu::kernel::{MachineConfig, Requester};
    use rvblk_core::control::{ControlError, ReplyError, Request as Control};
    use rvblk_core::image::DeviceKind;
    const SIZE: u64 = 64 << 20;
    let setup = match Setup::named("g4d_both") {
        Ok(s) => s,
        Err(e) => {
            not_measured(&mut out, prefix, &RUNTIME_FIGURES, &e);
            return (out, 0);
        }
    };
    let k = setup.kernel_with(Personality::Win8, verbose, MachineConfig::default());
    let mut a = match Adapter::start(drv, k.clone()) {
        Ok(a) => a,
        Err(e) => {
            not_measured(
                &mut out,
                prefix,
                &RUNTIME_FIGURES,
                &format!("the adapter did not start: {e}"),
            );
            return (out, 0);
        }
    };
    let why = |e: Result<ReplyError, String>| match e {
        Ok(ReplyError::Refused(ControlError::NotAvailable)) => {
            "the driver does not serve runtime mounts (NotAvailable)".to_string()
        }
        Ok(e) => format!("the driver refused: {e:?}"),
        Err(e) => e,
    };
    let dir = std::env::temp_dir().join(format!("rvblk-bench-{}-{prefix}", std::process::id()));
    let file = dir.join("file-backed.img");
    let made = std::fs::create_dir_all(&dir).and_then(|()| {
        let data: Vec<u8> = (0..SIZE).map(|i| (i / 512) as u8 ^ (i as u8)).collect();
        std::fs::write(&file, data)
    });
    let mut code = 0;
    let mut io = Io::new(&a);
    match made.map_err(|e| e.to_string()).and_then(|()| {
        mount_file(&mut io, &file, DeviceKind::Disk, true, Requester::Admin).map_err(why)
    }) {
        Err(e) => not_measured(&mut out, prefix, &RUNTIME_FIGURES[..1], &e),
        Ok(lun) => {
            // HwStartIo at PASSIVE_LEVEL (the driver reads the file inline) and at
            // DISPATCH_LEVEL (the worker and read-ahead): a virtual miniport's HwStartIo runs
            // at either (`docs/control.md` §10.5), so both are shown.
            for (every, suffix) in [(0, ""), (1, "_startio_at_dispatch")] {
                a.set_startio(every, false);
                if !file_backed_lines(&a, &k, &mut out, prefix, suffix, lun.target, &file) {
                    code = 1;
                }
            }
            a.set_startio(k.cfg.machine.startio_dispatch_every, false);
        }
    }
    let req = Control::CreateRamDisk {
        kind: DeviceKind::Disk,
        read_only: false,
        size_bytes: SIZE,
        source: None,
    };
    let ram_disk = if ram {
        create_lun(&mut io, &req, Requester::Admin).map_err(why)
    } else {
        Err("--only file".to_string())
    };
    match ram_disk {
        Err(e) => not_measured(&mut out, prefix, &RUNTIME_FIGURES[1..], &e),
        Ok(lun) => {
            // The RAM disk holds the same bytes the baseline copies, written through SRBs: a
            // disk never written would be read from pages that were never touched (on the host,
            // one shared zero page), which no memcpy of real data can match.
            let src: Vec<u8> = (0..SIZE)
                .map(|i| (i as u8) ^ ((i >> 12) as u8).wrapping_mul(31))
                .collect();
            let mut filled = true;
            for (i, c) in src.chunks(65536).enumerate() {
                filled &= io.write(lun.target, 0, (i * 128) as u64, c, 512).ok();
            }
            let _ = seq_read(&a, lun.target, 0, 512, (0, lun.blocks));
            // Every 16th 64 KiB piece read back must be what was written.
            for (i, c) in src.chunks(65536).enumerate().step_by(16) {
                let o = io.read(lun.target, 0, (i * 128) as u64, 128, 512);
                filled &= o.ok() && io.slot.data(c.len()) == c;
            }
            let (mut seq, mut rnd, mut ok) = (Vec::new(), Vec::new(), filled);
            for _ in 0..ROUNDS {
                let m = memcpy_seq(&src, 65536);
                let (d, _, o) = seq_read(&a, lun.target, 0, 512, (0, lun.blocks));
                seq.push(d / m);
                let m4 = memcpy_rand(&src, 4096, false);
                let (d4, o4) = rand_read(&a, lun.target, 512, lun.blocks);
                rnd.push(d4 / m4);
                ok &= o && o4;
            }
            let (r, lo, hi) = summarise(seq);
            out.push(format!(
                "{prefix}ratio_ramdisk_seq_read_64k_vs_memcpy: {r:.3}"
            ));
            out.push(format!(
                "{prefix}ratio_ramdisk_seq_read_64k_vs_memcpy_spread: {lo:.3}..{hi:.3}"
            ));
            let (r, lo, hi) = summarise(rnd);
            out.push(format!(
                "{prefix}ratio_ramdisk_rand_read_4k_vs_memcpy: {r:.3}"
            ));
            out.push(format!(
                "{prefix}ratio_ramdisk_rand_read_4k_vs_memcpy_spread: {lo:.3}..{hi:.3}"
            ));
            if !ok {
                eprintln!("bench: RAM-disk writes or reads failed, or read back wrong data");
                code = 1;
            }
        }
    }
    drop(io);
    a.remove();
    drop(a);
    let _ = std::fs::remove_dir_all(&dir);
    let fails = k.failures();
    out.push(format!(
        "{prefix}runtime_verifier_failures: {}",
        fails.len()
    ));
    for f in &fails {
        eprintln!("VERIFIER FAILURE: {f}");
    }
    if !fails.is_empty() {
        code = 1;
    }
    (out, code)
}
