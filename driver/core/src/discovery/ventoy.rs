//! Ventoy's hand-off to the booted OS (`docs/ventoy.md`).
//!
//! * [`parse_os_param`]: the 512-byte `ventoy_os_param` record (§1) and the record-level checks of
//!   §2.4 step 1 (GUID, byte sum 0, location address non-zero and 4 KiB-aligned, location length
//!   28 + 16n, chain type, NUL-terminated path, non-zero sizes).
//! * [`parse_image_location`]: the `ventoy_image_location` extent list (§2.1).
//! * [`find`]: where discovery looks — the `VentoyOsParam` UEFI variable's bytes if the port
//!   read them (§3.2), else (BIOS) a 16-byte-step scan of hidden conventional memory from the
//!   BDA top to 0xA0000 (§3.1; the `iBFT`-wrapped form is found by the same scan, its record is
//!   16-byte aligned at +80). The extent list is read from physical memory through the guarded
//!   reader (never below 1 MiB, never OS RAM) and turned into a [`DiskBackedImage`] (§2.4
//!   steps 2–5). The `VentoyRamDisk` variable (§4, UEFI memdisk) becomes a RAM image.
//!   BIOS memdisk mode is syslinux MEMDISK and is found by the mBFT path.

use arrayvec::ArrayVec;

use crate::image::{
    BackingSource, DeviceKind, DiskBackedImage, DiskEvidence, Extent, LoaderSource, MemoryImage,
    WritePolicy, MAX_EXTENTS,
};

use super::memory::{le16, le32, le64, LOW_END, ONE_MIB};
use super::{
    Ctx, DiscoveryLog, DiskRefusal, DiskRefusalReason, Event, Found, FoundVia, Handoff,
    PhysicalMemory, VentoyProblem,
};

/// `ventoy_os_param` is exactly 512 bytes (§1).
pub const OS_PARAM_LEN: usize = 512;
/// Ventoy's GUID {77772020-2E77-6576-6E74-6F792E6E6574} as stored (EFI_GUID layout): the ASCII
/// text "  www.ventoy.net" (§1).
pub const VENTOY_GUID: [u8; 16] = *b"  www.ventoy.net";
/// Header of `ventoy_image_location` before the regions (§2.1).
const LOCATION_HEADER: u32 = 28;
const REGION_LEN: u32 = 16;
/// More regions than this are not read (a sane cap; merged extents must still fit MAX_EXTENTS).
const MAX_REGIONS: u32 = 4096;
/// Where BIOS scanning starts when BDA 0x413 is unusable (§3.1).
const BIOS_SCAN_FALLBACK: u32 = 0x8_0000;
/// GRUB's chain head in front of a UEFI memdisk image (§4).
const CHAIN_HEAD: u64 = 2616;

/// A `ventoy_os_param` record that passed §2.4 step 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OsParam {
    /// The 16 bytes at LBA 0 + 0x180 of the disk holding the image.
    pub disk_id: [u8; 16],
    /// That disk's size in bytes.
    pub disk_size: u64,
    /// 1-based partition number.
    pub part_id: u16,
    /// Filesystem code (0 exFAT, 1 NTFS, 2 ext, 3 XFS, 4 UDF, 5 FAT, 6 Btrfs).
    pub part_type: u16,
    path: [u8; 384],
    path_len: u16,
    /// File size in bytes (> 0).
    pub image_size: u64,
    /// Physical address of the extent list (4 KiB-aligned, non-zero).
    pub location_addr: u64,
    /// Its length: 28 + 16 × regions.
    pub location_len: u32,
    /// `vtoy_reserved[2]`: 0 Linux/other/IMG, 1 Windows ISO, 2 WIM.
    pub chain_type: u8,
    /// NT disk signature at LBA 0 + 0x1B8; `None` when zero (Ventoy before 2020-09 left it so).
    pub mbr_signature: Option<u32>,
}

impl OsParam {
    /// The image path inside the partition (UTF-8 with `/` separators, not validated as UTF-8).
    pub fn path(&self) -> &[u8] {
        &self.path[..usize::from(self.path_len)]
    }

    /// Number of regions the location length announces.
    pub fn region_count(&self) -> u32 {
        (self.location_len - LOCATION_HEADER) / REGION_LEN
    }
}

