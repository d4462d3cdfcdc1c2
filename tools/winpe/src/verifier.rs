//! Driver Verifier for `rvblk.sys`, switched on offline in an image's SYSTEM hive.
//!
//! There is no running system to type `verifier /standard /driver rvblk.sys` into before a WinPE
//! boots, so this writes what that command writes: `VerifyDrivers` (REG_SZ, the driver names
//! separated by spaces) and `VerifyDriverLevel` (REG_DWORD, the option bits) under
//! `Control\Session Manager\Memory Management` of every control set that boots. The values, the
//! bits and which Windows version knows which bit are in `docs/verifier.md`.

use crate::error::Result;
use crate::package::SYS_NAME;
use crate::store::{RegValue, RegistryHive};
use crate::system::boot_control_sets;
use bitflags::bitflags;
use std::fmt;
use std::str::FromStr;

/// The key, relative to a control set (`docs/verifier.md` §1).
pub const MM_KEY: &str = "Control\\Session Manager\\Memory Management";
pub const VALUE_DRIVERS: &str = "VerifyDrivers";
pub const VALUE_LEVEL: &str = "VerifyDriverLevel";

/// The first Windows 8 build; DDI compliance checking exists from there on (`docs/verifier.md` §2).
pub const BUILD_WINDOWS_8: u32 = 9200;

bitflags! {
    /// `VerifyDriverLevel` bits, as `verifier /flags` takes them (`docs/verifier.md` §2).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct VerifierFlags: u32 {
        const SPECIAL_POOL = 0x0000_0001;
        const FORCE_IRQL_CHECKING = 0x0000_0002;
        const LOW_RESOURCES_SIMULATION = 0x0000_0004;
        const POOL_TRACKING = 0x0000_0008;
        const IO_VERIFICATION = 0x0000_0010;
        const DEADLOCK_DETECTION = 0x0000_0020;
        const DMA_CHECKING = 0x0000_0080;
        const SECURITY_CHECKS = 0x0000_0100;
        const FORCE_PENDING_IO = 0x0000_0200;
        const IRP_LOGGING = 0x0000_0400;
        const MISCELLANEOUS_CHECKS = 0x0000_0800;
        const INVARIANT_MDL_STACK = 0x0000_2000;
        const INVARIANT_MDL_DRIVER = 0x0000_4000;
        const POWER_FRAMEWORK_DELAY_FUZZING = 0x0000_8000;
        const PORT_MINIPORT_CHECKING = 0x0001_0000;
        const DDI_COMPLIANCE = 0x0002_0000;
        const SYSTEMATIC_LOW_RESOURCES = 0x0004_0000;
        const DDI_COMPLIANCE_ADDITIONAL = 0x0008_0000;
        const NDIS_WIFI = 0x0020_0000;
        const KERNEL_SYNC_DELAY_FUZZING = 0x0080_0000;
        const VM_SWITCH = 0x0100_0000;
        const CODE_INTEGRITY = 0x0200_0000;
    }
}

impl VerifierFlags {
    /// What `verifier /standard` selects on Vista and 7.
    pub const STANDARD_VISTA: VerifierFlags = VerifierFlags::SPECIAL_POOL
        .union(VerifierFlags::FORCE_IRQL_CHECKING)
        .union(VerifierFlags::POOL_TRACKING)
        .union(VerifierFlags::IO_VERIFICATION)
        .union(VerifierFlags::DEADLOCK_DETECTION)
        .union(VerifierFlags::DMA_CHECKING)
        .union(VerifierFlags::SECURITY_CHECKS)
        .union(VerifierFlags::MISCELLANEOUS_CHECKS);
    /// What `verifier /standard` selects on Windows 8 and later: the above plus DDI compliance.
    pub const STANDARD: VerifierFlags = Self::STANDARD_VISTA.union(VerifierFlags::DDI_COMPLIANCE);

    /// The standard set for a Windows build (`None`: unknown, taken to be Windows 8 or later).
    pub fn standard_for(build: Option<u32>) -> VerifierFlags {
        match build {
            Some(b) if b < BUILD_WINDOWS_8 => Self::STANDARD_VISTA,
            _ => Self::STANDARD,
        }
    }
}

