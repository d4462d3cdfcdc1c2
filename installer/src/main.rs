//! `rvblk-install`: see `rvblk-install --help` and docs/installer.md.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[cfg(windows)]
mod win;

/// Installs, removes and inspects the rvblk RAM disk / RAM CD-ROM driver on a running Windows.
///
/// Run it from an elevated command prompt ("Run as administrator"). It uses only what Windows
/// has (SetupAPI, the service manager); no WDK tools are needed.
#[derive(Parser, Debug)]
#[command(
    name = "rvblk-install",
    version,
    after_help = "Exit status: 0 done (install: the driver runs), 3 installed but not running (the \
                  reason is printed), 1 error (nothing was changed unless the message says so), \
                  2 usage."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Stage the driver package, create the ROOT\RVBLK device if there is none, install the
    /// driver on it and report whether it runs (and if not, why). Running it again changes
    /// nothing.
    Install {
        /// The package directory (holding rvblk.inf, rvblk.cat and <arch>\rvblk.sys). Default:
        /// the package this program ships in (two levels up), else the current directory.
        #[arg(long, value_name = "DIR")]
        package: Option<PathBuf>,
        /// Windows XP / Server 2003: explains how to install rvblkxp.sys there instead.
        #[arg(long)]
        xp: bool,
        /// Print what would be done and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove every ROOT\RVBLK device node, the staged package (oem*.inf), the rvblk service and
    /// system32\drivers\rvblk.sys. Device nodes that are not rvblk's are never touched.
    Remove {
        /// Keep the package in the driver store.
        #[arg(long)]
        keep_package: bool,
        /// Print what would be done and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show the installed version, device node and service state, test signing and Secure Boot,
    /// why the driver is not running, and the RAM images the running driver exposes.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Command::Install { xp: true, .. } = cli.command {
        eprintln!("rvblk-install: {}", rvblk_install::XP_UNSUPPORTED);
        std::process::exit(2);
    }
    #[cfg(windows)]
    let code = win::run(cli.command);
    #[cfg(not(windows))]
    let code = {
        let _ = cli;
        eprintln!("rvblk-install: this program runs on Windows");
        2
    };
    std::process::exit(code);
}
