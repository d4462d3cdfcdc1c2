//! `rvblk winpe inject`: files, SYSTEM hive keys and values, idempotence, --remove, errors.
//! Verified with wimlib-imagex and hivexsh/hivexml.

mod common;
use common::*;
use rvblk_winpe::cli::run_winpe_args;
use std::path::Path;

fn inject(wim: &Path, pkg: &Path, extra: &[&str]) -> rvblk_winpe::cli::Outcome {
    let mut a = args(&[&"inject", &wim, &"--package", &pkg]);
    a.extend(extra.iter().map(Into::into));
    run_winpe_args(a)
}

fn expected_values(driver_idx: &str) -> Vec<(String, Vec<String>)> {
    let cs = "ControlSet001";
    let mut v = vec![
        (
            format!("{cs}\\Services\\rvblk"),
            vec![
                "\"Type\"=dword:00000001".to_string(),
                "\"Start\"=dword:00000000".into(),
                "\"ErrorControl\"=dword:00000001".into(),
                "\"ImagePath\"=str(2):\"\\\\SystemRoot\\\\System32\\\\drivers\\\\rvblk.sys\""
                    .into(),
                "\"Group\"=\"SCSI miniport\"".into(),
                "\"DisplayName\"=\"rvblk RAM disk SCSI adapter\"".into(),
            ],
        ),
        (
            format!("{cs}\\Services\\rvblk\\Parameters"),
            vec!["\"BusType\"=dword:00000001".to_string()],
        ),
        (
            format!("{cs}\\Enum\\Root\\RVBLK\\0000"),
            vec![
                format!("\"HardwareID\"=hex(7):{}", multi_hex(&["ROOT\\RVBLK"])),
                "\"Service\"=\"rvblk\"".into(),
                "\"ClassGUID\"=\"{4d36e97b-e325-11ce-bfc1-08002be10318}\"".into(),
                "\"Class\"=\"SCSIAdapter\"".into(),
                "\"ConfigFlags\"=dword:00000000".into(),
                "\"DeviceDesc\"=\"rvblk RAM disk SCSI adapter\"".into(),
                format!("\"Driver\"=\"{{4d36e97b-e325-11ce-bfc1-08002be10318}}\\\\{driver_idx}\""),
                "\"Mfg\"=\"rvblk\"".into(),
            ],
        ),
        (
            format!("{cs}\\Control\\Class\\{CLASS}\\{driver_idx}"),
            vec![
                "\"DriverDesc\"=\"rvblk RAM disk SCSI adapter\"".to_string(),
                "\"ProviderName\"=\"rvblk project\"".into(),
                "\"DriverVersion\"=\"0.1.2.3\"".into(),
                "\"DriverDate\"=\"3-7-2025\"".into(),
                // 2025-03-07 00:00 UTC as FILETIME, little endian
                format!(
                    "\"DriverDateData\"=hex(3):{}",
                    hexbytes(&133_857_792_000_000_000u64.to_le_bytes())
                ),
                "\"InfPath\"=\"rvblk.inf\"".into(),
                "\"InfSection\"=\"rvblk_Install\"".into(),
                "\"MatchingDeviceId\"=\"root\\\\rvblk\"".into(),
            ],
        ),
    ];
    for (_, vals) in &mut v {
        vals.sort();
    }
    v
}

