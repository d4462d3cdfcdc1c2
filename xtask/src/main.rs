//! `cargo xtask <task>`: the project's build, test and benchmark entry points.
//!
//! * `package` — release drivers for x86/x64/arm64 (+ the XP/2003 flavour for x86 and x64), INFs,
//!   XP files, F6 floppies, test-signed, in `target/package/`.
//! * `test` — everything: host tests, package checks, harness suites, MEMDISK end-to-end, short
//!   fuzz runs; ends with `N passed, N failed`.
//! * `bench` — harness benchmarks and the WIM injection benchmark.
//! * `oracle` — the differential SCSI test against QEMU and the torture run (`docs/scsi-oracle.md`).
//! * `clippy` — clippy over the kernel workspace for every shipped target (`test` runs it too).
//! * `fuzz <cdb|discovery|control> [SECONDS]` — a long fuzz run.
//! * `citations [--fix]` — every cited `docs/` file and section exists (`citations.rs`).
//! * `vm --iso FILE` — boot an ISO from RAM (MEMDISK) in QEMU with the serial port captured.

mod arm64;
mod build;
mod citations;
mod cmd;
mod lints;
mod oracle;
mod package;
mod summary;
mod vm;

use std::process::ExitCode;

const USAGE: &str = "\
cargo xtask <TASK>

TASKS:
    package [--pfx FILE [--password P]] [--out DIR]
              Build release drivers (x86, x64, arm64 StorPort; x86 and x64 SCSIPORT for
              XP/2003), sign them with a test certificate (or FILE) and write the package to
              target/package/
    test      Build the package and run every test of the project (needs QEMU, syslinux-common,
              wimtools, libhivex-bin, osslsigncode, mtools, nasm, xorriso; .ci/run installs them)
    bench     Run the benchmarks (harness I/O vs memcpy, WIM injection vs wimlib)
    oracle    The differential SCSI test (QEMU's scsi-cd/scsi-hd through Linux's sg driver vs the
              real rvblk.sys, x64 and x86; docs/scsi-oracle.md) and the 10^6-operation torture
              run; needs linux-image-amd64, busybox-static, cpio, qemu-system-x86
    clippy    Clippy over the kernel crates (driver/windows) for x86, x64 and arm64 with the
              shared lint set, warnings as errors (the root workspace: cargo clippy)
    fuzz <cdb|discovery|control> [SECONDS]
              Run one fuzz target with cargo-fuzz (installed on first use), default 600 s
    citations [--fix]
              Check that every citation of a document (`docs/loaders.md` §10 rule 23) names a
              file and section that exist in the repository; --fix first rewrites citations
              of the old research notes (shared/spec/…, anchors) to their docs/ names
    vm --iso FILE [--ram-mib N] [--serial-log FILE] [--timeout S] [--until TEXT] [--uefi]
              Boot an ISO from RAM in QEMU (TCG, MEMDISK) with COM1 captured to a file; exits
              with the guest's status (`cargo xtask vm --help`)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("package") => package::run(&args[1..]).and_then(|pkg| {
            // The `rvblk` tool carries the package (tools/rvblk/build.rs): rebuild it now so the
            // release binary has the files just written.
            cmd::run(
                cmd::cargo()
                    .args(["build", "--release", "-p", "rvblk"])
                    // Absolute: build scripts run in their own package's directory.
                    .env("RVBLK_PACKAGE_DIR", pkg.canonicalize().unwrap_or(pkg)),
            )?;
            eprintln!("xtask: target/release/rvblk carries the package (rvblk package list)");
            Ok(())
        }),
        Some("test") => summary::test(&args[1..]),
        Some("bench") => summary::bench(&args[1..]),
        Some("clippy") if args.len() == 1 => build::kernel_clippy(),
        Some("fuzz") => summary::fuzz(&args[1..]),
        Some("citations") => citations::run(&args[1..]),
        Some("oracle") => oracle::run(&args[1..]),
        Some("vm") => return vm::main(&args[1..]),
        Some("help" | "--help" | "-h") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
