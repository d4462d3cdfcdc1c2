//! The MEMDISK cases and the part of each that needs no driver: build the image, boot it under
//! MEMDISK in QEMU, dump guest RAM, and check that the experiment itself went as recorded in
//! `docs/loaders-observed.md` §3 (MEMDISK put the image where its mBFT says, byte for byte; the hooked
//! E820 map reserves it).

use crate::images::{self, BootVariant};
use crate::qemu::{self, Guest, GuestConfig, Machine};
use crate::serial::{self, BootLog, E820Entry, Range};
use crate::{memdisk, pattern};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The image MEMDISK gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image {
    /// ISO 9660 + El Torito no-emulation (`iso` option): a CD-ROM LUN, 2048-byte blocks.
    Iso,
    /// 8 MiB MBR disk: a disk LUN.
    Hdd,
    /// The same, gzip'd: MEMDISK decompresses it to the top of RAM below 4 GiB.
    HddGzip,
    /// 1.44 MB floppy: a removable floppy LUN.
    Floppy,
}

/// Which E820 view becomes the OS RAM list handed to discovery / the harness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OsRamView {
    /// The map through MEMDISK's INT 15h hook: what an OS booted from the image sees. The image
    /// is type 2.
    Hooked,
    /// The map from the BIOS handler MEMDISK replaced (MDI.oldint15, printed as `E820RAW`): the
    /// image lies in type-1 RAM, as it would for an OS that took its map from a loader that
    /// bypassed or unhooked MEMDISK's INT 15h. The image must be refused (rule 23).
    BiosUnhooked,
}

/// What the driver must report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Exactly one LUN equal to the image file.
    Lun {
        kind: &'static str,
        block_size: u64,
        read_only: bool,
    },
    /// No LUN; the image is in `refused` because it overlaps OS RAM.
    RefusedOsRam,
}

/// One end-to-end case.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub name: &'static str,
    pub image: Image,
    /// MEMDISK command line.
    pub append: &'static str,
    pub machine: Machine,
    pub mem_mib: u64,
    pub boot: BootVariant,
    pub os_ram: OsRamView,
    pub expect: Expect,
    /// Discovery must have found the image through the IVT chain (false: only the mBFT scan can).
    pub via_chain: bool,
}

const CD: Expect = Expect::Lun {
    kind: "cdrom",
    block_size: 2048,
    read_only: true,
};
const DISK: Expect = Expect::Lun {
    kind: "disk",
    block_size: 512,
    read_only: false,
};

impl Case {
    const fn new(name: &'static str, image: Image, append: &'static str, expect: Expect) -> Case {
        Case {
            name,
            image,
            append,
            machine: Machine::Pc,
            mem_mib: 256,
            boot: BootVariant::Plain,
            os_ram: OsRamView::Hooked,
            expect,
            via_chain: true,
        }
    }
}

pub const ISO_RAW: Case = Case::new("memdisk_iso_raw", Image::Iso, "iso raw", CD);
pub const ISO_SAFEINT: Case = Case::new("memdisk_iso_safeint", Image::Iso, "iso", CD);
pub const ISO_BIGRAW: Case = Case::new("memdisk_iso_bigraw", Image::Iso, "iso bigraw", CD);
pub const HDD_PLAIN: Case = Case::new("memdisk_hdd_plain", Image::Hdd, "", DISK);
pub const HDD_RAW: Case = Case::new("memdisk_hdd_raw", Image::Hdd, "raw", DISK);
pub const HDD_BIGRAW: Case = Case::new("memdisk_hdd_bigraw", Image::Hdd, "bigraw", DISK);
pub const HDD_GZIP: Case = Case::new("memdisk_hdd_gzip", Image::HddGzip, "", DISK);
pub const FLOPPY: Case = Case::new(
    "memdisk_floppy",
    Image::Floppy,
    "",
    Expect::Lun {
        kind: "floppy",
        block_size: 512,
        read_only: false,
    },
);
pub const HDD_RO: Case = Case::new(
    "memdisk_hdd_ro",
    Image::Hdd,
    "ro",
    Expect::Lun {
        kind: "disk",
        block_size: 512,
        read_only: true,
    },
);
pub const GUEST_6GIB: Case = Case {
    mem_mib: 6144,
    ..Case::new("memdisk_6gib_guest_hdd", Image::Hdd, "", DISK)
};
pub const Q35_ISO: Case = Case {
    machine: Machine::Q35,
    ..Case::new("memdisk_q35_iso", Image::Iso, "iso", CD)
};
pub const USABLE_RAM_REFUSED: Case = Case {
    os_ram: OsRamView::BiosUnhooked,
    ..Case::new(
        "memdisk_image_in_usable_ram_refused",
        Image::Hdd,
        "",
        Expect::RefusedOsRam,
    )
};
pub const FOREIGN_HOOK: Case = Case {
    boot: BootVariant::ForeignHook,
    ..Case::new(
        "memdisk_behind_foreign_safe_hook",
        Image::Iso,
        "iso raw",
        CD,
    )
};
pub const CHAIN_HIDDEN: Case = Case {
    boot: BootVariant::HideChain,
    via_chain: false,
    ..Case::new(
        "memdisk_chain_hidden_mbft_scan_only",
        Image::Iso,
        "iso raw",
        CD,
    )
};

