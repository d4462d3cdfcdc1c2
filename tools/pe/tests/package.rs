//! Acceptance checks of the built driver package (the foundation issue): run by `cargo xtask test`
//! with `RVBLK_PACKAGE_DIR` pointing at the package (normally `target/package`).
//!
//! Each check collects every violation and fails once, listing them all.

use rvblk_pe::scan::{instruction_scan, SimdClass};
use rvblk_pe::{
    dll_characteristics as dc, Pe, MACHINE_AMD64, MACHINE_ARM64, MACHINE_I386, SUBSYSTEM_NATIVE,
};
use std::path::PathBuf;

const X86: u8 = 1;
const X64: u8 = 2;
const A64: u8 = 4;
/// The XP/2003 SCSIPORT build (x86).
const XP: u8 = 8;
/// The XP x64 / Server 2003 x64 SCSIPORT build (NT 5.2 x64).
const XP64: u8 = 16;
const MODERN: u8 = X86 | X64 | A64;
const XP_BOTH: u8 = XP | XP64;
const ALL: u8 = MODERN | XP_BOTH;

const NT: &[&str] = &["ntoskrnl.exe"];
const HAL: &[&str] = &["hal.dll"];
const NT_HAL: &[&str] = &["ntoskrnl.exe", "hal.dll"];
const STOR: &[&str] = &["storport.sys"];
const SCSI: &[&str] = &["scsiport.sys"];

