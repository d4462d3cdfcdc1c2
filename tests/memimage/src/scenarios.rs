//! Complete layouts reproducing `docs/loaders-observed.md` (QEMU `pc`, SeaBIOS, MEMDISK 6.04,
//! GRUB4DOS 0.4.6a) plus UEFI cases from `docs/loaders.md` §4/§6, each with the OS RAM ranges Windows
//! would report (the E820 map the loader served, type 1, shrunk to whole pages) and the images
//! discovery must find.

use rvblk_core::discovery::{DiscoveryInput, Firmware, PhysRange};
use rvblk_core::image::{DeviceKind, LoaderSource, WritePolicy};

use crate::g4d::plant_signature_literal;
use crate::nfit::{NFIT_GUID_VIRTUAL_CD, NFIT_GUID_VIRTUAL_DISK};
use crate::{
    os_ram_from_e820, plant_fat12_floppy_bpb, plant_iso9660, plant_observed_hdd_mbr,
    plant_pattern_tag, G4dSlot, Grub4DosBlock, Grub4EfiPage, MemdiskBlock, NfitBuilder, PhysMem,
};

/// The observed test ISO: 2083 × 2048 bytes = 8332 sectors.
pub const TEST_ISO_BLOCKS: u32 = 2083;
pub const TEST_ISO_BYTES: u64 = 2083 * 2048;
/// The observed 8 MiB test HDD.
pub const TEST_HDD_BYTES: u64 = 8 << 20;
/// The observed 1.44 MB floppy.
pub const TEST_FDD_BYTES: u64 = 1_474_560;

const GIB: u64 = 1 << 30;

/// An image discovery must report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    pub kind: DeviceKind,
    pub phys_base: u64,
    pub length: u64,
    pub source: LoaderSource,
    pub write_policy: WritePolicy,
}

/// Memory + platform inputs + expected result.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub mem: PhysMem,
    pub os_ram: Vec<PhysRange>,
    pub nfit: Option<Vec<u8>>,
    pub firmware: Firmware,
    pub max_phys_end: u64,
    pub total_ram_bytes: u64,
    /// In presentation order.
    pub expected: Vec<Expected>,
}

impl Scenario {
    fn bios(name: &'static str, ram: u64) -> Self {
        let mut mem = PhysMem::new();
        mem.with_bios_defaults();
        Scenario {
            name,
            mem,
            os_ram: Vec::new(),
            nfit: None,
            firmware: Firmware::Bios,
            max_phys_end: 1 << 52,
            total_ram_bytes: ram,
            expected: Vec::new(),
        }
    }

    /// The discovery input borrowing this scenario.
    pub fn input(&self) -> DiscoveryInput<'_> {
        DiscoveryInput {
            os_ram: &self.os_ram,
            nfit: self.nfit.as_deref(),
            firmware: self.firmware,
            max_phys_end: self.max_phys_end,
            total_ram_bytes: self.total_ram_bytes,
        }
    }

    fn expect(&mut self, kind: DeviceKind, phys_base: u64, length: u64, source: LoaderSource) {
        self.expected.push(Expected {
            kind,
            phys_base,
            length,
            source,
            write_policy: WritePolicy::ReadWrite,
        });
    }
}

/// The SeaBIOS `pc` firmware-reserved tail of a 256 MiB guest and the high reservations.
const TAIL_256M: [(u64, u64, u32); 3] = [
    (0x0FFE_0000, 0x2_0000, 2),
    (0xFFFC_0000, 0x4_0000, 2),
    (0xFD_0000_0000, 0x3_0000_0000, 2),
];

fn e820(low_top: u64, rest: &[(u64, u64, u32)]) -> Vec<PhysRange> {
    let mut v = vec![
        (0, low_top, 1),
        (low_top, 0xA0000 - low_top, 2),
        (0xF0000, 0x10000, 2),
    ];
    v.extend_from_slice(rest);
    os_ram_from_e820(&v)
}

fn plant_test_iso(mem: &mut PhysMem, phys: u64) {
    plant_pattern_tag(mem, phys, "PATISO", 0);
    plant_iso9660(mem, phys, TEST_ISO_BLOCKS);
}

fn plant_test_hdd(mem: &mut PhysMem, phys: u64) {
    plant_observed_hdd_mbr(mem, phys);
}

