//! `rvblk-install status`: the report, as a table or JSON, and the decoding of the SCSI port's
//! inquiry data into the images the running driver exposes (docs/installer.md §5).

use crate::diagnose::Environment;
use crate::plan::{DeviceNode, ServiceConfig, StagedInf};
use serde::Serialize;
use std::fmt::Write;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Device {
    #[serde(flatten)]
    pub node: DeviceNode,
    /// `Some(true)` when the node is started; `None` when Windows (or Wine) does not say.
    pub started: Option<bool>,
    /// Device Manager's problem code.
    pub problem: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Service {
    #[serde(flatten)]
    pub config: ServiceConfig,
    /// `running`, `stopped`, `start pending`, …
    pub state: String,
}

/// One logical unit on rvblk's adapter, from the port's inquiry data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lun {
    pub port: u32,
    pub path: u8,
    pub target: u8,
    pub lun: u8,
    /// `disk`, `cd-rom` or the SCSI peripheral type number.
    pub kind: String,
    pub product: String,
    pub claimed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    pub installed: bool,
    /// The staged package's `DriverVer` version.
    pub version: Option<String>,
    pub staged: Vec<StagedInf>,
    pub devices: Vec<Device>,
    pub service: Option<Service>,
    /// `system32\drivers\rvblk.sys` is there.
    pub driver_file: bool,
    pub running: bool,
    /// Why the driver is not running, when it is installed but not running.
    pub reason: Option<String>,
    pub environment: Environment,
    pub kernel_trust_policy: bool,
    pub images: Vec<Lun>,
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "on",
        Some(false) => "off",
        None => "not reported",
    }
}

impl Status {
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the status serialises")
    }

    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut row = |k: &str, v: &str| {
            let _ = writeln!(t, "{k:<22}{v}");
        };
        row("installed", if self.installed { "yes" } else { "no" });
        row("version", self.version.as_deref().unwrap_or("-"));
        let staged: Vec<&str> = self.staged.iter().map(|s| s.name.as_str()).collect();
        row(
            "driver store",
            &if staged.is_empty() {
                "-".into()
            } else {
                staged.join(", ")
            },
        );
        if self.devices.is_empty() {
            row("device node", "-");
        }
        for d in &self.devices {
            let state = match (d.started, d.problem) {
                (Some(true), _) => "started".to_string(),
                (_, Some(p)) if p != 0 => format!("not started, problem code {p}"),
                (Some(false), _) => "not started".to_string(),
                (None, _) => "state not reported".to_string(),
            };
            row("device node", &format!("{} ({state})", d.node.instance_id));
        }
        match &self.service {
            Some(s) => row(
                "service rvblk",
                &format!(
                    "{}, start type {}, type {}, group {:?}, {}",
                    s.state,
                    s.config.start_type,
                    s.config.service_type,
                    s.config.group,
                    s.config.image_path
                ),
            ),
            None => row("service rvblk", "-"),
        }
        row(
            "driver file",
            if self.driver_file {
                "present"
            } else {
                "missing"
            },
        );
        row("running", if self.running { "yes" } else { "no" });
        if let Some(r) = &self.reason {
            row("why not running", r);
        }
        row("test signing", yes_no(self.environment.test_signing));
        row("secure boot", yes_no(self.environment.secure_boot));
        row(
            "kernel trust policy",
            if self.kernel_trust_policy {
                "applies (April 2026 update, build 26100 and later)"
            } else {
                "does not apply"
            },
        );
        if let Some(w) = &self.environment.wine {
            row("wine", w);
        }
        if self.images.is_empty() {
            row("images", "none");
        }
        for l in &self.images {
            row(
                "image",
                &format!(
                    "\\\\.\\Scsi{}: {}:{}:{} {} {:?}{}",
                    l.port,
                    l.path,
                    l.target,
                    l.lun,
                    l.kind,
                    l.product,
                    if l.claimed {
                        ""
                    } else {
                        " (not claimed by a class driver)"
                    }
                ),
            );
        }
        t
    }
}

/// The vendor identification rvblk's LUNs answer INQUIRY with (driver/core, scsi/inquiry.rs).
pub const RVBLK_VENDOR: &[u8; 8] = b"RVBLK   ";

