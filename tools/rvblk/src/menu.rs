//! `rvblk menu`: boot-menu snippets for each loader and mode, from one table of what rvblk serves
//! (`docs/tools.md` §Menus). A mode rvblk does not serve yet is a row with
//! [`Served::NotYet`]: asking for it is refused with that reason, and `--list` shows it.

use clap::{Args, ValueEnum};
use rvblk_xp::menu::{menu_lst, MenuOptions};
use rvblk_xp::XpArch;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Loader {
    /// GRUB4DOS (BIOS): menu.lst
    Grub4dos,
    /// grub4efi, GRUB4DOS for UEFI: menu.lst
    Grub4efi,
    /// syslinux/isolinux/pxelinux MEMDISK (BIOS): syslinux.cfg
    Memdisk,
    /// Ventoy: ventoy/ventoy.json
    Ventoy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// The image is copied into RAM (`map --mem`; MEMDISK; Ventoy memdisk mode)
    Mem,
    /// `map --mem --top`: copied to the top of RAM, above 4 GiB where present
    Top,
    /// A sector map of the file on disk (`map` without `--mem`): the image is not in RAM
    Direct,
    /// Ventoy's normal mode (the image is read from the Ventoy disk)
    Normal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MenuArch {
    X86,
    Amd64,
}

/// Whether rvblk finds the image this row leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Yes,
    /// Not yet, with the reason shown to the user.
    NotYet(&'static str),
}

/// One loader × mode.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub loader: Loader,
    pub mode: Mode,
    pub firmware: &'static str,
    pub served: Served,
    /// Whether the three-boot XP/2003 setup flow works with it.
    pub xp: bool,
    pub what: &'static str,
}

const G4EFI_DIRECT_NOT_YET: &str =
    "rvblk reads disk-backed slots from GRUB4DOS's BIOS tables only, not from grub4efi's page; use --mode mem, or GRUB4DOS (BIOS) with --mode direct";

/// What rvblk serves today (README "What it finds"), one row per loader and mode.
pub const TABLE: &[Row] = &[
    Row {
        loader: Loader::Grub4dos,
        mode: Mode::Mem,
        firmware: "BIOS",
        served: Served::Yes,
        xp: true,
        what: "map --mem: the ISO is copied into RAM below 4 GiB",
    },
    Row {
        loader: Loader::Grub4dos,
        mode: Mode::Top,
        firmware: "BIOS",
        served: Served::Yes,
        xp: true,
        what: "map --mem --top: copied to the top of RAM, above 4 GiB where present (64-bit Windows)",
    },
    Row {
        loader: Loader::Grub4dos,
        mode: Mode::Direct,
        firmware: "BIOS",
        served: Served::Yes,
        xp: false,
        what: "map without --mem: the image stays on the stick; rvblk reads its sectors (contiguous, or fragmented as GRUB4DOS 0.4.6a records it) once Windows sees the stick; .iso as a CD, other images as a writable hard disk",
    },
    Row {
        loader: Loader::Grub4efi,
        mode: Mode::Mem,
        firmware: "UEFI",
        served: Served::Yes,
        xp: false,
        what: "map --mem: the ISO is copied into reserved RAM; the CD's UEFI image (efisys.bin) boots",
    },
    Row {
        loader: Loader::Grub4efi,
        mode: Mode::Top,
        firmware: "UEFI",
        served: Served::Yes,
        xp: false,
        what: "map --mem --top: copied to the top of RAM (fails on some AMD boards: `docs/tools.md`)",
    },
    Row {
        loader: Loader::Grub4efi,
        mode: Mode::Direct,
        firmware: "UEFI",
        served: Served::NotYet(G4EFI_DIRECT_NOT_YET),
        xp: false,
        what: "map without --mem: sectors of the file on the boot disk",
    },
    Row {
        loader: Loader::Memdisk,
        mode: Mode::Mem,
        firmware: "BIOS",
        served: Served::Yes,
        xp: false,
        what: "MEMDISK `iso raw`: the ISO is copied into RAM below 4 GiB",
    },
    Row {
        loader: Loader::Ventoy,
        mode: Mode::Mem,
        firmware: "BIOS and UEFI",
        served: Served::Yes,
        xp: false,
        what: "memdisk mode (auto_memdisk plugin): the ISO in RAM, through syslinux MEMDISK (BIOS) or Ventoy's RAM disk (UEFI, Windows 8 and later)",
    },
    Row {
        loader: Loader::Ventoy,
        mode: Mode::Normal,
        firmware: "BIOS and UEFI",
        served: Served::Yes,
        xp: false,
        what: "normal mode (Ventoy's default): the ISO stays on the Ventoy stick; rvblk reads it through Ventoy's extent list once Windows sees the stick (UEFI: Windows 8 and later)",
    },
];

