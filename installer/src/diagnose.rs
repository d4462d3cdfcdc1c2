//! Why the driver is not running, in words a user can act on (docs/installer.md §4). The inputs
//! are what Windows reports (the service start error, the device node's problem code) and the
//! machine's signing state; the Windows layer gathers them, this module decides.

use std::fmt;

/// Win32 error codes that `StartService` returns for a kernel driver.
pub mod win32 {
    pub const FILE_NOT_FOUND: u32 = 2;
    pub const PATH_NOT_FOUND: u32 = 3;
    pub const MOD_NOT_FOUND: u32 = 126;
    pub const PROC_NOT_FOUND: u32 = 127;
    pub const BAD_EXE_FORMAT: u32 = 193;
    /// STATUS_INVALID_IMAGE_HASH: code integrity refused the signature.
    pub const INVALID_IMAGE_HASH: u32 = 577;
    pub const SERVICE_ALREADY_RUNNING: u32 = 1056;
    pub const SERVICE_DISABLED: u32 = 1058;
    pub const SERVICE_MARKED_FOR_DELETE: u32 = 1072;
    pub const DRIVER_BLOCKED: u32 = 1275;
    /// What Wine 8's service manager returns when winedevice.exe cannot load rvblk.sys (it
    /// has no storport.sys to import from); measured, docs/installer.md §8.
    pub const DLL_INIT_FAILED: u32 = 1114;
}

/// Device node problem codes (cfg.h `CM_PROB_*`) that say why a device did not start.
pub mod problem {
    pub const FAILED_START: u32 = 10;
    pub const NEED_RESTART: u32 = 14;
    pub const DISABLED: u32 = 22;
    pub const FAILED_DRIVER_ENTRY: u32 = 37;
    pub const DRIVER_FAILED_LOAD: u32 = 39;
    pub const UNSIGNED_DRIVER: u32 = 52;
}

/// The machine, as far as the reasons depend on it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Environment {
    /// `TESTSIGNING` in the boot options of the running system; `None` if not reported.
    pub test_signing: Option<bool>,
    /// UEFI Secure Boot as Windows reports it; `None` on BIOS machines or if not reported.
    pub secure_boot: Option<bool>,
    /// Windows build number (`CurrentBuildNumber`).
    pub build: Option<u32>,
    /// Wine's version when the program runs under Wine.
    pub wine: Option<String>,
    /// `system32\drivers\storport.sys` exists (Vista SP1 and later; Wine has none).
    pub storport: bool,
}

/// Windows 11 24H2 and Windows Server 2025 (build 26100) and later get the kernel trust policy
/// of the April 2026 update: outside test mode only WHCP-signed kernel drivers load.
pub const KERNEL_TRUST_POLICY_BUILD: u32 = 26100;

impl Environment {
    pub fn kernel_trust_policy(&self) -> bool {
        self.wine.is_none() && self.build.is_some_and(|b| b >= KERNEL_TRUST_POLICY_BUILD)
    }
}