/// The exports the driver may import: `(name, builds where it exists, DLLs exporting it)`.
/// Everything here exists on Windows 7 (and, for `XP` entries, on Windows XP SP3 x86; for `XP64`
/// entries, on Windows Server 2003 SP1 x64 = XP x64, checked against the NT 5.2 export lists of
/// ReactOS's ntoskrnl/hal/scsiport specs, which mark x86-only and x64-only exports, and
/// Microsoft's DDI pages). Adding a name means checking it against the oldest target's export
/// table.
const ALLOWED: &[(&str, u8, &[&str])] = &[
    // storport.sys (Vista SP1+ virtual miniport interface; all present on Windows 7)
    ("StorPortInitialize", MODERN, STOR),
    ("StorPortNotification", MODERN, STOR),
    ("StorPortExtendedFunction", MODERN, STOR),
    ("StorPortGetLogicalUnit", MODERN, STOR),
    ("StorPortDebugPrint", MODERN, STOR),
    // scsiport.sys (XP/2003 legacy miniport; the same exports on x64)
    ("ScsiPortInitialize", XP_BOTH, SCSI),
    ("ScsiPortNotification", XP_BOTH, SCSI),
    ("ScsiPortGetLogicalUnit", XP_BOTH, SCSI),
    ("ScsiPortCompleteRequest", XP_BOTH, SCSI),
    ("ScsiPortMoveMemory", XP_BOTH, SCSI),
    ("ScsiPortStallExecution", XP_BOTH, SCSI),
    ("ScsiPortLogError", XP_BOTH, SCSI),
    // memory manager, pool, misc kernel
    ("MmMapIoSpace", ALL, NT),
    ("MmUnmapIoSpace", ALL, NT),
    ("MmGetPhysicalMemoryRanges", ALL, NT),
    ("MmGetSystemRoutineAddress", ALL, NT),
    ("ExAllocatePoolWithTag", ALL, NT),
    ("ExFreePoolWithTag", ALL, NT),
    ("DbgPrint", ALL, NT),
    ("ZwQuerySystemInformation", ALL, NT),
    // OS version for the x86 mapping budget (docs/x86-mapping.md); Windows 2000 and later.
    ("RtlGetVersion", ALL, NT),
    // The XP flavour reads HKLM\System\Setup\SystemSetupInProgress (setup-mode disk policy).
    ("ZwOpenKey", ALL, NT),
    ("ZwQueryValueKey", ALL, NT),
    ("ZwClose", ALL, NT),
    ("RtlCompareMemory", ALL, NT),
    ("RtlInitUnicodeString", ALL, NT),
    ("KeBugCheckEx", ALL, NT),
    // timing: a HAL export on x86 and on NT 5.2 x64, ntoskrnl on Windows 7 x64/arm64
    ("KeQueryPerformanceCounter", ALL, NT_HAL),
    ("KeStallExecutionProcessor", ALL, NT_HAL),
    // spin locks and IRQL: x86 HAL fastcall exports; x64/arm64 ntoskrnl (KeGetCurrentIrql is an
    // inline CR8 read on NT 5.2 x64, not an export)
    ("KfAcquireSpinLock", X86 | XP, HAL),
    ("KfReleaseSpinLock", X86 | XP, HAL),
    ("KeGetCurrentIrql", MODERN | XP, NT_HAL),
    ("KeAcquireSpinLockRaiseToDpc", X64 | A64 | XP64, NT),
    ("KeReleaseSpinLock", X64 | A64 | XP64, NT),
    // The disk-backed path of rvblk.sys (docs/windows-integration.md §8): its worker thread,
    // events, disk-interface notifications and IRPs to the backing disk, in both flavours
    // (rvblkxp.sys serves disk-backed images too). All exported since Windows 2000, so by XP x86
    // and NT 5.2 x64; IofCallDriver and ObfDereferenceObject are fastcall on x86.
    ("PsCreateSystemThread", ALL, NT),
    ("ObReferenceObjectByHandle", ALL, NT),
    ("ObfDereferenceObject", ALL, NT),
    ("KeInitializeEvent", ALL, NT),
    ("KeSetEvent", ALL, NT),
    ("KeWaitForSingleObject", ALL, NT),
    ("IoRegisterPlugPlayNotification", ALL, NT),
    ("IoUnregisterPlugPlayNotification", ALL, NT),
    ("IoGetDeviceObjectPointer", ALL, NT),
    ("IoBuildSynchronousFsdRequest", ALL, NT),
    ("IoBuildDeviceIoControlRequest", ALL, NT),
    ("IofCallDriver", ALL, NT),
    ("IoCancelIrp", ALL, NT),
    // The fast path of disk-backed I/O (docs/windows-integration.md §8.5): asynchronous IRPs,
    // freed by their completion routine; all exported since Windows 2000, on NT 5.2 x64 too.
    // KeGetCurrentIrql is looked up with MmGetSystemRoutineAddress, not imported (NT 5.2 x64
    // does not export it).
    ("IoBuildAsynchronousFsdRequest", ALL, NT),
    ("IoFreeIrp", ALL, NT),
    ("IoFreeMdl", ALL, NT),
    ("MmUnlockPages", ALL, NT),
    ("IoGetRemainingStackSize", ALL, NT),
    // Runtime mounts of rvblk.sys (docs/windows-integration.md §9): the requester's security,
    // impersonation, files by path, RAM-disk MDL pages. All exported by Windows 7 (most since
    // Windows 2000; MmAllocatePagesForMdlEx since Server 2003 SP1); ObfReferenceObject is
    // fastcall on x86. The XP flavour serves no runtime LUN (`PortCalls::RUNTIME_LUNS`) but links
    // the release paths shared with the worker: ObfReferenceObject, ExFreePool,
    // MmUnmapLockedPages and MmFreePagesFromMdl, all exported since Windows 2000.
    ("ObfReferenceObject", ALL, NT),
    ("SeCreateClientSecurity", MODERN, NT),
    ("SeTokenIsAdmin", MODERN, NT),
    ("SeImpersonateClientEx", MODERN, NT),
    ("PsRevertToSelf", MODERN, NT),
    ("ZwCreateFile", MODERN, NT),
    ("ZwQueryInformationFile", MODERN, NT),
    ("ZwReadFile", MODERN, NT),
    ("ZwWriteFile", MODERN, NT),
    ("MmAllocatePagesForMdlEx", MODERN, NT),
    ("MmMapLockedPagesSpecifyCache", MODERN, NT),
    ("MmUnmapLockedPages", ALL, NT),
    ("MmFreePagesFromMdl", ALL, NT),
    ("ExFreePool", ALL, NT),
    // C runtime pieces ntoskrnl exports
    ("memcpy", ALL, NT),
    ("memset", ALL, NT),
    ("memmove", ALL, NT),
    ("memcmp", ALL, NT),
    // x86 64-bit arithmetic helpers (ntoskrnl exports them on x86 only)
    ("_aulldiv", X86 | XP, NT),
    ("_aullrem", X86 | XP, NT),
    ("_alldiv", X86 | XP, NT),
    ("_allrem", X86 | XP, NT),
    ("_allmul", X86 | XP, NT),
    ("_aullshr", X86 | XP, NT),
    ("_allshl", X86 | XP, NT),
    ("_allshr", X86 | XP, NT),
];