/// What `--verifier` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifierSetting {
    /// `verifier /standard` for the image's Windows version.
    Standard,
    /// Exactly these option bits.
    Level(VerifierFlags),
    /// Stop verifying rvblk.sys.
    Off,
}

impl FromStr for VerifierSetting {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("standard") {
            return Ok(VerifierSetting::Standard);
        }
        if t.eq_ignore_ascii_case("off") {
            return Ok(VerifierSetting::Off);
        }
        let n = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => t.parse::<u32>(),
        }
        .map_err(|_| {
            format!("{s:?} is not a verifier level: use standard, off, or the option bits as a number (e.g. 0x209bb, as `verifier /flags` takes them)")
        })?;
        if n == 0 {
            return Err(
                "level 0 selects no check; use --verifier off to stop verifying rvblk.sys".into(),
            );
        }
        let flags = VerifierFlags::from_bits(n).ok_or_else(|| {
            format!(
                "level {n:#x} has bits no Windows documents as a Driver Verifier option: {:#x} (see docs/verifier.md)",
                n & !VerifierFlags::all().bits()
            )
        })?;
        Ok(VerifierSetting::Level(flags))
    }
}

impl fmt::Display for VerifierSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifierSetting::Standard => f.write_str("standard"),
            VerifierSetting::Level(l) => write!(f, "{:#x}", l.bits()),
            VerifierSetting::Off => f.write_str("off"),
        }
    }
}

/// What [`apply`] did to a hive.
#[derive(Debug, Default)]
pub struct VerifierReport {
    pub changes: Vec<String>,
    pub warnings: Vec<String>,
}

