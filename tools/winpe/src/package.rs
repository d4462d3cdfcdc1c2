//! The driver package: `DIR/{x86,amd64,arm64}/rvblk.sys` plus `DIR/rvblk.inf`, and the few INF
//! facts the registry entries need (provider, version, date, descriptions, install section).

use crate::error::{Error, ErrorKind, Result};
use rvblk_inf::Inf;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Service name, file names and hardware id written into images.
pub const SERVICE: &str = "rvblk";
pub const SYS_NAME: &str = "rvblk.sys";
pub const INF_NAME: &str = "rvblk.inf";
pub const HARDWARE_ID: &str = "ROOT\\RVBLK";
pub const TEST_CERT: &str = "rvblk-test.cer";

/// A Windows architecture the driver is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    X86,
    Amd64,
    Arm64,
}

impl Arch {
    /// The package subdirectory (`x86`, `amd64`, `arm64`).
    pub fn dir(self) -> &'static str {
        match self {
            Arch::X86 => "x86",
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The INF decoration (`NTx86`, `NTamd64`, `NTarm64`).
    pub fn inf_decoration(self) -> &'static str {
        match self {
            Arch::X86 => "NTx86",
            Arch::Amd64 => "NTamd64",
            Arch::Arm64 => "NTarm64",
        }
    }

