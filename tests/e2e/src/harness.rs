//! Running the real `rvblk.sys` and `rvblkxp.sys` binaries through the harness CLI
//! (`rvblk-harness run ... --json`) on a MEMDISK dump, and checking its report against the case.

use crate::case::{Booted, Expect};
use rvblk_report::{Lun, Refusal};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Workspace root (this crate is `tests/e2e`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The harness CLI: `$RVBLK_HARNESS`, else `<workspace>/target/release/rvblk-harness`.
pub fn harness_binary() -> Result<PathBuf, String> {
    let p = std::env::var_os("RVBLK_HARNESS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/release/rvblk-harness"));
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "harness CLI not found at {}: build it with `cargo build --release -p rvblk-harness` \
             (or run `cargo xtask test`, which sets RVBLK_HARNESS)",
            p.display()
        ))
    }
}

/// The driver package: `$RVBLK_PACKAGE_DIR`, else `<workspace>/target/package`.
pub fn package_dir() -> PathBuf {
    std::env::var_os("RVBLK_PACKAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/package"))
}

/// One way every case runs a real binary: architecture and harness personality.
#[derive(Clone, Copy, Debug)]
pub struct Flavour {
    pub arch: &'static str,
    pub personality: &'static str,
}

/// StorPort `rvblk.sys` on x64 and x86 under Windows 8+ (full HW_INITIALIZATION_DATA, buffers
/// mapped) and Windows 7 (smaller structure, buffers reached through GetSystemAddress), and
/// the SCSIPORT `rvblkxp.sys` under XP/2003 (an installed system: every image exposed).
pub const FLAVOURS: [Flavour; 6] = [
    Flavour {
        arch: "amd64",
        personality: "win8",
    },
    Flavour {
        arch: "amd64",
        personality: "win7",
    },
    Flavour {
        arch: "x86",
        personality: "win8",
    },
    Flavour {
        arch: "x86",
        personality: "win7",
    },
    Flavour {
        arch: "x86",
        personality: "xp",
    },
    Flavour {
        arch: "amd64",
        personality: "xp",
    },
];

/// The arm64 `rvblk.sys` under the Windows 8+ personality (Windows on ARM64 starts at 10), run
/// by the harness's aarch64 helper under qemu-aarch64 (`docs/arm64.md`).
pub const ARM64: Flavour = Flavour {
    arch: "arm64",
    personality: "win8",
};

/// [`FLAVOURS`], plus [`ARM64`] when `RVBLK_HARNESS_ARM64` names the aarch64 helper (`cargo
/// xtask test` sets it where the cross toolchain and qemu-aarch64 are installed).
pub fn flavours() -> Vec<Flavour> {
    let mut v = FLAVOURS.to_vec();
    if std::env::var_os("RVBLK_HARNESS_ARM64").is_some() {
        v.push(ARM64);
    }
    v
}

/// The packaged binary a flavour loads: `<package>/<arch>/rvblk.sys` under StorPort,
/// `<package>/xp/rvblkxp.sys` (x86) or `<package>/xp/<arch>/rvblkxp.sys` under xp; or an error
/// telling how to build it.
pub fn driver(f: Flavour) -> Result<PathBuf, String> {
    let p = match (f.personality, f.arch) {
        ("xp", "x86") => package_dir().join("xp").join("rvblkxp.sys"),
        ("xp", arch) => package_dir().join("xp").join(arch).join("rvblkxp.sys"),
        (_, arch) => package_dir().join(arch).join("rvblk.sys"),
    };
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "driver binary {} not found: run `cargo xtask package` (or set RVBLK_PACKAGE_DIR)",
            p.display()
        ))
    }
}

/// The harness's `--json` report plus how the process ended.
#[derive(Clone, Debug)]
pub struct Report {
    pub luns: Vec<Lun>,
    pub refused: Vec<Refusal>,
    pub verifier_failures: Vec<String>,
    pub exit_ok: bool,
    pub stdout: String,
    pub stderr: String,
    pub time: Duration,
}

