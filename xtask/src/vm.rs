//! `cargo xtask vm`: boot an ISO from RAM in QEMU (TCG) the way users boot rvblk media, with the
//! serial port captured to a file. BIOS only: Debian's MEMDISK (`iso raw`) loads the whole ISO
//! into RAM, through the same command line the MEMDISK end-to-end tests use
//! (`rvblk_e2e::qemu::memdisk_command`). See README "Testing on real Windows".

use clap::Parser;
use rvblk_e2e::qemu::{memdisk_command, GuestConfig, Machine};
use rvblk_e2e::tools;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Exit status when `--timeout` ends the run (as `timeout(1)`).
pub const EXIT_TIMEOUT: u8 = 124;
/// I/O port of QEMU's `isa-debug-exit` device: a guest writing V there ends QEMU with status
/// `(V << 1) | 1`, which `vm` turns back into V.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask vm",
    about = "Boot an ISO from RAM in QEMU (TCG) with the serial port captured to a file",
    long_about = "Boot an ISO from RAM in QEMU (TCG, never KVM) with the serial port captured to a \
        file.\n\nBIOS: syslinux MEMDISK (Debian syslinux-common) loads the whole ISO into RAM \
        (`iso raw`) and boots its El Torito image, as GRUB4DOS `map --mem` does on real machines; \
        rvblk then has to find the ISO in memory. The guest reset ends QEMU (-no-reboot), so a \
        bug check with automatic restart ends the run too.\n\nExit status: the guest's own status \
        if it writes one to QEMU's isa-debug-exit port (0xf4), 0 when the guest powers off or \
        resets or --until matched, 124 when --timeout ends the run, 2 for bad usage or a missing \
        ISO, QEMU or MEMDISK.\n\nUEFI: refused. Booting an ISO from RAM under OVMF needs a UEFI \
        loader that maps it into memory (grub4efi, a1ive GRUB2); Debian packages none of them."
)]
pub struct VmArgs {
    /// The ISO to boot (e.g. one made by `rvblk winpe prepare`)
    #[arg(long, value_name = "FILE")]
    iso: PathBuf,
    /// Boot through UEFI (OVMF) instead of BIOS: refused, no RAM-disk loader is packaged
    #[arg(long)]
    uefi: bool,
    /// Guest RAM [default: the ISO's size + 2048 MiB, which a WinPE needs besides its image]
    #[arg(long, value_name = "N")]
    ram_mib: Option<u64>,
    /// Where the guest's COM1 output goes [default: ./<ISO name>.serial.log]
    #[arg(long, value_name = "FILE")]
    serial_log: Option<PathBuf>,
    /// Stop the guest after S seconds (exit status 124) [default: no limit]
    #[arg(long, value_name = "S")]
    timeout: Option<u64>,
    /// Stop the guest (exit status 0) as soon as the serial log contains TEXT
    #[arg(long, value_name = "TEXT")]
    until: Option<String>,
    /// QEMU display: none, gtk, sdl, vnc=:1, ... [default: none]
    #[arg(long, value_name = "KIND", default_value = "none")]
    display: String,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The guest wrote this status to the isa-debug-exit port.
    GuestStatus(u8),
    /// The guest powered off or reset.
    Stopped,
    /// `--until` matched.
    Matched,
    /// `--timeout` ran out.
    TimedOut,
}

impl Outcome {
    pub fn code(&self) -> u8 {
        match self {
            Outcome::GuestStatus(s) => *s,
            Outcome::Stopped | Outcome::Matched => 0,
            Outcome::TimedOut => EXIT_TIMEOUT,
        }
    }
}

/// A usage or environment problem (exit status 2).
#[derive(Debug)]
pub struct Refusal(pub String);

/// `cargo xtask vm ...`
pub fn main(args: &[String]) -> ExitCode {
    let argv = std::iter::once("cargo xtask vm".to_string()).chain(args.iter().cloned());
    let a = match VmArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(&a) {
        Ok((outcome, log)) => {
            eprintln!("vm: {}", describe(&outcome, &a));
            eprintln!("vm: serial output in {}", log.display());
            let text = std::fs::read(&log)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let rvblk = text.lines().filter(|l| l.contains("rvblk:")).count();
            eprintln!("vm: {rvblk} `rvblk:` line(s) in it");
            ExitCode::from(outcome.code())
        }
        Err(Refusal(msg)) => {
            eprintln!("vm: error: {msg}");
            ExitCode::from(2)
        }
    }
}

