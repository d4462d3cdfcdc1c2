//! The F6 floppy: a standard 1.44 MB FAT12 image built in memory with the `fatfs` crate.
//!
//! Layout is that of a DOS-formatted 3½" HD diskette: 2880 sectors of 512 bytes, 80 cylinders ×
//! 2 heads × 18 sectors, 1 reserved sector, 2 FATs, 224 root entries, 1 sector per cluster,
//! media byte 0xF0. Every timestamp and the volume serial number are fixed, so the same files
//! always give the same bytes.

use std::io::{Cursor, Write};

use fatfs::{
    Date, DateTime, FatType, FileSystem, FormatVolumeOptions, FsOptions, Time, TimeProvider,
};

use crate::XpError;

/// Size of the image in bytes (1,474,560).
pub const IMAGE_SIZE: usize = SECTORS as usize * SECTOR_SIZE as usize;
const SECTORS: u32 = 2880;
const SECTOR_SIZE: u16 = 512;
/// Volume label (BPB and root directory), 11 bytes space-padded.
pub const VOLUME_LABEL: &str = "RVBLK F6";
/// Volume serial number: fixed for reproducibility ("RVBK" read as a little-endian u32 is not
/// important, only that it never changes).
pub const VOLUME_ID: u32 = 0x5256_424B;

/// The timestamp given to every file: 2025-01-01 00:00:00.
pub const FIXED_TIME: DateTime = DateTime {
    date: Date {
        year: 2025,
        month: 1,
        day: 1,
    },
    time: Time {
        hour: 0,
        min: 0,
        sec: 0,
        millis: 0,
    },
};

#[derive(Debug)]
struct FixedTime;

impl TimeProvider for FixedTime {
    fn get_current_date(&self) -> Date {
        FIXED_TIME.date
    }
    fn get_current_date_time(&self) -> DateTime {
        FIXED_TIME
    }
}

static FIXED_TIME_PROVIDER: FixedTime = FixedTime;

/// Checks that `name` is a valid upper-case 8.3 name (what text-mode setup can read).
pub fn is_upper_8_3(name: &str) -> bool {
    let (base, ext) = match name.split_once('.') {
        Some((b, e)) => (b, e),
        None => (name, ""),
    };
    let ok_char =
        |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || "_-~!#$%&'()@^`{}".contains(c);
    (1..=8).contains(&base.len())
        && ext.len() <= 3
        && !(name.contains('.') && ext.is_empty())
        && base.chars().all(ok_char)
        && ext.chars().all(ok_char)
}

/// Builds the floppy image holding `files` (name, contents) in its root directory, in the given
/// order. Names must be upper-case 8.3; together the files must fit on 1.44 MB.
pub fn build_f6_image(files: &[(&str, &[u8])]) -> Result<Vec<u8>, XpError> {
    for (name, _) in files {
        if !is_upper_8_3(name) {
            return Err(XpError::Floppy(format!(
                "{name:?} is not an upper-case 8.3 file name"
            )));
        }
    }
    let mut disk = Cursor::new(vec![0u8; IMAGE_SIZE]);
    let mut label = [b' '; 11];
    label[..VOLUME_LABEL.len()].copy_from_slice(VOLUME_LABEL.as_bytes());
    let options = FormatVolumeOptions::new()
        .total_sectors(SECTORS)
        .bytes_per_sector(SECTOR_SIZE)
        .bytes_per_cluster(u32::from(SECTOR_SIZE))
        .fat_type(FatType::Fat12)
        .fats(2)
        .max_root_dir_entries(224)
        .media(0xF0)
        .sectors_per_track(18)
        .heads(2)
        .drive_num(0)
        .volume_id(VOLUME_ID)
        .volume_label(label);
    let fail = |what: &str, e: std::io::Error| XpError::Floppy(format!("{what}: {e}"));
    fatfs::format_volume(&mut disk, options).map_err(|e| fail("format", e))?;
    disk.set_position(0);
    {
        let fs = FileSystem::new(
            &mut disk,
            FsOptions::new()
                .time_provider(&FIXED_TIME_PROVIDER)
                .update_accessed_date(false),
        )
        .map_err(|e| fail("mount", e))?;
        if fs.fat_type() != FatType::Fat12 {
            return Err(XpError::Floppy("formatted volume is not FAT12".into()));
        }
        // Created, modified and accessed stamps all come from FIXED_TIME_PROVIDER.
        let root = fs.root_dir();
        for (name, data) in files {
            let mut file = root.create_file(name).map_err(|e| fail(name, e))?;
            file.truncate().map_err(|e| fail(name, e))?;
            file.write_all(data).map_err(|e| fail(name, e))?;
            file.flush().map_err(|e| fail(name, e))?;
        }
        drop(root);
        fs.unmount().map_err(|e| fail("unmount", e))?;
    }
    let image = disk.into_inner();
    debug_assert_eq!(image.len(), IMAGE_SIZE);
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["TXTSETUP.OEM", "RVBLKXP.SYS", "DISK1", "A.B", "RVBLKXP.TAG"] {
            assert!(is_upper_8_3(good), "{good}");
        }
        for bad in [
            "txtsetup.oem",
            "TOOLONGNAME.SYS",
            "A.BCDE",
            "",
            ".SYS",
            "A.",
            "A B.SYS",
            "A.B.C",
        ] {
            assert!(!is_upper_8_3(bad), "{bad}");
        }
    }

    #[test]
    fn geometry_and_determinism() {
        let files: &[(&str, &[u8])] = &[("A.TXT", b"hello"), ("B.BIN", &[7u8; 5000])];
        let a = build_f6_image(files).unwrap();
        let b = build_f6_image(files).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 1_474_560);
        let u16_at = |o: usize| u16::from_le_bytes([a[o], a[o + 1]]);
        assert_eq!(u16_at(11), 512); // bytes per sector
        assert_eq!(a[13], 1); // sectors per cluster
        assert_eq!(u16_at(14), 1); // reserved sectors
        assert_eq!(a[16], 2); // FATs
        assert_eq!(u16_at(17), 224); // root entries
        assert_eq!(u16_at(19), 2880); // total sectors
        assert_eq!(a[21], 0xF0); // media
        assert_eq!(u16_at(22), 9); // sectors per FAT
        assert_eq!(u16_at(24), 18); // sectors per track
        assert_eq!(u16_at(26), 2); // heads
        assert_eq!(&a[43..54], b"RVBLK F6   ");
        assert_eq!(&a[54..62], b"FAT12   ");
        assert_eq!(&a[510..512], &[0x55, 0xAA]);
    }

    #[test]
    fn refuses_long_names() {
        assert!(build_f6_image(&[("txtsetup.oem", b"x")]).is_err());
    }
}
