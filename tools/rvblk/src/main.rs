//! `rvblk`: the project's command-line tool. Each area owns its subcommands in its own library
//! (`winpe`, `xp`, `sign` parse their own arguments); this binary dispatches, carries the driver
//! package (`package`, built in by `build.rs`) and prints boot-menu snippets (`menu`).

mod menu;

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_package.rs"));
}

#[derive(Parser, Debug)]
#[command(
    name = "rvblk",
    version,
    about = "rvblk — put the rvblk RAM-disk driver where Windows needs it",
    long_about = "rvblk — put the rvblk RAM-disk driver where Windows needs it.\n\n\
        The driver package (the signed drivers, INFs, F6 floppies) is built into this binary: \
        every command uses it when no --package is given (`rvblk package list`).",
    after_help = "Run `rvblk <COMMAND> --help` for the options of each command."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Arguments handed on to a library's own parser.
#[derive(clap::Args, Debug)]
struct Passthrough {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Inject rvblk into WinPE/Setup media (ISO in, ISO out; boot.wim, BCD)
    #[command(disable_help_flag = true)]
    Winpe(Passthrough),
    /// Windows XP/2003: slipstream into a setup ISO or i386/amd64 source, F6 files, menu
    #[command(disable_help_flag = true)]
    Xp(Passthrough),
    /// Create a test certificate, sign drivers and catalogs (Authenticode)
    #[command(disable_help_flag = true)]
    Sign(Passthrough),
    /// Show what rvblk finds in an ISO, a boot.wim, a BCD store or a SYSTEM hive
    #[command(disable_help_flag = true)]
    Info(Passthrough),
    /// Print the boot-menu snippet for a loader (GRUB4DOS, grub4efi, MEMDISK, Ventoy)
    Menu(menu::MenuArgs),
    /// The driver package built into this binary
    Package {
        #[command(subcommand)]
        cmd: PackageCmd,
    },
    /// Windows only: mount an image file through the running driver (rvblk-install.exe mount)
    #[command(disable_help_flag = true)]
    Mount(Passthrough),
    /// Windows only: create a RAM disk through the running driver (rvblk-install.exe ramdisk)
    #[command(disable_help_flag = true)]
    Ramdisk(Passthrough),
    /// Windows only: list the running driver's LUNs (rvblk-install.exe list)
    #[command(disable_help_flag = true)]
    List(Passthrough),
    /// Windows only: remove a mounted file or RAM disk (rvblk-install.exe eject)
    #[command(disable_help_flag = true)]
    Eject(Passthrough),
}

/// The control commands talk to a running driver; this tool runs where none runs
/// (`docs/control.md` §8). The Windows side is the package's `rvblk-install.exe`.
fn needs_windows(name: &str) -> ExitCode {
    eprintln!(
        "rvblk: `{name}` needs Windows: it asks the rvblk driver running there. On that \
         machine run the package's installer\\amd64\\rvblk-install.exe {name} … (x86: \
         installer\\x86\\); `rvblk package extract DIR` writes the package"
    );
    ExitCode::from(2)
}

#[derive(Subcommand, Debug)]
enum PackageCmd {
    /// Write the built-in package into DIR (created if missing; existing files are replaced)
    Extract {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// List the built-in package's files
    List,
}

const NO_PACKAGE: &str = "this rvblk binary carries no driver package (it was built before \
    `cargo xtask package`, which rebuilds it; or set RVBLK_PACKAGE_DIR when building)";

/// Writes the embedded package into `dir`; each file through a temporary file and a rename.
fn extract_to(dir: &Path) -> Result<usize, String> {
    if embedded::FILES.is_empty() {
        return Err(NO_PACKAGE.into());
    }
    for (rel, bytes) in embedded::FILES {
        let dest = dir.join(rel);
        let parent = dest.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(parent)
            .map_err(|e| format!("cannot write in {}: {e}", parent.display()))?;
        std::io::Write::write_all(&mut tmp, bytes)
            .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        tmp.persist(&dest)
            .map_err(|e| format!("cannot write {}: {}", dest.display(), e.error))?;
    }
    Ok(embedded::FILES.len())
}

/// The embedded package in a temporary directory, for commands given no `--package`
/// (`Ok(None)`: this binary carries none).
fn embedded_dir() -> Result<Option<tempfile::TempDir>, String> {
    if embedded::FILES.is_empty() {
        return Ok(None);
    }
    let d = tempfile::Builder::new()
        .prefix("rvblk-package.")
        .tempdir()
        .map_err(|e| {
            format!("cannot create a temporary directory for the built-in package: {e}")
        })?;
    extract_to(d.path())
        .map_err(|e| format!("cannot write out the built-in driver package: {e}"))?;
    Ok(Some(d))
}

/// [`embedded_dir`], unless the command names its own `--package`.
fn default_package(args: &[OsString]) -> Result<Option<tempfile::TempDir>, ExitCode> {
    if args
        .iter()
        .any(|a| a == "--package" || a.to_string_lossy().starts_with("--package="))
    {
        return Ok(None);
    }
    embedded_dir().map_err(|e| {
        eprintln!("rvblk: error: {e}");
        ExitCode::from(1)
    })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.cmd {
        Cmd::Winpe(p) => match default_package(&p.args) {
            Ok(pkg) => {
                rvblk_winpe::cli::run_winpe_args_with(p.args, pkg.as_ref().map(|d| d.path())).emit()
            }
            Err(code) => code,
        },
        Cmd::Xp(p) => match default_package(&p.args) {
            Ok(pkg) => rvblk_xp::cli::xp_with(p.args, pkg.as_ref().map(|d| d.path())),
            Err(code) => code,
        },
        Cmd::Sign(p) => rvblk_sign::cli::sign(p.args),
        Cmd::Info(p) => rvblk_winpe::cli::info(p.args),
        Cmd::Menu(a) => match menu::render(&a) {
            Ok((out, notes)) => {
                use std::io::Write as _;
                let _ = std::io::stdout().lock().write_all(out.as_bytes());
                for n in notes {
                    eprintln!("note: {n}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rvblk menu: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Mount(_) => needs_windows("mount"),
        Cmd::Ramdisk(_) => needs_windows("ramdisk"),
        Cmd::List(_) => needs_windows("list"),
        Cmd::Eject(_) => needs_windows("eject"),
        Cmd::Package { cmd } => match cmd {
            PackageCmd::List => {
                if embedded::FILES.is_empty() {
                    eprintln!("rvblk package: {NO_PACKAGE}");
                    return ExitCode::from(1);
                }
                // A closed pipe (`| head`) just ends the listing.
                use std::io::Write as _;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "rvblk {} carries the package built from {}:",
                    env!("CARGO_PKG_VERSION"),
                    embedded::SOURCE
                );
                for (rel, bytes) in embedded::FILES {
                    if writeln!(out, "{:>10}  {rel}", bytes.len()).is_err() {
                        break;
                    }
                }
                ExitCode::SUCCESS
            }
            PackageCmd::Extract { dir } => match extract_to(&dir) {
                Ok(n) => {
                    println!("wrote {n} files to {}", dir.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("rvblk package: {e}");
                    ExitCode::from(1)
                }
            },
        },
    }
}
