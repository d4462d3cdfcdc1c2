//! The test images: boot program (assembled with NASM from `boot/boot.asm`), ISO, MBR hard disk,
//! 1.44 MB floppy and gzip'd copies, all deterministic.

use crate::{iso, pattern, tools};
use std::path::{Path, PathBuf};
use std::process::Command;

/// NT disk signature written at MBR offset 0x1B8 (non-zero, so that no loader rewrites it;
/// `docs/loaders-observed.md` §4.4). "TMEM" as in the recorded experiment.
pub const DISK_SIGNATURE: u32 = 0x4D45_4D54;
/// HDD geometry recorded in the partition entry; MEMDISK takes heads/sectors from it.
pub const HDD_HEADS: u32 = 4;
pub const HDD_SECTORS: u32 = 32;
/// First LBA of the one partition.
pub const PART_START: u32 = 128;
/// 1.44 MB floppy.
pub const FLOPPY_BYTES: usize = 1_474_560;
/// ISO size in 2048-byte blocks (odd on purpose, as the recorded experiment's).
pub const ISO_SECTORS: u32 = 2083;
/// Default HDD size in 512-byte blocks: 8 MiB (MEMDISK treats images under 4 MiB without a BPB
/// as floppies, so hard disks must be bigger).
pub const HDD_BLOCKS: u32 = 16384;

/// Which boot program to assemble.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootVariant {
    /// Print, halt.
    Plain,
    /// Also install an INT 13h hook without a `$INT13SF` header in front of MEMDISK's.
    HideChain,
    /// Also install a `$INT13SF` safe hook of an unknown vendor (`RVBLKTST`) in front of
    /// MEMDISK's. Larger than 440 bytes: El Torito image only.
    ForeignHook,
}

/// Assembles `tests/e2e/boot/boot.asm` into `dir` and returns the flat binary (≤ 440 bytes, or
/// ≤ 510 for [`BootVariant::ForeignHook`]).
pub fn boot_program(variant: BootVariant, dir: &Path) -> Vec<u8> {
    let nasm = tools::require(tools::NASM);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("boot/boot.asm");
    let out = dir.join(match variant {
        BootVariant::Plain => "boot.bin",
        BootVariant::HideChain => "boot-hide-chain.bin",
        BootVariant::ForeignHook => "boot-foreign-hook.bin",
    });
    let mut cmd = Command::new(nasm);
    cmd.arg("-f").arg("bin").arg("-o").arg(&out);
    match variant {
        BootVariant::Plain => {}
        BootVariant::HideChain => {
            cmd.arg("-DHIDE_CHAIN");
        }
        BootVariant::ForeignHook => {
            cmd.arg("-DFOREIGN_HOOK");
        }
    }
    let o = cmd.arg(&src).output().expect("run nasm");
    assert!(
        o.status.success(),
        "nasm {} failed: {}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let bin = std::fs::read(&out).expect("read assembled boot program");
    let max = if variant == BootVariant::ForeignHook {
        510
    } else {
        440
    };
    assert!(
        !bin.is_empty() && bin.len() <= max,
        "boot program is {} bytes",
        bin.len()
    );
    bin
}

/// ISO 9660 + El Torito no-emulation image of [`ISO_SECTORS`] blocks.
pub fn iso_image(boot: &[u8]) -> Vec<u8> {
    iso::build(boot, ISO_SECTORS)
}

/// MBR hard disk of `blocks` 512-byte blocks: boot program, disk signature, one partition
/// (type 0x83, LBA [`PART_START`] to the end, CHS for [`HDD_HEADS`] × [`HDD_SECTORS`]), 0x55AA;
/// every other block carries the `PATHDD` pattern.
pub fn hdd_image(boot: &[u8], blocks: u32) -> Vec<u8> {
    assert!(blocks > PART_START && boot.len() <= 440);
    let mut img = vec![0u8; blocks as usize * 512];
    pattern::fill("PATHDD", 0, &mut img);
    let mbr = &mut img[..512];
    mbr.fill(0);
    mbr[..boot.len()].copy_from_slice(boot);
    mbr[0x1B8..0x1BC].copy_from_slice(&DISK_SIGNATURE.to_le_bytes());
    let last = blocks - 1;
    let e = &mut mbr[0x1BE..0x1CE];
    e[0] = 0x00;
    e[1..4].copy_from_slice(&chs(PART_START));
    e[4] = 0x83;
    e[5..8].copy_from_slice(&chs(last));
    e[8..12].copy_from_slice(&PART_START.to_le_bytes());
    e[12..16].copy_from_slice(&(blocks - PART_START).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    img
}

/// Partition-entry CHS bytes (head, sector | cylinder high bits, cylinder low) for an LBA.
fn chs(lba: u32) -> [u8; 3] {
    let per_cyl = HDD_HEADS * HDD_SECTORS;
    let c = (lba / per_cyl).min(1023);
    let h = (lba % per_cyl) / HDD_SECTORS;
    let s = lba % HDD_SECTORS + 1;
    [h as u8, (s as u8) | (((c >> 8) as u8) << 6), c as u8]
}

/// 1.44 MB floppy: the boot program and 0x55AA in block 0 (no BPB: MEMDISK picks 80/2/18 from the
/// size), `PATFDD` pattern everywhere else.
pub fn floppy_image(boot: &[u8]) -> Vec<u8> {
    assert!(boot.len() <= 510);
    let mut img = vec![0u8; FLOPPY_BYTES];
    pattern::fill("PATFDD", 0, &mut img);
    img[..512].fill(0);
    img[..boot.len()].copy_from_slice(boot);
    img[510] = 0x55;
    img[511] = 0xAA;
    img
}

/// `gzip -n -9` of `path` into `path.gz` (no name or time stamp in the header).
pub fn gzip(path: &Path) -> PathBuf {
    let gz = tools::require(tools::GZIP);
    let out = PathBuf::from(format!("{}.gz", path.display()));
    let o = Command::new(gz)
        .args(["-n", "-9", "-c"])
        .arg(path)
        .output()
        .expect("run gzip");
    assert!(
        o.status.success(),
        "gzip failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(&out, o.stdout).expect("write gzip image");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbr_geometry_and_signature() {
        let img = hdd_image(&[0xEA], HDD_BLOCKS);
        assert_eq!(&img[0x1B8..0x1BC], &DISK_SIGNATURE.to_le_bytes());
        assert_eq!(&img[0x1BE + 1..0x1BE + 4], &[0, 1, 1]);
        assert_eq!(&img[0x1BE + 5..0x1BE + 8], &[3, 32, 127]);
        assert_eq!(pattern::tag_of(&img[512 * 5..]), Some("PATHDD-00000005-"));
        assert_eq!(floppy_image(&[1]).len(), FLOPPY_BYTES);
    }
}