/// GRUB4DOS's stale copies observed in every run (§4.5): the handler template inside its stage2
/// image at 0x08EE0 (signature at 0x08FE3, same slots as the live block) and the string literal
/// at 0x57E2B.
pub fn plant_g4d_stale_copies(mem: &mut PhysMem, live: &Grub4DosBlock) {
    let mut template = live.clone();
    template.base = 0x08EE0;
    template.plant(mem);
    plant_signature_literal(mem, 0x57E2B);
}

/// MEMDISK `iso raw`, 256 MiB (§3.1–§3.2).
pub fn memdisk_iso() -> Scenario {
    let mut s = Scenario::bios("memdisk_iso", 256 << 20);
    let md = MemdiskBlock::observed_iso();
    md.install(&mut s.mem);
    plant_test_iso(&mut s.mem, 0x0FBC_E000);
    s.os_ram = e820(
        0x9F000,
        &[
            (0x10_0000, 0x0FAC_E000, 1),
            (0x0FBC_E000, 0x41_1800, 2),
            (0x0FFD_F800, 0x800, 1),
            TAIL_256M[0],
            TAIL_256M[1],
            TAIL_256M[2],
        ],
    );
    s.expect(
        DeviceKind::CdRom,
        0x0FBC_E000,
        TEST_ISO_BYTES,
        LoaderSource::Memdisk,
    );
    s
}

/// MEMDISK with the 8 MiB HDD image (§3.1).
pub fn memdisk_hdd() -> Scenario {
    let mut s = Scenario::bios("memdisk_hdd", 256 << 20);
    MemdiskBlock::observed_hdd().install(&mut s.mem);
    plant_test_hdd(&mut s.mem, 0x0F7E_0000);
    s.os_ram = e820(
        0x9F000,
        &[
            (0x10_0000, 0x0F6E_0000, 1),
            (0x0F7E_0000, 0x82_0000, 2),
            TAIL_256M[1],
            TAIL_256M[2],
        ],
    );
    s.expect(
        DeviceKind::Disk,
        0x0F7E_0000,
        TEST_HDD_BYTES,
        LoaderSource::Memdisk,
    );
    s
}

/// MEMDISK with the 1.44 MB floppy image (no BPB, as observed) (§3.1).
pub fn memdisk_floppy() -> Scenario {
    let mut s = Scenario::bios("memdisk_floppy", 256 << 20);
    MemdiskBlock::observed_floppy().install(&mut s.mem);
    plant_pattern_tag(&mut s.mem, 0x0FE7_8000, "PATFDD", 0);
    s.os_ram = e820(
        0x9F400,
        &[
            (0x10_0000, 0x0FD7_8000, 1),
            (0x0FE7_8000, 0x16_8000, 2),
            TAIL_256M[0],
            TAIL_256M[1],
            TAIL_256M[2],
        ],
    );
    s.expect(
        DeviceKind::Floppy,
        0x0FE7_8000,
        TEST_FDD_BYTES,
        LoaderSource::Memdisk,
    );
    s
}

/// The live 0.4.6a block at 0x9CC00 with `slots`, hooked, plus the stale copies.
fn g4d(s: &mut Scenario, slots: &[G4dSlot]) -> Grub4DosBlock {
    let mut blk = Grub4DosBlock::new(0x9CC00);
    blk.slots = slots.to_vec();
    blk.install(&mut s.mem);
    plant_g4d_stale_copies(&mut s.mem, &blk);
    blk
}

/// GRUB4DOS `g4d_both`: ISO as (0xFF) and IMG as (hd1), 256 MiB (§4.1–§4.3). The ISO slot is
/// padded to 8336 sectors; discovery caps it at the 2083-block volume.
pub fn g4d_both() -> Scenario {
    let mut s = Scenario::bios("g4d_both", 256 << 20);
    g4d(
        &mut s,
        &[
            G4dSlot::memdrive_cd(0x0FBC_E000, TEST_ISO_BYTES),
            G4dSlot::memdrive_hdd(0x81, 0x0F3C_E000, TEST_HDD_BYTES),
        ],
    );
    plant_test_iso(&mut s.mem, 0x0FBC_E000);
    plant_test_hdd(&mut s.mem, 0x0F3C_E000);
    s.os_ram = os_ram_from_e820(&[
        (0, 0x9CC00, 1),
        (0x9CC00, 0x3400, 2),
        (0xF0000, 0x10000, 2),
        (0x10_0000, 0x0F2C_E000, 1),
        (0x0F3C_E000, 0xC3_2000, 2),
        TAIL_256M[1],
        TAIL_256M[2],
    ]);
    s.expect(
        DeviceKind::CdRom,
        0x0FBC_E000,
        TEST_ISO_BYTES,
        LoaderSource::Grub4Dos,
    );
    s.expect(
        DeviceKind::Disk,
        0x0F3C_E000,
        TEST_HDD_BYTES,
        LoaderSource::Grub4Dos,
    );
    s
}

