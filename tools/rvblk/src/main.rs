//! `rvblk`: the project's command-line tool. Each area owns its subcommands in its own library;
//! this binary only dispatches.

use std::ffi::OsString;
use std::process::ExitCode;

const USAGE: &str = "\
rvblk — put the rvblk RAM-disk driver where Windows needs it

USAGE:
    rvblk <COMMAND> [ARGS...]

COMMANDS:
    winpe     Inject rvblk into WinPE/Setup media (boot.wim, BCD) from Linux or Windows
    xp        Windows XP/2003: slipstream into an i386 source, print a GRUB4DOS menu
    sign      Create a test certificate, sign drivers and catalogs (Authenticode)
    info      Show what rvblk finds in a boot.wim, BCD store or registry hive
    help      Show this text

Run `rvblk <COMMAND> --help` for the options of each command.
";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(command) = args.next() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest: Vec<OsString> = args.collect();
    match command.to_str() {
        Some("winpe") => rvblk_winpe::cli::winpe(rest),
        Some("info") => rvblk_winpe::cli::info(rest),
        Some("xp") => rvblk_xp::cli::xp(rest),
        Some("sign") => rvblk_sign::cli::sign(rest),
        Some("help" | "--help" | "-h") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("--version" | "-V") => {
            println!("rvblk {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("rvblk: unknown command {command:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
