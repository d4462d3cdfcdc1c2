//! Command-line entry points, called by the `rvblk` binary with the arguments after the command word.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// `--arch` of XP menus: the setup CD's architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MenuArch {
    X86,
    Amd64,
}

impl From<MenuArch> for XpArch {
    fn from(a: MenuArch) -> XpArch {
        match a {
            MenuArch::X86 => XpArch::X86,
            MenuArch::Amd64 => XpArch::Amd64,
        }
    }
}

use crate::menu::{menu_lst, MenuOptions};
use crate::slipstream::{self, Change, Options, Report};
use crate::{write_xp_package, XpArch, XpError};

/// Windows XP / Server 2003 (x86 and x64): put the legacy SCSIPORT driver rvblkxp.sys where setup
/// needs it.
#[derive(Debug, Parser)]
#[command(
    name = "rvblk xp",
    after_help = "Two ways to give XP setup the driver:\n  \
        - F6: boot with rvblk-f6.img (x86) or rvblk-f6-amd64.img (XP x64 / Server 2003 x64)\n    \
          mapped as (fd0) (see `rvblk xp menu`);\n  \
        - slipstream: add it to the i386 (or amd64) directory of the setup source\n    \
          (`rvblk xp slipstream`), then rebuild the ISO. Setup cannot copy OEM files back from a\n    \
          RAM floppy in text mode, so slipstreaming is the more reliable of the two."
)]
struct XpCli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add rvblkxp.sys to an XP/2003 i386 or amd64 setup source (txtsetup.sif, dosnet.inf)
    #[command(
        long_about = "Add rvblkxp.sys to an XP/2003 setup source: the i386 directory of 32-bit\n\
        XP/2003, or the amd64 directory of XP x64 / Server 2003 x64 (which gets the x64 driver).\n\n\
        Copies the driver (uncompressed) into the directory and adds to txtsetup.sif the lines\n\
        [SourceDisksFiles]     rvblkxp.sys = 1,,,,,,4_,4,1,,,1,4\n\
        [SCSI.Load]            rvblkxp = rvblkxp.sys,4\n\
        [SCSI]                 rvblkxp = \"rvblk RAM disk/CD (GRUB4DOS/MEMDISK)\"\n\
        [HardwareIdsDatabase]  DETECTED\\Isa\\rvblkxp = \"rvblkxp\", DETECTED\\rvblkxp = \"rvblkxp\"\n\
        and to dosnet.inf [Files] the line d1,rvblkxp.sys. In an amd64 tree the first line goes to\n\
        [SourceDisksFiles.amd64] (to [SourceDisksFiles] if there is none).\n\n\
        Running it again changes nothing. The first change to each file saves its original as\n\
        <file>.rvblk-orig (never overwritten). Files are edited in their own encoding and line\n\
        ends; anything unexpected (no [SCSI.Load] section, binary data, UTF-16 without BOM, an\n\
        ia64 tree, a driver of the other architecture...) is refused and left unchanged."
    )]
    Slipstream {
        /// The i386 or amd64 directory of the setup source (holding txtsetup.sif), changed in
        /// place; or an XP/2003 ISO, with -o
        #[arg(value_name = "SETUP_DIR|ISO")]
        setup_dir: PathBuf,
        /// The new ISO to write (for an ISO input; the input is never modified)
        #[arg(short = 'o', long, value_name = "OUT.iso", conflicts_with = "remove")]
        output: Option<PathBuf>,
        /// Driver package directory holding xp/rvblkxp.sys (x86) and xp/amd64/rvblkxp.sys (x64)
        /// [default: the package built into rvblk, else target/package]
        #[arg(long, value_name = "DIR")]
        package: Option<PathBuf>,
        /// Use FILE as rvblkxp.sys instead of the package's driver for the tree's architecture
        #[arg(long, value_name = "FILE", conflicts_with = "remove")]
        driver: Option<PathBuf>,
        /// Expose RAM hard-disk images during setup too (installs service rvblkxpd instead of
        /// rvblkxp). Careful: setup installs to the lowest-numbered disk
        #[arg(long, conflicts_with = "remove")]
        disks: bool,
        /// Undo: restore the backups if nothing else changed the files, else remove rvblk's lines
        #[arg(long)]
        remove: bool,
    },
    /// Print a GRUB4DOS menu.lst for installing XP from an ISO in RAM (text mode, GUI mode, first
    /// boot); the same as `rvblk menu --loader grub4dos --xp`
    Menu {
        /// Path of the XP/2003 ISO on the boot device
        #[arg(long, value_name = "PATH", default_value = "/xp.iso")]
        iso: String,
        /// Path of the rvblk F6 floppy image on the boot device [default: /rvblk-f6.img, or
        /// /rvblk-f6-amd64.img with --arch amd64]
        #[arg(long, value_name = "PATH")]
        f6: Option<String>,
        /// The setup CD's architecture (amd64: XP x64 / Server 2003 x64)
        #[arg(long, value_enum, default_value = "x86")]
        arch: MenuArch,
        /// map --mem --top: place the ISO at the top of RAM (above 4 GiB needs x64)
        #[arg(long)]
        top: bool,
        /// Do not swap (hd0) and (hd1) (the swap is for booting from a USB stick)
        #[arg(long)]
        no_swap: bool,
    },
    /// Write txtsetup.oem, rvblkxp.inf, the tag file and the F6 floppy images into a driver package
    #[command(
        long_about = "Write txtsetup.oem, rvblkxp.inf and the tag file next to each driver of a\n\
        driver package, and one F6 floppy image per driver: xp/rvblkxp.sys (x86, required) gives\n\
        rvblk-f6.img, xp/amd64/rvblkxp.sys (x64, optional) gives rvblk-f6-amd64.img."
    )]
    Package {
        /// Driver package directory holding xp/rvblkxp.sys (and xp/amd64/rvblkxp.sys)
        #[arg(value_name = "DIR", default_value = "target/package")]
        package: PathBuf,
    },
}