    /// From the WIM XML `WINDOWS/ARCH` value (PROCESSOR_ARCHITECTURE_*): 0, 9, 12.
    pub fn from_wim_property(v: u32) -> Option<Arch> {
        match v {
            0 => Some(Arch::X86),
            9 => Some(Arch::Amd64),
            12 => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// From a PE file's COFF `Machine` field: 0x14c, 0x8664, 0xaa64.
    pub fn from_pe_machine(m: u16) -> Option<Arch> {
        match m {
            0x014c => Some(Arch::X86),
            0x8664 => Some(Arch::Amd64),
            0xaa64 => Some(Arch::Arm64),
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir())
    }
}

/// Facts taken from `rvblk.inf` (with defaults when the INF leaves something out).
#[derive(Debug, Clone)]
pub struct InfInfo {
    pub provider: String,
    pub manufacturer: String,
    pub device_desc: String,
    /// `mm/dd/yyyy` as (month, day, year).
    pub date: (u32, u32, u32),
    pub version: String,
    /// DDInstall section per architecture (after picking the most specific decorated variant).
    pub install_section: HashMap<Arch, String>,
}

impl InfInfo {
    /// `DriverDate` the way Windows writes it: `M-D-YYYY`.
    pub fn driver_date(&self) -> String {
        let (m, d, y) = self.date;
        format!("{m}-{d}-{y}")
    }

    /// `DriverDateData`: the date as a FILETIME (100 ns ticks since 1601-01-01 UTC), 8 bytes LE.
    pub fn driver_date_data(&self) -> [u8; 8] {
        let (m, d, y) = self.date;
        let days = days_from_civil(y as i64, m, d) - days_from_civil(1601, 1, 1);
        let ticks = (days.max(0) as u64) * 86_400 * 10_000_000;
        ticks.to_le_bytes()
    }

    pub fn section_for(&self, arch: Arch) -> String {
        self.install_section
            .get(&arch)
            .cloned()
            .unwrap_or_else(|| "rvblk_Install".to_string())
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Extracts [`InfInfo`] from INF text. Missing facts fall back to neutral defaults
/// (provider/manufacturer "rvblk", date 01/01/2025, version 0.0.0.0).
pub fn parse_inf(bytes: &[u8]) -> InfInfo {
    let inf = Inf::from_bytes(bytes);
    let provider = inf
        .get("Version", "Provider")
        .unwrap_or_else(|| "rvblk".into());
    let mut date = (1, 1, 2025);
    let mut version = "0.0.0.0".to_string();
    if let Some(dv) = inf.get("Version", "DriverVer") {
        let (d, v) = dv.split_once(',').unwrap_or((dv.as_str(), ""));
        let parts: Vec<u32> = d
            .trim()
            .split('/')
            .filter_map(|p| p.trim().parse().ok())
            .collect();
        if let [m, d, y] = parts[..] {
            date = (m, d, y);
        }
        if !v.trim().is_empty() {
            version = v.trim().to_string();
        }
    }
    let mut manufacturer = provider.clone();
    let mut device_desc = "rvblk virtual SCSI adapter (RAM disk)".to_string();
    let mut install_section = HashMap::new();
    // [Manufacturer] %Mfg% = Models, NTx86, NTamd64, NTarm64
    if let Some((mfg_key, models)) = inf
        .section("Manufacturer")
        .and_then(|e| e.first().map(|e| (e.key.clone(), e.value.clone())))
    {
        manufacturer = inf.resolve(&mfg_key);
        let parts = rvblk_inf::fields(&models);
        let (base, decorations) = parts.split_first().expect("fields() returns at least one");
        for arch in [Arch::X86, Arch::Amd64, Arch::Arm64] {
            let decorated = decorations
                .iter()
                .find(|d| {
                    d.to_ascii_lowercase()
                        .starts_with(&arch.inf_decoration().to_ascii_lowercase())
                })
                .map(|d| format!("{base}.{d}"));
            let candidates = [decorated, Some(base.clone())];
            let Some(entries) = candidates.iter().flatten().find_map(|s| inf.section(s)) else {
                continue;
            };
            for entry in entries {
                let fields = entry.fields();
                let Some((section, ids)) = fields.split_first() else {
                    continue;
                };
                if ids.iter().any(|id| id.eq_ignore_ascii_case(HARDWARE_ID)) {
                    device_desc = inf.resolve(&entry.key);
                    // Windows picks the most specific decorated DDInstall section.
                    let best = [
                        format!("{section}.{}", arch.inf_decoration()),
                        format!("{section}.NT"),
                    ]
                    .into_iter()
                    .find(|s| inf.section(s).is_some())
                    .unwrap_or_else(|| section.to_string());
                    install_section.insert(arch, best);
                    break;
                }
            }
        }
    }
    InfInfo {
        provider,
        manufacturer,
        device_desc,
        date,
        version,
        install_section,
    }
}

/// A driver package directory.
#[derive(Debug, Clone)]
pub struct Package {
    pub dir: PathBuf,
    pub inf_path: PathBuf,
    pub inf: InfInfo,
}

impl Package {
    /// Opens `dir`, or `target/package` under the current directory when `dir` is `None`.
    pub fn open(dir: Option<&Path>) -> Result<Package> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => {
                let d = PathBuf::from("target").join("package");
                if !d.is_dir() {
                    return Err(Error::new(
                        ErrorKind::Package,
                        "no driver package: target/package does not exist here; pass --package DIR \
                         (a directory with rvblk.inf and x86/, amd64/, arm64/rvblk.sys)",
                    ));
                }
                d
            }
        };
        if !dir.is_dir() {
            return Err(Error::new(
                ErrorKind::Package,
                format!("{}: driver package directory not found", dir.display()),
            ));
        }
        let inf_path = dir.join(INF_NAME);
        let bytes = std::fs::read(&inf_path).map_err(|e| {
            Error::new(
                ErrorKind::Package,
                format!("{}: cannot read the driver INF: {e}", inf_path.display()),
            )
        })?;
        let inf = parse_inf(&bytes);
        Ok(Package { dir, inf_path, inf })
    }

    /// The driver binary for `arch`, or an error naming what is missing.
    pub fn sys_for(&self, arch: Arch) -> Result<PathBuf> {
        let p = self.dir.join(arch.dir()).join(SYS_NAME);
        if !p.is_file() {
            return Err(Error::new(
                ErrorKind::Package,
                format!(
                    "the driver package {} has no {} driver ({} is missing)",
                    self.dir.display(),
                    arch,
                    p.display()
                ),
            ));
        }
        Ok(p)
    }

    /// The test certificate shipped with the package, if any.
    pub fn test_cert(&self) -> Option<PathBuf> {
        let p = self.dir.join(TEST_CERT);
        p.is_file().then_some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inf_facts() {
        let inf = b"[Version]\r\nSignature=\"$WINDOWS NT$\"\r\nProvider=%Prov%\r\nDriverVer=03/07/2025,1.2.3.4 ; c\r\n\
[Manufacturer]\r\n%Mfg%=Models,NTx86,NTamd64\r\n[Models.NTamd64]\r\n%Desc%=rvblk_Inst,ROOT\\RVBLK\r\n\
[Models.NTx86]\r\n%Desc%=rvblk_Inst,ROOT\\RVBLK\r\n[rvblk_Inst.NTamd64]\r\n[rvblk_Inst]\r\n\
[Strings]\r\nProv=\"rvblk project\"\r\nMfg=\"rvblk\"\r\nDesc=\"rvblk RAM disk\"\r\n";
        let i = parse_inf(inf);
        assert_eq!(i.provider, "rvblk project");
        assert_eq!(i.device_desc, "rvblk RAM disk");
        assert_eq!(i.version, "1.2.3.4");
        assert_eq!(i.driver_date(), "3-7-2025");
        assert_eq!(i.section_for(Arch::Amd64), "rvblk_Inst.NTamd64");
        assert_eq!(i.section_for(Arch::X86), "rvblk_Inst");
        // 2025-03-07 00:00 UTC as FILETIME
        assert_eq!(
            u64::from_le_bytes(i.driver_date_data()),
            133_857_792_000_000_000
        );
    }
}
