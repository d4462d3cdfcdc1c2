//! `rvblk menu`: every served loader/mode prints a snippet that passes the loader's syntax as
//! these tests read it (GRUB4DOS/grub4efi menu.lst by our own rules, ventoy.json as JSON with
//! the keys Ventoy documents, syslinux.cfg keywords); modes not served yet are refused.

use std::process::{Command, Output};

fn rvblk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rvblk"))
        .arg("menu")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// A GRUB4DOS path: absolute, spaces escaped (`\ `).
fn check_path(p: &str, line: &str) {
    assert!(p.starts_with('/'), "relative path in {line:?}");
    let unescaped = p.replace("\\ ", "");
    assert!(!unescaped.contains(' '), "unescaped space in {line:?}");
}

fn is_drive(d: &str) -> bool {
    matches!(d, "(0xff)" | "(fd0)")
        || d.strip_prefix("(hd")
            .and_then(|r| r.strip_suffix(')'))
            .is_some_and(|n| n.parse::<u8>().is_ok())
}

/// The menu.lst entries as (title, commands), checked line by line: only commands GRUB4DOS
/// knows, in the forms rvblk uses; globals before the first title.
fn parse_menu_lst(text: &str, uefi: bool) -> Vec<(String, Vec<String>)> {
    let mut entries: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        match cmd {
            "title" => {
                assert!(!rest.is_empty(), "empty title");
                entries.push((rest.to_string(), Vec::new()));
                continue;
            }
            "timeout" | "default" => {
                assert!(entries.is_empty(), "{cmd} after the first title");
                assert!(rest.parse::<u32>().is_ok(), "{line:?}");
                continue;
            }
            "find" => {
                let p = rest.strip_prefix("--set-root ").expect(line);
                check_path(p, line);
            }
            "map" => {
                // Split on unescaped spaces.
                let owned: Vec<String> = rest
                    .replace("\\ ", "\u{1}")
                    .split(' ')
                    .map(|s| s.replace('\u{1}', "\\ "))
                    .collect();
                let args: Vec<&str> = owned.iter().map(String::as_str).collect();
                match args.as_slice() {
                    ["--hook"] => assert!(!uefi, "map --hook in a grub4efi menu"),
                    ["--mem", p, d] | ["--mem", "--top", p, d] => {
                        check_path(p, line);
                        assert!(is_drive(d), "{line:?}");
                    }
                    // A direct (disk-backed) map of a file: no --mem.
                    [p, d] if p.starts_with('/') => {
                        check_path(p, line);
                        assert!(is_drive(d), "{line:?}");
                    }
                    [a, b] => assert!(is_drive(a) && is_drive(b), "{line:?}"),
                    _ => panic!("unknown map form {line:?}"),
                }
            }
            "chainloader" => assert!(
                rest == "(0xff)" || rest == "(hd0)+1" || rest == "(0xff)/I386/SETUPLDR.BIN",
                "{line:?}"
            ),
            "rootnoverify" => assert_eq!(rest, "(hd0)"),
            "boot" => assert!(rest.is_empty()),
            _ => panic!("not a GRUB4DOS command: {line:?}"),
        }
        entries
            .last_mut()
            .unwrap_or_else(|| panic!("{line:?} before the first title"))
            .1
            .push(line.to_string());
    }
    // In each entry the CD is mapped (and hooked, on BIOS) before it is chainloaded.
    for (title, cmds) in &entries {
        let pos = |pred: &dyn Fn(&String) -> bool| cmds.iter().position(pred);
        if let Some(c) = pos(&|c| c.starts_with("chainloader (0xff)")) {
            let m =
                pos(&|c| c.starts_with("map ") && !c.starts_with("map (") && c.ends_with("(0xff)"))
                    .unwrap_or_else(|| panic!("{title}: (0xff) chainloaded but not mapped"));
            assert!(m < c, "{title}");
            if !uefi {
                let h = pos(&|c| c == "map --hook").expect("map --hook");
                assert!(m < h && h < c, "{title}");
            }
        }
    }
    entries
}