/// Parse and check a `ventoy_os_param` (`docs/ventoy.md` §1, §2.4 step 1). `bytes` may be
/// longer than 512 (only the first 512 count).
pub fn parse_os_param(bytes: &[u8]) -> Result<OsParam, VentoyProblem> {
    let b = bytes.get(..OS_PARAM_LEN).ok_or(VentoyProblem::Short)?;
    if b[..16] != VENTOY_GUID {
        return Err(VentoyProblem::NoGuid);
    }
    if b.iter().fold(0u8, |s, &x| s.wrapping_add(x)) != 0 {
        return Err(VentoyProblem::BadChecksum);
    }
    let location_addr = le64(b, 0x1B5);
    let location_len = le32(b, 0x1BD);
    if location_addr == 0 {
        return Err(VentoyProblem::NoLocation);
    }
    if !location_addr.is_multiple_of(4096) {
        return Err(VentoyProblem::LocationUnaligned);
    }
    if location_len < LOCATION_HEADER + REGION_LEN
        || !(location_len - LOCATION_HEADER).is_multiple_of(REGION_LEN)
    {
        return Err(VentoyProblem::BadLocationLength);
    }
    let chain_type = b[0x1C1 + 2];
    if chain_type > 2 {
        return Err(VentoyProblem::BadChainType);
    }
    let raw_path = &b[0x2D..0x2D + 384];
    let path_len = raw_path
        .iter()
        .position(|&c| c == 0)
        .ok_or(VentoyProblem::PathNotTerminated)?;
    let image_size = le64(b, 0x1AD);
    let disk_size = le64(b, 0x21);
    if image_size == 0 || disk_size == 0 {
        return Err(VentoyProblem::BadSize);
    }
    let mut disk_id = [0u8; 16];
    disk_id.copy_from_slice(&b[0x11..0x21]);
    let mut path = [0u8; 384];
    path.copy_from_slice(raw_path);
    let sig = le32(b, 0x1E1);
    Ok(OsParam {
        disk_id,
        disk_size,
        part_id: le16(b, 0x29),
        part_type: le16(b, 0x2B),
        path,
        path_len: path_len as u16,
        image_size,
        location_addr,
        location_len,
        chain_type,
        mbr_signature: (sig != 0).then_some(sig),
    })
}

/// One entry of `ventoy_image_location` (§2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VentoyRegion {
    /// Image sectors in this run (image_sector_size units).
    pub image_sectors: u32,
    /// First image sector of this run.
    pub image_start: u32,
    /// Absolute disk LBA (disk_sector_size units) where the run starts.
    pub disk_start: u64,
}

impl VentoyRegion {
    fn decode(b: &[u8]) -> Self {
        VentoyRegion {
            image_sectors: le32(b, 0),
            image_start: le32(b, 4),
            disk_start: le64(b, 8),
        }
    }
}

/// The header of an extent list: `(image_sector_size, disk_sector_size, region_count)`, checked
/// (GUID, iss ∈ {512, 2048}, dss ∈ {512, 4096}).
fn location_header(h: &[u8]) -> Result<(u32, u32, u32), VentoyProblem> {
    if h.get(..16) != Some(&VENTOY_GUID[..]) {
        return Err(VentoyProblem::LocationGuid);
    }
    let iss = le32(h, 0x10);
    let dss = le32(h, 0x14);
    if !matches!(iss, 512 | 2048) || !matches!(dss, 512 | 4096) {
        return Err(VentoyProblem::BadSectorSize);
    }
    Ok((iss, dss, le32(h, 0x18)))
}

/// Parse a whole `ventoy_image_location` held in `bytes` (the port or tests may have it as a
/// buffer): `(image_sector_size, disk_sector_size, regions)`. The region count must match the
/// length (28 + 16n, n ≥ 1).
pub fn parse_image_location(
    bytes: &[u8],
) -> Result<(u32, u32, impl Iterator<Item = VentoyRegion> + '_), VentoyProblem> {
    let (iss, dss, n) = location_header(bytes)?;
    let expected = u64::from(n) * u64::from(REGION_LEN) + u64::from(LOCATION_HEADER);
    if n == 0 || expected != bytes.len() as u64 {
        return Err(VentoyProblem::BadLocationLength);
    }
    let regions = bytes[LOCATION_HEADER as usize..]
        .chunks_exact(REGION_LEN as usize)
        .map(VentoyRegion::decode);
    Ok((iss, dss, regions))
}