fn package_dir() -> PathBuf {
    match std::env::var_os("RVBLK_PACKAGE_DIR") {
        Some(d) => PathBuf::from(d),
        None => panic!(
            "RVBLK_PACKAGE_DIR is not set: point it at the driver package (e.g. target/package, \
             made by `cargo xtask package`), or run these checks with `cargo xtask test`"
        ),
    }
}

fn read(rel: &str) -> Vec<u8> {
    let path = package_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Check the import table against `dlls` and the allowlist for `build`.
fn check_imports(pe: &Pe<'_>, build: u8, dlls: &[&str], problems: &mut Vec<String>) {
    for imp in &pe.imports {
        let dll = imp.dll.to_ascii_lowercase();
        if !dlls.contains(&dll.as_str()) {
            problems.push(format!(
                "imports from {} (only {} allowed)",
                imp.dll,
                dlls.join(", ")
            ));
        }
        for f in &imp.functions {
            let Some(name) = f.name() else {
                problems.push(format!("imports {}!{f} by ordinal", imp.dll));
                continue;
            };
            if f.is_decorated() {
                problems.push(format!(
                    "imports decorated name {}!{name} (kernel exports are undecorated: \
                     use import_name_type = \"undecorated\" on x86)",
                    imp.dll
                ));
                continue;
            }
            match ALLOWED.iter().find(|(n, _, _)| *n == name) {
                None => problems.push(format!(
                    "imports {}!{name}, which is not in the allowlist of Windows 7-era exports",
                    imp.dll
                )),
                Some((_, builds, from)) => {
                    if builds & build == 0 {
                        problems.push(format!(
                            "imports {}!{name}, which the Windows this build targets does not export",
                            imp.dll
                        ));
                    } else if !from.contains(&dll.as_str()) {
                        problems.push(format!(
                            "imports {name} from {} (exported by {})",
                            imp.dll,
                            from.join(" or ")
                        ));
                    }
                }
            }
        }
    }
}

fn check_scan(pe: &Pe<'_>, problems: &mut Vec<String>) {
    // Windows saves no x87/MMX state for kernel code; x86 kernel code may not use SSE either,
    // x64 kernel code may (the kernel saves XMM registers), AVX nowhere. arm64: not scanned.
    let forbidden: &[SimdClass] = match pe.machine {
        MACHINE_I386 => &[
            SimdClass::X87,
            SimdClass::Mmx,
            SimdClass::Sse,
            SimdClass::Avx,
        ],
        MACHINE_AMD64 => &[SimdClass::X87, SimdClass::Mmx, SimdClass::Avx],
        _ => return,
    };
    let report = instruction_scan(pe);
    assert!(report.scanned, "{:?}", report.not_scanned_reason);
    let bad: Vec<_> = report.of_class(forbidden).collect();
    for f in bad.iter().take(20) {
        problems.push(format!("forbidden instruction: {f}"));
    }
    if bad.len() > 20 {
        problems.push(format!(
            "... and {} more forbidden instructions",
            bad.len() - 20
        ));
    }
}

/// What one kernel binary of the package must be.
struct Expected {
    machine: u16,
    /// The build's bit in [`ALLOWED`].
    build: u8,
    /// The DLLs it may import from.
    dlls: &'static [&'static str],
    /// PE subsystem version, when the build pins it (the XP builds).
    subsystem_version: Option<(u16, u16)>,
}

