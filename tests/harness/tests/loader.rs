//! Loader and ABI tests against a tiny PE built here (no real driver needed).
mod common;

use rvblk_harness::emu::kernel::{Kernel, KernelConfig, Personality};
use rvblk_harness::emu::phys::PhysMem;
use rvblk_harness::emu::storport::{Adapter, StartError};
use std::sync::Arc;

fn kernel() -> Arc<Kernel> {
    Kernel::new(
        KernelConfig {
            personality: Personality::Win8,
            os_ram: vec![],
            nfit: None,
            verbose: false,
            legacy: Default::default(),
            machine: Default::default(),
        },
        Arc::new(PhysMem::from_segments(1 << 20, &[]).unwrap()),
    )
}

#[test]
fn x64_tiny_pe_loads_relocates_and_calls_variadic_dbgprint() {
    let p = common::tiny_pe("x86_64-pc-windows-msvc", &[]);
    let bytes = std::fs::read(p).unwrap();
    let k = kernel();
    match Adapter::start(&bytes, k.clone()) {
        Err(StartError::DriverEntry(s)) => assert_eq!(s as u32, 0xC000_0001),
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("tiny driver cannot start an adapter"),
    }
    let log = k.log();
    assert!(
        log.contains(&"rvblk: tiny driver entry".to_string()),
        "{log:?}"
    );
    assert!(
        log.contains(&"rvblk: n=42 x=beef s=two".to_string()),
        "{log:?}"
    );
    assert!(
        log.contains(&"rvblk: seven 1 2 3 4 5 6 one".to_string()),
        "{log:?}"
    );
}

#[test]
fn missing_import_is_named_before_anything_runs() {
    let p = common::tiny_pe("x86_64-pc-windows-msvc", &["missing"]);
    let bytes = std::fs::read(p).unwrap();
    let k = kernel();
    match Adapter::start(&bytes, k.clone()) {
        Err(StartError::Load(e)) => assert!(e.contains("ntoskrnl.exe!IoCreateDevice"), "{e}"),
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("loaded a driver with an unimplemented import"),
    }
    assert!(
        k.log().is_empty(),
        "DriverEntry ran despite the missing import"
    );
}

#[test]
fn x86_tiny_pe_runs_in_the_32_bit_helper() {
    common::ensure_x86_helper();
    let p = common::tiny_pe("i686-pc-windows-msvc", &[]);
    let dump = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("empty16m.dump");
    std::fs::File::create(&dump)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let o = common::run(&[
        "run",
        "--driver",
        p.to_str().unwrap(),
        "--ram",
        dump.to_str().unwrap(),
        "--json",
        "--verbose",
    ]);
    assert_eq!(o.code, 1);
    assert!(
        o.stdout.contains("DriverEntry returned 0xc0000001"),
        "{}",
        o.stdout
    );
    assert!(
        o.stderr.contains("rvblk: n=42 x=beef s=two"),
        "{}",
        o.stderr
    );
}

/// Runs the tiny PE built for arm64 through this x64 CLI (delegating to the aarch64 helper).
fn arm64_tiny_run(cfgs: &[&str]) -> common::Out {
    let p = common::tiny_pe("aarch64-pc-windows-msvc", cfgs);
    let dump = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("empty16m-arm64{}.dump", cfgs.join("_")));
    std::fs::File::create(&dump)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    common::run(&[
        "run",
        "--driver",
        p.to_str().unwrap(),
        "--ram",
        dump.to_str().unwrap(),
        "--json",
        "--verbose",
    ])
}

#[test]
fn arm64_tiny_pe_runs_in_the_aarch64_helper_with_windows_varargs() {
    if !common::arm64_ready("arm64_tiny_pe_runs_in_the_aarch64_helper_with_windows_varargs") {
        return;
    }
    let o = arm64_tiny_run(&[]);
    assert_eq!(o.code, 1);
    assert!(
        o.stdout.contains("DriverEntry returned 0xc0000001"),
        "{}",
        o.stdout
    );
    for line in ["rvblk: n=42 x=beef s=two", "rvblk: seven 1 2 3 4 5 6 one"] {
        assert!(o.stderr.contains(line), "{line:?} missing:\n{}", o.stderr);
    }
    assert!(!o.stdout.contains("x18"), "{}", o.stdout);
}