/// Every case, for tools that want the list.
pub const ALL: [Case; 14] = [
    ISO_RAW,
    ISO_SAFEINT,
    ISO_BIGRAW,
    HDD_PLAIN,
    HDD_RAW,
    HDD_BIGRAW,
    HDD_GZIP,
    FLOPPY,
    HDD_RO,
    GUEST_6GIB,
    Q35_ISO,
    USABLE_RAM_REFUSED,
    FOREIGN_HOOK,
    CHAIN_HIDDEN,
];

/// Guests larger than this get the smart (sparse) dump.
pub const FULL_DUMP_MAX_MIB: u64 = 1024;

/// A booted-and-dumped case. The work directory (with the RAM dump) is deleted on drop unless
/// `RVBLK_E2E_KEEP` is set.
pub struct Booted {
    pub case: Case,
    pub dir: PathBuf,
    /// The uncompressed image file: what the LUN must equal.
    pub image_path: PathBuf,
    pub image_sha256: String,
    pub image_len: u64,
    /// Guest physical memory at file offset = physical address (sparse for smart dumps).
    pub dump: PathBuf,
    pub log: BootLog,
    /// MEMDISK as found by the reference reader.
    pub memdisk: memdisk::Memdisk,
    /// The OS RAM ranges for discovery / `--os-ram` (whole pages, see [`serial::os_ram`]).
    pub os_ram: Vec<Range>,
    /// Installed RAM: end of the highest usable range in the BIOS's own map.
    pub total_ram: u64,
    /// Wall time of QEMU start → dump written.
    pub qemu_time: Duration,
}