/// GRUB4DOS `g4d_hd0`: IMG as (hd0), the real disk swapped to (hd1) (swap slot `81 80 00 01 06
/// 80 fe 7f`, not RAM).
pub fn g4d_hd0() -> Scenario {
    let mut s = Scenario::bios("g4d_hd0", 256 << 20);
    g4d(
        &mut s,
        &[
            G4dSlot::memdrive_hdd(0x80, 0x0F7E_0000, TEST_HDD_BYTES),
            G4dSlot::swap(0x81, 0x80),
        ],
    );
    plant_test_hdd(&mut s.mem, 0x0F7E_0000);
    s.os_ram = os_ram_from_e820(&[
        (0, 0x9CC00, 1),
        (0x10_0000, 0x0F6E_0000, 1),
        (0x0F7E_0000, 0x82_0000, 2),
        TAIL_256M[1],
    ]);
    s.expect(
        DeviceKind::Disk,
        0x0F7E_0000,
        TEST_HDD_BYTES,
        LoaderSource::Grub4Dos,
    );
    s
}

/// A 40 MiB GRUB4DOS hard-disk image (hd0): larger than the NT 5.x x86 mapping budget
/// (32 MiB, `docs/x86-mapping.md`), so `rvblkxp.sys` on x86 serves it through views that get
/// replaced. Every MiB after the first starts with a tag naming its block.
pub const BIG_HDD_BYTES: u64 = 40 << 20;

pub fn g4d_big_hdd() -> Scenario {
    let mut s = Scenario::bios("g4d_big_hdd", 256 << 20);
    let base = 0x0C00_0000;
    g4d(&mut s, &[G4dSlot::memdrive_hdd(0x80, base, BIG_HDD_BYTES)]);
    plant_test_hdd(&mut s.mem, base);
    for block in (2048..BIG_HDD_BYTES / 512).step_by(2048) {
        plant_pattern_tag(&mut s.mem, base + block * 512, "BIG", block as u32);
    }
    let end = base + BIG_HDD_BYTES;
    s.os_ram = os_ram_from_e820(&[
        (0, 0x9CC00, 1),
        (0x10_0000, base - 0x10_0000, 1),
        (base, BIG_HDD_BYTES, 2),
        (end, 0x0FFE_0000 - end, 1),
        TAIL_256M[0],
    ]);
    s.expect(
        DeviceKind::Disk,
        base,
        BIG_HDD_BYTES,
        LoaderSource::Grub4Dos,
    );
    s
}

/// GRUB4DOS `g4d_fd0`: floppy image as (fd0) at 0x0FE78000, 2880 sectors.
pub fn g4d_fd0() -> Scenario {
    let mut s = Scenario::bios("g4d_fd0", 256 << 20);
    g4d(
        &mut s,
        &[G4dSlot::memdrive_floppy(0x00, 0x0FE7_8000, TEST_FDD_BYTES)],
    );
    plant_fat12_floppy_bpb(&mut s.mem, 0x0FE7_8000);
    s.os_ram = os_ram_from_e820(&[
        (0, 0x9CC00, 1),
        (0x10_0000, 0x0FD7_8000, 1),
        (0x0FE7_8000, 0x16_8000, 2),
    ]);
    s.expect(
        DeviceKind::Floppy,
        0x0FE7_8000,
        TEST_FDD_BYTES,
        LoaderSource::Grub4Dos,
    );
    s
}

/// GRUB4DOS `g4d_nomem`: the ISO mapped from disk without `--mem` (to 0x80): nothing in RAM.
pub fn g4d_nomem() -> Scenario {
    let mut s = Scenario::bios("g4d_nomem", 256 << 20);
    g4d(&mut s, &[G4dSlot::disk_backed_cd(0xFF, 0x80, 0x8E4, 8332)]);
    s.os_ram = os_ram_from_e820(&[(0, 0x9CC00, 1), (0x10_0000, 0x0FEE_0000, 1)]);
    s
}