/// `rvblk-harness run --driver DRIVER --personality P [EXTRA ...] --ram DUMP
/// --os-ram 0xSTART:0xLEN ... --expect IMAGE --json --verbose`.
pub fn run(
    harness: &Path,
    driver: &Path,
    personality: &str,
    extra: &[&str],
    booted: &Booted,
) -> Result<Report, String> {
    let mut cmd = Command::new(harness);
    cmd.arg("run")
        .arg("--driver")
        .arg(driver)
        .arg("--personality")
        .arg(personality)
        .args(extra)
        .arg("--ram")
        .arg(&booted.dump);
    for r in &booted.os_ram {
        cmd.arg("--os-ram")
            .arg(format!("{:#x}:{:#x}", r.start, r.len));
    }
    // `--verbose` puts the driver's DbgPrint lines on stderr: the tests check its discovery log.
    cmd.arg("--expect")
        .arg(&booted.image_path)
        .arg("--json")
        .arg("--verbose");
    let t0 = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", harness.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = rvblk_report::Report::from_harness_output(&stdout).map_err(|e| {
        format!(
            "{e}\nexit: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        )
    })?;
    Ok(Report {
        luns: report.luns,
        refused: report.refused,
        verifier_failures: report.verifier_failures,
        exit_ok: out.status.success(),
        stdout,
        stderr,
        time: t0.elapsed(),
    })
}

