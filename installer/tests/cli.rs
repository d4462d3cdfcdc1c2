//! The command line as any host sees it: help, the XP answer, usage errors.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rvblk-install"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[test]
fn help_explains_the_commands() {
    let (code, text) = run(&["--help"]);
    assert_eq!(code, Some(0));
    for want in ["install", "remove", "status", "Run as administrator"] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    let (code, text) = run(&["install", "--help"]);
    assert_eq!(code, Some(0));
    for want in ["--package <DIR>", "--xp", "--dry-run"] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    let (_, text) = run(&["remove", "--help"]);
    assert!(text.contains("--keep-package"), "{text}");
    let (_, text) = run(&["status", "--help"]);
    assert!(text.contains("--json"), "{text}");
}

#[test]
fn xp_gets_a_clear_answer_and_nothing_happens() {
    let (code, text) = run(&["install", "--xp"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("does not install the XP/2003 driver"),
        "{text}"
    );
    assert!(
        text.contains("xp\\rvblkxp.inf") && text.contains("Nothing was changed"),
        "{text}"
    );
}

#[test]
fn usage_errors_are_reported() {
    let (code, text) = run(&["instal"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("unrecognized subcommand"), "{text}");
    let (code, _) = run(&[]);
    assert_eq!(code, Some(2));
}

#[test]
fn control_commands_are_explained_and_checked() {
    let (code, text) = run(&["--help"]);
    assert_eq!(code, Some(0));
    for want in ["mount", "ramdisk", "list", "eject"] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    let (_, text) = run(&["mount", "--help"]);
    for want in ["--cd", "--disk", "--floppy", "--ro"] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    let (_, text) = run(&["ramdisk", "--help"]);
    for want in ["--kind", "--from <IMAGE>", "64M"] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    // One kind only; a RAM disk needs a size or an image.
    let (code, text) = run(&["mount", "x.iso", "--cd", "--disk"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("cannot be used with"), "{text}");
    let (code, text) = run(&["ramdisk"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("required"), "{text}");
    let (code, text) = run(&["ramdisk", "64M", "--kind", "tape"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("invalid value 'tape'"), "{text}");
}

#[cfg(not(windows))]
#[test]
fn control_commands_need_windows() {
    for args in [
        &["mount", "C:\\x.iso"][..],
        &["ramdisk", "64M"],
        &["list", "--json"],
        &["eject", "1"],
    ] {
        let (code, text) = run(args);
        assert_eq!(code, Some(2), "{text}");
        assert!(
            text.contains(&format!("`{}` needs Windows", args[0]))
                && text.contains("rvblk-install.exe"),
            "{text}"
        );
    }
}
