//! Command-line entry points, called by the `rvblk` binary with the arguments after the command word.
//!
//! Exit codes: 0 success, 1 the operation failed (one-line message on stderr, input untouched),
//! 2 bad usage.

use crate::bcd::{self, DebugSetting, Setting};
use crate::error::{Error, ErrorKind};
use crate::inject::{self, Selection};
use crate::package::Package;
use crate::prepare;
use crate::verifier::VerifierSetting;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "rvblk winpe",
    about = "Inject rvblk into WinPE/Windows Setup media (boot.wim, BCD) from Linux",
    long_about = "Inject rvblk into WinPE/Windows Setup media (boot.wim, BCD) from Linux.\n\n\
        For Vista and later the driver must already be inside sources/boot.wim when GRUB4DOS maps the \
        ISO into RAM. `inject` adds it to the WIM images (driver, INF, SYSTEM hive entries: boot-start \
        service, root devnode, class key), `bcd` turns test-signing on, `prepare` does both from an ISO \
        to a new ISO (or on an extracted tree) and prints the GRUB4DOS menu entry.",
    disable_version_flag = true
)]
struct WinpeCli {
    #[command(subcommand)]
    cmd: WinpeCmd,
}

#[derive(Subcommand, Debug)]
enum WinpeCmd {
    /// Add rvblk to images of a boot.wim (or remove it with --remove)
    #[command(
        long_about = "Add rvblk to images of a boot.wim, updating the WIM in place.\n\n\
        Per image: the matching-architecture rvblk.sys (WIM metadata WINDOWS/ARCH, else the image's \
        ntoskrnl.exe) goes to \\Windows\\System32\\drivers, rvblk.inf to \\Windows\\INF, and the SYSTEM \
        hive gets Services\\rvblk (boot start, group \"SCSI miniport\"), the root devnode \
        Enum\\Root\\RVBLK\\0000 (ConfigFlags 0), its Control\\Class driver key and, on Vista/7 hives \
        that have one, a CriticalDeviceDatabase entry, in the control sets \\Select names.\n\n\
        Default images: the one marked bootable in the WIM (index 2 of a Setup boot.wim), or every \
        image if none is marked. Running it again changes nothing; --remove undoes exactly what \
        inject created (it records that in the service key).\n\n\
        The WIM is appended to, never rebuilt: unchanged resources stay where they are and an \
        interrupted run leaves the previous, valid WIM."
    )]
    Inject(InjectArgs),
    /// Set test-signing / nointegritychecks in a BCD store
    #[command(
        long_about = "Set test-signing (element 16000049) and nointegritychecks (16000048) in a \
        BCD store (\\boot\\BCD or \\efi\\microsoft\\boot\\BCD; same format).\n\n\
        Changes the default OS loader ({bootmgr}'s default, element 23000003), or with --all every \
        OS loader object. `on` writes the Boolean element (REG_BINARY 01); `off` deletes it from the \
        object, like `bcdedit /deletevalue` (absent means off). The store is rewritten through a \
        temporary file and a rename, and only if something changes."
    )]
    Bcd(BcdArgs),
    /// ISO in, ISO out: inject into sources/boot.wim, enable test-signing, print the menu entry
    #[command(
        long_about = "The whole job on a Windows Vista+ Setup/WinPE ISO: inject rvblk into every \
        image of sources/boot.wim, turn test-signing on in boot/bcd and efi/microsoft/boot/bcd \
        (whichever exist; names matched case-insensitively), then print the GRUB4DOS menu.lst \
        entry that boots the ISO from RAM.\n\n\
        `prepare IN.iso -o OUT.iso` writes a new ISO through xorriso: same volume label, the El \
        Torito boot records (BIOS etfsboot.com, UEFI efisys.bin) replayed byte for byte and \
        checked, progress on stderr. IN.iso is never modified; OUT.iso appears only when complete \
        (it is written to a temporary file next to it and renamed). `prepare DIR` works on an \
        extracted tree in place instead."
    )]
    Prepare(PrepareArgs),
}

/// `--package`, as inject and prepare take it.
#[derive(Args, Debug)]
struct PackageArg {
    /// Driver package: DIR/rvblk.inf and DIR/{x86,amd64,arm64}/rvblk.sys [default: the package
    /// built into rvblk, else target/package]
    #[arg(long, value_name = "DIR")]
    package: Option<PathBuf>,
}

/// `--verifier`, as inject and prepare take it.
#[derive(Args, Debug)]
struct VerifierArg {
    /// Driver Verifier for rvblk.sys in each image: standard (`verifier /standard`), a level
    /// (option bits, e.g. 0x9bb), or off to remove it [bare --verifier: standard; before a file
    /// name write --verifier=standard]
    #[arg(
        long,
        value_name = "standard|LEVEL|off",
        num_args = 0..=1,
        default_missing_value = "standard",
        value_parser = crate::verifier::parse_setting
    )]
    verifier: Option<VerifierSetting>,
}