#[test]
fn grub4dos_mem_and_top() {
    let m = stdout(&rvblk(&[
        "--loader",
        "grub4dos",
        "/iso/win10.iso",
        "/iso/my pe.iso",
    ]));
    let e = parse_menu_lst(&m, false);
    assert_eq!(e.len(), 2);
    assert_eq!(
        e[1].1,
        vec![
            "find --set-root /iso/my\\ pe.iso",
            "map --mem /iso/my\\ pe.iso (0xff)",
            "map --hook",
            "chainloader (0xff)",
            "boot"
        ]
    );
    let m = stdout(&rvblk(&[
        "--loader", "grub4dos", "--mode", "top", "/win.iso",
    ]));
    let e = parse_menu_lst(&m, false);
    assert!(e[0]
        .1
        .contains(&"map --mem --top /win.iso (0xff)".to_string()));
}

#[test]
fn grub4efi_has_no_bios_hook() {
    for mode in ["mem", "top"] {
        let m = stdout(&rvblk(&[
            "--loader",
            "grub4efi",
            "--mode",
            mode,
            "/win11.iso",
        ]));
        let e = parse_menu_lst(&m, true);
        assert_eq!(e.len(), 1);
        assert!(e[0].1.iter().any(|c| c.starts_with("map --mem")));
    }
}

#[test]
fn xp_flows_x86_and_x64_without_hand_edits() {
    let m = stdout(&rvblk(&["--loader", "grub4dos", "--xp", "/xp.iso"]));
    let e = parse_menu_lst(&m, false);
    assert_eq!(e.len(), 3);
    assert!(e[0]
        .1
        .contains(&"map --mem /rvblk-f6.img (fd0)".to_string()));
    assert!(e[0]
        .1
        .contains(&"chainloader (0xff)/I386/SETUPLDR.BIN".to_string()));

    let m = stdout(&rvblk(&[
        "--loader",
        "grub4dos",
        "--xp",
        "--arch",
        "amd64",
        "--mode",
        "top",
        "/xp64.iso",
    ]));
    let e = parse_menu_lst(&m, false);
    assert_eq!(e.len(), 3);
    assert!(e[0].0.contains("x64"), "{}", e[0].0);
    assert!(e[0]
        .1
        .contains(&"map --mem /rvblk-f6-amd64.img (fd0)".to_string()));
    assert!(e[0]
        .1
        .contains(&"map --mem --top /xp64.iso (0xff)".to_string()));
    assert!(e[0].1.contains(&"chainloader (0xff)".to_string()));
    assert!(!m.contains("SETUPLDR"));
    // GUI mode maps the ISO again.
    assert!(e[1]
        .1
        .contains(&"map --mem --top /xp64.iso (0xff)".to_string()));
}

#[test]
fn ventoy_json_has_the_documented_key() {
    let m = stdout(&rvblk(&[
        "--loader",
        "ventoy",
        "/ISO/win10.iso",
        "/ISO/pe.iso",
    ]));
    let v: serde_json::Value = serde_json::from_str(&m).expect("ventoy.json is JSON");
    let obj = v.as_object().unwrap();
    // auto_memdisk: a list of image paths from the partition root (Ventoy's plugin docs).
    assert_eq!(obj.keys().collect::<Vec<_>>(), vec!["auto_memdisk"]);
    assert_eq!(
        obj["auto_memdisk"],
        serde_json::json!(["/ISO/win10.iso", "/ISO/pe.iso"])
    );
}

#[test]
fn memdisk_syslinux_entries() {
    let m = stdout(&rvblk(&["--loader", "memdisk", "/win.iso"]));
    let mut label = 0;
    for line in m
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (k, v) = line.split_once(' ').unwrap();
        match k {
            "LABEL" => label += 1,
            "MENU" => assert!(v.starts_with("LABEL ")),
            "LINUX" => assert_eq!(v, "memdisk"),
            "INITRD" => assert_eq!(v, "/win.iso"),
            "APPEND" => assert_eq!(v, "iso raw"),
            _ => panic!("not a syslinux keyword: {line:?}"),
        }
    }
    assert_eq!(label, 1);
}

