//! The Windows side of the three commands: observe the machine, ask the library what to do,
//! do it, report. All system calls are in `sys`.

mod control;
mod sys;

use crate::Command;
use rvblk_install::diagnose::{self, Environment, Outcome};
use rvblk_install::package::{self, Arch, Package, HARDWARE_ID, SERVICE};
use rvblk_install::plan::{
    self, Action, DeviceNode, FileState, Observed, ServiceConfig, StagedInf,
};
use rvblk_install::status::{self, Status};
use rvblk_install::{gate, Gate};
use std::path::PathBuf;
use windows_sys::Win32::Devices::DeviceAndDriverInstallation::GUID_DEVCLASS_SCSIADAPTER;
use windows_sys::Win32::System::Services::{
    SERVICE_RUNNING, SERVICE_START_PENDING, SERVICE_STOPPED,
};
use windows_sys::Win32::System::SystemInformation::{
    PROCESSOR_ARCHITECTURE_AMD64, PROCESSOR_ARCHITECTURE_ARM64, PROCESSOR_ARCHITECTURE_INTEL,
};

/// Exit codes: 0 done (and the driver runs, for install), 1 error (nothing changed unless the
/// message says so), 2 usage, 3 installed but the driver is not running (the reason is printed).
const EXIT_ERROR: i32 = 1;
const EXIT_NOT_RUNNING: i32 = 3;

macro_rules! say {
    ($($t:tt)*) => { println!("rvblk-install: {}", format!($($t)*)) };
}

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("rvblk-install: error: {msg}");
    EXIT_ERROR
}

fn win32_text(code: u32) -> String {
    std::io::Error::from_raw_os_error(code as i32).to_string()
}

pub fn run(command: Command) -> i32 {
    match command {
        Command::Install {
            package, dry_run, ..
        } => install(package, dry_run),
        Command::Remove {
            keep_package,
            dry_run,
        } => remove(keep_package, dry_run),
        Command::Status { json } => status(json),
        Command::Mount {
            file,
            cd,
            disk,
            floppy,
            ro,
        } => control::mount(&file, control::kind_flags(cd, disk, floppy), ro),
        Command::Ramdisk {
            size,
            kind,
            from,
            ro,
        } => control::ramdisk(size.as_deref(), kind, from.as_deref(), ro),
        Command::List { json } => control::list(json),
        Command::Eject { target } => control::eject(&target),
    }
}

fn arch() -> Option<Arch> {
    match sys::native_architecture() {
        PROCESSOR_ARCHITECTURE_AMD64 => Some(Arch::Amd64),
        PROCESSOR_ARCHITECTURE_INTEL => Some(Arch::X86),
        PROCESSOR_ARCHITECTURE_ARM64 => Some(Arch::Arm64),
        _ => None,
    }
}

fn drivers_dir() -> PathBuf {
    sys::system_dir().join("drivers")
}

fn driver_file() -> PathBuf {
    drivers_dir().join("rvblk.sys")
}

fn environment() -> Environment {
    let control = "SYSTEM\\CurrentControlSet\\Control";
    Environment {
        test_signing: sys::reg_string(control, "SystemStartOptions")
            .map(|o| o.to_ascii_uppercase().contains("TESTSIGNING")),
        secure_boot: sys::reg_dword(
            &format!("{control}\\SecureBoot\\State"),
            "UEFISecureBootEnabled",
        )
        .map(|v| v != 0),
        build: sys::reg_string(
            "SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion",
            "CurrentBuildNumber",
        )
        .and_then(|b| b.trim().parse().ok()),
        wine: sys::wine_version(),
        storport: drivers_dir().join("storport.sys").is_file(),
    }
}