#[derive(Args, Debug)]
struct InjectArgs {
    /// The WIM to update (e.g. sources/boot.wim)
    wim: PathBuf,
    /// Work on this image only (1-based)
    #[arg(long, value_name = "N", conflicts_with = "all")]
    index: Option<u32>,
    /// Work on every image
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    package: PackageArg,
    /// Remove what a previous inject added instead (Driver Verifier for rvblk.sys included)
    #[arg(long, conflicts_with = "verifier")]
    remove: bool,
    #[command(flatten)]
    verifier: VerifierArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Args, Debug)]
struct BcdArgs {
    /// The BCD store (boot/BCD or efi/microsoft/boot/BCD)
    bcd: PathBuf,
    /// Allow test-signed drivers (element 16000049)
    #[arg(
        long,
        value_enum,
        value_name = "on|off",
        required_unless_present_any = ["nointegritychecks", "debug"]
    )]
    testsigning: Option<OnOff>,
    /// Disable integrity checks (element 16000048; ignored by Windows 7 and later)
    #[arg(long, value_enum, value_name = "on|off")]
    nointegritychecks: Option<OnOff>,
    /// Kernel debugger over a serial port: debug (260000a0) on, debugtype serial (15000011 = 0),
    /// debugport (15000013, default 1 = COM1), baudrate (15000014, default 115200); off deletes them
    #[arg(long, value_name = "serial[:PORT[,BAUD]]|off", value_parser = parse_debug)]
    debug: Option<DebugSetting>,
    /// Change every OS loader object, not only the default one
    #[arg(long)]
    all: bool,
}

#[derive(Args, Debug)]
struct PrepareArgs {
    /// A Windows Vista+ Setup/WinPE ISO (with -o), or its extracted tree (changed in place)
    input: PathBuf,
    /// The new ISO to write (for an ISO input; the input is never modified)
    #[arg(short = 'o', long, value_name = "OUT.iso")]
    output: Option<PathBuf>,
    #[command(flatten)]
    package: PackageArg,
    /// Path of the rebuilt ISO as GRUB4DOS sees it, for the menu entry [default: /<tree name>.iso]
    #[arg(long, value_name = "PATH")]
    iso: Option<String>,
    /// Also set the kernel debugger in every BCD store (see `rvblk winpe bcd --help`) and let
    /// DbgPrint through in the images (Debug Print Filter\DEFAULT = 0xf; off removes it)
    #[arg(long, value_name = "serial[:PORT[,BAUD]]|off", value_parser = parse_debug)]
    debug: Option<DebugSetting>,
    #[command(flatten)]
    verifier: VerifierArg,
}

#[derive(Parser, Debug)]
#[command(
    name = "rvblk info",
    about = "Show what rvblk finds in an ISO, a boot.wim, a BCD store or a SYSTEM hive",
    long_about = "Show what rvblk finds in an ISO, a boot.wim, a BCD store or a SYSTEM hive \
        (detected from the file's contents).\n\nISO: label, boot records, whether it carries rvblk \
        (driver version, which images of sources/boot.wim, test-signing, Driver Verifier), then the \
        BCD stores and boot.wim as below; the ISO is only read (boot.wim and the BCD stores are \
        copied to a temporary directory).\n\nWIM: each image's index, name, architecture, bootable flag and \
        rvblk's state (driver file, INF, service, devnode, class key). BCD: the default loader and \
        the testsigning/nointegritychecks settings of each OS loader. SYSTEM hive: the \\Select \
        values and rvblk's keys in the control sets that boot.",
    disable_version_flag = true
)]
struct InfoCli {
    /// ISO, boot.wim, BCD store or SYSTEM hive
    file: PathBuf,
}

fn parse_debug(s: &str) -> Result<DebugSetting, String> {
    s.parse()
}

/// The result of a command: exit code and the text for stdout and stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    fn ok(stdout: String) -> Self {
        Outcome {
            code: 0,
            stdout,
            stderr: String::new(),
        }
    }

    fn failed(e: Error) -> Self {
        Outcome {
            code: 1,
            stdout: String::new(),
            stderr: format!("rvblk: error: {e}\n"),
        }
    }

    /// Prints the output and turns the code into an [`ExitCode`].
    pub fn emit(self) -> ExitCode {
        use std::io::Write;
        let _ = std::io::stdout().write_all(self.stdout.as_bytes());
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().write_all(self.stderr.as_bytes());
        ExitCode::from(self.code)
    }
}

fn parse<T: Parser>(argv0: &str, args: Vec<OsString>) -> Result<T, Outcome> {
    T::try_parse_from(std::iter::once(OsString::from(argv0)).chain(args)).map_err(|e| {
        let text = e.render().to_string();
        if e.use_stderr() {
            Outcome {
                code: 2,
                stdout: String::new(),
                stderr: text,
            }
        } else {
            Outcome::ok(text)
        }
    })
}