fn describe(o: &Outcome, a: &VmArgs) -> String {
    match o {
        Outcome::GuestStatus(s) => format!("the guest exited with status {s} (isa-debug-exit)"),
        Outcome::Stopped => "the guest powered off or reset (QEMU runs with -no-reboot)".into(),
        Outcome::Matched => format!(
            "the serial output contains {:?}; guest stopped",
            a.until.as_deref().unwrap_or_default()
        ),
        Outcome::TimedOut => format!(
            "the guest was still running after {} s; stopped",
            a.timeout.unwrap_or_default()
        ),
    }
}

/// Boots `a.iso` and waits for the end; returns how it ended and the serial log's path.
pub fn run(a: &VmArgs) -> Result<(Outcome, PathBuf), Refusal> {
    let meta = std::fs::metadata(&a.iso).map_err(|e| {
        Refusal(if e.kind() == std::io::ErrorKind::NotFound {
            format!("{}: the ISO does not exist", a.iso.display())
        } else {
            format!("{}: cannot read the ISO: {e}", a.iso.display())
        })
    })?;
    if !meta.is_file() {
        return Err(Refusal(format!("{}: not a file", a.iso.display())));
    }
    if a.uefi {
        return Err(Refusal(
            "--uefi: booting an ISO from RAM under UEFI (OVMF) needs a UEFI loader that maps the \
             ISO into memory, such as grub4efi or a1ive GRUB2; Debian packages none of them, so \
             `cargo xtask vm` boots through BIOS and MEMDISK only"
                .into(),
        ));
    }
    let qemu = tools::find(tools::QEMU).map_err(Refusal)?;
    let memdisk = tools::find_memdisk().map_err(Refusal)?;
    let iso_mib = meta.len().div_ceil(1 << 20);
    let ram = a.ram_mib.unwrap_or(iso_mib + 2048);
    if ram <= iso_mib {
        return Err(Refusal(format!(
            "--ram-mib {ram}: MEMDISK needs more RAM than the ISO's {iso_mib} MiB"
        )));
    }
    let log = a.serial_log.clone().unwrap_or_else(|| {
        let name = a
            .iso
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "vm".into());
        PathBuf::from(format!("{name}.serial.log"))
    });
    let _ = std::fs::remove_file(&log);
    let cfg = GuestConfig {
        machine: Machine::Pc,
        mem_mib: ram,
        initrd: a.iso.clone(),
        append: "iso raw".into(),
    };
    let mut cmd = memdisk_command(&qemu, &memdisk, &cfg, &log);
    cmd.arg("-device")
        .arg(format!(
            "isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if a.display != "none" {
        // memdisk_command asked for no display; a later -display wins.
        cmd.arg("-display").arg(&a.display);
    }
    eprintln!(
        "vm: booting {} from RAM ({ram} MiB, MEMDISK iso raw, TCG); serial → {}",
        a.iso.display(),
        log.display()
    );
    let mut child = cmd
        .spawn()
        .map_err(|e| Refusal(format!("cannot start {}: {e}", qemu.display())))?;
    let stderr = child.stderr.take();
    let stderr_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    });
    let t0 = Instant::now();
    let limit = a.timeout.map(Duration::from_secs);
    let outcome = loop {
        if let Some(st) = child
            .try_wait()
            .map_err(|e| Refusal(format!("waiting for QEMU: {e}")))?
        {
            let err = stderr_reader.join().unwrap_or_default();
            break match st.code() {
                Some(0) => Outcome::Stopped,
                // isa-debug-exit: (V << 1) | 1. Status 1 is also QEMU's own failure, told apart
                // by its message on stderr.
                Some(c) if c & 1 == 1 && (c != 1 || err.trim().is_empty()) => {
                    Outcome::GuestStatus((c >> 1) as u8)
                }
                _ => return Err(Refusal(format!("QEMU failed ({st}): {}", err.trim()))),
            };
        }
        if let Some(text) = &a.until {
            if contains(&log, text) {
                stop(&mut child);
                break Outcome::Matched;
            }
        }
        if limit.is_some_and(|l| t0.elapsed() > l) {
            stop(&mut child);
            break Outcome::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok((outcome, log))
}

fn contains(log: &Path, text: &str) -> bool {
    std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).contains(text))
        .unwrap_or(false)
}

fn stop(child: &mut std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}