/// Checks a report against the case; returns every problem found (empty = pass).
pub fn check(booted: &Booted, r: &Report) -> Vec<String> {
    let mut p = Vec::new();
    let base = u64::from(booted.memdisk.diskbuf);
    if !r.verifier_failures.is_empty() {
        p.push(format!("verifier failures: {:?}", r.verifier_failures));
    }
    if !r.exit_ok {
        p.push("harness exited with a failure status".into());
    }
    match booted.case.expect {
        Expect::Lun {
            kind,
            block_size,
            read_only,
        } => {
            if r.luns.len() != 1 {
                p.push(format!(
                    "expected exactly one LUN, got {}: {:?}",
                    r.luns.len(),
                    r.luns
                ));
            }
            if let Some(l) = r
                .luns
                .iter()
                .find(|l| l.phys_base == Some(base))
                .or(r.luns.first())
            {
                let blocks = booted.image_len / block_size;
                let want = |ok: bool, what: String, p: &mut Vec<String>| {
                    if !ok {
                        p.push(what)
                    }
                };
                want(
                    l.kind.as_str() == kind,
                    format!("kind {:?}, expected {kind:?}", l.kind),
                    &mut p,
                );
                want(
                    u64::from(l.block_size) == block_size,
                    format!("block_size {}, expected {block_size}", l.block_size),
                    &mut p,
                );
                want(
                    l.blocks == blocks,
                    format!("blocks {}, expected {blocks}", l.blocks),
                    &mut p,
                );
                want(
                    l.read_only == read_only,
                    format!("read_only {}, expected {read_only}", l.read_only),
                    &mut p,
                );
                want(
                    l.source == "memdisk",
                    format!("source {:?}, expected \"memdisk\"", l.source),
                    &mut p,
                );
                want(
                    l.phys_base == Some(base),
                    format!(
                        "phys_base {:x?}, expected MDI diskbuf {base:#x}",
                        l.phys_base
                    ),
                    &mut p,
                );
                want(
                    l.sha256.eq_ignore_ascii_case(&booted.image_sha256),
                    format!(
                        "sha256 {} differs from the image file's {}",
                        l.sha256, booted.image_sha256
                    ),
                    &mut p,
                );
                let img = booted.image_path.display().to_string();
                want(
                    l.matches
                        .iter()
                        .any(|m| m == &img || Path::new(m) == booted.image_path),
                    format!("matches {:?} does not name {img}", l.matches),
                    &mut p,
                );
            }
            if !r.refused.is_empty() {
                p.push(format!("unexpected refusals: {:?}", r.refused));
            }
        }
        Expect::RefusedOsRam => {
            if !r.luns.is_empty() {
                p.push(format!(
                    "an image in OS RAM must not become a LUN, got {:?}",
                    r.luns
                ));
            }
            match r.refused.iter().find(|x| x.phys_base == base) {
                None => p.push(format!(
                    "image at {base:#x} is not in `refused`: {:?}",
                    r.refused
                )),
                Some(x) => {
                    let reason = x.reason.to_ascii_lowercase();
                    if !(reason.contains("ram") || reason.contains("memory")) {
                        p.push(format!(
                            "refusal reason {:?} does not say the image is in OS RAM",
                            x.reason
                        ));
                    }
                }
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{self, Booted};
    use crate::{memdisk, serial::BootLog};
    use std::time::Duration;

    fn booted(c: case::Case) -> Booted {
        Booted {
            case: c,
            dir: PathBuf::from("/nonexistent/rvblk-e2e-unit"),
            image_path: PathBuf::from("/w/test.iso"),
            image_sha256: "ab".repeat(32),
            image_len: 2083 * 2048,
            dump: PathBuf::from("/w/ram.dump"),
            log: BootLog::default(),
            memdisk: memdisk::Memdisk {
                hook: 0x9F00A,
                mbft: 0x9F660,
                diskbuf: 0x0FBC_E000,
                disksize: 2083,
                sector_shift: 11,
                driveno: 0xE0,
                configflags: 2,
            },
            os_ram: Vec::new(),
            total_ram: 0x0FFE_0000,
            qemu_time: Duration::ZERO,
        }
    }

    fn report(json: &str) -> Report {
        let r = rvblk_report::Report::from_harness_output(json).unwrap();
        Report {
            luns: r.luns,
            refused: r.refused,
            verifier_failures: r.verifier_failures,
            exit_ok: true,
            stdout: String::new(),
            stderr: String::new(),
            time: Duration::ZERO,
        }
    }

    const GOOD: &str = r#"{"luns":[{"kind":"cdrom","block_size":2048,"blocks":2083,"read_only":true,"source":"memdisk","phys_base":264036352,"sha256":"ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB","matches":["/w/test.iso"],"target":0,"lun":0}],"refused":[],"verifier_failures":[]}"#;

    #[test]
    fn accepts_the_right_lun_and_names_every_wrong_field() {
        let b = booted(case::ISO_RAW);
        assert_eq!(check(&b, &report(GOOD)), Vec::<String>::new());
        let bad = GOOD
            .replace("\"cdrom\"", "\"disk\"")
            .replace("2083", "2082")
            .replace("true", "false")
            .replace("\"/w/test.iso\"", "")
            .replace("ABAB", "CDCD")
            .replace("264036352", "null");
        let p = check(&b, &report(&bad));
        for what in [
            "kind",
            "blocks",
            "read_only",
            "matches",
            "sha256",
            "phys_base",
        ] {
            assert!(
                p.iter().any(|x| x.starts_with(what)),
                "{what} not flagged: {p:?}"
            );
        }
        let two = GOOD.replace("}],\"refused\"", "},{\"kind\":\"disk\",\"block_size\":512,\"blocks\":1,\"read_only\":false,\"source\":\"memdisk\",\"phys_base\":1,\"sha256\":\"\",\"matches\":[],\"target\":0,\"lun\":1}],\"refused\"");
        assert!(check(&b, &report(&two))
            .iter()
            .any(|x| x.contains("exactly one LUN")));
        let vf = GOOD.replace(
            "\"verifier_failures\":[]",
            "\"verifier_failures\":[\"SRB completed twice\"]",
        );
        assert!(check(&b, &report(&vf))
            .iter()
            .any(|x| x.contains("SRB completed twice")));
    }

    #[test]
    fn refusal_case_needs_a_refusal_naming_os_ram() {
        let b = booted(case::USABLE_RAM_REFUSED);
        let ok = r#"{"luns":[],"refused":[{"phys_base":264036352,"reason":"overlaps OS RAM 0x100000-0xffe0000 (rule 23)","source":"memdisk","length":4265984}],"verifier_failures":[]}"#;
        assert_eq!(check(&b, &report(ok)), Vec::<String>::new());
        assert!(!check(&b, &report(GOOD)).is_empty());
        let vague = ok.replace("overlaps OS RAM 0x100000-0xffe0000 (rule 23)", "no");
        assert!(check(&b, &report(&vague))
            .iter()
            .any(|x| x.contains("reason")));
    }
}