/// Decodes the output of `IOCTL_SCSI_GET_INQUIRY_DATA` (a `SCSI_ADAPTER_BUS_INFO`: a bus count,
/// then 8-byte `SCSI_BUS_DATA` records from offset 4, each with an offset to a chain of
/// `SCSI_INQUIRY_DATA`: path, target, lun, claimed, length u32, next-offset u32, inquiry bytes)
/// and keeps rvblk's LUNs. Offsets out of range end the walk instead of reading past the buffer.
pub fn rvblk_luns(port: u32, buf: &[u8]) -> Vec<Lun> {
    let u32_at = |o: usize| -> Option<u32> {
        buf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut out = Vec::new();
    let buses = buf.first().copied().unwrap_or(0) as usize;
    for bus in 0..buses {
        let rec = 4 + bus * 8;
        let Some(mut offset) = u32_at(rec + 4) else {
            break;
        };
        // Records follow each other forward in the buffer; a chain that points back (a loop in a
        // corrupt buffer) ends here.
        loop {
            let o = offset as usize;
            if o == 0 {
                break;
            }
            let (Some(hdr), Some(len), Some(next)) =
                (buf.get(o..o + 4), u32_at(o + 4), u32_at(o + 8))
            else {
                break;
            };
            let data = buf.get(o + 12..(o + 12).saturating_add(len as usize));
            if let Some(inq) = data.filter(|d| d.len() >= 32) {
                if &inq[8..16] == RVBLK_VENDOR {
                    let kind = match inq[0] & 0x1F {
                        0x00 => "disk".to_string(),
                        0x05 => "cd-rom".to_string(),
                        t => format!("type {t:#04x}"),
                    };
                    out.push(Lun {
                        port,
                        path: hdr[0],
                        target: hdr[1],
                        lun: hdr[2],
                        kind,
                        product: String::from_utf8_lossy(&inq[16..32]).trim_end().to_owned(),
                        claimed: hdr[3] != 0,
                    });
                }
            }
            if next as usize <= o {
                break;
            }
            offset = next;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inquiry(kind: u8, vendor: &[u8; 8], product: &str) -> Vec<u8> {
        let mut d = vec![kind, 0, 6, 0x12, 31, 0, 0, 2];
        d.extend_from_slice(vendor);
        let mut p = product.as_bytes().to_vec();
        p.resize(16, b' ');
        d.extend_from_slice(&p);
        d.extend_from_slice(b"0.1 ");
        d
    }

    /// Builds a bus-info buffer with one bus whose LUN records are chained in order.
    fn bus_info(luns: &[(u8, u8, Vec<u8>)]) -> Vec<u8> {
        let mut b = vec![1, 0, 0, 0, luns.len() as u8, 7, 0, 0];
        b.extend_from_slice(&(if luns.is_empty() { 0u32 } else { 12 }).to_le_bytes());
        for (i, (target, claimed, inq)) in luns.iter().enumerate() {
            let start = b.len();
            let next = start + 12 + inq.len();
            let next = if i + 1 == luns.len() { 0 } else { next };
            b.extend_from_slice(&[0, *target, 0, *claimed]);
            b.extend_from_slice(&(inq.len() as u32).to_le_bytes());
            b.extend_from_slice(&(next as u32).to_le_bytes());
            b.extend_from_slice(inq);
        }
        b
    }

    #[test]
    fn keeps_rvblk_luns_only() {
        let buf = bus_info(&[
            (0, 1, inquiry(0x05, RVBLK_VENDOR, "RAM CD-ROM")),
            (1, 0, inquiry(0x00, b"ATA     ", "SSD")),
            (2, 1, inquiry(0x00, RVBLK_VENDOR, "RAM DISK")),
        ]);
        let luns = rvblk_luns(3, &buf);
        assert_eq!(luns.len(), 2);
        assert_eq!(
            (
                luns[0].kind.as_str(),
                luns[0].product.as_str(),
                luns[0].claimed
            ),
            ("cd-rom", "RAM CD-ROM", true)
        );
        assert_eq!((luns[1].target, luns[1].kind.as_str()), (2, "disk"));
        assert_eq!(luns[1].port, 3);
    }

    #[test]
    fn corrupt_buffers_end_the_walk() {
        assert!(rvblk_luns(0, &[]).is_empty());
        assert!(rvblk_luns(0, &[5, 0, 0, 0]).is_empty());
        let mut buf = bus_info(&[(0, 1, inquiry(0, RVBLK_VENDOR, "RAM DISK"))]);
        // A chain pointing at itself is read once.
        let self_ref = 12u32.to_le_bytes();
        buf[20..24].copy_from_slice(&self_ref);
        assert_eq!(rvblk_luns(0, &buf).len(), 1);
        // An inquiry length past the end is skipped.
        buf[16..20].copy_from_slice(&1000u32.to_le_bytes());
        assert!(rvblk_luns(0, &buf).is_empty());
    }
}
