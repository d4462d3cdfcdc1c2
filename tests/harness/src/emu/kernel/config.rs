//! What a session emulates: the Windows personality (which port, which HW_INITIALIZATION_DATA
//! it accepts), the XP setup phase the registry presents, and the legacy service configuration.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Personality {
    Win8,
    Win7,
    /// Windows XP/2003 SCSIPORT: a legacy (non-PnP) miniport, HwFindAdapter from inside
    /// ScsiPortInitialize, serialised HwStartIo, RequestComplete + NextRequest.
    Xp,
}

impl Personality {
    pub fn name(self) -> &'static str {
        match self {
            Personality::Win8 => "win8",
            Personality::Win7 => "win7",
            Personality::Xp => "xp",
        }
    }
    pub fn parse(s: &str) -> Option<Personality> {
        match s {
            "win8" | "win8+" | "win10" => Some(Personality::Win8),
            "win7" => Some(Personality::Win7),
            "xp" | "2003" | "scsiport" => Some(Personality::Xp),
            _ => None,
        }
    }
    /// The port driver this personality emulates.
    pub fn port(self) -> &'static str {
        match self {
            Personality::Xp => "SCSIPORT",
            _ => "StorPort",
        }
    }
}

/// Where Windows stands, as a boot driver sees it in the registry (`docs/driver.md` "Setup
/// mode"): `HKLM\System\Setup\SystemSetupInProgress` and the boot options the kernel records
/// in `HKLM\System\CurrentControlSet\Control\SystemStartOptions` before boot drivers start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupPhase {
    /// An installed system: the value exists and is 0.
    Installed,
    /// Text-mode setup: the setup hive has no `System\Setup` key at all.
    TextMode,
    /// GUI-mode setup: the value is 1.
    GuiMode,
    /// An XP-based PE (BartPE, LiveXP, UBCD4Win) booted `/MININT`: a hive derived from the
    /// setup hive, so no `System\Setup` key either, but `MININT` in the boot options. (The
    /// kernel's `Control\MiniNT` key appears only after boot drivers have started, so it is not
    /// emulated.)
    MiniNt,
}

impl SetupPhase {
    pub fn parse(s: &str) -> Option<SetupPhase> {
        match s {
            "installed" | "none" => Some(SetupPhase::Installed),
            "textmode" | "text" => Some(SetupPhase::TextMode),
            "guimode" | "gui" => Some(SetupPhase::GuiMode),
            "minint" | "pe" => Some(SetupPhase::MiniNt),
            _ => None,
        }
    }

    /// `SystemStartOptions` as the loader of this phase leaves it (the kernel stores the options
    /// without their slashes, after a leading space).
    pub(super) fn start_options(self) -> &'static str {
        match self {
            SetupPhase::Installed | SetupPhase::GuiMode => " NOEXECUTE=OPTIN FASTDETECT",
            // setupldr's options from txtsetup.sif [SetupData] OsLoadOptions.
            SetupPhase::TextMode => " FASTDETECT NOGUIBOOT NODEBUG",
            SetupPhase::MiniNt => " MININT FASTDETECT",
        }
    }
}

/// What a legacy (SCSIPORT) miniport gets from its service configuration.
#[derive(Clone, Debug)]
pub struct LegacyConfig {
    pub setup: SetupPhase,
    /// `Parameters\Device\DriverParameter`, passed to HwFindAdapter as ArgumentString.
    pub argument_string: Option<String>,
    /// The service name (the last component of DriverEntry's RegistryPath).
    pub service: Option<String>,
}

impl Default for LegacyConfig {
    fn default() -> Self {
        LegacyConfig {
            setup: SetupPhase::Installed,
            argument_string: None,
            service: None,
        }
    }
}