impl Drop for Booted {
    fn drop(&mut self) {
        if std::env::var_os("RVBLK_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Where case work directories go: `$RVBLK_E2E_WORK`, else the given default (the integration
/// test passes `CARGO_TARGET_TMPDIR`).
pub fn work_root(default: &Path) -> PathBuf {
    std::env::var_os("RVBLK_E2E_WORK")
        .map(PathBuf::from)
        .unwrap_or_else(|| default.to_path_buf())
}

/// Builds the image, boots it, dumps RAM and checks the experiment (not the driver).
pub fn boot_and_dump(case: &Case, work_root: &Path) -> Booted {
    let dir = work_root.join(case.name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create case work directory");

    // 1. Image.
    let boot = images::boot_program(case.boot, &dir);
    let (bytes, file) = match case.image {
        Image::Iso => (images::iso_image(&boot), "test.iso"),
        Image::Hdd | Image::HddGzip => (images::hdd_image(&boot, images::HDD_BLOCKS), "test.img"),
        Image::Floppy => (images::floppy_image(&boot), "test_fd.img"),
    };
    let image_path = dir.join(file);
    std::fs::write(&image_path, &bytes).expect("write image");
    let initrd = match case.image {
        Image::HddGzip => images::gzip(&image_path),
        _ => image_path.clone(),
    };
    let mut booted = Booted {
        case: *case,
        dir: dir.clone(),
        image_path,
        image_sha256: Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        image_len: bytes.len() as u64,
        dump: dir.join("ram.dump"),
        log: BootLog::default(),
        memdisk: memdisk::Memdisk {
            hook: 0,
            mbft: 0,
            diskbuf: 0,
            disksize: 0,
            sector_shift: 0,
            driveno: 0,
            configflags: 0,
        },
        os_ram: Vec::new(),
        total_ram: 0,
        qemu_time: Duration::ZERO,
    };

    // 2. Boot and dump.
    let t0 = Instant::now();
    let cfg = GuestConfig {
        machine: case.machine,
        mem_mib: case.mem_mib,
        initrd,
        append: case.append.to_string(),
    };
    let mut guest = Guest::boot(&cfg, &dir);
    let log_text = guest.wait_for_marker();
    let log = serial::parse(&log_text);
    let mut qmp = guest.qmp();
    qmp.stop();
    let ram_bytes = case.mem_mib << 20;
    if case.mem_mib <= FULL_DUMP_MAX_MIB {
        qemu::full_dump(&mut qmp, ram_bytes, &booted.dump);
    } else {
        let file_len = ram_end(&log.e820_bios).max(0x10_0000);
        qemu::smart_dump(&mut qmp, file_len, &booted.dump, &dir);
    }
    guest.quit(qmp);
    booted.qemu_time = t0.elapsed();

    // 3. The experiment itself.
    let ctx = format!("case {} (MEMDISK `{}`)", case.name, case.append);
    assert!(log.halted, "{ctx}: no marker in the serial log");
    let want_dl = match case.image {
        Image::Iso => 0xE0,
        Image::Hdd | Image::HddGzip => 0x80,
        Image::Floppy => 0x00,
    };
    assert_eq!(
        log.boot_drive,
        Some(want_dl),
        "{ctx}: boot drive\n{log_text}"
    );
    assert!(
        !log.e820.is_empty() && !log.e820_bios.is_empty(),
        "{ctx}: E820 maps missing\n{log_text}"
    );

    let mut low = vec![0u8; 0x10_0000];
    File::open(&booted.dump)
        .expect("open dump")
        .read_exact_at(&mut low, 0)
        .expect("read low memory from dump");
    let scanned = memdisk::scan(&low);
    assert_eq!(scanned.len(), 1, "{ctx}: mBFT scan found {scanned:?}");
    let md = scanned[0];
    match memdisk::from_chain(&low) {
        Ok(c) => {
            assert!(
                case.via_chain,
                "{ctx}: IVT[0x13] still reaches MEMDISK although the boot program hid it"
            );
            assert_eq!(c, md, "{ctx}: chain and scan disagree");
        }
        Err(e) => assert!(
            !case.via_chain,
            "{ctx}: IVT[0x13] does not reach MEMDISK: {e}\n{log_text}"
        ),
    }
    assert_eq!(
        log.mbft,
        Some(md.mbft),
        "{ctx}: boot program saw another mBFT\n{log_text}"
    );
    if case.boot != BootVariant::Plain {
        let last = *log.ivt13.last().expect("IVT13 lines");
        assert!(
            log.ivt13.len() == 2 && last.0 == 0,
            "{ctx}: boot program's own hook not installed\n{log_text}"
        );
    }
    assert_eq!(md.driveno, want_dl, "{ctx}: MDI driveno");
    assert_eq!(
        md.image_bytes(),
        booted.image_len,
        "{ctx}: MDI disksize << sector_shift vs image file"
    );
    assert_eq!(
        md.diskbuf % 4096,
        0,
        "{ctx}: diskbuf {:#x} not page-aligned",
        md.diskbuf
    );
    assert_eq!(
        md.read_only(),
        case.append.split_whitespace().any(|w| w == "ro"),
        "{ctx}: MDI configflags ro bit"
    );
    let mut ram = vec![0u8; booted.image_len as usize];
    File::open(&booted.dump)
        .unwrap()
        .read_exact_at(&mut ram, u64::from(md.diskbuf))
        .expect("read image range from dump");
    if let Some(d) = pattern::describe_mismatch(&bytes, &ram) {
        panic!(
            "{ctx}: guest RAM at diskbuf {:#x} is not the image file: {d}",
            md.diskbuf
        );
    }
    // MEMDISK reserves the image in the map it serves, and the BIOS's own map has it as RAM.
    assert_eq!(
        serial::type_of(&log.e820, u64::from(md.diskbuf), booted.image_len),
        Some(2),
        "{ctx}: hooked E820 does not reserve the image\n{log_text}"
    );
    assert_eq!(
        serial::type_of(&log.e820_bios, u64::from(md.diskbuf), booted.image_len),
        Some(1),
        "{ctx}: BIOS E820 does not have the image as RAM\n{log_text}"
    );

    booted.os_ram = serial::os_ram(match case.os_ram {
        OsRamView::Hooked => &log.e820,
        OsRamView::BiosUnhooked => &log.e820_bios,
    });
    let overlaps = booted
        .os_ram
        .iter()
        .any(|r| r.overlaps(u64::from(md.diskbuf), booted.image_len));
    assert_eq!(
        overlaps,
        case.expect == Expect::RefusedOsRam,
        "{ctx}: OS RAM {:x?}",
        booted.os_ram
    );
    booted.total_ram = ram_end(&log.e820_bios);
    booted.memdisk = md;
    booted.log = log;
    booted
}

/// One past the end of the highest usable (type 1) range.
pub fn ram_end(map: &[E820Entry]) -> u64 {
    map.iter()
        .filter(|e| e.kind == 1)
        .map(E820Entry::end)
        .max()
        .unwrap_or(0)
}
