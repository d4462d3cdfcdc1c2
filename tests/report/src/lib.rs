//! The report that `rvblk-harness run --json` prints, one JSON object on one line:
//!
//! ```json
//! {"luns":[{"kind":"cdrom","block_size":2048,"blocks":2083,"read_only":true,"source":"memdisk",
//!   "phys_base":264036352,"sha256":"…","matches":["/path/image.iso"],"target":0,"lun":0}],
//!  "refused":[{"phys_base":…,"reason":"…","source":"…","length":…}],
//!  "verifier_failures":["…"],"notes":["…"]}
//! ```
//!
//! The harness writes it with [`Report::to_json`]; the end-to-end tests (`tests/e2e`) read it
//! with [`Report::from_harness_output`]. Both use these types, so the shape cannot drift.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a LUN presents to Windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LunKind {
    /// A direct-access disk (hard-disk image).
    Disk,
    /// A removable direct-access disk of floppy size.
    Floppy,
    /// An MMC CD-ROM (ISO image).
    Cdrom,
}

impl LunKind {
    /// The name used in the report and in the driver's log.
    pub fn as_str(self) -> &'static str {
        match self {
            LunKind::Disk => "disk",
            LunKind::Floppy => "floppy",
            LunKind::Cdrom => "cdrom",
        }
    }

    /// The kind named `s` (`disk`, `floppy`, `cdrom`).
    pub fn from_name(s: &str) -> Option<LunKind> {
        [LunKind::Disk, LunKind::Floppy, LunKind::Cdrom]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for LunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One LUN the driver exposed, as the harness read it back through SCSI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lun {
    pub kind: LunKind,
    pub block_size: u32,
    pub blocks: u64,
    /// CD-ROM, or a disk whose MODE SENSE reports write protection.
    pub read_only: bool,
    /// The loader the driver named in its log (`grub4dos`, `memdisk`, ...).
    pub source: String,
    /// Physical address of the image; `null` when the driver's log did not say.
    pub phys_base: Option<u64>,
    /// Lower-case hex SHA-256 of the LUN's whole content (empty if it could not be read).
    pub sha256: String,
    /// The `--expect` files whose bytes equal the start of the LUN.
    pub matches: Vec<String>,
    pub target: u8,
    pub lun: u8,
}

/// One image the driver found and refused, with its logged reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub phys_base: u64,
    pub reason: String,
    pub source: String,
    pub length: u64,
}

/// The whole `--json` report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub luns: Vec<Lun>,
    pub refused: Vec<Refusal>,
    /// Every rule the emulated kernel saw broken; empty for a clean run.
    pub verifier_failures: Vec<String>,
    /// Explanations that are not failures (e.g. why the adapter did not start).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Report {
    /// A report that only carries failures (the harness could not run the driver at all).
    pub fn failed(verifier_failures: Vec<String>) -> Report {
        Report {
            verifier_failures,
            ..Report::default()
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("the report holds only strings, numbers and lists")
    }

    /// Parses the harness's standard output: the whole of it, or else its last line that is a
    /// report (the harness may print other lines before it).
    pub fn from_harness_output(stdout: &str) -> Result<Report, String> {
        match serde_json::from_str(stdout) {
            Ok(r) => Ok(r),
            Err(whole) => stdout
                .lines()
                .rev()
                .filter(|l| l.trim_start().starts_with('{'))
                .find_map(|l| serde_json::from_str(l).ok())
                .ok_or_else(|| format!("no JSON report in the harness output ({whole})")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            luns: vec![Lun {
                kind: LunKind::Cdrom,
                block_size: 2048,
                blocks: 2083,
                read_only: true,
                source: "memdisk".into(),
                phys_base: Some(0x0FBC_E000),
                sha256: "ab".repeat(32),
                matches: vec!["/w/a \"b\".iso".into()],
                target: 0,
                lun: 0,
            }],
            refused: vec![Refusal {
                phys_base: 0x100000,
                reason: "overlaps OS RAM".into(),
                source: "grub4dos".into(),
                length: 0x1000,
            }],
            verifier_failures: vec!["SRB completed\ntwice".into()],
            notes: vec![],
        }
    }

    #[test]
    fn writes_the_documented_shape() {
        let j = sample().to_json();
        assert!(
            j.starts_with(
                "{\"luns\":[{\"kind\":\"cdrom\",\"block_size\":2048,\"blocks\":2083,\
                 \"read_only\":true,\"source\":\"memdisk\",\"phys_base\":264036352,"
            ),
            "{j}"
        );
        assert!(j.contains("\"matches\":[\"/w/a \\\"b\\\".iso\"],\"target\":0,\"lun\":0}]"));
        assert!(j.contains("\"refused\":[{\"phys_base\":1048576,\"reason\":\"overlaps OS RAM\",\"source\":\"grub4dos\",\"length\":4096}]"));
        assert!(j.ends_with("\"verifier_failures\":[\"SRB completed\\ntwice\"],\"notes\":[]}"));
        assert!(!j.contains('\n'));
    }

    #[test]
    fn reads_back_what_it_writes_and_finds_the_last_report_line() {
        let r = sample();
        assert_eq!(Report::from_harness_output(&r.to_json()).unwrap(), r);
        let noisy = format!("progress\n{{\"not\":1}}\n{}\n", r.to_json());
        assert_eq!(Report::from_harness_output(&noisy).unwrap(), r);
        let mut null_base = r.clone();
        null_base.luns[0].phys_base = None;
        assert!(null_base.to_json().contains("\"phys_base\":null"));
        assert_eq!(
            Report::from_harness_output(&null_base.to_json()).unwrap(),
            null_base
        );
        // The harness's crash path writes no `notes`.
        let crash = r#"{"luns":[],"refused":[],"verifier_failures":["x"]}"#;
        assert_eq!(
            Report::from_harness_output(crash).unwrap(),
            Report::failed(vec!["x".into()])
        );
    }

    #[test]
    fn rejects_what_is_not_a_report() {
        assert!(Report::from_harness_output("no json here").is_err());
        let bad_kind = sample().to_json().replace("\"cdrom\"", "\"tape\"");
        assert!(Report::from_harness_output(&bad_kind).is_err());
        assert_eq!(LunKind::from_name("floppy"), Some(LunKind::Floppy));
        assert_eq!(LunKind::from_name("tape"), None);
    }
}
