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
