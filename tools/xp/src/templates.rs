//! The text files shipped to Windows, generated from the templates in `inf/xp/`.
//!
//! Windows XP setup reads these as ANSI text with CRLF line ends; the templates are kept with
//! LF in git and converted here, so the output does not depend on git's line-end settings.

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

/// `TXTSETUP.OEM`. Without a catalog its `catalog =` lines are dropped, since text-mode setup
/// fails on a file named there that the disk does not hold.
pub fn txtsetup_oem(with_catalog: bool) -> String {
    let text: String = TXTSETUP_OEM
        .lines()
        .filter(|line| with_catalog || !is_catalog_line(line))
        .map(|line| format!("{line}\n"))
        .collect();
    to_crlf(&text)
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

/// `rvblkxp.inf`, with `DriverVer` filled in.
pub fn rvblkxp_inf() -> String {
    to_crlf(&RVBLKXP_INF.replace("@VERSION@", &driver_version()))
}

/// The disk tag file's contents (its presence is what matters to setup).
pub fn tag_file() -> String {
    to_crlf(TAG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_everywhere() {
        for text in [
            txtsetup_oem(true),
            txtsetup_oem(false),
            rvblkxp_inf(),
            tag_file(),
        ] {
            assert!(text.ends_with("\r\n"));
            assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
            assert!(text.is_ascii());
        }
    }

    #[test]
    fn catalog_lines_follow_the_catalog() {
        assert_eq!(txtsetup_oem(true).matches("catalog").count(), 2);
        assert!(!txtsetup_oem(false).contains("catalog ="));
    }

    #[test]
    fn inf_has_version() {
        let inf = rvblkxp_inf();
        assert!(!inf.contains('@'));
        assert!(inf.contains(&format!("DriverVer   = 01/01/2025,{}", driver_version())));
    }
}