#[derive(Args, Debug)]
pub struct MenuArgs {
    /// The boot loader the snippet is for
    #[arg(long, value_enum, required_unless_present = "list")]
    loader: Option<Loader>,
    /// How the loader provides the image [default: mem]
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// The XP/2003 setup flow (text mode, GUI mode, first boot) instead of Vista+ Setup/WinPE
    #[arg(long)]
    xp: bool,
    /// The XP/2003 CD's architecture (amd64: XP x64 / Server 2003 x64)
    #[arg(long, value_enum, default_value = "x86", requires = "xp")]
    arch: MenuArch,
    /// XP: path of the F6 floppy image on the boot disk [default: /rvblk-f6.img, or
    /// /rvblk-f6-amd64.img with --arch amd64]
    #[arg(long, value_name = "PATH", requires = "xp")]
    f6: Option<String>,
    /// XP: do not swap (hd0) and (hd1) (the swap is for booting from a USB stick)
    #[arg(long, requires = "xp")]
    no_swap: bool,
    /// Show every loader and mode, and whether rvblk serves it
    #[arg(long, conflicts_with_all = ["loader", "images"])]
    list: bool,
    /// Image paths as the loader sees them (e.g. /iso/win10.iso)
    #[arg(value_name = "IMAGE", required_unless_present = "list")]
    images: Vec<String>,
}

/// The table as text, for `--list`.
pub fn list() -> String {
    let mut s = String::from("loader    mode    firmware       served  XP   what\n");
    for r in TABLE {
        let _ = writeln!(
            s,
            "{:<9} {:<7} {:<14} {:<7} {:<4} {}",
            format!("{:?}", r.loader).to_lowercase(),
            format!("{:?}", r.mode).to_lowercase(),
            r.firmware,
            match r.served {
                Served::Yes => "yes",
                Served::NotYet(_) => "NOT YET",
            },
            if r.xp { "yes" } else { "no" },
            r.what
        );
    }
    s
}

/// GRUB4DOS-family path: absolute, spaces escaped.
fn grub_path(p: &str) -> String {
    let p = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    };
    p.replace(' ', "\\ ")
}

fn base_name(p: &str) -> &str {
    p.rsplit(['/', '\\']).next().unwrap_or(p)
}

fn is_iso(p: &str) -> bool {
    p.to_ascii_lowercase().ends_with(".iso")
}

/// One GRUB4DOS entry mapping `img` without `--mem` (`docs/loaders.md` §3.9): an ISO as the CD
/// (0xff), anything else as the first hard disk with the stick moved to (hd1).
fn direct_entry(img: &str) -> String {
    let p = grub_path(img);
    let name = base_name(img);
    if is_iso(img) {
        format!(
            "title Windows Setup/WinPE from the stick: {name} (rvblk)\nfind --set-root {p}\nmap {p} (0xff)\nmap --hook\nchainloader (0xff)\nboot\n"
        )
    } else {
        format!(
            "title Windows from a disk image on the stick: {name} (rvblk)\nfind --set-root {p}\nmap {p} (hd0)\nmap (hd0) (hd1)\nmap --hook\nrootnoverify (hd0)\nchainloader (hd0)+1\nboot\n"
        )
    }
}

