//! `--verifier`: Driver Verifier's values for rvblk.sys in the SYSTEM hive (`docs/verifier.md`),
//! on a test hive and inside a test WIM; read back with hivexsh, never with the crate's readers.

mod common;
use common::*;
use rvblk_winpe::cli::{run_info_args, run_winpe_args};
use rvblk_winpe::hive::Hive;
use rvblk_winpe::store::RegistryHive;
use rvblk_winpe::verifier;
use std::path::Path;
use std::process::Command;

const MM: &str = "\\ControlSet001\\Control\\Session Manager\\Memory Management";

/// The verifier lines of `lsval` in the Memory Management key (sorted), or `None` if no key.
fn verifier_values(hive: &Path) -> Option<Vec<String>> {
    lsval(hive, MM).map(|v| {
        v.into_iter()
            .filter(|l| l.starts_with("\"VerifyDriver"))
            .collect()
    })
}

fn set(hive: &Path, setting: &str, build: Option<u32>) -> Vec<String> {
    let mut h = Hive::open(hive, true).unwrap();
    let r = verifier::apply(&mut h, setting.parse().unwrap(), build).unwrap();
    if !r.changes.is_empty() {
        let out = hive.with_extension("new");
        h.commit_to(&out).unwrap();
        drop(h);
        std::fs::rename(&out, hive).unwrap();
    }
    r.changes
}

#[test]
fn hive_set_changed_removed_idempotent() {
    let t = tempfile::tempdir().unwrap();
    let hive = t.path().join("SYSTEM");
    system_hive(&hive, false);
    assert_eq!(verifier_values(&hive), None, "no Memory Management key yet");

    assert!(!set(&hive, "standard", Some(19041)).is_empty());
    assert_eq!(
        verifier_values(&hive).unwrap(),
        vec![
            "\"VerifyDriverLevel\"=dword:000209bb".to_string(),
            "\"VerifyDrivers\"=\"rvblk.sys\"".into(),
        ]
    );
    let before = std::fs::read(&hive).unwrap();
    assert!(set(&hive, "standard", Some(19041)).is_empty(), "idempotent");
    assert_eq!(std::fs::read(&hive).unwrap(), before);

    // Changed level: only the DWORD changes.
    assert_eq!(set(&hive, "0x9bb", Some(19041)).len(), 1);
    assert_eq!(
        verifier_values(&hive).unwrap(),
        vec![
            "\"VerifyDriverLevel\"=dword:000009bb".to_string(),
            "\"VerifyDrivers\"=\"rvblk.sys\"".into(),
        ]
    );
    // Standard for Windows 7 (build 7601) has no DDI compliance bit.
    set(&hive, "standard", Some(7601));
    assert!(verifier_values(&hive)
        .unwrap()
        .contains(&"\"VerifyDriverLevel\"=dword:000009bb".to_string()));

    assert!(!set(&hive, "off", None).is_empty());
    assert_eq!(verifier_values(&hive).unwrap(), Vec::<String>::new());
    assert!(
        set(&hive, "off", None).is_empty(),
        "off twice changes nothing"
    );
}

#[test]
fn other_verified_drivers_are_kept() {
    let t = tempfile::tempdir().unwrap();
    let hive = t.path().join("SYSTEM");
    system_hive(&hive, false);
    hivexsh_write(
        &hive,
        "cd \\ControlSet001\\Control\nadd Session Manager\ncd Session Manager\nadd Memory Management\n\
cd Memory Management\nsetval 2\nVerifyDrivers\nstring:foo.sys\nVerifyDriverLevel\ndword:0x3\ncommit\n",
    );
    set(&hive, "standard", None);
    assert_eq!(
        verifier_values(&hive).unwrap(),
        vec![
            "\"VerifyDriverLevel\"=dword:000209bb".to_string(),
            "\"VerifyDrivers\"=\"foo.sys rvblk.sys\"".into(),
        ]
    );
    set(&hive, "off", None);
    assert_eq!(
        verifier_values(&hive).unwrap(),
        vec![
            "\"VerifyDriverLevel\"=dword:000209bb".to_string(),
            "\"VerifyDrivers\"=\"foo.sys\"".into(),
        ]
    );
}