/// The names in a `VerifyDrivers` string (space separated; `*` means every driver).
fn driver_list(v: Option<RegValue>) -> Vec<String> {
    v.and_then(|v| v.as_str())
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn is_rvblk(name: &str) -> bool {
    name.eq_ignore_ascii_case(SYS_NAME)
}

/// Sets or clears Driver Verifier for rvblk.sys in every boot control set. `build` is the image's
/// Windows build (WIM metadata), used for [`VerifierSetting::Standard`]; when it is unknown, a
/// control set with a CriticalDeviceDatabase (Vista/7 only) counts as Vista/7.
pub fn apply<H: RegistryHive>(
    h: &mut H,
    setting: VerifierSetting,
    build: Option<u32>,
) -> Result<VerifierReport> {
    let mut r = VerifierReport::default();
    for cs in boot_control_sets(h)? {
        let path = format!("{cs}\\{MM_KEY}");
        match setting {
            VerifierSetting::Off => {
                let Some(mm) = h.open_path(&path)? else {
                    continue;
                };
                let list = driver_list(h.value(mm, VALUE_DRIVERS)?);
                if list.iter().any(|d| d == "*") {
                    r.warnings.push(format!(
                        "{path}\\{VALUE_DRIVERS} is \"*\" (every driver): rvblk.sys stays verified; left alone"
                    ));
                    continue;
                }
                if !list.iter().any(|d| is_rvblk(d)) {
                    continue;
                }
                let rest: Vec<&str> = list
                    .iter()
                    .filter(|d| !is_rvblk(d))
                    .map(String::as_str)
                    .collect();
                if rest.is_empty() {
                    h.delete_value(mm, VALUE_DRIVERS)?;
                    h.delete_value(mm, VALUE_LEVEL)?;
                    r.changes.push(format!(
                        "Driver Verifier off: deleted {VALUE_DRIVERS} and {VALUE_LEVEL} from {path}"
                    ));
                } else {
                    h.set_value(mm, VALUE_DRIVERS, &RegValue::sz(&rest.join(" ")))?;
                    r.changes.push(format!(
                        "Driver Verifier off for rvblk.sys: {path}\\{VALUE_DRIVERS} = {:?}",
                        rest.join(" ")
                    ));
                    r.warnings.push(format!(
                        "{path}: {VALUE_LEVEL} kept, other drivers are still verified"
                    ));
                }
            }
            VerifierSetting::Standard | VerifierSetting::Level(_) => {
                let flags = match setting {
                    VerifierSetting::Level(l) => l,
                    _ => {
                        let vista = build.is_none()
                            && h.open_path(&format!("{cs}\\Control\\CriticalDeviceDatabase"))?
                                .is_some();
                        if vista {
                            VerifierFlags::STANDARD_VISTA
                        } else {
                            VerifierFlags::standard_for(build)
                        }
                    }
                };
                if build.is_some_and(|b| b < BUILD_WINDOWS_8) {
                    let newer = flags.difference(
                        VerifierFlags::STANDARD_VISTA.union(
                            VerifierFlags::LOW_RESOURCES_SIMULATION
                                .union(VerifierFlags::FORCE_PENDING_IO)
                                .union(VerifierFlags::IRP_LOGGING),
                        ),
                    );
                    if !newer.is_empty() {
                        r.warnings.push(format!(
                            "level {:#x} has options newer than this image's Windows (build {}): {:#x}",
                            flags.bits(),
                            build.unwrap_or_default(),
                            newer.bits()
                        ));
                    }
                }
                let mm = ensure_path(h, &path)?;
                let list = driver_list(h.value(mm, VALUE_DRIVERS)?);
                if list.iter().any(|d| d == "*") {
                    r.warnings.push(format!(
                        "{path}\\{VALUE_DRIVERS} is \"*\": every driver is verified, rvblk.sys included"
                    ));
                } else if !list.iter().any(|d| is_rvblk(d)) {
                    let mut new = list.clone();
                    new.push(SYS_NAME.to_string());
                    h.set_value(mm, VALUE_DRIVERS, &RegValue::sz(&new.join(" ")))?;
                    r.changes.push(format!(
                        "Driver Verifier on: {path}\\{VALUE_DRIVERS} = {:?}",
                        new.join(" ")
                    ));
                }
                if list.iter().any(|d| !is_rvblk(d) && d != "*") {
                    r.warnings.push(format!(
                        "{path}: other drivers are verified too ({}); {VALUE_LEVEL} applies to them as well",
                        list.join(" ")
                    ));
                }
                let want = RegValue::dword(flags.bits());
                if !h.value(mm, VALUE_LEVEL)?.is_some_and(|v| v.same_as(&want)) {
                    h.set_value(mm, VALUE_LEVEL, &want)?;
                    r.changes.push(format!(
                        "Driver Verifier level: {path}\\{VALUE_LEVEL} = {:#x}",
                        flags.bits()
                    ));
                }
            }
        }
    }
    Ok(r)
}

fn ensure_path<H: RegistryHive>(h: &mut H, path: &str) -> Result<H::Node> {
    let mut node = h.root();
    for part in path.split('\\').filter(|p| !p.is_empty()) {
        node = match h.child(node, part)? {
            Some(n) => n,
            None => h.add_child(node, part)?,
        };
    }
    Ok(node)
}

/// Driver Verifier's state in one control set, for `rvblk info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierState {
    /// `VerifyDrivers` as stored, if set.
    pub drivers: Option<String>,
    /// `VerifyDriverLevel`, if set.
    pub level: Option<u32>,
}

impl VerifierState {
    /// Whether rvblk.sys is in the list (by name or through `*`).
    pub fn covers_rvblk(&self) -> bool {
        self.drivers
            .as_deref()
            .is_some_and(|d| d.split_whitespace().any(|n| n == "*" || is_rvblk(n)))
    }

    /// One line: `on (level 0x209bb = standard, Windows 8+)`, `off`, ...
    pub fn describe(&self) -> String {
        if !self.covers_rvblk() {
            return match &self.drivers {
                Some(d) => format!("off for rvblk.sys (verifying {d:?})"),
                None => "off".into(),
            };
        }
        let level = match self.level {
            None => "not set: the kernel's default".to_string(),
            Some(l) if l == VerifierFlags::STANDARD.bits() => {
                format!("{l:#x} = standard (Windows 8 and later)")
            }
            Some(l) if l == VerifierFlags::STANDARD_VISTA.bits() => {
                format!("{l:#x} = standard (Vista/7)")
            }
            Some(l) => format!("{l:#x}"),
        };
        let others = self
            .drivers
            .as_deref()
            .map(|d| d.split_whitespace().filter(|n| !is_rvblk(n)).count())
            .unwrap_or(0);
        if others > 0 {
            format!(
                "on, level {level} (list {:?})",
                self.drivers.as_deref().unwrap_or_default()
            )
        } else {
            format!("on, level {level}")
        }
    }
}