/// `rvblk winpe ...`
pub fn winpe(args: Vec<OsString>) -> ExitCode {
    run_winpe_args(args).emit()
}

/// `rvblk winpe ...` without printing: for embedding and tests.
pub fn run_winpe_args(args: Vec<OsString>) -> Outcome {
    run_winpe_args_with(args, None)
}

/// [`run_winpe_args`] with the package to use when no `--package` is given (the one embedded in
/// the `rvblk` binary); `None` falls back to `target/package`.
pub fn run_winpe_args_with(args: Vec<OsString>, default_package: Option<&Path>) -> Outcome {
    match parse::<WinpeCli>("rvblk winpe", args) {
        Ok(cli) => match run_winpe(cli.cmd, default_package) {
            Ok(out) => Outcome::ok(out),
            Err(e) => Outcome::failed(e),
        },
        Err(o) => o,
    }
}

fn run_winpe(cmd: WinpeCmd, default_package: Option<&Path>) -> crate::Result<String> {
    match cmd {
        WinpeCmd::Inject(a) => {
            let sel = match (a.index, a.all) {
                (Some(n), _) => Selection::Index(n),
                (None, true) => Selection::All,
                (None, false) => Selection::Bootable,
            };
            if a.remove {
                let r = inject::remove(&a.wim, sel)?;
                Ok(r.render(&a.wim, true))
            } else {
                let pkg = Package::open(a.package.package.as_deref().or(default_package))?;
                let opts = inject::InjectOptions {
                    verifier: a.verifier.verifier,
                    debug_print: None,
                };
                let r = inject::inject_with(&a.wim, &pkg, sel, opts)?;
                Ok(r.render(&a.wim, false))
            }
        }
        WinpeCmd::Bcd(a) => {
            let mut settings = Vec::new();
            if let Some(v) = a.testsigning {
                settings.push(Setting::boolean(
                    bcd::ELEM_TESTSIGNING,
                    "testsigning",
                    matches!(v, OnOff::On),
                ));
            }
            if let Some(v) = a.nointegritychecks {
                settings.push(Setting::boolean(
                    bcd::ELEM_NOINTEGRITY,
                    "nointegritychecks",
                    matches!(v, OnOff::On),
                ));
            }
            if let Some(d) = a.debug {
                settings.extend(d.settings());
            }
            let changes = bcd::edit_store(&a.bcd, &settings, a.all)?;
            let mut out = String::new();
            for c in &changes {
                out.push_str(&format!("{}: {c}\n", a.bcd.display()));
            }
            if changes.is_empty() {
                out.push_str(&format!(
                    "{}: already as requested, not modified\n",
                    a.bcd.display()
                ));
            }
            Ok(out)
        }
        WinpeCmd::Prepare(a) => {
            let pkg = Package::open(a.package.package.as_deref().or(default_package))?;
            let opts = prepare::PrepareOptions {
                verifier: a.verifier.verifier,
                debug: a.debug,
            };
            let r = if a.input.is_dir() {
                if let Some(o) = &a.output {
                    return Err(Error::new(
                        ErrorKind::Usage,
                        format!(
                            "-o {}: an extracted tree is changed in place; -o is for an ISO input",
                            o.display()
                        ),
                    ));
                }
                prepare::prepare(&a.input, &pkg, a.iso.as_deref(), opts)?
            } else {
                let Some(out) = &a.output else {
                    return Err(Error::new(
                        ErrorKind::Usage,
                        format!(
                            "{}: give the new ISO with -o OUT.iso (the input ISO is never modified)",
                            a.input.display()
                        ),
                    ));
                };
                prepare::prepare_iso(&a.input, out, &pkg, a.iso.as_deref(), opts)?
            };
            let mut out = r.wim.render(&r.boot_wim, false);
            for (p, changes) in &r.bcds {
                if changes.is_empty() {
                    out.push_str(&format!(
                        "{}: test-signing already on, not modified\n",
                        p.display()
                    ));
                }
                for c in changes {
                    out.push_str(&format!("{}: {c}\n", p.display()));
                }
            }
            out.push_str("\nGRUB4DOS menu.lst entry:\n\n");
            out.push_str(&r.menu);
            out.push('\n');
            for n in &r.notes {
                out.push_str(&format!("note: {n}\n"));
            }
            Ok(out)
        }
    }
}

/// `rvblk info ...`
pub fn info(args: Vec<OsString>) -> ExitCode {
    run_info_args(args).emit()
}

/// `rvblk info ...` without printing: for embedding and tests.
pub fn run_info_args(args: Vec<OsString>) -> Outcome {
    match parse::<InfoCli>("rvblk info", args) {
        Ok(cli) => match crate::info::describe(&cli.file) {
            Ok(s) => Outcome::ok(s),
            Err(e) => Outcome::failed(e),
        },
        Err(o) => o,
    }
}
