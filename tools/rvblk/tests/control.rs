//! `rvblk mount|ramdisk|list|eject` on the host the tool runs on: they need the driver of a
//! running Windows and say where to run them instead (`docs/control.md` §8).

use std::process::Command;

#[test]
fn control_commands_point_to_windows() {
    for args in [
        &["mount", "C:\\x.iso", "--cd"][..],
        &["ramdisk", "64M", "--kind", "floppy"],
        &["list", "--json"],
        &["eject", "1"],
        &["mount", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_rvblk"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("`{}` needs Windows", args[0]))
                && err.contains(&format!("rvblk-install.exe {}", args[0])),
            "{args:?}: {err}"
        );
    }
    let help = Command::new(env!("CARGO_BIN_EXE_rvblk"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for cmd in ["mount", "ramdisk", "list", "eject"] {
        assert!(help.contains(cmd), "{cmd} not in --help:\n{help}");
    }
}