fn hexbytes(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Values of a key without rvblk's inject record.
fn values_without_record(hive: &Path, key: &str) -> Option<Vec<String>> {
    lsval(hive, key).map(|v| {
        v.into_iter()
            .filter(|l| !l.starts_with("\"RvblkInjected"))
            .collect()
    })
}

fn check_injected(hive: &Path, driver_idx: &str) {
    for (key, want) in expected_values(driver_idx) {
        assert_eq!(
            values_without_record(hive, &key),
            Some(want),
            "values of {key}"
        );
    }
}

#[test]
fn x64_image_gets_everything_as_specified() {
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    let wim = one_image_wim(t.path(), "pe64", AMD64, false);
    let before_listing = wim_listing(&wim, 1);
    let before_hive = hive_content(&extract_hive(&wim, 1, &t.path().join("x0")));

    let o = inject(&wim, &pkg, &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("+ /Windows/System32/drivers/rvblk.sys"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("updated in place"), "{}", o.stdout);

    let x = t.path().join("x1");
    assert_eq!(driver_in(&wim, 1, &x).as_deref(), Some(AMD64_SYS));
    assert_eq!(
        extract(&wim, 1, "/Windows/INF/rvblk.inf", &x).as_deref(),
        Some(INF.as_bytes())
    );
    let hive = extract_hive(&wim, 1, &t.path().join("x2"));
    // 0000 belongs to another driver: rvblk takes the next free index.
    check_injected(&hive, "0001");
    // The other class key and service are untouched; no CDDB on a Windows 8+-like hive.
    assert_eq!(
        lsval(
            &hive,
            &format!("ControlSet001\\Control\\Class\\{CLASS}\\0000")
        )
        .unwrap(),
        vec![
            "\"DriverDesc\"=\"Intel\"".to_string(),
            "\"MatchingDeviceId\"=\"pci\\\\ven_8086\"".into()
        ]
    );
    assert_eq!(
        ls(&hive, "ControlSet001\\Control\\CriticalDeviceDatabase"),
        None
    );

    // Second run: nothing to do, WIM byte-identical.
    let bytes = std::fs::read(&wim).unwrap();
    let o = inject(&wim, &pkg, &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("already up to date") && o.stdout.contains("not modified"),
        "{}",
        o.stdout
    );
    assert_eq!(
        std::fs::read(&wim).unwrap(),
        bytes,
        "second inject must not touch the WIM"
    );

    // --remove: back to the original files and registry content.
    let o = run_winpe_args(args(&[&"inject", &wim, &"--remove"]));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("- /Windows/System32/drivers/rvblk.sys"),
        "{}",
        o.stdout
    );
    let after_hive = hive_content(&extract_hive(&wim, 1, &t.path().join("x3")));
    assert_eq!(after_hive, before_hive, "registry content after --remove");
    let strip = |v: Vec<(String, String)>| -> Vec<(String, String)> {
        v.into_iter()
            .map(|(p, h)| {
                if p.ends_with("config/SYSTEM") {
                    (p, String::new())
                } else {
                    (p, h)
                }
            })
            .collect()
    };
    assert_eq!(
        strip(wim_listing(&wim, 1)),
        strip(before_listing),
        "file list and SHA-1s after --remove"
    );
    assert!(
        !wim_paths(&wim, 1)
            .iter()
            .any(|p| p.eq_ignore_ascii_case("/Windows/INF")),
        "created directory removed"
    );

    // Removing again: nothing to do.
    let bytes = std::fs::read(&wim).unwrap();
    let o = run_winpe_args(args(&[&"inject", &wim, &"--remove"]));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("nothing to remove"), "{}", o.stdout);
    assert_eq!(std::fs::read(&wim).unwrap(), bytes);
}

