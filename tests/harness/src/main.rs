//! `rvblk-harness`: run a real rvblk.sys or rvblkxp.sys (x64 in this process, x86 in the
//! 32-bit helper, arm64 in the aarch64 build under qemu-aarch64) under the emulated StorPort or
//! SCSIPORT kernel.

use rvblk_harness::commands::run::{self, RunOptions};
use rvblk_harness::emu::kernel::{
    DiskSpec, LegacyConfig, MachineConfig, Personality, Requester, SetupPhase,
};
use rvblk_harness::host::{helper, pe};
use std::path::PathBuf;
use std::process::exit;

const USAGE: &str = "usage:
  rvblk-harness run --driver PATH.sys --ram DUMP [--os-ram START:LEN ...] [--expect IMAGE ...]
                    [--personality win8|win7|xp] [--nfit FILE] [--no-write] [--verbose] [--json]
                    [--read-kib N]
                    [--setup installed|textmode|guimode|minint] [--driver-parameter STR]
                    [--service NAME]
                    [--disk FILE[:SECTOR] ...] [--disk-arrival-ms N] [--disk-remove-ms N]
                    [--disk-read-only] [--disk-pend-every N] [--disk-hang-async-after N]
                    [--startio-dispatch-every N] [--disk-buffered-io]
                    [--uefi-var NAME=FILE ...]
  rvblk-harness bench --driver PATH.sys [--x86-driver PATH.sys] [--arm64-driver PATH.sys]
                      [--size-mib N] [--prefix P] [--only runtime|file|disk]
  rvblk-harness suite --driver PATH.sys [--personality win8|win7|xp] [--only NAME]
  rvblk-harness faults --driver PATH.sys [--personality win8|win7|xp]
  rvblk-harness runtime --driver PATH.sys [--personality win8|win7|xp] [--ram-limit-mib N]
                        (the control interface and runtime mounts; docs/harness-runtime.md)
  rvblk-harness mount --driver PATH.sys --file F --kind cd|disk|floppy [--ro] [--expect IMAGE ...]
                      [--json] [--personality win8|win7] [--requester admin|filtered|user|kernel]
                      [--ram-limit-mib N] [--file-attr compressed,sparse,encrypted,readonly]
                      (mounts F through the control interface, reads every block, reports as run)
  rvblk-harness imports --driver PATH.sys
  rvblk-harness cdbs --driver PATH.sys --image FILE --kind cd|disk|floppy --script FILE
                     [--personality win8|win7|xp]   (the SCSI oracle's side; docs/scsi-oracle.md)
  rvblk-harness torture --driver PATH.sys [--ops N] [--threads T] [--size-mib M] [--seed S]
                     (random concurrent I/O checked against a shadow copy, faults injected)

x86 drivers run in the 32-bit build of the harness (RVBLK_HARNESS_X86), arm64 drivers in
the aarch64 build under qemu-aarch64 (RVBLK_HARNESS_ARM64); the same command line is passed on.

disks and firmware (run; docs/harness-disks.md):
  --disk FILE[:SECTOR]                 a raw disk image (MBR/GPT as in the file) presented as
                                       a USB disk, in order: disk 0, 1, ...; SECTOR 512
                                       (default), 2048 or 4096. Writes go to FILE itself: pass
                                       a copy
  --disk-arrival-ms N                  deliver the disks' interface arrivals N ms after the
                                       driver registered for them (default 0); run waits for
                                       the bus-change re-enumeration (up to N + 10 s)
  --disk-stagger-ms N                  disk i arrives i x N ms after disk 0 (default 0: all
                                       at once), e.g. a second stick plugged in later
  --disk-remove-ms N                   surprise-remove every disk N ms after its arrival
  --disk-read-only                     the disks refuse writes (write-protected media)
  --disk-pend-every N                  every Nth IRP pends and completes from the completion
                                       thread (default 2; 1 = all, 0 = none)
  --disk-hang-async-after N            asynchronous IRPs after the Nth never complete unless
                                       cancelled (the driver cancels them after 10 s)
  --startio-dispatch-every N           every Nth HwStartIo runs at DISPATCH_LEVEL, the others at
                                       PASSIVE (default 1: all at DISPATCH; 0: all at PASSIVE),
                                       so both disk-backed paths run
  --read-kib N                         READ size of the content pass, in KiB (default: the
                                       adapter's maximum transfer, at most 1 MiB); 64 reads
                                       the way Windows' class drivers often do, in read-ahead's
                                       reach
  --disk-buffered-io                   the disks' device objects do buffered I/O, not direct
                                       I/O: the driver must keep its fast path off them
  --uefi-var NAME=FILE                 firmware variable NAME (Ventoy's vendor GUID) holds
                                       FILE's bytes; any --uefi-var makes the machine UEFI

runtime mounts (runtime, mount; docs/harness-runtime.md):
  --requester admin|filtered|user|kernel
                                       who sends the control request: an elevated administrator
                                       (default); a UAC non-elevated administrator or a standard
                                       user (UserMode, neither is admin); kernel code (KernelMode)
  --ram-limit-mib N                    RAM MmAllocatePagesForMdlEx may hand out in total
                                       (default 256)
  --file-attr LIST                     FileBasicInformation attributes of --file (harness table)
  Files are given to the driver as \\??\\Z:\\ + the host path (/tmp/a.iso is \\??\\Z:\\tmp\\a.iso).

personalities:
  win8   StorPort, Windows 8 and later (full HW_INITIALIZATION_DATA, buffers mapped)
  win7   StorPort, Vista/7 (virtual miniport structure; READ/WRITE buffers unmapped)
  xp     SCSIPORT, Windows XP/2003 legacy miniport (rvblkxp.sys)
xp options (the driver's registry as SCSIPORT and setup present it):
  --setup installed|textmode|guimode|minint
                                       HKLM\\System\\Setup\\SystemSetupInProgress = 0 | key
                                       absent | 1 | key absent with MININT in
                                       Control\\SystemStartOptions (an XP-based PE);
                                       default: installed
  --driver-parameter STR               Parameters\\Device\\DriverParameter (HwFindAdapter's
                                       ArgumentString), e.g. disks=on
  --service NAME                       the service the driver runs as (default rvblkxp;
                                       rvblkxpd is the \"RAM CD + RAM disks\" entry)";

fn die(msg: &str) -> ! {
    eprintln!("rvblk-harness: {msg}");
    exit(2)
}

struct Args {
    v: Vec<String>,
    i: usize,
}

impl Args {
    fn value(&mut self, flag: &str) -> String {
        self.i += 1;
        self.v
            .get(self.i)
            .cloned()
            .unwrap_or_else(|| die(&format!("{flag} needs a value")))
    }
}

fn driver_machine(path: &PathBuf) -> u16 {
    let b = std::fs::read(path).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    pe::machine_of(&b).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())))
}

/// If the driver is x86 and we are 64-bit, re-run the whole command in the helper.
fn maybe_delegate(driver: &PathBuf, argv: &[String]) {
    let m = driver_machine(driver);
    let host = if cfg!(target_arch = "aarch64") {
        pe::MACHINE_ARM64
    } else if helper::host_is_64() {
        pe::MACHINE_AMD64
    } else {
        pe::MACHINE_I386
    };
    if m == host {
        return;
    }
    if m == pe::MACHINE_I386 && helper::host_is_64() {
        match helper::run_x86(argv) {
            Ok(code) => exit(code),
            Err(e) => die(&e),
        }
    }
    if m == pe::MACHINE_ARM64 {
        match helper::run_arm64(argv) {
            Ok(code) => exit(code),
            Err(e) => die(&e),
        }
    }
    die(&format!(
        "{}: machine {m:#x} cannot run in this {}-bit harness",
        driver.display(),
        if helper::host_is_64() { 64 } else { 32 }
    ));
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first().cloned() else {
        die(USAGE)
    };
    if matches!(cmd.as_str(), "-h" | "--help" | "help") {
        println!("{USAGE}");
        exit(0)
    }
    if matches!(cmd.as_str(), "cdbs" | "torture") {
        let driver = rvblk_harness::commands::oracle::driver_arg(&argv).unwrap_or_else(|e| die(&e));
        maybe_delegate(&driver, &argv);
        let r = if cmd == "cdbs" {
            rvblk_harness::commands::oracle::main(&argv)
        } else {
            rvblk_harness::commands::torture::main(&argv)
        };
        exit(r.unwrap_or_else(|e| die(&e)))
    }
    let mut a = Args {
        v: argv.clone(),
        i: 0,
    };
    let mut driver = None;
    let mut x86_driver = None;
    let mut arm64_driver = None;
    let mut ram = None;
    let mut os_ram = Vec::new();
    let mut expect = Vec::new();
    let mut personality = Personality::Win8;
    let mut nfit = None;
    let mut json = false;
    let mut verbose = false;
    let mut no_write = false;
    let mut read_kib: Option<u32> = None;
    let mut size_mib = 256u64;
    let mut prefix = String::new();
    let mut only = None;
    let mut legacy = LegacyConfig::default();
    let mut disk_args = Vec::new();
    let mut disk_read_only = false;
    let mut machine = MachineConfig::default();
    let mut file = None;
    let mut kind = None;
    let mut read_only = false;
    let mut attributes = 0u32;
    let ms = |flag: &str, v: String| -> u64 {
        v.parse()
            .unwrap_or_else(|_| die(&format!("{flag} {v}: not a number of milliseconds")))
    };
    while a.i + 1 < a.v.len() {
        a.i += 1;
        let f = a.v[a.i].clone();
        match f.as_str() {
            "--driver" => driver = Some(PathBuf::from(a.value(&f))),
            "--x86-driver" => x86_driver = Some(PathBuf::from(a.value(&f))),
            "--arm64-driver" => arm64_driver = Some(PathBuf::from(a.value(&f))),
            "--ram" => ram = Some(PathBuf::from(a.value(&f))),
            "--os-ram" => os_ram.push(run::parse_range(&a.value(&f)).unwrap_or_else(|e| die(&e))),
            "--expect" => expect.push(a.value(&f)),
            "--personality" => {
                let v = a.value(&f);
                personality = Personality::parse(&v)
                    .unwrap_or_else(|| die(&format!("unknown personality {v}")))
            }
            "--nfit" => {
                let p = a.value(&f);
                nfit = Some(std::fs::read(&p).unwrap_or_else(|e| die(&format!("{p}: {e}"))))
            }
            "--json" => json = true,
            "--verbose" | "-v" => verbose = true,
            "--no-write" => no_write = true,
            "--read-kib" => {
                let v = a.value(&f);
                read_kib = Some(
                    v.parse()
                        .ok()
                        .filter(|&n: &u32| (1..=1024).contains(&n))
                        .unwrap_or_else(|| {
                            die(&format!("--read-kib {v}: a number of KiB, 1 to 1024"))
                        }),
                )
            }
            "--size-mib" => {
                size_mib = a
                    .value(&f)
                    .parse()
                    .unwrap_or_else(|_| die("bad --size-mib"))
            }
            "--prefix" => prefix = a.value(&f),
            "--only" => only = Some(a.value(&f)),
            "--setup" => {
                let v = a.value(&f);
                legacy.setup = SetupPhase::parse(&v).unwrap_or_else(|| {
                    die(&format!(
                        "unknown setup phase {v} (installed, textmode, guimode or minint)"
                    ))
                })
            }
            "--driver-parameter" => legacy.argument_string = Some(a.value(&f)),
            "--service" => legacy.service = Some(a.value(&f)),
            "--disk" => disk_args.push(a.value(&f)),
            "--disk-read-only" => disk_read_only = true,
            "--disk-arrival-ms" => machine.arrival_ms = ms(&f, a.value(&f)),
            "--disk-stagger-ms" => machine.stagger_ms = ms(&f, a.value(&f)),
            "--disk-remove-ms" => machine.remove_ms = Some(ms(&f, a.value(&f))),
            "--disk-pend-every" => {
                let v = a.value(&f);
                machine.pend_every = v
                    .parse()
                    .unwrap_or_else(|_| die(&format!("--disk-pend-every {v}: not a number")))
            }
            "--disk-hang-async-after" => {
                let v = a.value(&f);
                machine.hang_async_after = v
                    .parse()
                    .unwrap_or_else(|_| die(&format!("--disk-hang-async-after {v}: not a number")))
            }
            "--disk-buffered-io" => machine.disk_buffered_io = true,
            "--startio-dispatch-every" => {
                let v = a.value(&f);
                machine.startio_dispatch_every = v
                    .parse()
                    .unwrap_or_else(|_| die(&format!("--startio-dispatch-every {v}: not a number")))
            }
            "--uefi-var" => {
                let v = a.value(&f);
                let (name, file) = v
                    .split_once('=')
                    .filter(|(n, f)| !n.is_empty() && !f.is_empty())
                    .unwrap_or_else(|| die(&format!("--uefi-var {v}: expected NAME=FILE")));
                let data = std::fs::read(file)
                    .unwrap_or_else(|e| die(&format!("--uefi-var {name}: {file}: {e}")));
                machine.uefi_vars.push((name.to_string(), data));
            }
            "--file" => file = Some(PathBuf::from(a.value(&f))),
            "--kind" => {
                let v = a.value(&f);
                kind = Some(match v.as_str() {
                    "cd" | "cdrom" => rvblk_core::image::DeviceKind::CdRom,
                    "disk" => rvblk_core::image::DeviceKind::Disk,
                    "floppy" => rvblk_core::image::DeviceKind::Floppy,
                    _ => die(&format!("--kind {v}: cd, disk or floppy")),
                })
            }
            "--ro" => read_only = true,
            "--requester" => {
                let v = a.value(&f);
                machine.requester = Requester::parse(&v).unwrap_or_else(|| {
                    die(&format!("--requester {v}: admin, filtered, user or kernel"))
                })
            }
            "--ram-limit-mib" => {
                let v = a.value(&f);
                machine.ram_limit_mib = v
                    .parse()
                    .unwrap_or_else(|_| die(&format!("--ram-limit-mib {v}: not a number")))
            }
            "--file-attr" => {
                let v = a.value(&f);
                attributes |= rvblk_harness::emu::kernel::files::parse_attributes(&v)
                    .unwrap_or_else(|e| die(&format!("--file-attr: {e}")))
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                exit(0)
            }
            _ => die(&format!("unknown argument {f}\n{USAGE}")),
        }
    }
    let driver = driver.unwrap_or_else(|| die(&format!("--driver is required\n{USAGE}")));
    for d in &disk_args {
        machine
            .disks
            .push(DiskSpec::parse(d, disk_read_only).unwrap_or_else(|e| die(&e)));
    }
    if cmd != "run" && (!machine.disks.is_empty() || !machine.uefi_vars.is_empty()) {
        die("--disk and --uefi-var are options of run");
    }
    match cmd.as_str() {
        "run" => {
            maybe_delegate(&driver, &argv);
            rvblk_harness::checks::crash::JSON.store(json, std::sync::atomic::Ordering::SeqCst);
            let opts = RunOptions {
                driver,
                ram,
                os_ram,
                expect,
                personality,
                nfit,
                verbose,
                no_write,
                read_kib,
                legacy,
                machine,
            };
            match run::run(&opts) {
                Ok(r) => {
                    if json {
                        println!("{}", r.to_json());
                    } else {
                        print!("{}", r.to_text());
                    }
                    if verbose {
                        for l in &r.log {
                            eprintln!("log: {l}");
                        }
                    }
                    exit(if r.failures.is_empty() { 0 } else { 1 })
                }
                Err(e) => {
                    if json {
                        println!(
                            "{}",
                            rvblk_report::Report::failed(vec![e.clone()]).to_json()
                        );
                    }
                    eprintln!("rvblk-harness: {e}");
                    exit(1)
                }
            }
        }
        "imports" => {
            let b = std::fs::read(&driver).unwrap_or_else(|e| die(&format!("{e}")));
            let imps = pe::list_imports(&b).unwrap_or_else(|e| die(&e.0));
            for i in imps {
                println!("{}!{}", i.dll, i.name);
            }
        }
        "bench" => {
            maybe_delegate(&driver, &argv);
            if only.as_deref() == Some("disk") {
                // The disk-backed figures alone (`docs/bench.md` "The disk-backed path").
                std::process::exit(rvblk_harness::commands::bench::disk_backed_only(
                    &driver, &prefix, verbose,
                ));
            }
            if let Some(o @ ("runtime" | "file")) = only.as_deref() {
                // The runtime-mount figures alone (`docs/harness-runtime.md` §6).
                std::process::exit(rvblk_harness::commands::bench::runtime_only(
                    &driver,
                    &prefix,
                    verbose,
                    o == "runtime",
                ));
            }
            let code = rvblk_harness::commands::bench::main(&driver, size_mib, &prefix, verbose);
            let mut code = code;
            if let Some(x) = x86_driver {
                let args = vec![
                    "bench".to_string(),
                    "--driver".to_string(),
                    x.display().to_string(),
                    "--prefix".to_string(),
                    "x86_".to_string(),
                    "--size-mib".to_string(),
                    size_mib.to_string(),
                ];
                let r = if helper::host_is_64() {
                    helper::run_x86(&args)
                } else {
                    Ok(rvblk_harness::commands::bench::main(
                        &x, size_mib, "x86_", verbose,
                    ))
                };
                match r {
                    Ok(c) => code = code.max(c),
                    Err(e) => {
                        eprintln!("rvblk-harness: {e}");
                        code = 1;
                    }
                }
            }
            if let Some(x) = arm64_driver {
                // Under qemu-aarch64 (TCG) unless the host is arm64: recorded, not judged.
                let args = vec![
                    "bench".to_string(),
                    "--driver".to_string(),
                    x.display().to_string(),
                    "--prefix".to_string(),
                    "arm64_".to_string(),
                    "--size-mib".to_string(),
                    size_mib.to_string(),
                ];
                let emulated = !cfg!(target_arch = "aarch64");
                println!(
                    "arm64_emulated: {}",
                    if emulated {
                        "yes (qemu-aarch64 user mode; recorded, not judged)"
                    } else {
                        "no"
                    }
                );
                let r = if emulated {
                    helper::run_arm64(&args)
                } else {
                    Ok(rvblk_harness::commands::bench::main(
                        &x, size_mib, "arm64_", verbose,
                    ))
                };
                match r {
                    Ok(c) => code = code.max(c),
                    Err(e) => {
                        eprintln!("rvblk-harness: {e}");
                        code = 1;
                    }
                }
            }
            exit(code)
        }
        "suite" => {
            maybe_delegate(&driver, &argv);
            exit(rvblk_harness::commands::compliance::main(
                &driver,
                personality,
                only.as_deref(),
                verbose,
            ))
        }
        "runtime" => {
            maybe_delegate(&driver, &argv);
            exit(rvblk_harness::commands::runtime::main(
                &driver,
                personality,
                verbose,
                &machine,
            ))
        }
        "mount" => {
            maybe_delegate(&driver, &argv);
            rvblk_harness::checks::crash::JSON.store(json, std::sync::atomic::Ordering::SeqCst);
            let opts = rvblk_harness::commands::mount::MountOptions {
                driver,
                file: file.unwrap_or_else(|| die("mount needs --file F")),
                kind: kind.unwrap_or_else(|| die("mount needs --kind cd|disk|floppy")),
                read_only,
                expect,
                personality,
                verbose,
                machine,
                attributes,
            };
            match rvblk_harness::commands::mount::run(&opts) {
                Ok(r) => {
                    if json {
                        println!("{}", r.to_json());
                    } else {
                        print!("{}", r.to_text());
                    }
                    if verbose {
                        for l in &r.log {
                            eprintln!("log: {l}");
                        }
                    }
                    exit(if r.failures.is_empty() && !r.luns.is_empty() {
                        0
                    } else {
                        1
                    })
                }
                Err(e) => {
                    if json {
                        println!(
                            "{}",
                            rvblk_report::Report::failed(vec![e.clone()]).to_json()
                        );
                    }
                    eprintln!("rvblk-harness: {e}");
                    exit(1)
                }
            }
        }
        "faults" => {
            maybe_delegate(&driver, &argv);
            exit(rvblk_harness::commands::faults::main(
                &driver,
                personality,
                verbose,
            ))
        }
        _ => die(&format!("unknown command {cmd}\n{USAGE}")),
    }
}