/// The device nodes that matter (rvblk's, or using its service), with their status.
fn nodes() -> Result<Vec<status::Device>, String> {
    let all = sys::device_nodes()
        .map_err(|e| format!("cannot list the device nodes: {}", win32_text(e)))?;
    Ok(all
        .into_iter()
        .map(|n| status::Device {
            node: DeviceNode {
                instance_id: n.instance_id,
                hardware_ids: n.hardware_ids,
                service: n.service,
            },
            started: n.status.map(|s| s.0),
            problem: n.status.map(|s| s.1),
        })
        .filter(|d| {
            d.node.is_rvblk()
                || d.node
                    .service
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case(SERVICE))
        })
        .collect())
}

/// rvblk's INFs in the driver store: `%windir%\INF\oem*.inf` on Windows; Wine keeps the
/// original name, so every INF there that mentions rvblk is read.
fn staged(package_inf: Option<&[u8]>) -> Vec<(StagedInf, Vec<u8>)> {
    let dir = sys::windows_dir().join("INF");
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let lower = name.to_ascii_lowercase();
        if !lower.ends_with(".inf") {
            continue;
        }
        let Ok(bytes) = std::fs::read(e.path()) else {
            continue;
        };
        if package::mentions_rvblk(&bytes) && package::is_rvblk_inf(&bytes) {
            let same_as_package = package_inf == Some(bytes.as_slice());
            out.push((
                StagedInf {
                    name,
                    same_as_package,
                },
                bytes,
            ));
        }
    }
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    out
}

fn service() -> Option<(ServiceConfig, u32)> {
    sys::query_service(SERVICE).map(|s| {
        (
            ServiceConfig {
                service_type: s.service_type,
                start_type: s.start_type,
                error_control: s.error_control,
                group: s.group,
                image_path: s.image_path,
            },
            s.state,
        )
    })
}

fn observe(pkg: Option<&Package>) -> Result<(Observed, Vec<status::Device>), String> {
    let devices = nodes()?;
    let file = driver_file();
    let driver_file = Some(match std::fs::read(&file) {
        Err(_) => FileState::Missing,
        Ok(b) if pkg.is_some_and(|p| p.driver_bytes == b) => FileState::Same,
        Ok(_) => FileState::Different,
    });
    let o = Observed {
        devices: devices.iter().map(|d| d.node.clone()).collect(),
        staged: staged(pkg.map(|p| p.inf_bytes.as_slice()))
            .into_iter()
            .map(|s| s.0)
            .collect(),
        service: service().map(|s| s.0),
        driver_file,
    };
    Ok((o, devices))
}

fn check_gate(dry_run: bool) -> Option<i32> {
    match gate(sys::is_admin(), sys::is_wow64()) {
        Gate::Go => None,
        g if dry_run => {
            say!("note: {g}");
            None
        }
        g => Some(fail(g)),
    }
}

fn print_plan(plan: &plan::Plan, dry_run: bool) {
    for n in &plan.notes {
        say!("note: {n}");
    }
    if dry_run {
        if plan.actions.is_empty() {
            say!("dry run: nothing to do");
        }
        for a in &plan.actions {
            say!("dry run: would {a}");
        }
    }
}

fn install(package_dir: Option<PathBuf>, dry_run: bool) -> i32 {
    if let Some(code) = check_gate(dry_run) {
        return code;
    }
    let Some(arch) = arch() else {
        return fail("this processor architecture has no rvblk driver (x86, x64 and arm64 do)");
    };
    let dir = package_dir.unwrap_or_else(|| {
        let cwd = std::env::current_dir().unwrap_or_default();
        package::default_dir(std::env::current_exe().ok().as_deref(), &cwd)
    });
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let pkg = match Package::open(&dir, arch) {
        Ok(p) => p,
        Err(e) => return fail(format_args!("{e}. Nothing was changed")),
    };
    say!(
        "package {} (version {}, {arch})",
        pkg.dir.display(),
        pkg.inf.version
    );
    let (observed, _) = match observe(Some(&pkg)) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let plan = match plan::install(&observed, &pkg.inf.service) {
        Ok(p) => p,
        Err(refusal) => return fail(refusal),
    };
    print_plan(&plan, dry_run);
    if dry_run {
        return 0;
    }
    if plan.actions.is_empty() {
        say!("rvblk is already installed from this package; nothing changed");
    }
    let mut restart = false;
    for action in &plan.actions {
        say!("{action}");
        let result = match action {
            Action::StageInf => sys::stage_inf(&pkg.inf_path).map(|name| {
                say!("  staged as {name}");
            }),
            Action::CreateDevice => sys::create_root_device(
                &GUID_DEVCLASS_SCSIADAPTER,
                "SCSIAdapter",
                "rvblk RAM disk and CD-ROM adapter",
                HARDWARE_ID,
            )
            .map(|id| say!("  created {id}")),
            Action::InstallDriver => install_driver(&pkg).map(|r| restart |= r),
            other => unreachable!("install plans do not contain {other:?}"),
        };
        if let Err(e) = result {
            return fail(format_args!(
                "{action} failed: {} (error {e}). Run `rvblk-install status` to see what is \
                 installed, and `rvblk-install remove` to undo it",
                win32_text(e)
            ));
        }
    }
    report_after_install(restart)
}

