//! End-to-end runs of the real `rvblk` binary (package `rvblk`), built into this target dir.

mod common;
use common::*;
use std::process::Command;

#[test]
fn rvblk_binary_inject_info_bcd_remove() {
    let Some(bin) = rvblk_bin() else { return };
    let t = tempfile::tempdir().unwrap();
    let pkg = package(t.path());
    let wim = t.path().join("boot.wim");
    setup_wim(t.path(), &wim, X86);

    let out = Command::new(&bin)
        .args(["winpe", "inject"])
        .arg(&wim)
        .arg("--package")
        .arg(&pkg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("image 2 \"Microsoft Windows Setup\" [x86]:"),
        "{stdout}"
    );
    assert_eq!(
        driver_in(&wim, 2, &t.path().join("x")).as_deref(),
        Some(X86_SYS)
    );

    let out = Command::new(&bin).arg("info").arg(&wim).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("rvblk present"));

    let store = t.path().join("BCD");
    bcd_store(&store, true);
    let out = Command::new(&bin)
        .args(["winpe", "bcd"])
        .arg(&store)
        .args(["--testsigning", "on"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        lsval(&store, &format!("Objects\\{LOADER1}\\Elements\\16000049")),
        Some(vec!["\"Element\"=hex(3):01".to_string()])
    );

    // Errors: exit code 1, one line on stderr.
    let out = Command::new(&bin)
        .args(["winpe", "inject"])
        .arg(&store)
        .arg("--package")
        .arg(&pkg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .trim_end()
            .lines()
            .count(),
        1,
        "{out:?}"
    );
    // Usage error: exit code 2.
    let out = Command::new(&bin)
        .args(["winpe", "bcd"])
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    let out = Command::new(&bin)
        .args(["winpe", "inject", "--remove"])
        .arg(&wim)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!wim_paths(&wim, 2).iter().any(|p| p.contains("rvblk")));
}