#[test]
fn unknown_build_with_a_vista_hive_gets_the_vista_standard_set() {
    let t = tempfile::tempdir().unwrap();
    let hive = t.path().join("SYSTEM");
    system_hive(&hive, true); // CriticalDeviceDatabase: Vista/7 only
    set(&hive, "standard", None);
    assert!(verifier_values(&hive)
        .unwrap()
        .contains(&"\"VerifyDriverLevel\"=dword:000009bb".to_string()));
}

fn winpe(a: &[&dyn AsRef<std::ffi::OsStr>]) -> rvblk_winpe::cli::Outcome {
    run_winpe_args(args(a))
}

#[test]
fn wim_inject_verifier_set_change_off_and_info() {
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    let wim = t.path().join("boot.wim");
    setup_wim(t.path(), &wim, AMD64);
    // Image 2 claims Windows 7 SP1 in the WIM XML, as a real Windows 7 boot.wim does.
    run(Command::new("wimlib-imagex").args([
        "info".as_ref(),
        wim.as_os_str(),
        "2".as_ref(),
        "--image-property".as_ref(),
        "WINDOWS/VERSION/BUILD=7601".as_ref(),
    ]));
    let hive_of = |image: u32| extract_hive(&wim, image, &t.path().join(format!("x{image}")));
    let verifier_on_image_1 = |setting: &str| {
        winpe(&[
            &"inject",
            &wim,
            &"--index",
            &"1",
            &"--package",
            &pkg,
            &"--verifier",
            &setting,
        ])
    };

    let o = winpe(&[&"inject", &wim, &"--all", &"--package", &pkg, &"--verifier"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("Driver Verifier on"), "{}", o.stdout);
    assert_eq!(
        verifier_values(&hive_of(1)).unwrap(),
        vec![
            "\"VerifyDriverLevel\"=dword:000209bb".to_string(),
            "\"VerifyDrivers\"=\"rvblk.sys\"".into(),
        ]
    );
    assert_eq!(
        verifier_values(&hive_of(2)).unwrap(),
        vec![
            "\"VerifyDriverLevel\"=dword:000009bb".to_string(),
            "\"VerifyDrivers\"=\"rvblk.sys\"".into(),
        ]
    );
    let info = run_info_args(args(&[&wim]));
    assert!(
        info.stdout
            .contains("verifier  on, level 0x209bb = standard (Windows 8 and later)"),
        "{}",
        info.stdout
    );
    assert!(
        info.stdout
            .contains("verifier  on, level 0x9bb = standard (Vista/7)"),
        "{}",
        info.stdout
    );

    // Same request again: the WIM is not written.
    let bytes = std::fs::read(&wim).unwrap();
    let o = winpe(&[
        &"inject",
        &wim,
        &"--all",
        &"--package",
        &pkg,
        &"--verifier=standard",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("not modified"), "{}", o.stdout);
    assert_eq!(std::fs::read(&wim).unwrap(), bytes);

    // A level of our own.
    let o = verifier_on_image_1("0x1b");
    assert_eq!(o.code, 0, "{o:?}");
    assert!(verifier_values(&hive_of(1))
        .unwrap()
        .contains(&"\"VerifyDriverLevel\"=dword:0000001b".to_string()));

    // Off removes both values; --remove also clears what is left in image 2.
    let o = verifier_on_image_1("off");
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(verifier_values(&hive_of(1)).unwrap(), Vec::<String>::new());
    let info = run_info_args(args(&[&wim]));
    assert!(info.stdout.contains("verifier  off"), "{}", info.stdout);
    let o = winpe(&[&"inject", &wim, &"--index", &"2", &"--remove"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(verifier_values(&hive_of(2)).unwrap(), Vec::<String>::new());
}

#[test]
fn bad_levels_are_refused_before_anything_is_written() {
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    let wim = t.path().join("boot.wim");
    setup_wim(t.path(), &wim, X86);
    let bytes = std::fs::read(&wim).unwrap();
    for (bad, says) in [
        ("0x40", "0x40"),
        ("0", "--verifier off"),
        ("max", "not a verifier level"),
    ] {
        let o = winpe(&[&"inject", &wim, &"--package", &pkg, &"--verifier", &bad]);
        assert_eq!(o.code, 2, "{bad}: {o:?}");
        assert!(o.stderr.contains(says), "{bad}: {}", o.stderr);
    }
    assert_eq!(std::fs::read(&wim).unwrap(), bytes);
}