/// 6 GiB guest without `--top`: ISO at 0xBFBCE000, IMG at 0xBF3CE000 (to_cylinder 0xA391).
pub fn g4d_6g_below_4g() -> Scenario {
    let mut s = Scenario::bios("g4d_6g_below_4g", 6 * GIB);
    g4d(
        &mut s,
        &[
            G4dSlot::memdrive_cd(0xBFBC_E000, TEST_ISO_BYTES).with_to_cylinder(0xA391),
            G4dSlot::memdrive_hdd(0x81, 0xBF3C_E000, TEST_HDD_BYTES).with_to_cylinder(0x8391),
        ],
    );
    plant_test_iso(&mut s.mem, 0xBFBC_E000);
    plant_test_hdd(&mut s.mem, 0xBF3C_E000);
    s.os_ram = os_ram_from_e820(&[
        (0, 0x9CC00, 1),
        (0x10_0000, 0xBF2C_E000, 1),
        (0xBF3C_E000, 0xC3_2000, 2),
        (0x1_0000_0000, 0xC000_0000, 1),
    ]);
    s.expect(
        DeviceKind::CdRom,
        0xBFBC_E000,
        TEST_ISO_BYTES,
        LoaderSource::Grub4Dos,
    );
    s.expect(
        DeviceKind::Disk,
        0xBF3C_E000,
        TEST_HDD_BYTES,
        LoaderSource::Grub4Dos,
    );
    s
}

/// 6 GiB guest with `--top`: both images above 4 GiB (ISO 0x1_BFBEE000, IMG 0x1_BF3EE000), in
/// a hole of the E820 map (§4.3).
pub fn g4d_6g_top() -> Scenario {
    let mut s = Scenario::bios("g4d_6g_top", 6 * GIB);
    g4d(
        &mut s,
        &[
            G4dSlot::memdrive_cd(0x1_BFBE_E000, TEST_ISO_BYTES),
            G4dSlot::memdrive_hdd(0x81, 0x1_BF3E_E000, TEST_HDD_BYTES),
        ],
    );
    plant_test_iso(&mut s.mem, 0x1_BFBE_E000);
    plant_test_hdd(&mut s.mem, 0x1_BF3E_E000);
    s.os_ram = os_ram_from_e820(&[
        (0, 0x9CC00, 1),
        (0x10_0000, 0xBFEE_0000, 1),
        (0x1_0000_0000, 0xBF3E_E000, 1),
    ]);
    s.expect(
        DeviceKind::CdRom,
        0x1_BFBE_E000,
        TEST_ISO_BYTES,
        LoaderSource::Grub4Dos,
    );
    s.expect(
        DeviceKind::Disk,
        0x1_BF3E_E000,
        TEST_HDD_BYTES,
        LoaderSource::Grub4Dos,
    );
    s
}

/// GRUB4DOS (IMG as hd1 at 0x0F7E0000, hooked at 0x9CC00) then `memdisk iso raw` (ISO at
/// 0x0F3BE000, driver at 0x9C000): chain 9C00:000A → 9CC0:0100 → F000:E3FE (§5).
pub fn chained_memdisk_g4d() -> Scenario {
    let mut s = Scenario::bios("chained_memdisk_g4d", 256 << 20);
    g4d(
        &mut s,
        &[G4dSlot::memdrive_hdd(0x81, 0x0F7E_0000, TEST_HDD_BYTES)],
    );
    let md = MemdiskBlock {
        driveraddr: 0x9C000,
        prev_int13: 0x9CC0_0100,
        oldint15: 0x9CC0_20FC,
        olddosmem: 627,
        diskbuf: 0x0F3B_E000,
        bootloaderid: 0x71,
        cmdline: 0x9C00_07E0,
        ..MemdiskBlock::observed_iso()
    };
    md.install(&mut s.mem);
    plant_test_iso(&mut s.mem, 0x0F3B_E000);
    plant_test_hdd(&mut s.mem, 0x0F7E_0000);
    s.os_ram = os_ram_from_e820(&[
        (0, 0x9C000, 1),
        (0x9C000, 0x4000, 2),
        (0x10_0000, 0x0F2B_E000, 1),
        (0x0F3B_E000, 0x41_1800, 2),
        (0x0F7C_F800, 0x1_0800, 1),
        (0x0F7E_0000, 0x82_0000, 2),
    ]);
    s.expect(
        DeviceKind::CdRom,
        0x0F3B_E000,
        TEST_ISO_BYTES,
        LoaderSource::Memdisk,
    );
    s.expect(
        DeviceKind::Disk,
        0x0F7E_0000,
        TEST_HDD_BYTES,
        LoaderSource::Grub4Dos,
    );
    s
}

