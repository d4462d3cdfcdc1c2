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

/// One emulated Windows disk (`--disk FILE[:SECTOR]`): a host file served through IRPs
/// (`docs/harness-disks.md` §3).
#[derive(Clone, Debug)]
pub struct DiskSpec {
    pub path: std::path::PathBuf,
    /// Bytes per sector: 512 (default), 2048 or 4096.
    pub sector: u32,
    /// Writes fail with STATUS_MEDIA_WRITE_PROTECTED (`--disk-read-only`).
    pub read_only: bool,
}

impl DiskSpec {
    /// `FILE` or `FILE:SECTOR` (SECTOR one of 512, 2048, 4096).
    pub fn parse(s: &str, read_only: bool) -> Result<DiskSpec, String> {
        let (path, sector) = match s.rsplit_once(':') {
            Some((p, n)) if !p.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => {
                let sector: u32 = n
                    .parse()
                    .map_err(|_| format!("--disk {s}: bad sector size {n:?}"))?;
                if !matches!(sector, 512 | 2048 | 4096) {
                    return Err(format!(
                        "--disk {s}: sector size {sector} (512, 2048 or 4096)"
                    ));
                }
                (p, sector)
            }
            _ => (s, 512),
        };
        Ok(DiskSpec {
            path: path.into(),
            sector,
            read_only,
        })
    }
}

/// The machine around the driver beyond physical memory: disks that arrive through PnP, their
/// timing, and the firmware's variables (`docs/harness-disks.md`).
#[derive(Clone, Debug)]
pub struct MachineConfig {
    pub disks: Vec<DiskSpec>,
    /// Disk interface arrivals are delivered this long after the driver registered.
    pub arrival_ms: u64,
    /// Disk i arrives `i × stagger_ms` after disk 0 (0: all together).
    pub stagger_ms: u64,
    /// Surprise-remove every disk this long after its arrival.
    pub remove_ms: Option<u64>,
    /// Every `pend_every`-th IRP pends (0: none; 1: all; default 2: every other one).
    pub pend_every: u32,
    /// How long a pended IRP takes to complete.
    pub pend_us: u64,
    /// Asynchronous IRPs after the first `hang_async_after` never complete unless cancelled
    /// (`--disk-hang-async-after`; 0: none hang).
    pub hang_async_after: u64,
    /// Every `startio_dispatch_every`-th HwStartIo runs at DISPATCH_LEVEL, the others at
    /// PASSIVE (`--startio-dispatch-every`; default 1: all at DISPATCH, as StorPort usually
    /// calls it; 0: all at PASSIVE, as the bench runs).
    pub startio_dispatch_every: u64,
    /// The disks' device objects do buffered I/O (`DO_BUFFERED_IO`) instead of direct I/O
    /// (`--disk-buffered-io`): the driver must not use its fast path on them.
    pub disk_buffered_io: bool,
    /// UEFI variables under Ventoy's vendor GUID; empty = a BIOS machine.
    pub uefi_vars: Vec<(String, Vec<u8>)>,
    /// The RAM MmAllocatePagesForMdlEx may hand out in total (`--ram-limit-mib`,
    /// `docs/harness-runtime.md` §3).
    pub ram_limit_mib: u64,
    /// Who sends control requests (`--requester`, `docs/harness-runtime.md` §1).
    pub requester: Requester,
}

/// The requester of a control request as the emulated I/O manager presents it in the IRP at
/// SRB.OriginalRequest (`docs/harness-runtime.md` §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requester {
    /// UserMode, a thread whose token is an elevated administrator's.
    Admin,
    /// UserMode, a UAC non-elevated administrator (Administrators deny-only: not admin).
    Filtered,
    /// UserMode, a standard user.
    User,
    /// KernelMode: a request built by kernel code (its thread runs with SYSTEM's token).
    Kernel,
    /// An IRP whose Thread is NULL (the requester cannot be proven).
    NoThread,
    /// No IRP at all (OriginalRequest NULL).
    NoIrp,
}

impl Requester {
    pub fn parse(s: &str) -> Option<Requester> {
        match s {
            "admin" => Some(Requester::Admin),
            "filtered" => Some(Requester::Filtered),
            "user" => Some(Requester::User),
            "kernel" => Some(Requester::Kernel),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Requester::Admin => "admin",
            Requester::Filtered => "filtered",
            Requester::User => "user",
            Requester::Kernel => "kernel",
            Requester::NoThread => "no-thread",
            Requester::NoIrp => "no-irp",
        }
    }
    /// RequestorMode UserMode (1) rather than KernelMode (0).
    pub fn user_mode(self) -> bool {
        matches!(
            self,
            Requester::Admin | Requester::Filtered | Requester::User
        )
    }
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            disks: Vec::new(),
            arrival_ms: 0,
            stagger_ms: 0,
            remove_ms: None,
            pend_every: 2,
            pend_us: 50,
            hang_async_after: 0,
            startio_dispatch_every: 1,
            disk_buffered_io: false,
            uefi_vars: Vec::new(),
            ram_limit_mib: 256,
            requester: Requester::Admin,
        }
    }
}
