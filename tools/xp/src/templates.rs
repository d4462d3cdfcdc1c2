//! The text files shipped to Windows, generated from the templates in `inf/xp/`.
//!
//! Windows XP setup reads these as ANSI text with CRLF line ends; the templates are kept with
//! LF in git and converted here, so the output does not depend on git's line-end settings.
//!
//! Placeholders: `@ARCH@` (`x86`/`x64`) in `txtsetup.oem` and the tag file; `@VERSION@`,
//! `@X86_SOURCE@` and `@AMD64_SOURCE@` (whole `[SourceDisksFiles.*]` lines) in the INF.

use crate::XpArch;

const TXTSETUP_OEM: &str = include_str!("../../../inf/xp/txtsetup.oem");
const RVBLKXP_INF: &str = include_str!("../../../inf/xp/rvblkxp.inf");
const TAG: &str = include_str!("../../../inf/xp/RVBLKXP.TAG");

/// Converts any line ends to CRLF and makes sure the text ends with one.
pub fn to_crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for line in text.lines() {
        out.push_str(line.trim_end_matches('\r'));
        out.push_str("\r\n");
    }
    out
}

/// `TXTSETUP.OEM` for `arch`'s floppy. Without a catalog its `catalog =` lines are dropped,
/// since text-mode setup fails on a file named there that the disk does not hold.
pub fn txtsetup_oem(arch: XpArch, with_catalog: bool) -> String {
    let text: String = TXTSETUP_OEM
        .lines()
        .filter(|line| with_catalog || !is_catalog_line(line))
        .map(|line| format!("{line}\n"))
        .collect();
    to_crlf(&text.replace("@ARCH@", arch.label()))
}

fn is_catalog_line(line: &str) -> bool {
    line.split_once('=')
        .is_some_and(|(key, _)| key.trim().eq_ignore_ascii_case("catalog"))
}

/// `DriverVer` version: the crate's `major.minor.patch` plus a fourth `0` field.
pub fn driver_version() -> String {
    format!(
        "{}.0",
        env!("CARGO_PKG_VERSION")
            .split('-')
            .next()
            .unwrap_or("0.0.0")
    )
}

/// `rvblkxp.inf` for the directory that holds `dir`'s driver, with `DriverVer` filled in.
///
/// The text differs only in `[SourceDisksFiles.*]`, which says where each architecture's
/// `rvblkxp.sys` is relative to the INF: in `xp/` the x86 driver is beside it and the x64 one
/// in `amd64\`; in `xp/amd64/` (and on the x64 floppy) the x64 driver is beside it and there is
/// none for x86, so neither copy can install the other architecture's binary.
pub fn rvblkxp_inf(dir: XpArch) -> String {
    let (x86, amd64) = match dir {
        XpArch::X86 => ("rvblkxp.sys = 1", "rvblkxp.sys = 1,amd64"),
        XpArch::Amd64 => (
            "; none here: the x86 rvblkxp.sys and its rvblkxp.inf are in the parent directory",
            "rvblkxp.sys = 1",
        ),
    };
    to_crlf(
        &RVBLKXP_INF
            .replace("@VERSION@", &driver_version())
            .replace("@X86_SOURCE@", x86)
            .replace("@AMD64_SOURCE@", amd64),
    )
}

/// The disk tag file's contents for `arch`'s floppy (its presence is what matters to setup).
pub fn tag_file(arch: XpArch) -> String {
    to_crlf(&TAG.replace("@ARCH@", arch.label()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_texts() -> Vec<String> {
        let mut texts = Vec::new();
        for arch in XpArch::ALL {
            texts.push(txtsetup_oem(arch, true));
            texts.push(txtsetup_oem(arch, false));
            texts.push(rvblkxp_inf(arch));
            texts.push(tag_file(arch));
        }
        texts
    }

    #[test]
    fn crlf_everywhere() {
        for text in all_texts() {
            assert!(text.ends_with("\r\n"));
            assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
            assert!(text.is_ascii());
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        for text in all_texts() {
            assert!(!text.contains('@'), "{text}");
        }
    }

    #[test]
    fn catalog_lines_follow_the_catalog() {
        for arch in XpArch::ALL {
            assert_eq!(txtsetup_oem(arch, true).matches("catalog").count(), 2);
            assert!(!txtsetup_oem(arch, false).contains("catalog ="));
        }
    }

    #[test]
    fn architecture_names() {
        let x86 = txtsetup_oem(XpArch::X86, false);
        let x64 = txtsetup_oem(XpArch::Amd64, false);
        assert!(
            x86.contains("\"rvblk driver disk for Windows XP/2003 x86\", \\RVBLKXP.TAG, \\\r\n")
        );
        assert!(
            x64.contains("\"rvblk driver disk for Windows XP/2003 x64\", \\RVBLKXP.TAG, \\\r\n")
        );
        assert!(!x86.contains("x64") && !x64.contains("x86"));
        assert!(tag_file(XpArch::Amd64)
            .starts_with("rvblk driver disk for Windows XP / Server 2003 (x64).\r\n"));
    }

    #[test]
    fn inf_has_version_and_sources_per_directory() {
        for dir in XpArch::ALL {
            let inf = rvblkxp_inf(dir);
            assert!(inf.contains(&format!("DriverVer   = 01/01/2025,{}", driver_version())));
            assert!(inf.contains("%Provider% = rvblk_Models, NTamd64\r\n"));
        }
        assert!(rvblkxp_inf(XpArch::X86).contains(
            "[SourceDisksFiles.x86]\r\nrvblkxp.sys = 1\r\n\r\n[SourceDisksFiles.amd64]\r\nrvblkxp.sys = 1,amd64\r\n"
        ));
        let amd64 = rvblkxp_inf(XpArch::Amd64);
        assert!(amd64.contains("[SourceDisksFiles.amd64]\r\nrvblkxp.sys = 1\r\n"));
        assert_eq!(amd64.matches("rvblkxp.sys = ").count(), 1, "no x86 source");
    }
}