fn uefi(name: &'static str) -> Scenario {
    let mut mem = PhysMem::new();
    // Under UEFI low memory holds whatever; make the IVT look like a live GRUB4DOS chain
    // to prove it is ignored.
    mem.plant_ivt13(0x9CC0, 0x0100).set_bda_basemem_kib(627);
    Scenario {
        name,
        mem,
        os_ram: os_ram_from_e820(&[
            (0, 0x9E000, 1),
            (0x10_0000, 0x7DF0_0000, 1),
            (0x8000_0000, 0x8000_0000, 1),
        ]),
        nfit: None,
        firmware: Firmware::Uefi,
        max_phys_end: 1 << 52,
        total_ram_bytes: 4 * GIB,
        expected: Vec::new(),
    }
}

/// grub4efi: page 0x9F000 (`GRUB4EFI` marker), ISO as (0xFF) at 0x7F000000 and IMG as (hd0) at
/// 0x7E000000, reserved memory (§4.1).
pub fn grub4efi_page() -> Scenario {
    let mut s = uefi("grub4efi_page");
    Grub4EfiPage::grub4efi(0x9F000)
        .slot(G4dSlot::efi_memdrive(
            0xFF,
            0x7F00_0000,
            TEST_ISO_BYTES,
            true,
        ))
        .slot(G4dSlot::efi_memdrive(
            0x80,
            0x7E00_0000,
            TEST_HDD_BYTES,
            false,
        ))
        .plant(&mut s.mem);
    plant_test_iso(&mut s.mem, 0x7F00_0000);
    plant_test_hdd(&mut s.mem, 0x7E00_0000);
    s.expect(
        DeviceKind::CdRom,
        0x7F00_0000,
        TEST_ISO_BYTES,
        LoaderSource::Grub4Efi,
    );
    s.expect(
        DeviceKind::Disk,
        0x7E00_0000,
        TEST_HDD_BYTES,
        LoaderSource::Grub4Efi,
    );
    s
}

/// a1ive GRUB2 `map`: page 0x9E000, a CD memory file at a 512-byte-aligned (not page-aligned)
/// address (§4.2).
pub fn a1ive_page() -> Scenario {
    let mut s = uefi("a1ive_page");
    let base = 0x7F00_0200;
    Grub4EfiPage::a1ive(0x9E000)
        .slot(G4dSlot::a1ive_memdrive(base, TEST_ISO_BYTES, true))
        .plant(&mut s.mem);
    plant_test_iso(&mut s.mem, base);
    s.expect(
        DeviceKind::CdRom,
        base,
        TEST_ISO_BYTES,
        LoaderSource::Grub4Efi,
    );
    s
}

/// EDK2 RamDiskDxe (HTTP boot): NFIT with a virtual CD at 0x7F000000 and a virtual disk at
/// 0x7E000000 (§6).
pub fn nfit_ramdisks() -> Scenario {
    let mut s = uefi("nfit_ramdisks");
    plant_test_iso(&mut s.mem, 0x7F00_0000);
    plant_test_hdd(&mut s.mem, 0x7E00_0000);
    s.nfit = Some(
        NfitBuilder::new()
            .ram_disk(NFIT_GUID_VIRTUAL_CD, 0x7F00_0000, TEST_ISO_BYTES)
            .ram_disk(NFIT_GUID_VIRTUAL_DISK, 0x7E00_0000, TEST_HDD_BYTES)
            .build(),
    );
    s.expect(
        DeviceKind::CdRom,
        0x7F00_0000,
        TEST_ISO_BYTES,
        LoaderSource::Nfit,
    );
    s.expect(
        DeviceKind::Disk,
        0x7E00_0000,
        TEST_HDD_BYTES,
        LoaderSource::Nfit,
    );
    s
}

/// Every scenario above.
pub fn all() -> Vec<Scenario> {
    vec![
        memdisk_iso(),
        memdisk_hdd(),
        memdisk_floppy(),
        g4d_both(),
        g4d_hd0(),
        g4d_fd0(),
        g4d_big_hdd(),
        g4d_nomem(),
        g4d_6g_below_4g(),
        g4d_6g_top(),
        chained_memdisk_g4d(),
        grub4efi_page(),
        a1ive_page(),
        nfit_ramdisks(),
    ]
}