#[test]
fn arm64_driver_writing_x18_is_a_verifier_failure() {
    if !common::arm64_ready("arm64_driver_writing_x18_is_a_verifier_failure") {
        return;
    }
    let o = arm64_tiny_run(&["clobber_x18"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stdout
            .contains("x18 (the Windows arm64 platform register")
            && o.stdout.contains("0x1234"),
        "{}",
        o.stdout
    );
}

#[test]
fn arm64_helper_lookup_is_relative_to_the_executable() {
    let c = rvblk_harness::host::helper::candidates_for(
        std::path::Path::new("/x/tgt/release/deps/package-1"),
        rvblk_harness::host::helper::ARM64_TRIPLE,
    );
    assert_eq!(
        c[0],
        std::path::PathBuf::from("/x/tgt/aarch64-unknown-linux-gnu/release/rvblk-harness")
    );
}

#[test]
fn helper_lookup_is_relative_to_the_executable() {
    let c = rvblk_harness::host::helper::candidates(std::path::Path::new(
        "/x/tgt/release/rvblk-harness",
    ));
    assert_eq!(
        c[0],
        std::path::PathBuf::from("/x/tgt/i686-unknown-linux-gnu/release/rvblk-harness")
    );
    let c = rvblk_harness::host::helper::candidates(std::path::Path::new(
        "/x/tgt/debug/deps/loader-123",
    ));
    assert_eq!(
        c[0],
        std::path::PathBuf::from("/x/tgt/i686-unknown-linux-gnu/debug/rvblk-harness")
    );
}

/// Writes the g4d_both scenario as a sparse dump; returns (dump, os-ram args, hdd image file).
fn g4d_both_dump(tag: &str) -> (std::path::PathBuf, Vec<String>, std::path::PathBuf) {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("mock_{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let s = rvblk_memimage::scenarios::g4d_both();
    let dump = dir.join("ram.dump");
    s.mem.write_dump_len(&dump, s.total_ram_bytes).unwrap();
    let setup = rvblk_harness::commands::scenario::Setup::from_scenario(&s).unwrap();
    let e = setup.expected.iter().find(|e| e.kind == "disk").unwrap();
    let mut b = vec![0u8; e.length as usize];
    setup.phys.read(e.phys_base, &mut b).unwrap();
    let img = dir.join("hdd.img");
    std::fs::write(&img, b).unwrap();
    let mut args = Vec::new();
    for r in &s.os_ram {
        args.push("--os-ram".to_string());
        args.push(format!("{:#x}:{:#x}", r.start, r.length));
    }
    (dump, args, img)
}

fn mock_run(cfgs: &[&str], personality: &str) -> common::Out {
    mock_run_for("x86_64-pc-windows-msvc", cfgs, personality)
}

/// A mock run that exited 0 with no verifier failure and served the disk image.
fn assert_clean_run(o: &common::Out, what: &str) {
    assert_eq!(o.code, 0, "{what}: {}", o.stdout);
    assert!(
        o.stdout.contains("\"verifier_failures\":[]"),
        "{what}: {}",
        o.stdout
    );
    assert!(
        o.stdout.contains("hdd.img\"]"),
        "{what}: image not matched: {}",
        o.stdout
    );
}

fn mock_run_for(triple: &str, cfgs: &[&str], personality: &str) -> common::Out {
    let p = common::mock_pe(triple, cfgs);
    let tag = format!("{}{}{triple}", cfgs.join("_"), personality);
    let (dump, os, img) = g4d_both_dump(&tag);
    let mut args: Vec<String> = vec![
        "run".into(),
        "--driver".into(),
        p.display().to_string(),
        "--ram".into(),
        dump.display().to_string(),
        "--personality".into(),
        personality.into(),
        "--json".into(),
        "--expect".into(),
        img.display().to_string(),
    ];
    args.extend(os);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    common::run(&a)
}

#[test]
fn mock_miniports_run_clean_under_every_personality() {
    for (cfgs, pers) in [
        (&[][..], "win8"),
        (&[][..], "win7"),
        (&["scsiport"][..], "xp"),
    ] {
        let o = mock_run(cfgs, pers);
        assert_clean_run(&o, pers);
        assert!(
            o.stdout
                .contains("\"source\":\"grub4dos\",\"phys_base\":255647744"),
            "{}",
            o.stdout
        );
    }
}

#[test]
fn verifier_catches_double_completion_in_mock() {
    let o = mock_run(&["double_complete"], "win8");
    assert_ne!(o.code, 0);
    assert!(o.stdout.contains("completed twice"), "{}", o.stdout);
}

#[test]
fn verifier_catches_overread_in_mock() {
    let o = mock_run(&["overread"], "win8");
    assert_eq!(o.code, rvblk_harness::checks::crash::CRASH_EXIT);
    assert!(
        o.stdout.contains("guard page after the SRB data buffer"),
        "{}",
        o.stdout
    );
}

#[test]
fn verifier_catches_missing_next_request_under_scsiport() {
    let o = mock_run(&["scsiport", "no_next_request"], "xp");
    assert_ne!(o.code, 0);
    assert!(
        o.stdout
            .contains("without ScsiPortNotification(NextRequest)"),
        "{}",
        o.stdout
    );
}

/// The Vista/7 defect of issue 12: MapBuffers 1 in the init data, 3 in ConfigInfo. Every
/// StorPort personality must notice.
#[test]
fn verifier_catches_map_buffers_mismatch_in_mock() {
    for pers in ["win8", "win7"] {
        let o = mock_run(&["map_buffers_mismatch"], pers);
        assert!(
            o.stdout
                .contains("MapBuffers 3 differs from HW_INITIALIZATION_DATA.MapBuffers 1"),
            "{pers}: {}",
            o.stdout
        );
    }
}

/// A SCSIPORT miniport with no hardware must not declare a bus-master DMA adapter.
#[test]
fn verifier_catches_dma_adapter_under_scsiport() {
    let o = mock_run(&["scsiport", "legacy_dma"], "xp");
    for field in ["Master", "ScatterGather"] {
        assert!(
            o.stdout.contains(&format!(
                "{field} = TRUE under SCSIPORT: declares a DMA adapter"
            )),
            "{field}: {}",
            o.stdout
        );
    }
}

#[test]
fn verifier_catches_config_write_past_the_xp_structure() {
    let o = mock_run(&["scsiport", "config_past_length"], "xp");
    assert_eq!(
        o.code,
        rvblk_harness::checks::crash::CRASH_EXIT,
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("fields past WmiDataProvider do not exist on XP"),
        "{}",
        o.stdout
    );
}

#[test]
fn verifier_catches_again_under_scsiport() {
    let o = mock_run(&["scsiport", "again"], "xp");
    assert_ne!(o.code, 0);
    assert!(o.stdout.contains("*Again = TRUE"), "{}", o.stdout);
}

#[test]
fn port_mismatch_is_a_clear_start_failure() {
    // A StorPort miniport on XP and a SCSIPORT one under the StorPort personalities.
    for (cfgs, pers, why) in [
        (&[][..], "xp", "XP/2003 setup has no storport.sys"),
        (
            &["scsiport"][..],
            "win8",
            "run SCSIPORT miniports with --personality xp",
        ),
    ] {
        let o = mock_run(cfgs, pers);
        assert_ne!(o.code, 0, "{pers}: {}", o.stdout);
        assert!(
            o.stdout.contains("DriverEntry returned 0xc000000e"),
            "{pers}: {}",
            o.stdout
        );
        assert!(o.stdout.contains(why), "{pers}: {}", o.stdout);
    }
}

#[test]
fn help_explains_every_personality() {
    for args in [&["--help"][..], &["suite", "--help"][..]] {
        let o = common::run(args);
        assert_eq!(o.code, 0, "{args:?}");
        for p in ["win8", "win7", "xp", "--setup", "--driver-parameter"] {
            assert!(o.stdout.contains(p), "{args:?}: {p} missing:\n{}", o.stdout);
        }
    }
}

/// The verifier on arm64: the mock miniport built for aarch64-pc-windows-msvc runs clean, and its
/// double completion and buffer overread are caught in the aarch64 helper (the overread through
/// the guard page and the crash handler reading the aarch64 pc, under qemu-aarch64).
#[test]
fn arm64_mock_runs_clean_and_its_faults_are_caught() {
    if !common::arm64_ready("arm64_mock_runs_clean_and_its_faults_are_caught") {
        return;
    }
    let triple = "aarch64-pc-windows-msvc";
    let o = mock_run_for(triple, &[], "win8");
    assert_clean_run(&o, "arm64");
    let o = mock_run_for(triple, &["double_complete"], "win8");
    assert_ne!(o.code, 0);
    assert!(o.stdout.contains("completed twice"), "{}", o.stdout);
    let o = mock_run_for(triple, &["overread"], "win8");
    assert_eq!(o.code, rvblk_harness::checks::crash::CRASH_EXIT);
    assert!(
        o.stdout.contains("guard page after the SRB data buffer")
            && o.stdout.contains("driver image RVA"),
        "{}",
        o.stdout
    );
}

/// The async-disk mock (`--cfg async_disk`): its target 1 is served from `--disk` by a system
/// thread through IRPs. Returns the run, the disk file and a pristine copy of it.
fn async_disk_run(
    cfgs: &[&str],
    extra: &[&str],
) -> (common::Out, std::path::PathBuf, std::path::PathBuf) {
    async_disk_run_for("x86_64-pc-windows-msvc", cfgs, extra, &[])
}

fn async_disk_run_for(
    triple: &str,
    cfgs: &[&str],
    extra: &[&str],
    env: &[(&str, &str)],
) -> (common::Out, std::path::PathBuf, std::path::PathBuf) {
    let mut all = vec!["async_disk"];
    all.extend_from_slice(cfgs);
    let p = common::mock_pe(triple, &all);
    let tag = format!(
        "async_{triple}_{}{}",
        all.join("_"),
        extra.join("_").replace('-', "")
    );
    let (dump, os, _img) = g4d_both_dump(&tag);
    let dir = dump.parent().unwrap().to_path_buf();
    let disk = dir.join("disk.img");
    let orig = dir.join("disk.orig");
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i / 512) as u8 ^ (i as u8).rotate_left(3))
        .collect();
    std::fs::write(&disk, &data).unwrap();
    std::fs::write(&orig, &data).unwrap();
    let mut args: Vec<String> = vec![
        "run".into(),
        "--driver".into(),
        p.display().to_string(),
        "--ram".into(),
        dump.display().to_string(),
        "--json".into(),
        "--expect".into(),
        orig.display().to_string(),
        "--disk".into(),
        disk.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(os);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    (common::run_env(&a, env), disk, orig)
}

#[test]
fn async_disk_mock_is_served_from_the_emulated_disk_at_once_and_late() {
    for extra in [&[][..], &["--disk-arrival-ms", "700"][..]] {
        let (o, disk, orig) = async_disk_run(&[], extra);
        assert_eq!(o.code, 0, "{extra:?}: {}", o.stdout);
        assert!(
            o.stdout.contains("\"verifier_failures\":[]"),
            "{}",
            o.stdout
        );
        // Target 1 (exposed after the disk arrived and BusChangeDetected) reads back as the
        // disk file; the write test restored it byte for byte.
        assert!(
            o.stdout.contains("\"matches\":[\"") && o.stdout.contains("disk.orig\"],\"target\":1"),
            "{extra:?}: {}",
            o.stdout
        );
        assert_eq!(std::fs::read(disk).unwrap(), std::fs::read(orig).unwrap());
    }
}

#[test]
fn async_disk_mock_survives_surprise_removal_without_verifier_failures() {
    let (o, _, _) = async_disk_run(&[], &["--disk-remove-ms", "300", "--disk-pend-every", "1"]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(
        o.stdout.contains("\"verifier_failures\":[]"),
        "{}",
        o.stdout
    );
}

#[test]
fn verifier_catches_async_teardown_faults_in_mock() {
    for (cfg, needles) in [
        ("no_unregister", &["still registered at removal"][..]),
        ("leak_file", &["FILE_OBJECT of disk 0"]),
        ("lose_srb", &["without RequestComplete (a hang)"]),
        // Completed only when the worker stops: a hang, then a completion too late.
        (
            "late_srb",
            &[
                "without RequestComplete (a hang)",
                "after the port gave up on it",
            ],
        ),
        (
            "no_thread_wait",
            &["after HwFreeAdapterResources returned: the driver must wait"],
        ),
    ] {
        // The 30 s hang limit shortened for the test.
        let env = [("RVBLK_HARNESS_SRB_HANG_MS", "2000")];
        let (o, _, _) = async_disk_run_for("x86_64-pc-windows-msvc", &[cfg], &[], &env);
        assert_ne!(o.code, 0, "{cfg}: {}", o.stdout);
        for needle in needles {
            assert!(o.stdout.contains(needle), "{cfg}: {needle}: {}", o.stdout);
        }
    }
}

#[test]
fn verifier_catches_a_pending_srb_completed_twice_by_the_worker() {
    // Both completions come from the worker thread, so both go through the SRB table. The
    // second one finds the SRB done, or already taken back by the woken issuer: either is
    // the same driver bug.
    let (o, _, _) = async_disk_run(&["complete_twice"], &[]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(
        o.stdout.contains("completed twice") || o.stdout.contains("which is not outstanding"),
        "{}",
        o.stdout
    );
}

/// The async-disk mock built for x86 and arm64 (threads on the helpers, fastcall
/// IofCallDriver / ObfDereferenceObject on x86, the nine-argument IoBuildDeviceIoControlRequest
/// thunk on arm64), run in the 32-bit helper and under qemu-aarch64.
#[test]
fn async_disk_mock_runs_in_the_x86_and_arm64_helpers() {
    common::ensure_x86_helper();
    let mut triples = vec!["i686-pc-windows-msvc"];
    if common::arm64_ready("async_disk_mock_runs_in_the_x86_and_arm64_helpers (arm64)") {
        triples.push("aarch64-pc-windows-msvc");
    }
    for triple in triples {
        let (o, disk, orig) = async_disk_run_for(triple, &[], &["--disk-arrival-ms", "200"], &[]);
        assert_eq!(o.code, 0, "{triple}: {}{}", o.stdout, o.stderr);
        assert!(
            o.stdout.contains("\"verifier_failures\":[]"),
            "{triple}: {}",
            o.stdout
        );
        assert!(
            o.stdout.contains("disk.orig\"],\"target\":1"),
            "{triple}: {}",
            o.stdout
        );
        assert_eq!(std::fs::read(disk).unwrap(), std::fs::read(orig).unwrap());
    }
}

/// SCSIPORT: a READ/WRITE left pending by HwStartIo is completed from HwTimer, which the
/// emulated port calls (RequestTimerCall) while the issuer waits.
#[test]
fn scsiport_mock_completing_from_hw_timer_runs_clean() {
    let o = mock_run(&["scsiport", "timer_complete"], "xp");
    assert_clean_run(&o, "timer_complete");
}

/// The runtime mock (`--cfg runtime`) through `rvblk-harness mount`: the file it mounts with
/// ZwCreateFile / ZwReadFile (and an MDL) reads back as the file. Returns the run.
fn runtime_mock_mount(triple: &str, cfgs: &[&str], extra: &[&str]) -> common::Out {
    let mut all = vec!["runtime"];
    all.extend_from_slice(cfgs);
    let p = common::mock_pe(triple, &all);
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("runtime_mock_{triple}_{}", all.join("_")));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("file.img");
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i / 512) as u8 ^ (i as u8).rotate_left(1))
        .collect();
    std::fs::write(&img, data).unwrap();
    let mut args: Vec<String> = [
        "mount",
        "--driver",
        p.to_str().unwrap(),
        "--file",
        img.to_str().unwrap(),
        "--kind",
        "disk",
        "--ro",
        "--json",
        "--expect",
        img.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    common::run(&a)
}

fn assert_runtime_mock_mounted(o: &common::Out, what: &str) {
    assert_eq!(o.code, 0, "{what}: {}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("\"verifier_failures\":[]"),
        "{what}: {}",
        o.stdout
    );
    assert!(
        o.stdout.contains("\"source\":\"file\"") && o.stdout.contains("file.img\"],\"target\":1"),
        "{what}: {}",
        o.stdout
    );
}