/// §2.4 steps 3 and 5: consecutive image sectors, no region at disk sector 0, whole disk sectors
/// per region, total covering the file. Adjacent runs are merged.
fn build_image(
    p: &OsParam,
    iss: u32,
    dss: u32,
    regions: impl Iterator<Item = VentoyRegion>,
    table_address: u64,
) -> Result<DiskBackedImage, DiskRefusalReason> {
    if p.chain_type == 2 {
        return Err(DiskRefusalReason::VentoyWimChain);
    }
    let mut extents = ArrayVec::<Extent, MAX_EXTENTS>::new();
    let mut next_image_sector = 0u64;
    let mut count = 0u32;
    for r in regions {
        count += 1;
        if r.disk_start == 0 {
            return Err(DiskRefusalReason::VentoyMemoryRegion);
        }
        if u64::from(r.image_start) != next_image_sector || r.image_sectors == 0 {
            return Err(DiskRefusalReason::VentoyRegionLayout);
        }
        let bytes = u64::from(r.image_sectors) * u64::from(iss);
        if bytes % u64::from(dss) != 0 {
            return Err(DiskRefusalReason::VentoyRegionLayout);
        }
        let e = Extent {
            start: r.disk_start,
            sectors: bytes / u64::from(dss),
        };
        match extents.last_mut() {
            Some(last) if last.start.checked_add(last.sectors) == Some(e.start) => {
                last.sectors += e.sectors;
            }
            _ => extents
                .try_push(e)
                .map_err(|_| DiskRefusalReason::TooManyExtents {
                    count: p.region_count(),
                })?,
        }
        next_image_sector += u64::from(r.image_sectors);
    }
    if count != p.region_count() {
        return Err(DiskRefusalReason::VentoyRegionLayout);
    }
    let iss64 = u64::from(iss);
    let covered = next_image_sector * iss64;
    // The runs cover the file, with less than one image sector of slack (§2.4 step 3).
    if covered < p.image_size || covered - p.image_size >= iss64 {
        return Err(DiskRefusalReason::ExtentTotal {
            extents_bytes: covered,
            image_bytes: p.image_size,
        });
    }
    let (kind, emulated_drive) = if iss == 2048 {
        (DeviceKind::CdRom, 0xE0)
    } else {
        (DeviceKind::Disk, 0x80)
    };
    Ok(DiskBackedImage {
        kind,
        // §2.4: Ventoy images are served read-only (ISOs always; IMG files too, since Ventoy's
        // own hand-off never writes them).
        write_policy: WritePolicy::ReadOnly,
        source: BackingSource::Ventoy,
        bios_drive: 0xFF,
        emulated_drive,
        sector_size: dss,
        extents,
        length: p.image_size.div_ceil(iss64) * iss64,
        evidence: DiskEvidence::Ventoy {
            disk_id: p.disk_id,
            mbr_signature: p.mbr_signature,
            disk_size: p.disk_size,
        },
        table_address,
        slot: 0,
    })
}

#[inline(never)] // one step per frame: see `discover_with`
pub(crate) fn find<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    handoff: &Handoff<'_>,
) {
    let mut found = false;
    if let Some(bytes) = handoff.ventoy_os_param {
        match parse_os_param(bytes) {
            Ok(p) => {
                ctx.log(Event::VentoyParam { addr: 0 });
                found = from_param(ctx, &p, 0);
            }
            Err(why) => ctx.log(Event::VentoyRejected { addr: 0, why }),
        }
    }
    if !found && ctx.input.firmware != super::Firmware::Uefi {
        scan_low(ctx);
    }
    if let Some(bytes) = handoff.ventoy_ram_disk {
        ram_disk(ctx, bytes);
    }
}

/// §3.1: 16-byte steps through [BDA top, 0xA0000); the first record that passes §2.4 step 1 and
/// whose extent list reads back is used. GUID hits with a bad checksum are common (the GUID is
/// ASCII text in Ventoy's menus) and are not logged one by one.
fn scan_low<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(ctx: &mut Ctx<'_, M, L>) {
    let start = match ctx.bda_top {
        t if (BIOS_SCAN_FALLBACK..LOW_END as u32).contains(&t) => t & !0xF,
        _ => BIOS_SCAN_FALLBACK,
    };
    let last = LOW_END as u32 - OS_PARAM_LEN as u32;
    let mut addr = start;
    while addr <= last {
        if ctx.mem.low_eq(u64::from(addr), &VENTOY_GUID) {
            let mut rec = [0u8; OS_PARAM_LEN];
            if ctx.mem.low_into(u64::from(addr), &mut rec) {
                match parse_os_param(&rec) {
                    Ok(p) => {
                        ctx.log(Event::VentoyParam {
                            addr: u64::from(addr),
                        });
                        if from_param(ctx, &p, u64::from(addr)) {
                            return;
                        }
                    }
                    Err(VentoyProblem::BadChecksum) => {}
                    Err(why) => ctx.log(Event::VentoyRejected {
                        addr: u64::from(addr),
                        why,
                    }),
                }
            }
        }
        addr += 16;
    }
}