/// Reads the verifier values of control set `cs`.
pub fn state<H: RegistryHive>(h: &H, cs: &str) -> Result<VerifierState> {
    let Some(mm) = h.open_path(&format!("{cs}\\{MM_KEY}"))? else {
        return Ok(VerifierState {
            drivers: None,
            level: None,
        });
    };
    Ok(VerifierState {
        drivers: h.value(mm, VALUE_DRIVERS)?.and_then(|v| v.as_str()),
        level: h.value(mm, VALUE_LEVEL)?.and_then(|v| v.as_dword()),
    })
}

/// The debug print filter key, relative to a control set (`docs/verifier.md` §4).
pub const DEBUG_PRINT_FILTER_KEY: &str = "Control\\Session Manager\\Debug Print Filter";
/// Its value for `DbgPrint`'s component, and the mask rvblk sets: error, warning, trace and
/// info levels (bits 0-3), so `DbgPrint` lines reach the debugger on Vista and later.
pub const DEBUG_PRINT_DEFAULT: &str = "DEFAULT";
pub const DEBUG_PRINT_MASK: u32 = 0xf;

/// Lets `DbgPrint` through to the kernel debugger (`on`) in every boot control set, or removes
/// the `DEFAULT` mask again if it is the one rvblk sets (`off`). Returns the change lines.
pub fn set_debug_print<H: RegistryHive>(h: &mut H, on: bool) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    let want = RegValue::dword(DEBUG_PRINT_MASK);
    for cs in boot_control_sets(h)? {
        let path = format!("{cs}\\{DEBUG_PRINT_FILTER_KEY}");
        if on {
            let key = ensure_path(h, &path)?;
            if !h
                .value(key, DEBUG_PRINT_DEFAULT)?
                .is_some_and(|v| v.same_as(&want))
            {
                h.set_value(key, DEBUG_PRINT_DEFAULT, &want)?;
                changes.push(format!(
                    "DbgPrint to the debugger: {path}\\{DEBUG_PRINT_DEFAULT} = {DEBUG_PRINT_MASK:#x}"
                ));
            }
        } else if let Some(key) = h.open_path(&path)? {
            if h.value(key, DEBUG_PRINT_DEFAULT)?
                .is_some_and(|v| v.same_as(&want))
            {
                h.delete_value(key, DEBUG_PRINT_DEFAULT)?;
                changes.push(format!("deleted {path}\\{DEBUG_PRINT_DEFAULT}"));
            }
        }
    }
    Ok(changes)
}

/// For `--verifier` on the command line: clap's value parser.
pub fn parse_setting(s: &str) -> std::result::Result<VerifierSetting, String> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_sets_match_the_documented_bits() {
        assert_eq!(VerifierFlags::STANDARD_VISTA.bits(), 0x9bb);
        assert_eq!(VerifierFlags::STANDARD.bits(), 0x209bb);
        assert_eq!(VerifierFlags::standard_for(Some(7601)).bits(), 0x9bb);
        assert_eq!(VerifierFlags::standard_for(Some(9200)).bits(), 0x209bb);
        assert_eq!(VerifierFlags::standard_for(None).bits(), 0x209bb);
    }

    #[test]
    fn levels_parse_or_fail_clearly() {
        assert_eq!("standard".parse(), Ok(VerifierSetting::Standard));
        assert_eq!("OFF".parse(), Ok(VerifierSetting::Off));
        assert_eq!(
            "0x9bb".parse(),
            Ok(VerifierSetting::Level(VerifierFlags::STANDARD_VISTA))
        );
        assert_eq!(
            "3".parse(),
            Ok(VerifierSetting::Level(
                VerifierFlags::SPECIAL_POOL | VerifierFlags::FORCE_IRQL_CHECKING
            ))
        );
        let e = "0x40".parse::<VerifierSetting>().unwrap_err();
        assert!(e.contains("0x40"), "{e}");
        let e = "0".parse::<VerifierSetting>().unwrap_err();
        assert!(e.contains("--verifier off"), "{e}");
        let e = "lots".parse::<VerifierSetting>().unwrap_err();
        assert!(e.contains("not a verifier level"), "{e}");
        let e = "0x1_0000_0000".parse::<VerifierSetting>().unwrap_err();
        assert!(e.contains("not a verifier level"), "{e}");
    }
}
