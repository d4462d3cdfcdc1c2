//! The real `rvblk-install.exe` from the package, run under Wine in fresh prefixes: install,
//! status, the control commands without a running adapter, install again, remove, and bad input
//! (docs/installer.md §8). Run by `cargo xtask test` with `RVBLK_PACKAGE_DIR` pointing at the
//! package; needs `wine` (and 32-bit Wine for the x86 run), which `.ci/run` installs.
//!
//! What Wine lacks, and where that path is tested instead:
//! * StorPort: the driver cannot start, which is exactly the "installed, not running, here is
//!   why" report checked below.
//! * `CM_Get_DevNode_Status` is a stub (no problem codes): the problem-code reasons are unit
//!   tests in `src/diagnose.rs`.
//! * No test-signing / Secure Boot state in the registry, no kernel trust policy, no SCSI ports:
//!   `src/diagnose.rs` and `src/status.rs` unit tests.
//! * Wine runs every program as an elevated administrator: the refusal without Administrator
//!   rights (and the WOW64 refusal) is the `gate` unit test in `src/lib.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The SCSI adapter device class.
const SCSI_CLASS: &str = "{4D36E97B-E325-11CE-BFC1-08002BE10318}";

fn package_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("RVBLK_PACKAGE_DIR").expect(
        "RVBLK_PACKAGE_DIR is not set: point it at the package made by `cargo xtask package` \
         (or run these tests with `cargo xtask test`)",
    ))
}