#[test]
fn x86_image_gets_the_x86_binary_and_index_is_honoured() {
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    let wim = one_image_wim(t.path(), "pe32", X86, false);
    let o = inject(&wim, &pkg, &["--index", "1"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("[x86]"), "{}", o.stdout);
    let x = t.path().join("x");
    assert_eq!(driver_in(&wim, 1, &x).as_deref(), Some(X86_SYS));
    check_injected(&extract_hive(&wim, 1, &t.path().join("h")), "0001");
}

#[test]
fn wim_metadata_arch_wins_over_the_kernel() {
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    // Kernel says x86, WIM metadata says amd64 (9): metadata decides.
    let wim = one_image_wim(t.path(), "meta", X86, false);
    run(std::process::Command::new("wimlib-imagex")
        .arg("info")
        .arg(&wim)
        .arg("1")
        .arg("--image-property")
        .arg("WINDOWS/ARCH=9"));
    let o = inject(&wim, &pkg, &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("[amd64]"), "{}", o.stdout);
    assert_eq!(
        driver_in(&wim, 1, &t.path().join("x")).as_deref(),
        Some(AMD64_SYS)
    );
}

#[test]
fn setup_wim_default_is_the_bootable_image_and_all_does_both() {
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    let wim = t.path().join("boot.wim");
    setup_wim(t.path(), &wim, AMD64);
    let img1_before = wim_listing(&wim, 1);

    let o = inject(&wim, &pkg, &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("image 2 \"Microsoft Windows Setup\""),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("image 1 "), "{}", o.stdout);
    check_injected(&extract_hive(&wim, 2, &t.path().join("h2")), "0001");
    assert_eq!(
        wim_listing(&wim, 1),
        img1_before,
        "image 1 untouched by the default selection"
    );
    run(std::process::Command::new("wimlib-imagex")
        .arg("verify")
        .arg(&wim));

    let o = inject(&wim, &pkg, &["--all"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout
            .contains("image 2 \"Microsoft Windows Setup\" [amd64]: already up to date"),
        "{}",
        o.stdout
    );
    check_injected(&extract_hive(&wim, 1, &t.path().join("h1")), "0001");
    assert_eq!(
        driver_in(&wim, 1, &t.path().join("x")).as_deref(),
        Some(AMD64_SYS)
    );
    // The WIM is still valid and a third run is a no-op.
    run(std::process::Command::new("wimlib-imagex")
        .arg("verify")
        .arg(&wim));
    let bytes = std::fs::read(&wim).unwrap();
    assert_eq!(inject(&wim, &pkg, &["--all"]).code, 0);
    assert_eq!(std::fs::read(&wim).unwrap(), bytes);

    // --remove --all removes from both.
    let o = run_winpe_args(args(&[&"inject", &wim, &"--all", &"--remove"]));
    assert_eq!(o.code, 0, "{o:?}");
    for i in [1, 2] {
        let h = extract_hive(&wim, i, &t.path().join(format!("r{i}")));
        assert_eq!(lsval(&h, "ControlSet001\\Services\\rvblk"), None);
        assert_eq!(
            ls(&h, "ControlSet001\\Enum\\Root").unwrap(),
            vec!["LEGACY_DISK".to_string()]
        );
        assert_eq!(
            ls(&h, &format!("ControlSet001\\Control\\Class\\{CLASS}")).unwrap(),
            vec!["0000".to_string()]
        );
        assert!(!wim_paths(&wim, i)
            .iter()
            .any(|p| p.to_ascii_lowercase().contains("rvblk")));
    }
}

#[test]
fn vista_hive_gets_a_critical_device_database_entry_and_loses_it_on_remove() {
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    let wim = one_image_wim(t.path(), "vista", X86, true);
    let before = hive_content(&extract_hive(&wim, 1, &t.path().join("h0")));
    assert_eq!(inject(&wim, &pkg, &[]).code, 0);
    let h = extract_hive(&wim, 1, &t.path().join("h1"));
    assert_eq!(
        lsval(
            &h,
            "ControlSet001\\Control\\CriticalDeviceDatabase\\root#rvblk"
        ),
        Some(vec![
            "\"ClassGUID\"=\"{4d36e97b-e325-11ce-bfc1-08002be10318}\"".to_string(),
            "\"Service\"=\"rvblk\"".into()
        ])
    );
    check_injected(&h, "0001");
    assert_eq!(
        run_winpe_args(args(&[&"inject", &wim, &"--remove"])).code,
        0
    );
    assert_eq!(
        hive_content(&extract_hive(&wim, 1, &t.path().join("h2"))),
        before
    );
}

#[test]
fn select_current_and_default_both_get_the_entries() {
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    let tree = t.path().join("tree");
    winpe_tree(&tree, AMD64, false);
    let hive = tree.join("Windows/System32/config/SYSTEM");
    // ControlSet002 as Default, with an empty class key.
    hivexsh_write(
        &hive,
        "cd Select\nsetval 2\nCurrent\ndword:1\nDefault\ndword:2\ncd \\\nadd ControlSet002\ncd ControlSet002\nadd Services\nadd Control\nadd Enum\ncommit\n",
    );
    let wim = t.path().join("cs.wim");
    run(std::process::Command::new("wimlib-imagex")
        .arg("capture")
        .arg(&tree)
        .arg(&wim)
        .arg("PE"));
    assert_eq!(inject(&wim, &pkg, &[]).code, 0);
    let h = extract_hive(&wim, 1, &t.path().join("h"));
    check_injected(&h, "0001");
    let (_, svc) = &expected_values("0000")[0];
    assert_eq!(
        values_without_record(&h, "ControlSet002\\Services\\rvblk").as_ref(),
        Some(svc)
    );
    assert!(
        values_without_record(&h, &format!("ControlSet002\\Control\\Class\\{CLASS}\\0000"))
            .is_some()
    );
}

/// Runs a failing command and checks the one-line message and that the input is unchanged.
fn assert_rejected(file: &Path, a: Vec<std::ffi::OsString>, needle: &str) {
    let before = std::fs::read(file).unwrap();
    let o = run_winpe_args(a);
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(
        o.stderr.trim_end().lines().count(),
        1,
        "one line: {:?}",
        o.stderr
    );
    assert!(
        o.stderr.to_lowercase().contains(&needle.to_lowercase()),
        "{needle:?} not in {:?}",
        o.stderr
    );
    assert_eq!(
        std::fs::read(file).unwrap(),
        before,
        "input must be untouched"
    );
}

#[test]
fn bad_inputs_are_rejected_with_one_line_and_left_untouched() {
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());

    let garbage = t.path().join("garbage.wim");
    std::fs::write(&garbage, vec![0x5a; 4096]).unwrap();
    assert_rejected(
        &garbage,
        args(&[&"inject", &garbage, &"--package", &pkg]),
        "not a WIM",
    );

    let good = one_image_wim(t.path(), "good", AMD64, false);
    let bytes = std::fs::read(&good).unwrap();
    for cut in [100, bytes.len() / 2, bytes.len() - 200] {
        let trunc = t.path().join(format!("trunc{cut}.wim"));
        std::fs::write(&trunc, &bytes[..cut]).unwrap();
        assert_rejected(
            &trunc,
            args(&[&"inject", &trunc, &"--package", &pkg]),
            "WIM",
        );
    }

    assert_rejected(
        &good,
        args(&[&"inject", &good, &"--package", &pkg, &"--index", &"7"]),
        "no image 7",
    );

    // Hive without \Select.
    let tree = t.path().join("nosel");
    winpe_tree(&tree, AMD64, false);
    hive_without_select(&tree.join("Windows/System32/config/SYSTEM.new"));
    std::fs::rename(
        tree.join("Windows/System32/config/SYSTEM.new"),
        tree.join("Windows/System32/config/SYSTEM"),
    )
    .unwrap();
    let nosel = t.path().join("nosel.wim");
    run(std::process::Command::new("wimlib-imagex")
        .arg("capture")
        .arg(&tree)
        .arg(&nosel)
        .arg("PE"));
    assert_rejected(
        &nosel,
        args(&[&"inject", &nosel, &"--package", &pkg]),
        "\\Select",
    );

    // Architecture without a driver in the package.
    let arm = one_image_wim(t.path(), "arm", ARM64, false);
    assert_rejected(
        &arm,
        args(&[&"inject", &arm, &"--package", &pkg]),
        "no arm64 driver",
    );

    // Read-only file.
    let ro = t.path().join("ro.wim");
    std::fs::copy(&good, &ro).unwrap();
    let mut p = std::fs::metadata(&ro).unwrap().permissions();
    p.set_readonly(true);
    std::fs::set_permissions(&ro, p).unwrap();
    assert_rejected(
        &ro,
        args(&[&"inject", &ro, &"--package", &pkg]),
        "read-only",
    );

    // Missing package.
    let o = run_winpe_args(args(&[
        &"inject",
        &good,
        &"--package",
        &t.path().join("nope"),
    ]));
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("driver package"), "{o:?}");
    assert_eq!(std::fs::read(&good).unwrap(), bytes);

    // A two-image WIM where image 2's arch has no driver: image 1 must not be written either.
    let mixed = t.path().join("mixed.wim");
    std::fs::copy(&good, &mixed).unwrap();
    let armtree = t.path().join("arm-tree");
    run(std::process::Command::new("wimlib-imagex")
        .arg("append")
        .arg(&armtree)
        .arg(&mixed)
        .arg("ARM"));
    assert_rejected(
        &mixed,
        args(&[&"inject", &mixed, &"--package", &pkg, &"--all"]),
        "arm64",
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let o = run_winpe_args(args(&[&"inject"]));
    assert_eq!(o.code, 2, "{o:?}");
    let o = run_winpe_args(args(&[&"inject", &"x.wim", &"--index", &"1", &"--all"]));
    assert_eq!(o.code, 2, "{o:?}");
    let o = run_winpe_args(args(&[&"--help"]));
    assert_eq!(o.code, 0);
    assert!(
        o.stdout.contains("inject") && o.stdout.contains("bcd") && o.stdout.contains("prepare")
    );
    let o = run_winpe_args(args(&[&"inject", &"--help"]));
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains("--remove"), "{}", o.stdout);
}

