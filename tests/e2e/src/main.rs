//! `cargo run -p rvblk-e2e -- [CASE ...]`: boot MEMDISK cases and keep their RAM dumps, for
//! debugging a driver by hand. Without arguments it lists the cases. For each case it prints the
//! work directory and the `rvblk-harness run` command line the end-to-end test uses.

use rvblk_e2e::case::{self, Booted};
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!("usage: rvblk-e2e CASE... | all    (dumps kept under $RVBLK_E2E_WORK or ./e2e-work)\ncases:");
        for c in case::ALL {
            eprintln!(
                "  {:40} MEMDISK `{}`, {:?}, {} MiB",
                c.name, c.append, c.machine, c.mem_mib
            );
        }
        std::process::exit(if args.is_empty() { 2 } else { 0 });
    }
    let root = case::work_root(&PathBuf::from("e2e-work"));
    let all = args.iter().any(|a| a == "all");
    for c in case::ALL
        .iter()
        .filter(|c| all || args.iter().any(|a| a == c.name))
    {
        let b: Booted = case::boot_and_dump(c, &root);
        let ram: Vec<String> = b
            .os_ram
            .iter()
            .map(|r| format!("--os-ram {:#x}:{:#x}", r.start, r.len))
            .collect();
        println!(
            "{}: QEMU {:.2?}, image {:#x}+{:#x}, mBFT {:#x}\n  rvblk-harness run --driver <pkg>/amd64/rvblk.sys --ram {} {} --expect {} --json",
            c.name,
            b.qemu_time,
            b.memdisk.diskbuf,
            b.image_len,
            b.memdisk.mbft,
            b.dump.display(),
            ram.join(" "),
            b.image_path.display()
        );
        // Keep the work directory: this tool exists to leave dumps behind.
        std::mem::forget(b);
    }
}