/// `map` without `--mem`: an ISO as the CD (0xff), a hard-disk image as (hd0) with the stick
/// swapped to (hd1), hooked before anything boots; the notes say what the stick and the file
/// must be.
#[test]
fn grub4dos_direct_maps_iso_and_disk_image() {
    let o = rvblk(&[
        "--loader",
        "grub4dos",
        "--mode",
        "direct",
        "/iso/Win 10.ISO",
        "/vhd/win11.img",
    ]);
    let m = stdout(&o);
    let e = parse_menu_lst(&m, false);
    assert_eq!(e.len(), 2);
    assert_eq!(
        e[0].1,
        vec![
            "find --set-root /iso/Win\\ 10.ISO",
            "map /iso/Win\\ 10.ISO (0xff)",
            "map --hook",
            "chainloader (0xff)",
            "boot"
        ]
    );
    assert_eq!(
        e[1].1,
        vec![
            "find --set-root /vhd/win11.img",
            "map /vhd/win11.img (hd0)",
            "map (hd0) (hd1)",
            "map --hook",
            "rootnoverify (hd0)",
            "chainloader (hd0)+1",
            "boot"
        ]
    );
    assert!(!m.contains("--mem"), "{m}");
    let notes = String::from_utf8_lossy(&o.stderr);
    for says in ["NOT READY", "Error 60", "fragment", "--read-only"] {
        assert!(notes.contains(says), "{says:?} missing: {notes}");
    }
    // An ISO alone is read-only: no note about writes.
    let o = rvblk(&["--loader", "grub4dos", "--mode", "direct", "/a.iso"]);
    let _ = stdout(&o);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("--read-only"));
}

#[test]
fn ventoy_normal_mode_needs_no_configuration() {
    let o = rvblk(&["--loader", "ventoy", "--mode", "normal", "/ISO/win10.iso"]);
    assert!(
        stdout(&o).is_empty(),
        "normal mode has nothing for ventoy.json"
    );
    let notes = String::from_utf8_lossy(&o.stderr);
    assert!(notes.contains("no ventoy.json entry"), "{notes}");
    assert!(notes.contains("/ISO/win10.iso"), "{notes}");
    assert!(notes.contains("NOT READY"), "{notes}");
}

#[test]
fn not_served_yet_and_impossible_combinations_are_refused() {
    for (args, says) in [
        (
            &["--loader", "grub4efi", "--mode", "direct", "/a.iso"][..],
            "not served yet",
        ),
        (
            &[
                "--loader", "grub4dos", "--mode", "direct", "--xp", "/xp.iso",
            ][..],
            "use --mode mem or top",
        ),
        (
            &["--loader", "memdisk", "--mode", "top", "/a.iso"][..],
            "has no --mode top",
        ),
        (
            &["--loader", "grub4efi", "--xp", "/xp.iso"][..],
            "only through BIOS",
        ),
        (
            &["--loader", "ventoy", "--xp", "/xp.iso"][..],
            "Use --loader grub4dos",
        ),
        (
            &["--loader", "grub4dos", "--xp", "/a.iso", "/b.iso"][..],
            "one ISO",
        ),
    ] {
        let o = rvblk(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(o.stdout.is_empty());
    }
    let l = stdout(&rvblk(&["--list"]));
    assert_eq!(l.matches("NOT YET").count(), 1, "{l}");
    let row = |loader: &str, mode: &str| {
        l.lines()
            .find(|r| r.split_whitespace().take(2).eq([loader, mode]))
            .unwrap_or_else(|| panic!("no {loader} {mode} row: {l}"))
            .to_string()
    };
    for (loader, mode) in [
        ("grub4dos", "direct"),
        ("ventoy", "normal"),
        ("ventoy", "mem"),
    ] {
        let r = row(loader, mode);
        assert!(!r.contains("NOT YET"), "{r}");
    }
    assert!(row("grub4efi", "direct").contains("NOT YET"));
    assert!(row("ventoy", "mem").contains("BIOS and UEFI"));
}