#[test]
fn image_paths_are_matched_case_insensitively() {
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    let tree = t.path().join("tree");
    let sys32 = tree.join("WINDOWS/system32");
    std::fs::create_dir_all(sys32.join("CONFIG")).unwrap();
    std::fs::create_dir_all(sys32.join("Drivers")).unwrap();
    std::fs::create_dir_all(tree.join("WINDOWS/inf")).unwrap();
    system_hive(&sys32.join("CONFIG/system"), false);
    std::fs::write(sys32.join("NTOSKRNL.EXE"), pe(AMD64)).unwrap();
    let wim = t.path().join("case.wim");
    run(std::process::Command::new("wimlib-imagex")
        .arg("capture")
        .arg(&tree)
        .arg(&wim)
        .arg("PE"));
    let o = inject(&wim, &pkg, &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let paths = wim_paths(&wim, 1);
    // Existing directories and the hive are reused, not duplicated with another spelling.
    assert!(
        paths.contains(&"/WINDOWS/system32/Drivers/rvblk.sys".to_string()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"/WINDOWS/inf/rvblk.inf".to_string()),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.starts_with("/Windows/")),
        "{paths:?}"
    );
    let hive = extract(
        &wim,
        1,
        "/WINDOWS/system32/CONFIG/system",
        &t.path().join("h"),
    )
    .unwrap();
    let hp = t.path().join("h/system");
    assert!(!hive.is_empty());
    check_injected(&hp, "0001");
    assert!(
        paths.contains(&"/WINDOWS/system32/CONFIG/system".to_string()),
        "hive keeps its name: {paths:?}"
    );
}