#[test]
fn runtime_mock_mounts_a_file_for_admin_and_kernel_requesters() {
    for who in ["admin", "kernel"] {
        let o = runtime_mock_mount("x86_64-pc-windows-msvc", &[], &["--requester", who]);
        assert_runtime_mock_mounted(&o, who);
    }
    for who in ["filtered", "user"] {
        let o = runtime_mock_mount("x86_64-pc-windows-msvc", &[], &["--requester", who]);
        assert_eq!(o.code, 1, "{who}: {}", o.stdout);
        assert!(o.stdout.contains("NotAdministrator"), "{who}: {}", o.stdout);
        assert!(
            o.stdout.contains("\"verifier_failures\":[]"),
            "{who}: {}",
            o.stdout
        );
    }
}

/// ZwCreateFile's 11 and ZwReadFile's 9 arguments on x86 (stdcall) and arm64 (stack thunks),
/// the requester IRP and SECURITY_CLIENT_CONTEXT offsets and the MDL header on both.
#[test]
fn runtime_mock_mounts_in_the_x86_and_arm64_helpers() {
    common::ensure_x86_helper();
    let mut triples = vec!["i686-pc-windows-msvc"];
    if common::arm64_ready("runtime_mock_mounts_in_the_x86_and_arm64_helpers (arm64)") {
        triples.push("aarch64-pc-windows-msvc");
    }
    for triple in triples {
        let o = runtime_mock_mount(triple, &[], &[]);
        assert_runtime_mock_mounted(&o, triple);
    }
}

