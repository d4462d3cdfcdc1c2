//! Benchmark: `rvblk winpe inject` (library call) against `wimlib-imagex update` adding the same
//! driver file, on fresh copies of a WIM of ≥ 300 MB of incompressible data.
//!
//! Prints `inject_seconds`, `wimlib_update_seconds` (medians of 3 runs) and
//! `ratio_inject_vs_wimlib_update`. Run with `cargo run --release -p rvblk-winpe --bin winpe-bench`.
//! Needs `wimlib-imagex` (Debian `wimtools`). `RVBLK_BENCH_MB` overrides the data size.

use rvblk_winpe::hive::Hive;
use rvblk_winpe::inject::{self, Selection};
use rvblk_winpe::package::Package;
use rvblk_winpe::store::{RegValue, RegistryHive};
use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("winpe-bench: {msg}");
    ExitCode::from(1)
}

/// xorshift64* filling `buf`: fast, incompressible enough for LZX/XPRESS and for dedup.
fn fill(buf: &mut [u8], state: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        let v = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

fn system_hive(path: &Path) -> rvblk_winpe::Result<()> {
    rvblk_winpe::hive::write_empty_hive(path)?;
    let mut h = Hive::open(path, true)?;
    let root = h.root();
    let sel = h.add_child(root, "Select")?;
    h.set_value(sel, "Current", &RegValue::dword(1))?;
    h.set_value(sel, "Default", &RegValue::dword(1))?;
    let cs = h.add_child(root, "ControlSet001")?;
    h.add_child(cs, "Services")?;
    let enm = h.add_child(cs, "Enum")?;
    h.add_child(enm, "Root")?;
    let ctl = h.add_child(cs, "Control")?;
    let class = h.add_child(ctl, "Class")?;
    h.add_child(class, "{4D36E97B-E325-11CE-BFC1-08002BE10318}")?;
    let out = path.with_extension("new");
    h.commit_to(&out)?;
    drop(h);
    std::fs::rename(&out, path).unwrap();
    Ok(())
}

fn pe_amd64() -> Vec<u8> {
    let mut d = vec![0u8; 0x400];
    d[..2].copy_from_slice(b"MZ");
    d[0x3c] = 0x80;
    d[0x80..0x84].copy_from_slice(b"PE\0\0");
    d[0x84..0x86].copy_from_slice(&0x8664u16.to_le_bytes());
    d
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> ExitCode {
    let mb: u64 = std::env::var("RVBLK_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(320);
    let runs = 3;
    let dir = match tempfile::Builder::new().prefix("winpe-bench-").tempdir() {
        Ok(d) => d,
        Err(e) => return fail(format!("temp dir: {e}")),
    };
    let tree = dir.path().join("tree");
    let sys32 = tree.join("Windows/System32");
    std::fs::create_dir_all(sys32.join("config")).unwrap();
    std::fs::create_dir_all(sys32.join("drivers")).unwrap();
    std::fs::create_dir_all(tree.join("sources")).unwrap();
    if let Err(e) = system_hive(&sys32.join("config/SYSTEM")) {
        return fail(e);
    }
    std::fs::write(sys32.join("ntoskrnl.exe"), pe_amd64()).unwrap();
    // Incompressible payload: files of 8 MiB.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut buf = vec![0u8; 8 << 20];
    let files = mb.div_ceil(8);
    for i in 0..files {
        fill(&mut buf, &mut state);
        let sub = tree.join(format!("sources/payload{:02}", i % 4));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::File::create(sub.join(format!("data{i:03}.bin")))
            .and_then(|mut f| f.write_all(&buf))
            .unwrap();
    }
    let base = dir.path().join("base.wim");
    let t0 = Instant::now();
    let st = Command::new("wimlib-imagex")
        .arg("capture")
        .arg(&tree)
        .arg(&base)
        .arg("Microsoft Windows Setup")
        .args(["--compress=none", "--boot"])
        .stdout(std::process::Stdio::null())
        .status();
    match st {
        Ok(s) if s.success() => {}
        Ok(s) => return fail(format!("wimlib-imagex capture failed: {s}")),
        Err(e) => return fail(format!("cannot run wimlib-imagex (install wimtools): {e}")),
    }
    let wim_size = std::fs::metadata(&base).unwrap().len();
    std::fs::remove_dir_all(&tree).unwrap();
    eprintln!(
        "winpe-bench: WIM {} MB built in {:.1?}",
        wim_size / 1_000_000,
        t0.elapsed()
    );

    // Driver package.
    let pkg_dir = dir.path().join("package");
    std::fs::create_dir_all(pkg_dir.join("amd64")).unwrap();
    let mut sys = vec![0u8; 96 * 1024];
    fill(&mut sys, &mut state);
    sys[..2].copy_from_slice(b"MZ");
    let sys_path = pkg_dir.join("amd64/rvblk.sys");
    std::fs::write(&sys_path, &sys).unwrap();
    std::fs::write(
        pkg_dir.join("rvblk.inf"),
        "[Version]\r\nSignature=\"$WINDOWS NT$\"\r\nProvider=rvblk\r\nDriverVer=01/01/2025,0.1.0.0\r\n",
    )
    .unwrap();
    let pkg = match Package::open(Some(&pkg_dir)) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };

    let work = dir.path().join("work.wim");
    let mut t_inject = Vec::new();
    let mut t_update = Vec::new();
    // A fresh copy, flushed to disk so that write-back of the copy does not land in the timing.
    let fresh = |work: &Path| {
        std::fs::copy(&base, work).unwrap();
        std::fs::File::open(work)
            .and_then(|f| f.sync_all())
            .unwrap();
    };
    for _ in 0..runs {
        fresh(&work);
        let t = Instant::now();
        match inject::inject(&work, &pkg, Selection::Bootable) {
            Ok(r) if r.written => {}
            Ok(_) => return fail("inject wrote nothing"),
            Err(e) => return fail(e),
        }
        t_inject.push(t.elapsed());

        fresh(&work);
        let t = Instant::now();
        let st = Command::new("wimlib-imagex")
            .arg("update")
            .arg(&work)
            .arg("1")
            .arg(format!(
                "--command=add {} /Windows/System32/drivers/rvblk.sys",
                sys_path.display()
            ))
            .stdout(std::process::Stdio::null())
            .status();
        t_update.push(t.elapsed());
        if !st.is_ok_and(|s| s.success()) {
            return fail("wimlib-imagex update failed");
        }
    }
    let (a, b) = (median(t_inject), median(t_update));
    println!("wim_size_mb: {}", wim_size / 1_000_000);
    println!("inject_seconds: {:.4}", a.as_secs_f64());
    println!("wimlib_update_seconds: {:.4}", b.as_secs_f64());
    println!(
        "ratio_inject_vs_wimlib_update: {:.3}",
        a.as_secs_f64() / b.as_secs_f64().max(1e-9)
    );
    ExitCode::SUCCESS
}
