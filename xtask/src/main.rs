//! `cargo xtask <task>`: the project's build, test and benchmark entry points.
//!
//! * `package` — release drivers for x86/x64/arm64 (+ the XP/2003 flavour for x86 and x64), INFs,
//!   XP files, F6 floppies, test-signed, in `target/package/`.
//! * `test` — everything: host tests, package checks, harness suites, MEMDISK end-to-end, short
//!   fuzz runs; ends with `N passed, N failed`.
//! * `bench` — harness benchmarks and the WIM injection benchmark.
//! * `fuzz <cdb|discovery|control> [SECONDS]` — a long fuzz run.
//! * `citations [--fix]` — every cited `docs/` file and section exists (`citations.rs`).

mod build;
mod citations;
mod cmd;
mod package;
mod summary;

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
    fuzz <cdb|discovery|control> [SECONDS]
              Run one fuzz target with cargo-fuzz (installed on first use), default 600 s
    citations [--fix]
              Check that every citation of a document (`docs/loaders.md` §10 rule 23) names a
              file and section that exist in the repository; --fix first rewrites citations
              of the old research notes (shared/spec/…, anchors) to their docs/ names
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("package") => package::run(&args[1..]).map(|_| ()),
        Some("test") => summary::test(&args[1..]),
        Some("bench") => summary::bench(&args[1..]),
        Some("fuzz") => summary::fuzz(&args[1..]),
        Some("citations") => citations::run(&args[1..]),
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