/// Read the record's extent list (rule 23 through the guarded reader) and offer the image.
/// `false` when the list itself is unusable (the scan then tries the next record).
fn from_param<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    p: &OsParam,
    table_address: u64,
) -> bool {
    let reject = |ctx: &mut Ctx<'_, M, L>, why| {
        ctx.log(Event::VentoyRejected {
            addr: table_address,
            why,
        });
        false
    };
    let loc = p.location_addr;
    let mut header = [0u8; LOCATION_HEADER as usize];
    if loc < ONE_MIB || ctx.mem.read(loc, &mut header).is_err() {
        return reject(ctx, VentoyProblem::LocationUnreadable);
    }
    let (iss, dss, n) = match location_header(&header) {
        Ok(h) => h,
        Err(why) => return reject(ctx, why),
    };
    if n != p.region_count() {
        return reject(ctx, VentoyProblem::BadLocationLength);
    }
    let refusal = |reason| DiskRefusal {
        source: BackingSource::Ventoy,
        emulated_drive: 0xFF,
        bios_drive: 0xFF,
        table_address,
        slot: 0,
        reason,
    };
    if n > MAX_REGIONS {
        ctx.refuse_disk(refusal(DiskRefusalReason::TooManyExtents { count: n }));
        return true;
    }
    // Stream the regions in reads of up to 16 regions (256 bytes: few reads, little kernel
    // stack) instead of buffering the whole list.
    const CHUNK: u32 = 16;
    let mem = &ctx.mem;
    let mut unreadable = false;
    let mut buf = [0u8; (CHUNK * REGION_LEN) as usize];
    let mut i = 0u32;
    let regions = core::iter::from_fn(|| {
        if i >= n || unreadable {
            return None;
        }
        let k = (i % CHUNK * REGION_LEN) as usize;
        if k == 0 {
            let len = ((n - i).min(CHUNK) * REGION_LEN) as usize;
            let at = loc + u64::from(LOCATION_HEADER) + u64::from(i) * u64::from(REGION_LEN);
            if mem.read(at, &mut buf[..len]).is_err() {
                unreadable = true;
                return None;
            }
        }
        i += 1;
        Some(VentoyRegion::decode(&buf[k..k + REGION_LEN as usize]))
    });
    let built = build_image(p, iss, dss, regions, table_address);
    if unreadable {
        return reject(ctx, VentoyProblem::LocationUnreadable);
    }
    match built {
        Ok(img) => ctx.offer_disk(img),
        Err(reason) => ctx.refuse_disk(refusal(reason)),
    }
    true
}

/// §4 UEFI memdisk: `VentoyRamDisk` = {u64 address of the first image byte, u64 size}. For
/// ISO/IMG images the size is 2616 bytes short: GRUB's chain head (whose first 512 bytes are an
/// os_param) sits in front of the image. That record's checksum is unreliable (the buffer is not
/// zeroed), so its image size is used when its GUID is present and the size lies in
/// [size, size + 2616]; otherwise (VHD boot, where the size is exact) the variable's size. The
/// length is then rounded up to whole blocks. A CD if "CD001" is at image offset 0x8001.
fn ram_disk<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    bytes: &[u8],
) {
    if bytes.len() < 16 {
        ctx.log(Event::VentoyRejected {
            addr: 0,
            why: VentoyProblem::Short,
        });
        return;
    }
    let phys = le64(bytes, 0);
    let var_size = le64(bytes, 8);
    ctx.log(Event::VentoyRamDisk {
        phys,
        size: var_size,
    });
    let mut head = [0u8; OS_PARAM_LEN];
    let size = match phys.checked_sub(CHAIN_HEAD) {
        Some(h)
            if h >= ONE_MIB && ctx.mem.read(h, &mut head).is_ok() && head[..16] == VENTOY_GUID =>
        {
            let recorded = le64(&head, 0x1AD);
            if (var_size..=var_size.saturating_add(CHAIN_HEAD)).contains(&recorded) {
                recorded
            } else {
                var_size
            }
        }
        _ => var_size,
    };
    let mut pvd = [0u8; 6];
    let is_cd = var_size > 0x8006
        && phys
            .checked_add(0x8000)
            .is_some_and(|p| p >= ONE_MIB && ctx.mem.read(p, &mut pvd).is_ok())
        && &pvd[1..6] == b"CD001";
    let kind = if is_cd {
        DeviceKind::CdRom
    } else {
        DeviceKind::Disk
    };
    let bs = u64::from(kind.block_size());
    let length = size.checked_next_multiple_of(bs).unwrap_or(size / bs * bs);
    ctx.offer(Found {
        image: MemoryImage {
            kind,
            phys_base: phys,
            length,
            write_policy: WritePolicy::ReadWrite,
            // No LoaderSource names Ventoy (downstream code matches the enum exhaustively);
            // Ventoy calls this mode "Memdisk" and the BIOS flavour is syslinux MEMDISK.
            source: LoaderSource::Memdisk,
            table_address: 0,
            slot: 0,
            bios_drive: if is_cd { 0xE0 } else { 0x80 },
        },
        via: FoundVia::FIRMWARE_VARIABLE,
    });
}