/// Windows' view of a host path in Wine (drive Z: is the host's root).
fn z(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

struct Prefix {
    dir: tempfile::TempDir,
    arch: &'static str,
    exe: PathBuf,
    /// What Wine printed on stderr in each run, for failure messages.
    log: std::cell::RefCell<Vec<String>>,
}

impl Prefix {
    /// A fresh prefix of the given architecture (`win64` or `win32`), started once so that
    /// Wine's first-start registry changes are not part of any comparison.
    fn new(wine_arch: &'static str, arch: &'static str) -> Prefix {
        let exe = package_dir()
            .join("installer")
            .join(arch)
            .join("rvblk-install.exe");
        assert!(
            exe.is_file(),
            "{} is missing from the package",
            exe.display()
        );
        let p = Prefix {
            dir: tempfile::tempdir().unwrap(),
            arch,
            exe,
            log: Default::default(),
        };
        let mut c = p.command("wineboot");
        c.env("WINEARCH", wine_arch).arg("-i");
        let out = c
            .output()
            .expect("cannot run wineboot: install wine (Debian: wine wine64 wine32:i386)");
        assert!(out.status.success(), "wineboot failed: {}", text(&out));
        p.settle();
        let warm = p.run(&["status"]);
        assert!(warm.status.success(), "{}", text(&warm));
        p
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("WINEPREFIX", self.dir.path())
            .env("WINEDEBUG", "-all")
            // No Mono/Gecko install prompts in a fresh prefix.
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        c
    }

    /// Waits until the prefix's wineserver has exited, so the registry files are written.
    fn settle(&self) {
        let out = self.command("wineserver").arg("-w").output().unwrap();
        assert!(out.status.success());
    }

    fn run(&self, args: &[&str]) -> Output {
        // Wine's own launcher occasionally fails to start the program at all ("Application could
        // not be started … ShellExecuteEx failed: Internal error", exit 1; seen once in ~10 full
        // runs): the installer never ran, so nothing changed and the run is repeated (twice at
        // most). Any output of the installer itself is returned as it is.
        let mut tries = 0;
        loop {
            let out = self
                .command("wine")
                .arg(&self.exe)
                .args(args)
                .output()
                .unwrap();
            self.settle();
            tries += 1;
            if tries < 3 && text(&out).contains("ShellExecuteEx failed") {
                self.log.borrow_mut().push(format!(
                    "Wine could not start the installer ({args:?}); retried"
                ));
                continue;
            }
            return out;
        }
    }

    /// Edits the prefix's registry with Wine's `reg` tool (a device node "made by hand").
    fn reg(&self, args: &[&str]) {
        let out = self.command("wine").arg("reg").args(args).output().unwrap();
        self.settle();
        assert!(out.status.success(), "reg {args:?}: {}", text(&out));
    }

    fn windows(&self) -> PathBuf {
        self.dir.path().join("drive_c").join("windows")
    }

    fn system_reg(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("system.reg")).unwrap()
    }

    /// The prefix's registry and the files the installer may touch, in a form that compares
    /// equal when nothing changed. Wine stamps every key with its modification time and its
    /// PnP manager re-installs its own root devices at each start, writing the current time
    /// into their `DriverDateData`: those timestamps are left out.
    fn snapshot(&self) -> BTreeMap<String, String> {
        let mut s = BTreeMap::new();
        for name in ["system.reg", "user.reg", "userdef.reg"] {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            // Wine's crash handler records its settings when any Wine process crashed. Once in
            // several runs on a loaded machine one of Wine's own service processes does; the
            // installer's own runs are checked by their exit codes and output, so the key is
            // reported here and left out of the comparison.
            let mut in_winedbg = false;
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| {
                    if l.starts_with('[') {
                        in_winedbg = l.starts_with("[Software\\\\Wine\\\\WineDbg]");
                        if in_winedbg {
                            eprintln!(
                                "note: a Wine process crashed in this prefix; Wine's stderr:\n{}",
                                self.log.borrow().join("\n")
                            );
                        }
                    }
                    !in_winedbg
                })
                .filter(|l| !l.starts_with("#time=") && !l.starts_with("\"DriverDateData\"="))
                .map(|l| match l.rfind("] ") {
                    Some(i) if l.starts_with('[') => &l[..=i],
                    _ => l,
                })
                .collect();
            s.insert(name.to_string(), kept.join("\n"));
        }
        for dir in ["inf", "system32/drivers", "syswow64/drivers"] {
            let mut names: Vec<String> = std::fs::read_dir(self.windows().join(dir))
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            s.insert(dir.to_string(), names.join("\n"));
        }
        s
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The value lines of one key of a Wine `.reg` file (key names there have doubled backslashes).
fn reg_key(reg: &str, key: &str) -> Option<Vec<String>> {
    let header = format!("[{}]", key.replace('\\', "\\\\")).to_ascii_lowercase();
    let mut lines = reg.lines();
    lines.find(|l| l.to_ascii_lowercase().starts_with(&header))?;
    Some(
        lines
            .take_while(|l| !l.starts_with('['))
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect(),
    )
}

/// Names the differences between two snapshots (for assertion messages).
fn differences(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, va) in a {
        let vb = &b[k];
        if va != vb {
            let la: Vec<&str> = va.lines().collect();
            let lb: Vec<&str> = vb.lines().collect();
            let gone: Vec<&&str> = la.iter().filter(|l| !lb.contains(l)).take(10).collect();
            let new: Vec<&&str> = lb.iter().filter(|l| !la.contains(l)).take(10).collect();
            out += &format!("{k}: before only {gone:?}; after only {new:?}\n");
        }
    }
    out
}

fn assert_unchanged(before: &BTreeMap<String, String>, p: &Prefix, what: &str) {
    let after = p.snapshot();
    assert!(
        before == &after,
        "{what} changed the prefix:\n{}\nWine's stderr:\n{}",
        differences(before, &after),
        p.log.borrow().join("\n")
    );
}

