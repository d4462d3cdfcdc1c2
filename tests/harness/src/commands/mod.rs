//! What the harness runs, one module per CLI command — `run`, `bench`, `suite` (`compliance`),
//! `faults`, `cdbs` (`oracle`), `torture`, `runtime`, `mount` — and what they share: the
//! physical-memory setups (`scenario`), the CDB builders that talk to a LUN (`scsi`), the
//! control requests a requester sends (`control`) and the driver's LUN log lines (`lun_log`).

pub mod bench;
pub mod compliance;
pub mod control;
pub mod faults;
pub mod lun_log;
pub mod mount;
pub mod oracle;
pub mod run;
pub mod runtime;
pub mod scenario;
pub mod scsi;
pub mod torture;

/// The driver binary a command loads, or exit code 2 with the reason on stderr.
pub fn read_driver(driver: &std::path::Path) -> Result<Vec<u8>, i32> {
    std::fs::read(driver).map_err(|e| {
        eprintln!("{}: {e}", driver.display());
        2
    })
}

/// The architecture the harness process, and so the driver it loads, runs as.
pub const HOST_ARCH: &str = if cfg!(target_arch = "x86_64") {
    "x64"
} else if cfg!(target_arch = "aarch64") {
    "arm64"
} else {
    "x86"
};

/// One `PASS <arch> <case>` line per passed case, then one `FAIL <arch> <case>: <why>` per
/// failed one.
pub fn print_results(passed: &[String], failed: &[(String, String)]) {
    for p in passed {
        println!("PASS {HOST_ARCH} {p}");
    }
    for (n, e) in failed {
        println!("FAIL {HOST_ARCH} {n}: {e}");
    }
}
