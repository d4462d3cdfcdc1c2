//! rvblk-install: installs, removes and inspects rvblk on a running Windows without the WDK
//! (docs/installer.md). The modules here hold every decision and build on any host; `win` (in the
//! binary, Windows only) observes the machine and carries the decisions out with SetupAPI,
//! newdev, cfgmgr32, the registry and the service control manager.

pub mod control;
pub mod diagnose;
pub mod package;
pub mod plan;
pub mod status;

/// Whether this process may change the machine, decided before anything is touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    Go,
    NotAdministrator,
    /// A 32-bit installer on 64-bit Windows: Windows refuses device installation from WOW64
    /// processes, and system32 would be redirected.
    Wow64,
}

pub fn gate(admin: bool, wow64: bool) -> Gate {
    if wow64 {
        Gate::Wow64
    } else if !admin {
        Gate::NotAdministrator
    } else {
        Gate::Go
    }
}

impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gate::Go => Ok(()),
            Gate::NotAdministrator => f.write_str(
                "this needs Administrator rights: run it from a command prompt opened with \
                 \"Run as administrator\". Nothing was changed",
            ),
            Gate::Wow64 => f.write_str(
                "this is the 32-bit installer on 64-bit Windows, which cannot install devices: \
                 run installer\\amd64\\rvblk-install.exe (installer\\arm64 is not built; on \
                 Windows on Arm use pnputil). Nothing was changed",
            ),
        }
    }
}

/// The message for `install --xp`: the XP/2003 flavour is not installed by this program.
pub const XP_UNSUPPORTED: &str = "\
rvblk-install does not install the XP/2003 driver: it is built with Rust's standard library for \
Windows 7 and later and does not start on Windows XP or Server 2003. On XP/2003 install \
rvblkxp.sys with the package's xp\\ files instead: press F6 in text-mode setup and use the F6 \
floppy (rvblk-f6.img, or rvblk-f6-amd64.img for x64), slipstream it with `rvblk xp slipstream`, \
or on a running XP/2003 use the Add Hardware wizard with xp\\rvblkxp.inf. Nothing was changed";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_order() {
        assert_eq!(gate(true, false), Gate::Go);
        assert_eq!(gate(false, false), Gate::NotAdministrator);
        assert_eq!(gate(false, true), Gate::Wow64);
        assert!(Gate::NotAdministrator
            .to_string()
            .contains("Run as administrator"));
    }
}