/// install → status → install again → remove, checking the registry and files at each step.
fn install_status_reinstall_remove(p: &Prefix) {
    let pkg = package_dir();
    let baseline = p.snapshot();

    let dry = p.run(&["install", "--package", &z(&pkg), "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would create the device node"));
    assert_unchanged(&baseline, p, "install --dry-run");

    let out = p.run(&["install", "--package", &z(&pkg)]);
    let report = text(&out);
    // Installed, not running (exit 3), with the reason the user reads.
    assert_eq!(out.status.code(), Some(3), "{report}");
    assert!(
        report.contains("the driver is installed but not running: this is Wine")
            && report.contains("which has no StorPort"),
        "{report}"
    );

    let reg = p.system_reg();
    let service = reg_key(&reg, "System\\CurrentControlSet\\Services\\rvblk")
        .unwrap_or_else(|| panic!("no service key after install\n{report}"));
    for want in [
        "\"Start\"=dword:00000000",
        "\"Type\"=dword:00000001",
        "\"ErrorControl\"=dword:00000001",
        "\"Group\"=\"SCSI miniport\"",
    ] {
        assert!(
            service.iter().any(|l| l == want),
            "{want} not in {service:?}"
        );
    }
    assert!(
        service.iter().any(|l| l.starts_with("\"ImagePath\"=")
            && l.to_ascii_lowercase().contains("drivers\\\\rvblk.sys")),
        "{service:?}"
    );
    let node = reg_key(
        &reg,
        "System\\CurrentControlSet\\Enum\\ROOT\\SCSIADAPTER\\0000",
    )
    .expect("no device node after install");
    assert!(
        node.iter()
            .any(|l| l.starts_with("\"HardwareID\"=") && l.contains("ROOT\\\\RVBLK")),
        "{node:?}"
    );
    assert!(
        node.iter().any(|l| l == "\"Service\"=\"rvblk\""),
        "{node:?}"
    );
    let installed = std::fs::read(p.windows().join("system32/drivers/rvblk.sys")).unwrap();
    let shipped = std::fs::read(pkg.join(p.arch).join("rvblk.sys")).unwrap();
    assert!(
        installed == shipped,
        "system32\\drivers\\rvblk.sys is not the {} driver",
        p.arch
    );

    let status = p.run(&["status"]);
    let s = text(&status);
    assert!(status.status.success(), "{s}");
    for want in [
        "installed             yes",
        "ROOT\\SCSIADAPTER\\0000",
        "service rvblk         stopped, start type 0, type 1",
        "running               no",
        "which has no StorPort",
    ] {
        assert!(s.contains(want), "{want:?} not in status:\n{s}");
    }
    let json = p.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e}):\n{}", text(&json)));
    assert_eq!(v["installed"], true);
    assert_eq!(v["running"], false);
    assert_eq!(v["service"]["start_type"], 0);
    assert_eq!(v["devices"][0]["hardware_ids"][0], "ROOT\\RVBLK");
    assert!(v["environment"]["wine"]
        .as_str()
        .unwrap()
        .starts_with("wine-"));

    let installed_state = p.snapshot();
    // The control commands (docs/control.md §8): Wine has no StorPort, so no adapter runs; each
    // command says so and changes nothing (checked with the second install below).
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["mount", "C:\\images\\win.iso"],
        &["ramdisk", "64M", "--kind", "floppy"],
        &["eject", "1"],
    ] {
        let out = p.run(args);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {t}");
        assert!(
            t.contains("no rvblk adapter is running on this machine")
                && t.contains("rvblk-install status"),
            "{args:?}: {t}"
        );
    }
    let again = p.run(&["install", "--package", &z(&pkg)]);
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    assert!(text(&again).contains("already installed from this package; nothing changed"));
    assert_unchanged(&installed_state, p, "a second install");

    // --keep-package leaves the driver store entry and nothing else.
    let kept = p.run(&["remove", "--keep-package"]);
    assert!(kept.status.success(), "{}", text(&kept));
    let reg = p.system_reg();
    assert!(reg_key(&reg, "System\\CurrentControlSet\\Services\\rvblk").is_none());
    assert!(reg_key(
        &reg,
        "System\\CurrentControlSet\\Enum\\ROOT\\SCSIADAPTER\\0000"
    )
    .is_none());
    assert!(!p.windows().join("system32/drivers/rvblk.sys").exists());
    let status = p.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["installed"], false, "{}", text(&status));
    assert_eq!(
        v["staged"].as_array().map(Vec::len),
        Some(1),
        "{}",
        text(&status)
    );

    let removed = p.run(&["remove"]);
    assert!(removed.status.success(), "{}", text(&removed));
    assert_unchanged(&baseline, p, "install + remove");
    let again = p.run(&["remove"]);
    assert!(
        text(&again).contains("not installed; nothing changed"),
        "{}",
        text(&again)
    );
}