#[test]
fn verifier_catches_runtime_faults_in_mock() {
    for (cfg, needle) in [
        ("leak_handle", "file handle leaked"),
        ("leak_mdl", "MDL leaked"),
        ("no_revert", "while still impersonating control requester #0's token: PsRevertToSelf must come first"),
        ("share_delete", "with FILE_SHARE_DELETE"),
    ] {
        let o = runtime_mock_mount("x86_64-pc-windows-msvc", &[cfg], &[]);
        assert_ne!(o.code, 0, "{cfg}: {}", o.stdout);
        assert!(o.stdout.contains(needle), "{cfg}: {}", o.stdout);
    }
}

/// The bench's runtime-mount figures: measured through the runtime mock's file-backed LUN,
/// "not measured" (not a failure) for the RAM disk the mock does not serve, and for a driver
/// with no runtime mounts at all (the plain mock).
#[test]
fn bench_runtime_figures_are_measured_or_marked_not_measured() {
    let p = common::mock_pe("x86_64-pc-windows-msvc", &["runtime"]);
    let (lines, code) = rvblk_harness::commands::bench::runtime_figure_lines(
        &std::fs::read(p).unwrap(),
        "",
        false,
        true,
    );
    assert_eq!(code, 0, "{lines:?}");
    let ratio = lines
        .iter()
        .find_map(|l| l.strip_prefix("ratio_file_backed_seq_read_64k_vs_file_read: "))
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(ratio.parse::<f64>().is_ok_and(|r| r > 0.0), "{lines:?}");
    for n in [
        "ratio_ramdisk_seq_read_64k_vs_memcpy",
        "ratio_ramdisk_rand_read_4k_vs_memcpy",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(n)
                && l.contains(
                    ": not measured: the driver does not serve runtime mounts (NotAvailable)"
                )),
            "{n}: {lines:?}"
        );
    }
    let p = common::mock_pe("x86_64-pc-windows-msvc", &[]);
    let (lines, code) = rvblk_harness::commands::bench::runtime_figure_lines(
        &std::fs::read(p).unwrap(),
        "",
        false,
        true,
    );
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains(": not measured: "))
            .count(),
        3,
        "{lines:?}"
    );
}
