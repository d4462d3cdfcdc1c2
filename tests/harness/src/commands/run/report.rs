//! The `run` command's report: what it found per LUN, as text or as the shared `--json`
//! report (`rvblk_report`).

use super::kind_of;
use crate::commands::lun_log::LogRefusal;
use crate::commands::scsi::LunInfo;
use rvblk_report::LunKind;

#[derive(Clone, Debug)]
pub struct LunReport {
    pub info: LunInfo,
    pub kind: String,
    pub read_only: bool,
    pub source: String,
    pub phys_base: Option<u64>,
    pub sha256: String,
    pub matches: Vec<String>,
    pub write_test: String,
}

#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub luns: Vec<LunReport>,
    pub refused: Vec<LogRefusal>,
    pub failures: Vec<String>,
    pub notes: Vec<String>,
    pub log: Vec<String>,
    pub stack_high_water: usize,
}

impl RunReport {
    /// The `--json` report (shape: `rvblk_report`, shared with the end-to-end tests).
    pub fn to_json(&self) -> String {
        rvblk_report::Report {
            luns: self
                .luns
                .iter()
                .map(|l| rvblk_report::Lun {
                    kind: LunKind::from_name(&l.kind).unwrap_or_else(|| kind_of(&l.info)),
                    block_size: l.info.block_size,
                    blocks: l.info.blocks,
                    read_only: l.read_only,
                    source: l.source.clone(),
                    phys_base: l.phys_base,
                    sha256: l.sha256.clone(),
                    matches: l.matches.clone(),
                    target: l.info.target,
                    lun: l.info.lun,
                })
                .collect(),
            refused: self
                .refused
                .iter()
                .map(|r| rvblk_report::Refusal {
                    phys_base: r.phys_base,
                    reason: r.reason.clone(),
                    source: r.source.clone(),
                    length: r.length,
                })
                .collect(),
            verifier_failures: self.failures.clone(),
            notes: self.notes.clone(),
        }
        .to_json()
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for l in &self.luns {
            s.push_str(&format!(
                "LUN {}:{}: kind={} block_size={} blocks={} read_only={} source={} phys_base={} sha256={} matches=[{}] write_test={}\n",
                l.info.target,
                l.info.lun,
                l.kind,
                l.info.block_size,
                l.info.blocks,
                l.read_only,
                l.source,
                l.phys_base.map_or("?".to_string(), |p| format!("{p:#x}")),
                l.sha256,
                l.matches.join(", "),
                l.write_test
            ));
        }
        for r in &self.refused {
            s.push_str(&format!(
                "refused: source={} phys_base={:#x} length={:#x} reason={}\n",
                r.source, r.phys_base, r.length, r.reason
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        s.push_str(&format!(
            "kernel stack high-water mark: {} bytes of {}\n",
            self.stack_high_water,
            crate::emu::stack::KERNEL_STACK
        ));
        if self.failures.is_empty() {
            s.push_str("verifier: no failures\n");
        } else {
            for f in &self.failures {
                s.push_str(&format!("VERIFIER FAILURE: {f}\n"));
            }
        }
        s
    }
}