#[test]
#[ignore = "needs the package and Wine: run by cargo xtask test"]
fn wine64_install_status_reinstall_remove_and_bad_input() {
    let p = Prefix::new("win64", "amd64");
    install_status_reinstall_remove(&p);

    // Bad input: each is refused with a clear message and changes nothing.
    let baseline = p.snapshot();
    let out = p.run(&["install", "--xp"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("does not install the XP/2003 driver"));
    assert_unchanged(&baseline, &p, "install --xp");
    let x86 = package_dir().join("installer/x86/rvblk-install.exe");
    let out = p
        .command("wine")
        .arg(&x86)
        .args(["install"])
        .output()
        .unwrap();
    p.settle();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("32-bit installer on 64-bit Windows"), "{t}");
    assert_unchanged(&baseline, &p, "the x86 installer in a 64-bit prefix");

    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("nothing-here");
    let no_cat = work.path().join("no-catalog");
    let bad_inf = work.path().join("corrupt-inf");
    for (dir, edit) in [(&no_cat, 0), (&bad_inf, 1)] {
        copy_package(&package_dir(), dir);
        if edit == 0 {
            std::fs::remove_file(dir.join("rvblk.cat")).unwrap();
        } else {
            let inf = std::fs::read_to_string(dir.join("rvblk.inf")).unwrap();
            // A section header cut in half, as a truncated download would leave it.
            let cut = inf.find("[rvblk_Service]").unwrap();
            std::fs::write(dir.join("rvblk.inf"), format!("{}[rvblk_Serv", &inf[..cut])).unwrap();
        }
    }
    for (dir, want) in [
        (&missing, "no rvblk driver package in"),
        (&no_cat, "the package has no catalog"),
        (&bad_inf, "is not a usable rvblk INF (line"),
    ] {
        let out = p.run(&["install", "--package", &z(dir)]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{t}");
        assert!(
            t.contains(want) && t.contains("Nothing was changed"),
            "{want:?}:\n{t}"
        );
        assert_unchanged(&baseline, &p, &format!("install from {}", dir.display()));
    }

    // A second ROOT\RVBLK device node, made by hand next to the installed one: install refuses
    // and changes nothing; remove takes both away.
    let out = p.run(&["install", "--package", &z(&package_dir())]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let second = "HKLM\\System\\CurrentControlSet\\Enum\\ROOT\\SCSIADAPTER\\0001";
    p.reg(&[
        "add",
        second,
        "/v",
        "HardwareID",
        "/t",
        "REG_MULTI_SZ",
        "/d",
        "ROOT\\RVBLK",
        "/f",
    ]);
    p.reg(&["add", second, "/v", "ClassGUID", "/d", SCSI_CLASS, "/f"]);
    p.settle();
    let two_nodes = p.snapshot();
    let out = p.run(&["install", "--package", &z(&package_dir())]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("found 2 device nodes with hardware ID ROOT\\RVBLK")
            && t.contains("ROOT\\SCSIADAPTER\\0001")
            && t.contains("Nothing was changed"),
        "{t}"
    );
    assert_unchanged(&two_nodes, &p, "install with two device nodes");
    // A node that is not rvblk's (another hardware ID) is left alone by remove.
    let foreign = "HKLM\\System\\CurrentControlSet\\Enum\\ROOT\\SCSIADAPTER\\0002";
    p.reg(&[
        "add",
        foreign,
        "/v",
        "HardwareID",
        "/t",
        "REG_MULTI_SZ",
        "/d",
        "ROOT\\OTHER",
        "/f",
    ]);
    p.reg(&["add", foreign, "/v", "ClassGUID", "/d", SCSI_CLASS, "/f"]);
    let out = p.run(&["remove"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("ROOT\\SCSIADAPTER\\0001"), "{t}");
    assert!(!t.contains("ROOT\\SCSIADAPTER\\0002"), "{t}");
    let reg = p.system_reg();
    assert!(reg_key(
        &reg,
        "System\\CurrentControlSet\\Enum\\ROOT\\SCSIADAPTER\\0002"
    )
    .is_some());
    // Undo the hand-made node (and the enumerator key it kept alive) for the comparison.
    p.reg(&["delete", foreign, "/f"]);
    p.reg(&[
        "delete",
        "HKLM\\System\\CurrentControlSet\\Enum\\ROOT\\SCSIADAPTER",
        "/f",
    ]);
    assert_unchanged(&baseline, &p, "remove of both nodes");
}

#[test]
#[ignore = "needs the package and 32-bit Wine: run by cargo xtask test"]
fn wine32_install_status_reinstall_remove() {
    let p = Prefix::new("win32", "x86");
    install_status_reinstall_remove(&p);
}

fn copy_package(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_package(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
