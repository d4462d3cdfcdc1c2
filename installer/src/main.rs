//! `rvblk-install`: see `rvblk-install --help` and docs/installer.md.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[cfg(windows)]
mod win;

/// Installs, removes and inspects the rvblk RAM disk / RAM CD-ROM driver on a running Windows,
/// and mounts image files and RAM disks through it.
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
    /// Serve an image file as a CD-ROM, disk or floppy through the running driver
    /// (docs/control.md). Default kind: CD-ROM for .iso files, disk otherwise.
    Mount {
        /// The image file (C:\images\win.iso, a relative path, \\server\share\x.img).
        file: String,
        /// A CD-ROM (2048-byte blocks, always read-only).
        #[arg(long, group = "kind")]
        cd: bool,
        /// A hard disk (512-byte blocks).
        #[arg(long, group = "kind")]
        disk: bool,
        /// A floppy (512-byte blocks, removable).
        #[arg(long, group = "kind")]
        floppy: bool,
        /// Refuse writes (CDs always do).
        #[arg(long)]
        ro: bool,
    },
    /// Create a RAM disk of SIZE bytes (64M, 1440K, 2G: binary units), zero-filled or with an
    /// image file's content.
    Ramdisk {
        /// The size; rounded up to whole blocks. Default with --from: the image's size.
        #[arg(required_unless_present = "from")]
        size: Option<String>,
        /// disk, cd or floppy.
        #[arg(long, value_enum, default_value_t = Kind::Disk)]
        kind: Kind,
        /// Copy this image file into the RAM disk (required for a RAM CD).
        #[arg(long, value_name = "IMAGE")]
        from: Option<String>,
        /// Refuse writes.
        #[arg(long)]
        ro: bool,
    },
    /// List the driver's LUNs: the images the boot loader left, mounted files and RAM disks.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a mounted file or RAM disk. TARGET is the target id `list` shows, or the file.
    /// Images the boot loader left cannot be ejected.
    Eject { target: String },
}

/// The device kind of `ramdisk --kind`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Disk,
    Cd,
    Floppy,
}

#[cfg(not(windows))]
impl Command {
    /// The commands that talk to the running driver (docs/control.md §8).
    fn is_control(&self) -> Option<&'static str> {
        match self {
            Command::Mount { .. } => Some("mount"),
            Command::Ramdisk { .. } => Some("ramdisk"),
            Command::List { .. } => Some("list"),
            Command::Eject { .. } => Some("eject"),
            _ => None,
        }
    }
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
        match cli.command.is_control() {
            Some(name) => eprintln!(
                "rvblk-install: `{name}` needs Windows: it asks the rvblk driver running there. \
                 Run the package's installer\\amd64\\rvblk-install.exe {name} … (x86: \
                 installer\\x86\\) on that machine"
            ),
            None => eprintln!("rvblk-install: this program runs on Windows"),
        }
        2
    };
    std::process::exit(code);
}
