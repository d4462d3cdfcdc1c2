//! Which images to expose, decided from the XP flavour's configuration (`inf/xp/README.md`,
//! `docs/driver.md` "Setup mode": XP setup installs onto the lowest-numbered disk, so RAM
//! hard-disk images are hidden during text-mode and GUI-mode setup unless the user asks for
//! them). The StorPort flavour exposes everything ([`Exposure::ALL`]).
//!
//! Inputs, all read by the port and decided here: the HwFindAdapter `ArgumentString` (SCSIPORT
//! passes the `Parameters\Device` `DriverParameter` value), the service name (from
//! DriverEntry's registry path) and the setup phase (two registry values, [`SetupPhase::detect`]).

use crate::image::DeviceKind;
/// What `disks=` said, if anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisksOption {
    On,
    Off,
    Unset,
}

/// Parses `name=value` tokens separated by `;`, `,`, space or tab; names and values are
/// case-insensitive, unknown or malformed tokens are ignored, the last `disks=` wins. The string
/// ends at the first NUL (it comes from a C string) or at the end of the slice.
pub fn parse_disks_option(argument: &[u8]) -> DisksOption {
    let end = argument
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(argument.len());
    let mut result = DisksOption::Unset;
    for token in argument[..end].split(|&b| matches!(b, b';' | b',' | b' ' | b'\t')) {
        let Some(eq) = token.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (name, value) = (&token[..eq], &token[eq + 1..]);
        if !name.eq_ignore_ascii_case(b"disks") {
            continue;
        }
        if value.eq_ignore_ascii_case(b"on") {
            result = DisksOption::On;
        } else if value.eq_ignore_ascii_case(b"off") {
            result = DisksOption::Off;
        }
    }
    result
}

/// The service that always exposes disk images (`txtsetup.oem` entry "RAM CD + RAM disks").
pub const DISKS_SERVICE: &str = "rvblkxpd";

/// Which of the two XP services loaded the driver (`inf/xp/README.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// `rvblkxp` (or any other name): hard-disk images follow the setup phase.
    Default,
    /// [`DISKS_SERVICE`]: hard-disk images are always exposed.
    Disks,
}

impl Service {
    /// From DriverEntry's registry path, e.g.
    /// `\Registry\Machine\System\CurrentControlSet\Services\rvblkxpd` (UTF-16, any case).
    pub fn from_registry_path(registry_path: &[u16]) -> Self {
        let name = match registry_path.iter().rposition(|&w| w == u16::from(b'\\')) {
            Some(i) => &registry_path[i + 1..],
            None => registry_path,
        };
        if eq_ignore_ascii_case_utf16(name, DISKS_SERVICE) {
            Service::Disks
        } else {
            Service::Default
        }
    }
}

/// Where Windows stands, as a boot driver can tell at DriverEntry (`docs/driver.md` "Setup
/// mode", with the sources).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupPhase {
    /// XP/2003 text-mode setup: no `System\Setup\SystemSetupInProgress`, not booted `/MININT`.
    TextMode,
    /// GUI-mode setup: `SystemSetupInProgress` is non-zero.
    GuiMode,
    /// An installed system: `SystemSetupInProgress` is 0.
    Installed,
    /// A PE booted `/MININT` (WinPE, BartPE, LiveXP, UBCD4Win): its hive is derived from the
    /// setup hive and lacks `SystemSetupInProgress`, but it is not setup.
    MiniNt,
}

impl SetupPhase {
    /// From `HKLM\System\Setup\SystemSetupInProgress` (`None` when the value or key is
    /// absent) and `HKLM\System\CurrentControlSet\Control\SystemStartOptions` (the boot
    /// options the kernel records before boot drivers start; `None` when absent).
    pub fn detect(system_setup_in_progress: Option<u32>, start_options: Option<&[u16]>) -> Self {
        if start_options.is_some_and(has_minint) {
            return SetupPhase::MiniNt;
        }
        match system_setup_in_progress {
            Some(0) => SetupPhase::Installed,
            Some(_) => SetupPhase::GuiMode,
            None => SetupPhase::TextMode,
        }
    }

    /// Text-mode or GUI-mode setup: the phases that install onto a disk.
    pub const fn is_setup(self) -> bool {
        matches!(self, SetupPhase::TextMode | SetupPhase::GuiMode)
    }

    pub const fn name(self) -> &'static str {
        match self {
            SetupPhase::TextMode => "text-mode setup",
            SetupPhase::GuiMode => "GUI-mode setup",
            SetupPhase::Installed => "installed system",
            SetupPhase::MiniNt => "MININT (PE) boot",
        }
    }
}

/// Whether the boot options contain the `MININT` switch (space-separated, any case, with or
/// without the leading `/`; the value may end with a NUL).
fn has_minint(options: &[u16]) -> bool {
    let end = options
        .iter()
        .position(|&w| w == 0)
        .unwrap_or(options.len());
    options[..end]
        .split(|&w| w == u16::from(b' ') || w == u16::from(b'\t'))
        .map(|t| t.strip_prefix(&[u16::from(b'/')]).unwrap_or(t))
        .any(|t| eq_ignore_ascii_case_utf16(t, "MININT"))
}

/// Which image kinds the adapter presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exposure {
    disks: bool,
}

