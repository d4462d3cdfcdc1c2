//! Physical-memory setups for the suite and benchmarks, built with `rvblk-memimage`.

use crate::emu::kernel::{Kernel, KernelConfig, LegacyConfig, Personality};
use crate::emu::phys::PhysMem;
use rvblk_core::image::{DeviceKind, LoaderSource, WritePolicy};
use rvblk_memimage::scenarios::{self, Scenario};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct ExpectedLun {
    pub kind: &'static str,
    pub phys_base: u64,
    pub length: u64,
    pub source: &'static str,
    pub policy: WritePolicy,
}

pub struct Setup {
    pub name: String,
    pub phys: Arc<PhysMem>,
    pub os_ram: Vec<(u64, u64)>,
    pub nfit: Option<Vec<u8>>,
    pub expected: Vec<ExpectedLun>,
}

pub fn kind_name(k: DeviceKind) -> &'static str {
    match k {
        DeviceKind::Disk => "disk",
        DeviceKind::CdRom => "cdrom",
        DeviceKind::Floppy => "floppy",
    }
}

pub fn source_name(s: LoaderSource) -> &'static str {
    match s {
        LoaderSource::Grub4Dos => "grub4dos",
        LoaderSource::Grub4Efi => "grub4efi",
        LoaderSource::Memdisk => "memdisk",
        LoaderSource::Nfit => "nfit",
    }
}

impl Setup {
    pub fn from_scenario(s: &Scenario) -> Result<Setup, String> {
        let top = s.mem.pages().max().map_or(0, |p| p + 4096);
        // Images are planted sparsely (only the bytes tests look at), and a guest with a PCI hole
        // has memory above `total_ram_bytes` (6 GiB guest: up to 0x1_C000_0000): cover every
        // expected image range too, so the driver can map all of it.
        let images_end = s
            .expected
            .iter()
            .map(|e| e.phys_base + e.length)
            .max()
            .unwrap_or(0);
        let images_end = (images_end + 0xFFF) & !0xFFF;
        let size = top
            .max(images_end)
            .max(s.total_ram_bytes.min(8 << 30))
            .max(16 << 20);
        let phys = PhysMem::from_segments(size, &[])?;
        for p in s.mem.pages() {
            phys.write(p, &s.mem.bytes(p, 4096))?;
        }
        Ok(Setup {
            name: s.name.to_string(),
            phys: Arc::new(phys),
            os_ram: s.os_ram.iter().map(|r| (r.start, r.length)).collect(),
            nfit: s.nfit.clone(),
            expected: s
                .expected
                .iter()
                .map(|e| ExpectedLun {
                    kind: kind_name(e.kind),
                    phys_base: e.phys_base,
                    length: e.length,
                    source: source_name(e.source),
                    policy: if e.kind == DeviceKind::CdRom {
                        WritePolicy::ReadOnly
                    } else {
                        e.write_policy
                    },
                })
                .collect(),
        })
    }

    pub fn named(name: &str) -> Result<Setup, String> {
        let s = scenarios::all()
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| format!("no memimage scenario {name}"))?;
        Setup::from_scenario(&s)
    }

    /// A GRUB4DOS `map --mem` hard-disk image of `bytes` at 256 MiB filled with a
    /// position-dependent pattern (for benchmarks and stress).
    pub fn big_disk(bytes: u64) -> Result<Setup, String> {
        let base = 0x1000_0000u64;
        let mut mem = rvblk_memimage::PhysMem::new();
        mem.with_bios_defaults();
        let blk = rvblk_memimage::Grub4DosBlock::new(0x9CC00)
            .slot(rvblk_memimage::G4dSlot::memdrive_hdd(0x80, base, bytes));
        blk.install(&mut mem);
        let total = base + bytes + (16 << 20);
        let phys = PhysMem::from_segments(total, &[])?;
        for p in mem.pages() {
            phys.write(p, &mem.bytes(p, 4096))?;
        }
        let chunk = 1 << 20;
        let mut buf = vec![0u8; chunk];
        let mut off = 0u64;
        while off < bytes {
            for (i, w) in buf.chunks_mut(8).enumerate() {
                let v = (off + i as u64 * 8).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5a5a_1234;
                w.copy_from_slice(&v.to_le_bytes());
            }
            let n = (bytes - off).min(chunk as u64) as usize;
            phys.write(base + off, &buf[..n])?;
            off += n as u64;
        }
        let os_ram = vec![
            (0x1000, 0x9B000),
            (0x10_0000, base - 0x10_0000),
            (base + bytes, 16 << 20),
        ];
        Ok(Setup {
            name: format!("big_disk_{}MiB", bytes >> 20),
            phys: Arc::new(phys),
            os_ram,
            nfit: None,
            expected: vec![ExpectedLun {
                kind: "disk",
                phys_base: base,
                length: bytes,
                source: "grub4dos",
                policy: WritePolicy::ReadWrite,
            }],
        })
    }

    pub fn kernel(&self, personality: Personality, verbose: bool) -> Arc<Kernel> {
        self.kernel_with(personality, verbose, Default::default())
    }

    /// A kernel over this setup with `machine` (RAM limit, requester, disks).
    pub fn kernel_with(
        &self,
        personality: Personality,
        verbose: bool,
        machine: crate::emu::kernel::MachineConfig,
    ) -> Arc<Kernel> {
        Kernel::new(
            KernelConfig {
                personality,
                os_ram: self.os_ram.clone(),
                nfit: self.nfit.clone(),
                verbose,
                legacy: LegacyConfig::default(),
                machine,
            },
            self.phys.clone(),
        )
    }
}