/// Copies the driver file (atomically: a temporary name in the same directory, then a rename
/// over the old file) and installs the driver on rvblk's device node.
fn install_driver(pkg: &Package) -> Result<bool, u32> {
    let io = |e: std::io::Error| e.raw_os_error().unwrap_or(29) as u32;
    let dest = driver_file();
    let tmp = dest.with_extension("sys.rvblk-install");
    std::fs::write(&tmp, &pkg.driver_bytes).map_err(io)?;
    let mut restart = false;
    if let Err(e) = std::fs::rename(&tmp, &dest) {
        // A running older driver can hold its file: it is replaced at the next restart.
        if sys::replace_at_restart(&tmp, &dest).is_err() {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        say!("  rvblk.sys is in use; the new one replaces it at the next restart");
        restart = true;
    }
    let node = nodes()
        .ok()
        .and_then(|n| n.into_iter().find(|d| d.node.is_rvblk()))
        .ok_or(windows_sys::Win32::Foundation::ERROR_NO_SUCH_DEVINST)?;
    Ok(sys::install_driver(&node.node.instance_id, &pkg.inf_path)? || restart)
}

/// The state after install: running, or why not.
fn report_after_install(restart: bool) -> i32 {
    let env = environment();
    let svc = service();
    let state = svc.as_ref().map(|s| s.1);
    let node = nodes()
        .ok()
        .and_then(|n| n.into_iter().find(|d| d.node.is_rvblk()));
    let outcome = if state == Some(SERVICE_RUNNING) {
        Outcome::Running
    } else if restart {
        Outcome::NeedsRestart
    } else {
        // Starting the service is how Windows says why the driver does not load (the
        // signature, a missing module); it changes nothing when it fails.
        match sys::start_service(SERVICE) {
            Ok(()) => match service().map(|s| s.1) {
                Some(SERVICE_RUNNING | SERVICE_START_PENDING) => Outcome::Running,
                _ => node
                    .and_then(|d| d.problem)
                    .filter(|&p| p != 0)
                    .map_or(Outcome::Stopped, Outcome::Problem),
            },
            Err(e) => Outcome::StartFailed(e),
        }
    };
    match &svc {
        Some((c, _)) => say!(
            "service {SERVICE}: installed, start type {} ({}), {}",
            c.start_type,
            if c.start_type == 0 {
                "boot"
            } else {
                "not boot"
            },
            c.image_path
        ),
        None => say!("service {SERVICE}: not found after the install"),
    }
    say!("restart needed: {}", if restart { "yes" } else { "no" });
    match diagnose::reason(outcome, &env) {
        None => {
            say!("the driver is running");
            0
        }
        Some(r) => {
            say!("the driver is installed but not running: {r}");
            EXIT_NOT_RUNNING
        }
    }
}

fn remove(keep_package: bool, dry_run: bool) -> i32 {
    if let Some(code) = check_gate(dry_run) {
        return code;
    }
    let (observed, _) = match observe(None) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let plan = plan::remove(&observed, keep_package);
    print_plan(&plan, dry_run);
    if dry_run {
        return 0;
    }
    if plan.actions.is_empty() {
        say!("rvblk is not installed; nothing changed");
        return 0;
    }
    let mut restart = false;
    for action in &plan.actions {
        say!("{action}");
        let result = match action {
            Action::RemoveDevice(id) => sys::remove_device(id),
            Action::UnstageInf(name) => sys::unstage_inf(name).map(|()| {
                // Wine's SetupUninstallOEMInf leaves the precompiled .pnf behind.
                let pnf = sys::windows_dir()
                    .join("INF")
                    .join(name)
                    .with_extension("pnf");
                let _ = std::fs::remove_file(pnf);
            }),
            Action::DeleteService => sys::delete_service(SERVICE),
            Action::DeleteDriverFile => match std::fs::remove_file(driver_file()) {
                Ok(()) => Ok(()),
                Err(_) => sys::delete_at_restart(&driver_file()).map(|()| {
                    restart = true;
                    say!("  the file is in use; it is deleted at the next restart");
                }),
            },
            other => unreachable!("remove plans do not contain {other:?}"),
        };
        if let Err(e) = result {
            return fail(format_args!(
                "{action} failed: {} (error {e})",
                win32_text(e)
            ));
        }
    }
    // Setup creates the SCSI adapter class key for the driver key when the system has none
    // (Wine); a Windows class key always has values, so only such a leftover is removed.
    let class_key =
        "SYSTEM\\CurrentControlSet\\Control\\Class\\{4D36E97B-E325-11CE-BFC1-08002BE10318}";
    if sys::key_counts(class_key).is_some_and(|(k, v)| plan::is_leftover_key(k, v)) {
        let _ = sys::delete_key(class_key);
    }
    if service().is_some() {
        restart = true;
        say!("the service is marked for deletion; it goes away at the next restart");
    }
    say!(
        "rvblk removed{}",
        if restart {
            "; restart Windows to finish"
        } else {
            ""
        }
    );
    0
}

fn state_name(state: u32) -> String {
    match state {
        SERVICE_RUNNING => "running".into(),
        SERVICE_STOPPED => "stopped".into(),
        SERVICE_START_PENDING => "start pending".into(),
        s => format!("state {s}"),
    }
}

fn status(json: bool) -> i32 {
    let (observed, devices) = match observe(None) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let env = environment();
    let svc = service();
    let staged = staged(None);
    let version = staged.first().and_then(|(_, bytes)| {
        let text = rvblk_inf::decode(bytes);
        [Arch::Amd64, Arch::X86, Arch::Arm64]
            .iter()
            .find_map(|&a| package::read_inf(&text, a).ok())
            .map(|i| i.version)
    });
    let mut images = Vec::new();
    for port in 0..64 {
        if let Some(buf) = sys::scsi_inquiry_data(port) {
            images.extend(status::rvblk_luns(port, &buf));
        }
    }
    let running = svc.as_ref().is_some_and(|s| s.1 == SERVICE_RUNNING);
    let installed = svc.is_some() || devices.iter().any(|d| d.node.is_rvblk());
    let reason = (installed && !running)
        .then(|| {
            let problem = devices
                .iter()
                .find(|d| d.node.is_rvblk())
                .and_then(|d| d.problem)
                .filter(|&p| p != 0);
            diagnose::reason(problem.map_or(Outcome::Stopped, Outcome::Problem), &env)
        })
        .flatten()
        .map(|r| r.to_string());
    let s = Status {
        installed,
        version,
        staged: staged.into_iter().map(|s| s.0).collect(),
        devices,
        service: svc.map(|(config, state)| status::Service {
            config,
            state: state_name(state),
        }),
        driver_file: observed.driver_file != Some(FileState::Missing),
        running,
        reason,
        kernel_trust_policy: env.kernel_trust_policy(),
        environment: env,
        images,
    };
    if json {
        println!("{}", s.json());
    } else {
        print!("{}", s.table());
    }
    0
}