/// Parses `rel` in the package and collects every way it differs from `want`; fails listing
/// them all.
fn check_driver(rel: &str, want: &Expected) {
    let data = read(rel);
    let pe = Pe::parse(&data).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut problems = Vec::new();
    if pe.machine != want.machine {
        problems.push(format!(
            "machine {:#06x}, expected {:#06x}",
            pe.machine, want.machine
        ));
    }
    if pe.subsystem != SUBSYSTEM_NATIVE {
        problems.push(format!("subsystem {}, expected 1 (NATIVE)", pe.subsystem));
    }
    if let Some((major, minor)) = want.subsystem_version {
        if pe.subsystem_version != (major, minor) {
            problems.push(format!(
                "subsystem version {}.{:02}, expected {major}.{minor:02}",
                pe.subsystem_version.0, pe.subsystem_version.1
            ));
        }
    }
    if !pe.checksum_valid() {
        problems.push(format!(
            "checksum {:#010x} invalid (computed {:#010x})",
            pe.checksum,
            pe.computed_checksum()
        ));
    }
    if pe.security_directory().is_none() {
        problems.push("no embedded signature (cargo xtask package signs every .sys)".into());
    }
    if !pe.has_dll_characteristics(dc::NX_COMPAT) {
        problems.push("NX_COMPAT not set".into());
    }
    if pe.has_dll_characteristics(dc::FORCE_INTEGRITY) {
        problems.push("FORCE_INTEGRITY set (would make unsigned x86 builds unloadable)".into());
    }
    if pe.relocs_stripped() {
        problems.push("RELOCS_STRIPPED set".into());
    }
    if pe.characteristics & rvblk_pe::characteristics::DLL != 0 {
        problems.push("IMAGE_FILE_DLL set".into());
    }
    if !pe.section_alignment.is_multiple_of(0x1000) {
        problems.push(format!(
            "section alignment {:#x} is not a multiple of the page size (HVCI)",
            pe.section_alignment
        ));
    }
    for s in pe.write_execute_sections() {
        problems.push(format!(
            "section {} is writable and executable ({:#010x})",
            s.name, s.characteristics
        ));
    }
    check_imports(&pe, want.build, want.dlls, &mut problems);
    check_scan(&pe, &mut problems);
    assert!(
        problems.is_empty(),
        "{rel}: {} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

const STORPORT_DLLS: &[&str] = &["ntoskrnl.exe", "hal.dll", "storport.sys"];
const SCSIPORT_DLLS: &[&str] = &["scsiport.sys", "ntoskrnl.exe", "hal.dll"];

fn check_modern(rel: &str, machine: u16, build: u8) {
    check_driver(
        rel,
        &Expected {
            machine,
            build,
            dlls: STORPORT_DLLS,
            subsystem_version: None,
        },
    );
}

#[test]
#[ignore = "needs the driver package: run by cargo xtask test"]
fn amd64_driver() {
    check_modern("amd64/rvblk.sys", MACHINE_AMD64, X64);
}

#[test]
#[ignore = "needs the driver package: run by cargo xtask test"]
fn x86_driver() {
    check_modern("x86/rvblk.sys", MACHINE_I386, X86);
}

#[test]
#[ignore = "needs the driver package: run by cargo xtask test"]
fn arm64_driver() {
    check_modern("arm64/rvblk.sys", MACHINE_ARM64, A64);
}

#[test]
#[ignore = "needs the driver package: run by cargo xtask test"]
fn xp_driver_if_present() {
    let rel = "xp/rvblkxp.sys";
    if !package_dir().join(rel).exists() {
        eprintln!("{rel} not in the package: skipped");
        return;
    }
    check_driver(
        rel,
        &Expected {
            machine: MACHINE_I386,
            build: XP,
            dlls: SCSIPORT_DLLS,
            subsystem_version: Some((5, 1)),
        },
    );
}

/// XP x64 / Server 2003 x64 (NT 5.2): `cargo xtask package` always builds it.
#[test]
#[ignore = "needs the driver package: run by cargo xtask test"]
fn xp_amd64_driver() {
    check_driver(
        "xp/amd64/rvblkxp.sys",
        &Expected {
            machine: MACHINE_AMD64,
            build: XP64,
            dlls: SCSIPORT_DLLS,
            subsystem_version: Some((5, 2)),
        },
    );
}

/// The allowlist itself: an XP x64 entry never claims an x86-only export.
#[test]
fn xp64_allowlist_has_no_x86_only_exports() {
    for (name, builds, _) in ALLOWED {
        if builds & XP64 != 0 {
            assert!(
                !name.starts_with("Kf") && !name.starts_with('_'),
                "{name} is an x86-only export"
            );
        }
    }
    let xp64: Vec<&str> = ALLOWED
        .iter()
        .filter(|(_, b, _)| b & XP64 != 0)
        .map(|(n, _, _)| *n)
        .collect();
    for needed in ["ScsiPortInitialize", "ScsiPortNotification", "MmMapIoSpace"] {
        assert!(xp64.contains(&needed), "{needed}");
    }
}

/// `IMAGE_SUBSYSTEM_WINDOWS_CUI`: a console program.
const SUBSYSTEM_WINDOWS_CUI: u16 = 3;

/// The DLLs `rvblk-install.exe` may import: all part of every Windows since 7 (the Rust
/// standard library's win7 flavour needs kernel32, advapi32, ntdll, userenv, ws2_32 and the
/// mingw C runtime's msvcrt; the installer itself setupapi and cfgmgr32).
const INSTALLER_DLLS: &[&str] = &[
    "kernel32.dll",
    "advapi32.dll",
    "ntdll.dll",
    "msvcrt.dll",
    "userenv.dll",
    "ws2_32.dll",
    "setupapi.dll",
    "cfgmgr32.dll",
];

/// The installer shipped in `installer/<arch>/`: a valid PE for the architecture, a console
/// program, NX and ASLR, importing only system DLLs (no mingw runtime DLLs such as
/// libgcc_s or libwinpthread that a user would not have).
fn check_installer(arch: &str, machine: u16) {
    let rel = format!("installer/{arch}/rvblk-install.exe");
    let data = read(&rel);
    let pe = Pe::parse(&data).unwrap_or_else(|e| panic!("{rel}: not a valid PE: {e}"));
    let mut problems = Vec::new();
    if pe.machine != machine {
        problems.push(format!(
            "machine {}, expected {machine:#06x}",
            pe.machine_name()
        ));
    }
    if pe.subsystem != SUBSYSTEM_WINDOWS_CUI {
        problems.push(format!("subsystem {}, expected 3 (console)", pe.subsystem));
    }
    for flag in [dc::NX_COMPAT, dc::DYNAMIC_BASE] {
        if !pe.has_dll_characteristics(flag) {
            problems.push(format!("DllCharacteristics lacks {flag:#06x}"));
        }
    }
    if pe.imports.is_empty() {
        problems.push("no import table".into());
    }
    for imp in &pe.imports {
        let dll = imp.dll.to_ascii_lowercase();
        if !INSTALLER_DLLS.contains(&dll.as_str()) {
            problems.push(format!(
                "imports from {} (not a system DLL on the list)",
                imp.dll
            ));
        }
    }
    let setupapi = pe
        .imports
        .iter()
        .find(|i| i.dll.eq_ignore_ascii_case("setupapi.dll"));
    if !setupapi.is_some_and(|i| {
        i.functions
            .iter()
            .any(|f| f.name() == Some("SetupDiCallClassInstaller"))
    }) {
        problems.push("does not import SetupDiCallClassInstaller: not the installer?".into());
    }
    assert!(problems.is_empty(), "{rel}:\n  {}", problems.join("\n  "));
}

#[test]
#[ignore = "needs the driver package: run by cargo xtask test"]
fn amd64_installer() {
    check_installer("amd64", MACHINE_AMD64);
}

#[test]
#[ignore = "needs the driver package: run by cargo xtask test"]
fn x86_installer() {
    check_installer("x86", MACHINE_I386);
}