/// The snippet for `a` (stdout) and notes (stderr), or a refusal.
pub fn render(a: &MenuArgs) -> Result<(String, Vec<String>), String> {
    if a.list {
        return Ok((list(), Vec::new()));
    }
    let loader = a.loader.expect("clap requires --loader");
    let mode = a.mode.unwrap_or(Mode::Mem);
    let lname = format!("{loader:?}").to_lowercase();
    let mname = format!("{mode:?}").to_lowercase();
    let row = TABLE
        .iter()
        .find(|r| r.loader == loader && r.mode == mode)
        .ok_or_else(|| {
            format!("--loader {lname} has no --mode {mname} (see `rvblk menu --list`)")
        })?;
    if let Served::NotYet(why) = row.served {
        return Err(format!("{lname} --mode {mname}: not served yet: {why}"));
    }
    if a.xp && !row.xp && loader == Loader::Grub4dos {
        return Err(format!(
            "--xp with --mode {mname}: the XP/2003 flow maps the ISO into RAM for each of its three boots; use --mode mem or top"
        ));
    }
    if a.xp && !row.xp {
        return Err(format!(
            "--xp with {lname}: XP/2003 setup boots three times (text mode from the CD, GUI mode and first boot from the hard disk with the ISO still in RAM) and only through BIOS; only GRUB4DOS can map the ISO again for the later boots. Use --loader grub4dos"
        ));
    }
    let mut notes = Vec::new();
    let top = mode == Mode::Top;
    let mut out = String::new();
    match (loader, a.xp) {
        (Loader::Grub4dos, true) => {
            if a.images.len() != 1 {
                return Err("--xp takes one ISO (the XP/2003 setup CD)".into());
            }
            let arch = match a.arch {
                MenuArch::X86 => XpArch::X86,
                MenuArch::Amd64 => XpArch::Amd64,
            };
            if top && arch == XpArch::X86 {
                notes.push("--mode top with x86 XP: 32-bit Windows cannot reach RAM above 4 GiB; the ISO is only found if GRUB4DOS puts it below".into());
            }
            out = menu_lst(&MenuOptions {
                arch,
                top,
                iso: a.images[0].clone(),
                f6: a
                    .f6
                    .clone()
                    .unwrap_or_else(|| format!("/{}", arch.f6_image_name())),
                swap_disks: !a.no_swap,
            });
            notes.push(format!(
                "put {} and the F6 image from `rvblk package extract` on the boot disk; slipstreamed ISOs (`rvblk xp slipstream IN.iso -o OUT.iso`) need no F6 floppy",
                a.images[0]
            ));
        }
        (Loader::Grub4dos, false) if mode == Mode::Direct => {
            for img in &a.images {
                out.push_str(&direct_entry(img));
                out.push('\n');
            }
            notes.push("without --mem the image stays on the stick, which must stay plugged in: rvblk exposes it once Windows has found the stick (a few seconds into boot) and answers NOT READY if it is pulled".into());
            notes.push("the file must be contiguous on the stick, or fragmented as GRUB4DOS 0.4.6a records it (its fragment map; rvblk keeps up to 64 runs); GRUB4DOS stops with \"Error 60\" when it cannot map a fragmented file (older versions: any): copy it to a freshly formatted stick or defragment it".into());
            if a.images.iter().any(|i| is_iso(i)) {
                notes.push("the ISO must carry rvblk in boot.wim with test-signing on: `rvblk winpe prepare IN.iso -o OUT.iso`".into());
            }
            if a.images.iter().any(|i| !is_iso(i)) {
                notes.push("hard-disk images are writable and writes land only inside the file's sectors; add --read-only to `map` for a read-only disk. The Windows inside needs rvblk installed (`rvblk-install install`)".into());
            }
        }
        (Loader::Grub4dos | Loader::Grub4efi, false) => {
            let mem = if top { "--mem --top" } else { "--mem" };
            for img in &a.images {
                let p = grub_path(img);
                let _ = writeln!(
                    out,
                    "title Windows Setup/WinPE from RAM: {} (rvblk)",
                    base_name(img)
                );
                let _ = writeln!(out, "find --set-root {p}");
                let _ = writeln!(out, "map {mem} {p} (0xff)");
                if loader == Loader::Grub4dos {
                    // BIOS: install the INT 13h hook that serves (0xff) to the CD's boot code.
                    let _ = writeln!(out, "map --hook");
                }
                let _ = writeln!(out, "chainloader (0xff)");
                let _ = writeln!(out, "boot");
                out.push('\n');
            }
            if top {
                notes.push(
                    "--top: 64-bit Windows only (32-bit Windows cannot reach RAM above 4 GiB)"
                        .into(),
                );
            }
            notes.push("the ISO must carry rvblk in boot.wim with test-signing on: `rvblk winpe prepare IN.iso -o OUT.iso`".into());
        }
        (Loader::Memdisk, _) => {
            out.push_str(
                "# syslinux.cfg / isolinux.cfg / pxelinux.cfg (memdisk from syslinux next to it)\n",
            );
            for (i, img) in a.images.iter().enumerate() {
                let _ = writeln!(out, "LABEL rvblk{i}");
                let _ = writeln!(
                    out,
                    "  MENU LABEL Windows Setup/WinPE from RAM: {} (rvblk)",
                    base_name(img)
                );
                let _ = writeln!(out, "  LINUX memdisk");
                let _ = writeln!(out, "  INITRD {img}");
                let _ = writeln!(out, "  APPEND iso raw");
                out.push('\n');
            }
            notes.push("GRUB2 (BIOS) boots the same with `linux16 /memdisk iso raw` and `initrd16 IMAGE`; MEMDISK keeps images below 4 GiB".into());
        }
        (Loader::Ventoy, _) if mode == Mode::Normal => {
            notes.push(format!(
                "Ventoy's normal mode is its default and needs no ventoy.json entry: copy {} to the Ventoy partition and pick it in Ventoy's menu (do not list it under auto_memdisk)",
                a.images.join(", ")
            ));
            notes.push("the stick must stay plugged in: rvblk finds it by the ID Ventoy wrote into its MBR, exposes the ISO once Windows has found the stick, and answers NOT READY if it is pulled; under UEFI this needs Windows 8 or later".into());
        }
        (Loader::Ventoy, _) => {
            let json = serde_json::json!({ "auto_memdisk": a.images });
            out = serde_json::to_string_pretty(&json).expect("JSON of strings");
            out.push('\n');
            notes.push("save as /ventoy/ventoy.json on the Ventoy partition (merge the key into an existing file); image paths are from that partition's root".into());
            notes.push("BIOS: Ventoy hands the ISO to syslinux MEMDISK; UEFI: to its own RAM disk, which rvblk reads from Windows 8 on".into());
        }
        (Loader::Grub4efi, true) => unreachable!("refused above"),
    }
    Ok((out, notes))
}
