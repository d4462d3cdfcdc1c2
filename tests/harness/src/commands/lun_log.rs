//! The driver's LUN log lines (`rvblk: lun N: ...`, `rvblk: disk lun T: ...` and refusals) read back from the emulated
//! DbgPrint log, with the driver's own definition (`rvblk_core::log`). Shared by `run`, the
//! compliance suite and the fault sweep.

/// A `rvblk: lun N: ...` line of the driver's log, as parsed by the driver's own definition
/// (`rvblk_core::log::LunLine`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogLun {
    pub n: u32,
    pub kind: String,
    pub block_size: u64,
    pub blocks: u64,
    pub read_only: bool,
    pub source: String,
    pub phys_base: u64,
    pub length: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogRefusal {
    pub source: String,
    pub phys_base: u64,
    pub length: u64,
    pub reason: String,
}

pub fn parse_log(log: &[String]) -> (Vec<LogLun>, Vec<LogRefusal>, Vec<String>) {
    let mut luns = Vec::new();
    let mut refused = Vec::new();
    let mut bad = Vec::new();
    for l in log {
        if l.starts_with("[harness]") {
            continue;
        }
        if !l.starts_with(rvblk_core::log::PREFIX) {
            bad.push(format!(
                "driver log line without the \"rvblk: \" prefix: {l:?}"
            ));
            continue;
        }
        let rest = &l[rvblk_core::log::PREFIX.len()..];
        if let Some(parsed) = rvblk_core::log::LunLine::parse(rest) {
            match parsed {
                Ok(x) => luns.push(LogLun {
                    n: x.index,
                    kind: x.kind.name().to_string(),
                    block_size: u64::from(x.block_size),
                    blocks: x.blocks,
                    read_only: x.read_only,
                    source: x.source.name().to_string(),
                    phys_base: x.phys_base,
                    length: x.length,
                }),
                Err(_) => bad.push(format!("malformed lun line in the driver log: {l:?}")),
            }
        } else if let Some(parsed) = rvblk_core::log::DiskLunLine::parse(rest) {
            // A disk-backed LUN (`docs/driver.md` "Disk-backed images"): its target is its
            // number, as for RAM LUNs; it has no physical base.
            match parsed {
                Ok(x) => luns.push(LogLun {
                    n: x.target,
                    kind: x.kind.name().to_string(),
                    block_size: u64::from(x.block_size),
                    blocks: x.blocks,
                    read_only: x.read_only,
                    source: x.source.to_string(),
                    phys_base: 0,
                    length: x.length,
                }),
                Err(_) => bad.push(format!("malformed disk lun line in the driver log: {l:?}")),
            }
        } else if let Some(parsed) = rvblk_core::log::RefusalLine::parse(rest) {
            match parsed {
                Ok(r) => refused.push(LogRefusal {
                    source: r.source.name().to_string(),
                    phys_base: r.phys_base,
                    length: r.length,
                    reason: r.reason.to_string(),
                }),
                Err(_) => bad.push(format!("malformed refused line in the driver log: {l:?}")),
            }
        }
    }
    (luns, refused, bad)
}