/// What happened when the driver was (or would be) started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Running,
    /// Windows asked for a restart before the device can start.
    NeedsRestart,
    /// `StartService` failed with this Win32 error.
    StartFailed(u32),
    /// The device node reports this problem code (no start attempted).
    Problem(u32),
    /// Stopped, and nothing says why.
    Stopped,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    SecureBoot,
    TestSigningOff { trust_policy: bool },
    SignatureRejected,
    BlockedByPolicy { trust_policy: bool },
    NoStorPort { wine: Option<String> },
    DriverFileMissing,
    Disabled,
    PendingDelete,
    NeedsRestart,
    Other(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const TESTSIGN: &str = "run `bcdedit /set testsigning on` as Administrator and restart";
        match self {
            Reason::SecureBoot => write!(
                f,
                "Secure Boot is on, and with Secure Boot Windows loads only kernel drivers signed \
                 by Microsoft; the package is test-signed. Turn Secure Boot off in the firmware \
                 setup, then {TESTSIGN}"
            ),
            Reason::TestSigningOff { trust_policy } => {
                write!(
                    f,
                    "test signing is off, so Windows refused the test-signed driver. To allow it, \
                     {TESTSIGN}"
                )?;
                if *trust_policy {
                    write!(
                        f,
                        ". (This Windows also has the April 2026 kernel trust policy: outside \
                         test mode it loads only drivers signed through Microsoft's hardware \
                         program (WHCP), so re-signing with a certificate of your own does not \
                         help either)"
                    )?;
                }
                Ok(())
            }
            Reason::SignatureRejected => write!(
                f,
                "test signing is on, but Windows still rejected the driver's signature: the file \
                 does not match its signature (was it changed after signing?). Reinstall from \
                 the package as built, or re-sign it (rvblk sign)"
            ),
            Reason::BlockedByPolicy { trust_policy } => {
                write!(f, "Windows blocked the driver by policy")?;
                if *trust_policy {
                    write!(
                        f,
                        ": the April 2026 kernel trust policy admits only WHCP-signed drivers \
                         unless test signing is on ({TESTSIGN}); an App Control policy or the \
                         vulnerable-driver blocklist can block it too"
                    )
                } else {
                    write!(
                        f,
                        " (App Control / Device Guard, or the vulnerable-driver blocklist)"
                    )
                }
            }
            Reason::NoStorPort { wine: Some(v) } => write!(
                f,
                "this is Wine ({v}), which has no StorPort (storport.sys): the driver is \
                 installed but cannot run here; it runs on Windows Vista SP1 and later"
            ),
            Reason::NoStorPort { wine: None } => write!(
                f,
                "this Windows has no StorPort (system32\\drivers\\storport.sys), which rvblk.sys \
                 runs on: it needs Windows Vista SP1 or later (for XP/2003 use the xp\\ files of \
                 the package)"
            ),
            Reason::DriverFileMissing => write!(
                f,
                "the driver file system32\\drivers\\rvblk.sys is missing; run `rvblk-install \
                 install` again"
            ),
            Reason::Disabled => write!(f, "the device or its service is disabled"),
            Reason::PendingDelete => write!(
                f,
                "the service is marked for deletion by an earlier remove; restart Windows, then \
                 install again"
            ),
            Reason::NeedsRestart => write!(f, "Windows needs a restart to start the driver"),
            Reason::Other(s) => f.write_str(s),
        }
    }
}

/// The signing-related reason, ranked: Secure Boot first (test signing cannot be turned on while
/// it is on), then test signing.
fn signature(env: &Environment) -> Reason {
    match (env.secure_boot, env.test_signing) {
        (Some(true), _) => Reason::SecureBoot,
        (_, Some(true)) => Reason::SignatureRejected,
        _ => Reason::TestSigningOff {
            trust_policy: env.kernel_trust_policy(),
        },
    }
}