impl Exposure {
    /// Everything (StorPort, and XP outside setup).
    pub const ALL: Self = Self { disks: true };

    /// The XP flavour: an explicit `disks=` wins, then the service, then the setup phase.
    pub fn xp(option: DisksOption, service: Service, phase: SetupPhase) -> Self {
        let disks = match option {
            DisksOption::On => true,
            DisksOption::Off => false,
            DisksOption::Unset => service == Service::Disks || !phase.is_setup(),
        };
        Self { disks }
    }

    /// Whether an image of this kind becomes a LUN. CDs and floppies always do.
    pub const fn exposes(self, kind: DeviceKind) -> bool {
        self.disks || !matches!(kind, DeviceKind::Disk)
    }

    /// False when hard-disk images stay hidden.
    pub const fn disks(self) -> bool {
        self.disks
    }
}

/// Case-insensitive ASCII comparison of UTF-16 text with `name`.
fn eq_ignore_ascii_case_utf16(text: &[u16], name: &str) -> bool {
    text.len() == name.len()
        && text
            .iter()
            .zip(name.bytes())
            .all(|(&w, b)| u8::try_from(w).is_ok_and(|c| c.eq_ignore_ascii_case(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn w(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn parses_the_documented_syntax() {
        assert_eq!(parse_disks_option(b""), DisksOption::Unset);
        assert_eq!(parse_disks_option(b"disks=on"), DisksOption::On);
        assert_eq!(parse_disks_option(b"DISKS=Off"), DisksOption::Off);
        assert_eq!(parse_disks_option(b"foo=1; disks=on,bar"), DisksOption::On);
        assert_eq!(
            parse_disks_option(b"disks=on disks=off"),
            DisksOption::Off,
            "last one wins"
        );
        assert_eq!(
            parse_disks_option(b"disks=maybe"),
            DisksOption::Unset,
            "malformed values are ignored"
        );
        assert_eq!(
            parse_disks_option(b"disks=on\0disks=off"),
            DisksOption::On,
            "stops at NUL"
        );
        assert_eq!(parse_disks_option(b"=on;disks;disks="), DisksOption::Unset);
    }

    #[test]
    fn the_service_comes_from_the_registry_path() {
        let path = w("\\Registry\\Machine\\System\\CurrentControlSet\\Services\\RvBlkXpd");
        assert_eq!(Service::from_registry_path(&path), Service::Disks);
        assert_eq!(
            Service::from_registry_path(&w(
                "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\rvblkxp"
            )),
            Service::Default
        );
        assert_eq!(Service::from_registry_path(&w("rvblkxpd")), Service::Disks);
        assert_eq!(Service::from_registry_path(&w("")), Service::Default);
    }

    #[test]
    fn setup_phase_from_the_registry() {
        let installed = w(" NOEXECUTE=OPTIN FASTDETECT");
        let pe = w(" MININT FASTDETECT");
        assert_eq!(
            SetupPhase::detect(Some(0), Some(&installed)),
            SetupPhase::Installed
        );
        assert_eq!(
            SetupPhase::detect(Some(1), Some(&installed)),
            SetupPhase::GuiMode
        );
        assert_eq!(
            SetupPhase::detect(None, Some(&installed)),
            SetupPhase::TextMode
        );
        assert_eq!(SetupPhase::detect(None, None), SetupPhase::TextMode);
        assert_eq!(SetupPhase::detect(None, Some(&pe)), SetupPhase::MiniNt);
        assert_eq!(
            SetupPhase::detect(None, Some(&w("/minint\0"))),
            SetupPhase::MiniNt,
            "any case, slash and NUL tolerated"
        );
        assert_eq!(
            SetupPhase::detect(None, Some(&w("MININTX NOMININT"))),
            SetupPhase::TextMode,
            "whole words only"
        );
        assert!(SetupPhase::TextMode.is_setup() && SetupPhase::GuiMode.is_setup());
        assert!(!SetupPhase::MiniNt.is_setup() && !SetupPhase::Installed.is_setup());
    }

    #[test]
    fn exposure_option_then_service_then_phase() {
        use DisksOption::*;
        use SetupPhase::*;
        let disks = |e: Exposure| e.exposes(DeviceKind::Disk);
        assert!(
            !disks(Exposure::xp(Unset, Service::Default, TextMode)),
            "setup hides disks"
        );
        assert!(!disks(Exposure::xp(Unset, Service::Default, GuiMode)));
        assert!(disks(Exposure::xp(Unset, Service::Default, Installed)));
        assert!(
            disks(Exposure::xp(Unset, Service::Default, MiniNt)),
            "a PE shows disks"
        );
        assert!(
            disks(Exposure::xp(Unset, Service::Disks, TextMode)),
            "the disks service"
        );
        assert!(
            !disks(Exposure::xp(Off, Service::Disks, Installed)),
            "an explicit option wins"
        );
        assert!(disks(Exposure::xp(On, Service::Default, TextMode)));
        let hidden = Exposure::xp(Unset, Service::Default, TextMode);
        assert!(hidden.exposes(DeviceKind::CdRom) && hidden.exposes(DeviceKind::Floppy));
        assert!(Exposure::ALL.exposes(DeviceKind::Disk));
    }
}