/// `rvblk xp ...`.
pub fn xp(args: Vec<OsString>) -> ExitCode {
    xp_with(args, None)
}

/// `rvblk xp ...` with the package to use when no `--package` is given (the one embedded in the
/// `rvblk` binary); `None` falls back to `target/package`.
pub fn xp_with(args: Vec<OsString>, default_package: Option<&std::path::Path>) -> ExitCode {
    let argv = std::iter::once(OsString::from("rvblk xp")).chain(args);
    let cli = match XpCli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli.command, default_package) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvblk xp: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, default_package: Option<&std::path::Path>) -> Result<(), XpError> {
    match command {
        Command::Slipstream {
            setup_dir,
            output,
            package,
            driver,
            disks,
            remove,
        } => {
            let package = package
                .or_else(|| default_package.map(|p| p.to_path_buf()))
                .unwrap_or_else(|| PathBuf::from("target/package"));
            let driver_for = |arch: XpArch| -> Result<Vec<u8>, XpError> {
                let path = match &driver {
                    Some(path) => path.clone(),
                    None => package.join(arch.driver_path()),
                };
                std::fs::read(&path).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        XpError::Missing {
                            path: path.clone(),
                            hint:
                                "build the package (cargo xtask package) or give --package/--driver"
                                    .into(),
                        }
                    } else {
                        XpError::Io {
                            path: path.clone(),
                            action: "read",
                            source: e,
                        }
                    }
                })
            };
            let report = if remove {
                slipstream::remove(&setup_dir)?
            } else if setup_dir.is_file() {
                let Some(out) = output else {
                    return Err(XpError::Unsupported(format!(
                        "{}: give the new ISO with -o OUT.iso (the input ISO is never modified)",
                        setup_dir.display()
                    )));
                };
                crate::iso::slipstream_iso(&setup_dir, &out, &driver_for, Options { disks })?
            } else {
                if let Some(o) = output {
                    return Err(XpError::Unsupported(format!(
                        "-o {}: a setup directory is changed in place; -o is for an ISO input",
                        o.display()
                    )));
                }
                let arch: XpArch = slipstream::setup_arch(&setup_dir)?;
                slipstream::slipstream(&setup_dir, &driver_for(arch)?, Options { disks })?
            };
            print_report(&report);
            Ok(())
        }
        Command::Menu {
            iso,
            f6,
            arch,
            top,
            no_swap,
        } => {
            let arch = XpArch::from(arch);
            print!(
                "{}",
                menu_lst(&MenuOptions {
                    arch,
                    top,
                    iso,
                    f6: f6.unwrap_or_else(|| format!("/{}", arch.f6_image_name())),
                    swap_disks: !no_swap
                })
            );
            Ok(())
        }
        Command::Package { package } => {
            for image in write_xp_package(&package)? {
                println!("wrote {}", image.display());
            }
            Ok(())
        }
    }
}

fn print_report(report: &Report) {
    for (path, change) in &report.files {
        let what = match change {
            Change::Unchanged => "unchanged",
            Change::Written => "written",
            Change::Restored => "restored from backup",
            Change::Removed => "removed",
            Change::Skipped => "skipped",
        };
        println!("{what:>20}  {}", path.display());
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    if report.unchanged() {
        println!("nothing to do");
    }
}