/// Why the driver is not running, or `None` if it is.
pub fn reason(outcome: Outcome, env: &Environment) -> Option<Reason> {
    // A missing StorPort explains any load failure better than the raw code (Wine reports
    // DLL_INIT_FAILED, Windows a missing module).
    let no_storport = || Reason::NoStorPort {
        wine: env.wine.clone(),
    };
    Some(match outcome {
        Outcome::Running => return None,
        Outcome::NeedsRestart | Outcome::Problem(problem::NEED_RESTART) => Reason::NeedsRestart,
        _ if !env.storport => no_storport(),
        Outcome::StartFailed(win32::SERVICE_ALREADY_RUNNING) => return None,
        Outcome::StartFailed(win32::INVALID_IMAGE_HASH)
        | Outcome::Problem(problem::UNSIGNED_DRIVER) => signature(env),
        Outcome::StartFailed(win32::DRIVER_BLOCKED) => Reason::BlockedByPolicy {
            trust_policy: env.kernel_trust_policy(),
        },
        Outcome::StartFailed(win32::FILE_NOT_FOUND | win32::PATH_NOT_FOUND) => {
            Reason::DriverFileMissing
        }
        Outcome::StartFailed(win32::MOD_NOT_FOUND | win32::PROC_NOT_FOUND) => no_storport(),
        Outcome::StartFailed(win32::SERVICE_DISABLED) | Outcome::Problem(problem::DISABLED) => {
            Reason::Disabled
        }
        Outcome::StartFailed(win32::SERVICE_MARKED_FOR_DELETE) => Reason::PendingDelete,
        Outcome::StartFailed(code) => Reason::Other(format!(
            "the driver did not start (Windows error {code}); see the System event log"
        )),
        Outcome::Problem(code) => Reason::Other(format!(
            "the device did not start (Device Manager problem code {code})"
        )),
        Outcome::Stopped => Reason::Other("the driver is not running".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(build: u32) -> Environment {
        Environment {
            test_signing: Some(false),
            secure_boot: Some(false),
            build: Some(build),
            wine: None,
            storport: true,
        }
    }

    #[test]
    fn signature_failures_are_explained_by_the_signing_state() {
        let bad = Outcome::StartFailed(win32::INVALID_IMAGE_HASH);
        let mut env = windows(19045);
        assert_eq!(
            reason(bad, &env),
            Some(Reason::TestSigningOff {
                trust_policy: false
            })
        );
        assert_eq!(
            reason(Outcome::Problem(problem::UNSIGNED_DRIVER), &env),
            reason(bad, &env)
        );
        env.build = Some(26100);
        let r = reason(bad, &env).unwrap();
        assert_eq!(r, Reason::TestSigningOff { trust_policy: true });
        assert!(r.to_string().contains("April 2026"), "{r}");
        env.secure_boot = Some(true);
        let r = reason(bad, &env).unwrap();
        assert_eq!(r, Reason::SecureBoot);
        assert!(r.to_string().contains("Secure Boot is on"));
        env.secure_boot = None;
        env.test_signing = Some(true);
        assert_eq!(reason(bad, &env), Some(Reason::SignatureRejected));
        env.test_signing = None;
        assert!(matches!(
            reason(bad, &env),
            Some(Reason::TestSigningOff { .. })
        ));
    }

    #[test]
    fn policy_blocks_name_the_trust_policy_only_where_it_applies() {
        let blocked = Outcome::StartFailed(win32::DRIVER_BLOCKED);
        let r = reason(blocked, &windows(26200)).unwrap();
        assert!(
            r.to_string().contains("April 2026 kernel trust policy"),
            "{r}"
        );
        let r = reason(blocked, &windows(22631)).unwrap();
        assert!(!r.to_string().contains("April 2026"), "{r}");
    }

    #[test]
    fn wine_and_old_windows_lack_storport() {
        let mut env = windows(19043);
        env.storport = false;
        env.wine = Some("wine-8.0".into());
        for o in [
            Outcome::StartFailed(win32::DLL_INIT_FAILED),
            Outcome::StartFailed(win32::INVALID_IMAGE_HASH),
            Outcome::Stopped,
        ] {
            let r = reason(o, &env).unwrap();
            assert!(
                r.to_string()
                    .contains("Wine (wine-8.0), which has no StorPort"),
                "{r}"
            );
        }
        env.wine = None;
        assert!(reason(Outcome::Stopped, &env)
            .unwrap()
            .to_string()
            .contains("Vista SP1"));
        let env = windows(7601);
        assert_eq!(
            reason(Outcome::StartFailed(win32::MOD_NOT_FOUND), &env),
            Some(Reason::NoStorPort { wine: None })
        );
    }

    #[test]
    fn other_outcomes() {
        let env = windows(19045);
        assert_eq!(reason(Outcome::Running, &env), None);
        assert_eq!(
            reason(Outcome::StartFailed(win32::SERVICE_ALREADY_RUNNING), &env),
            None
        );
        assert_eq!(
            reason(Outcome::NeedsRestart, &env),
            Some(Reason::NeedsRestart)
        );
        assert_eq!(
            reason(Outcome::StartFailed(win32::FILE_NOT_FOUND), &env),
            Some(Reason::DriverFileMissing)
        );
        assert_eq!(
            reason(Outcome::StartFailed(win32::SERVICE_MARKED_FOR_DELETE), &env),
            Some(Reason::PendingDelete)
        );
        let r = reason(Outcome::StartFailed(31), &env).unwrap();
        assert!(r.to_string().contains("Windows error 31"));
        let r = reason(Outcome::Problem(problem::FAILED_START), &env).unwrap();
        assert!(r.to_string().contains("problem code 10"));
    }
}
