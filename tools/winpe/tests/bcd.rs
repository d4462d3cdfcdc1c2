//! `rvblk winpe bcd`: elements on the default / every OS loader, verified with hivexsh.

mod common;
use common::*;
use rvblk_winpe::cli::run_winpe_args;
use std::path::Path;

fn el(store: &Path, guid: &str, element: &str) -> Option<Vec<String>> {
    lsval(store, &format!("Objects\\{guid}\\Elements\\{element}"))
}

fn on() -> Option<Vec<String>> {
    Some(vec!["\"Element\"=hex(3):01".to_string()])
}

#[test]
fn testsigning_on_default_loader_only_then_off() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("BCD");
    bcd_store(&store, true);
    let before = hive_content(&store);

    let o = run_winpe_args(args(&[&"bcd", &store, &"--testsigning", &"on"]));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("testsigning (16000049) = on"),
        "{}",
        o.stdout
    );
    assert_eq!(el(&store, LOADER1, "16000049"), on());
    assert_eq!(
        el(&store, LOADER2, "16000049"),
        None,
        "only the default loader"
    );
    assert_eq!(el(&store, LOADER1, "16000048"), None);
    // Other elements untouched.
    assert_eq!(el(&store, LOADER1, "26000022"), on());

    // Idempotent: byte-identical file.
    let bytes = std::fs::read(&store).unwrap();
    let o = run_winpe_args(args(&[&"bcd", &store, &"--testsigning", &"on"]));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("not modified"), "{}", o.stdout);
    assert_eq!(std::fs::read(&store).unwrap(), bytes);

    // off removes the element: the store's content is the original again.
    let o = run_winpe_args(args(&[&"bcd", &store, &"--testsigning", &"off"]));
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(el(&store, LOADER1, "16000049"), None);
    assert_eq!(hive_content(&store), before);
}

#[test]
fn all_loaders_and_nointegritychecks() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("bcd");
    bcd_store(&store, true);
    let o = run_winpe_args(args(&[
        &"bcd",
        &store,
        &"--testsigning",
        &"on",
        &"--nointegritychecks",
        &"on",
        &"--all",
    ]));
    assert_eq!(o.code, 0, "{o:?}");
    for g in [LOADER1, LOADER2] {
        assert_eq!(el(&store, g, "16000049"), on(), "{g}");
        assert_eq!(el(&store, g, "16000048"), on(), "{g}");
    }
    // Not on {bootmgr} nor on the non-loader application object.
    assert_eq!(el(&store, BOOTMGR, "16000049"), None);
    assert_eq!(
        el(&store, "{b2721d73-1db4-4c62-bf78-c548a880142d}", "16000049"),
        None
    );
    let o = run_winpe_args(args(&[
        &"bcd",
        &store,
        &"--nointegritychecks",
        &"off",
        &"--all",
    ]));
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(el(&store, LOADER2, "16000048"), None);
    assert_eq!(el(&store, LOADER2, "16000049"), on());
}

#[test]
fn bcd_errors() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("BCD");
    bcd_store(&store, false);
    let bytes = std::fs::read(&store).unwrap();
    let o = run_winpe_args(args(&[&"bcd", &store, &"--testsigning", &"on"]));
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("{bootmgr}"), "{o:?}");
    assert_eq!(o.stderr.trim_end().lines().count(), 1);
    assert_eq!(std::fs::read(&store).unwrap(), bytes);
    // --all works without {bootmgr}: every OS loader.
    let o = run_winpe_args(args(&[&"bcd", &store, &"--testsigning", &"on", &"--all"]));
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(el(&store, LOADER2, "16000049"), on());

    // A SYSTEM hive is not a BCD store.
    let sys = t.path().join("SYSTEM");
    system_hive(&sys, false);
    let bytes = std::fs::read(&sys).unwrap();
    let o = run_winpe_args(args(&[&"bcd", &sys, &"--testsigning", &"on"]));
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("not a BCD store"), "{o:?}");
    assert_eq!(std::fs::read(&sys).unwrap(), bytes);

    // Garbage.
    let g = t.path().join("garbage");
    std::fs::write(&g, [7u8; 600]).unwrap();
    let o = run_winpe_args(args(&[&"bcd", &g, &"--testsigning", &"on"]));
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(std::fs::read(&g).unwrap(), [7u8; 600]);

    // Read-only store.
    let ro = t.path().join("ro");
    bcd_store(&ro, true);
    let mut p = std::fs::metadata(&ro).unwrap().permissions();
    p.set_readonly(true);
    std::fs::set_permissions(&ro, p).unwrap();
    let bytes = std::fs::read(&ro).unwrap();
    let o = run_winpe_args(args(&[&"bcd", &ro, &"--testsigning", &"on"]));
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("read-only"), "{o:?}");
    assert_eq!(std::fs::read(&ro).unwrap(), bytes);

    // Neither setting given.
    assert_eq!(run_winpe_args(args(&[&"bcd", &store])).code, 2);
}

#[test]
fn debug_serial_sets_the_four_elements_then_off_removes_them() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("BCD");
    bcd_store(&store, true);
    let before = hive_content(&store);
    let o = run_winpe_args(args(&[&"bcd", &store, &"--debug", &"serial:2,57600"]));
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(el(&store, LOADER1, "260000a0"), on());
    let int = |v: u64| {
        Some(vec![format!(
            "\"Element\"=hex(3):{}",
            v.to_le_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(",")
        )])
    };
    assert_eq!(el(&store, LOADER1, "15000011"), int(0), "debugtype serial");
    assert_eq!(el(&store, LOADER1, "15000013"), int(2), "debugport");
    assert_eq!(el(&store, LOADER1, "15000014"), int(57600), "baudrate");
    assert_eq!(el(&store, LOADER2, "260000a0"), None, "default loader only");
    let o = rvblk_winpe::cli::run_info_args(args(&[&store]));
    assert!(
        o.stdout.contains("debug=on (serial, COM2, 57600 baud)"),
        "{}",
        o.stdout
    );

    // Defaults: COM1 at 115200.
    let o = run_winpe_args(args(&[&"bcd", &store, &"--debug", &"serial"]));
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(el(&store, LOADER1, "15000013"), int(1));
    assert_eq!(el(&store, LOADER1, "15000014"), int(115_200));

    let o = run_winpe_args(args(&[&"bcd", &store, &"--debug", &"off"]));
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(hive_content(&store), before);

    for bad in ["serial:0", "serial:1,12345", "usb", "serial:x"] {
        let o = run_winpe_args(args(&[&"bcd", &store, &"--debug", &bad]));
        assert_eq!(o.code, 2, "{bad}: {o:?}");
        assert!(o.stderr.contains(bad), "{bad}: {}", o.stderr);
    }
}
