//! Discovery of RAM images in physical memory (`docs/loaders.md` §9, rules in §10).
//!
//! [`discover`] runs the algorithm of §9:
//!
//! * **A** — the caller provides OS RAM ranges and a [`PhysicalMemory`] whose low 640 KiB come
//!   from a snapshot; BDA 0x413 gives the reserved top of conventional memory.
//! * **B** — [`safehook`]: walk the `$INT13SF` chain from IVT[0x13] (BIOS/unknown firmware only)
//!   and dispatch GRUB4DOS ([`grub4dos`]) and MEMDISK ([`memdisk`]) hooks.
//! * **C** — [`memdisk::scan`]: 16-byte mBFT scan of conventional memory (BIOS/unknown only).
//! * **D** — [`grub4efi::scan`]: GRUB4DOS-compatible page scan, BIOS layout at 1 KiB steps (only
//!   at the BDA top, never a stale copy) and UEFI grub4efi/a1ive layout at 4 KiB pages.
//! * **E** — [`nfit`]: ACPI NFIT RAM-disk SPA ranges.
//! * **F** — [`validate`]: range rules when a candidate is offered (rules 4, 12, 18, 23–25, 27),
//!   then content sniffing ([`content`], rule 28, CD size cap), then de-duplication and overlap
//!   rejection (rule 26). Output order: chain order (slots in table order), mBFT scan, page scan,
//!   NFIT.
//!
//! Images that stay on a disk are a second result list ([`Discovered::disk_backed`]): GRUB4DOS
//! slots whose TO drive is a real disk ([`grub4dos`], `docs/loaders.md` §3.9) and
//! Ventoy's hand-off ([`ventoy`], `docs/ventoy.md`), found in low memory (BIOS) or given as the
//! bytes of Ventoy's UEFI variables ([`Handoff`]). [`identify_backing_disk`] then picks the disk
//! that holds such an image among the disks the port sees.
//!
//! Nothing here allocates or writes memory; stack use is a few KiB (the result lists plus a
//! 1 KiB scan buffer).

mod content;
mod grub4dos;
mod grub4efi;
mod identify;
mod memdisk;
mod memory;
mod nfit;
mod report;
mod safehook;
mod validate;
mod ventoy;

use arrayvec::ArrayVec;
use bitflags::bitflags;

use crate::image::{DiskBackedImage, LoaderSource, MemoryImage};

pub use identify::{identify_backing_disk, BackingDisk, IdentifyRefusal};
pub use memory::{PhysRange, PhysicalMemory, Unreadable};
pub use nfit::{
    NFIT_GUID_PERSISTENT_VIRTUAL_CD, NFIT_GUID_PERSISTENT_VIRTUAL_DISK, NFIT_GUID_VIRTUAL_CD,
    NFIT_GUID_VIRTUAL_DISK,
};
pub use report::{
    DiscoveryLog, DiskRefusal, DiskRefusalReason, Event, MbftProblem, NoLog, Refusal,
    RefusalReason, SlotSkip, VentoyProblem,
};
pub use ventoy::{
    parse_image_location, parse_os_param, OsParam, VentoyRegion, OS_PARAM_LEN, VENTOY_GUID,
};

use memory::Mem;

/// Maximum number of images exposed.
pub const MAX_IMAGES: usize = 32;
/// Maximum number of refusals recorded (further ones are only logged).
pub const MAX_REFUSED: usize = 32;
/// Maximum number of disk-backed images kept (GRUB4DOS direct maps plus Ventoy).
pub const MAX_DISK_IMAGES: usize = 8;
/// Maximum number of disk-backed refusals recorded (further ones are only logged).
pub const MAX_DISK_REFUSED: usize = 16;
/// Maximum safe-hook chain length (rule 7).
pub const MAX_HOPS: usize = 16;
/// Absolute size cap for one image (rule 25): 1 TiB.
pub const MAX_IMAGE_BYTES: u64 = 1 << 40;
/// Default maximum physical address when `DiscoveryInput::max_phys_end` is 0 (x64: 52 bits).
pub const DEFAULT_MAX_PHYS_END: u64 = 1 << 52;

/// How the machine booted (`docs/loaders.md` §8 "Firmware type").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Firmware {
    /// Legacy BIOS: IVT chain, mBFT scan, BIOS page scan, NFIT.
    Bios,
    /// UEFI: IVT/BDA are meaningless; only the UEFI page scan (§4) and NFIT run.
    Uefi,
    /// Unknown (e.g. pre-Windows 8): every method runs.
    Unknown,
}

/// Everything discovery needs from the platform besides memory contents.
#[derive(Clone, Copy, Debug)]
pub struct DiscoveryInput<'a> {
    /// OS-owned RAM (`MmGetPhysicalMemoryRanges`). Rule 23: no image may intersect these, and
    /// discovery never reads them above 1 MiB.
    pub os_ram: &'a [PhysRange],
    /// The raw ACPI NFIT (`AuxKlibGetSystemFirmwareTable('ACPI', 'TIFN')`), if any.
    pub nfit: Option<&'a [u8]>,
    pub firmware: Firmware,
    /// Rule 24: one past the highest usable physical address (`1 << MAXPHYADDR` on x64,
    /// `1 << 32` on non-PAE x86). 0 = unknown ([`DEFAULT_MAX_PHYS_END`]).
    pub max_phys_end: u64,
    /// Rule 25: installed physical memory in bytes, *including* what loaders hid (the images
    /// themselves are not in `os_ram`). 0 = unknown (only the 1 TiB cap applies). Without a
    /// firmware figure, the highest end address in `os_ram` is a suitable stand-in.
    pub total_ram_bytes: u64,
}

impl DiscoveryInput<'_> {
    /// `max_phys_end`, or the default when 0.
    pub fn effective_max_phys_end(&self) -> u64 {
        if self.max_phys_end == 0 {
            DEFAULT_MAX_PHYS_END
        } else {
            self.max_phys_end
        }
    }
}

bitflags! {
    /// Which discovery paths found an image (all of them, after de-duplication, §9 F1).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct FoundVia: u8 {
        /// §9 B: a hook reached from IVT[0x13].
        const IVT_CHAIN = 1 << 0;
        /// §9 C: the 16-byte mBFT scan.
        const MBFT_SCAN = 1 << 1;
        /// §9 D: the GRUB4DOS-compatible page scan (BDA-top block or UEFI page).
        const PAGE_SCAN = 1 << 2;
        /// §9 E: an ACPI NFIT SPA range.
        const NFIT = 1 << 3;
        /// A UEFI variable the port read (`docs/ventoy.md` §4: `VentoyRamDisk`).
        const FIRMWARE_VARIABLE = 1 << 4;
    }
}

impl core::fmt::Display for FoundVia {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut first = true;
        for (name, flag) in [
            ("ivt-chain", FoundVia::IVT_CHAIN),
            ("mbft-scan", FoundVia::MBFT_SCAN),
            ("page-scan", FoundVia::PAGE_SCAN),
            ("nfit", FoundVia::NFIT),
            ("uefi-variable", FoundVia::FIRMWARE_VARIABLE),
        ] {
            if self.contains(flag) {
                if !first {
                    f.write_str("+")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// One exposed image and how it was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Found {
    pub image: MemoryImage,
    pub via: FoundVia,
}

/// The result of [`discover`]: RAM images in presentation order (§9 F2) and their refusals
/// (rule 30), then disk-backed images and their refusals. The two lists are independent: a RAM
/// image is served from memory, a disk-backed one once its disk is identified.
#[derive(Clone, Debug, Default)]
pub struct Discovered {
    pub images: ArrayVec<Found, MAX_IMAGES>,
    pub refused: ArrayVec<Refusal, MAX_REFUSED>,
    /// Images on a real disk, in table order (GRUB4DOS slots, then Ventoy).
    pub disk_backed: ArrayVec<DiskBackedImage, MAX_DISK_IMAGES>,
    pub disk_refused: ArrayVec<DiskRefusal, MAX_DISK_REFUSED>,
}

/// Hand-off data the port read from firmware variables (UEFI only; reading them is the port's
/// job, `docs/ventoy.md` §3.2, §4). Everything is untrusted bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Handoff<'a> {
    /// The bytes of the `VentoyOsParam` variable (512 expected).
    pub ventoy_os_param: Option<&'a [u8]>,
    /// The bytes of the `VentoyRamDisk` variable (16 expected: u64 address, u64 size).
    pub ventoy_ram_disk: Option<&'a [u8]>,
}

/// Run discovery (§9 A–F). Never writes memory; reads only low memory and the first few KiB of
/// candidate ranges that passed the OS-RAM check. The result is ~3 KiB: kernel callers should
/// use [`discover_into`] with a pool-allocated [`Discovered`].
pub fn discover(
    mem: &impl PhysicalMemory,
    input: &DiscoveryInput<'_>,
    log: &mut impl DiscoveryLog,
) -> Discovered {
    let mut out = Discovered::default();
    discover_into(mem, input, log, &mut out);
    out
}

/// [`discover`] writing into caller-provided storage (cleared first), so the result does not
/// live on a kernel stack. Stack use of the call itself is about 2 KiB.
pub fn discover_into(
    mem: &impl PhysicalMemory,
    input: &DiscoveryInput<'_>,
    log: &mut impl DiscoveryLog,
    out: &mut Discovered,
) {
    discover_with(mem, input, &Handoff::default(), log, out);
}

/// [`discover_into`] plus the firmware-variable hand-offs the port read ([`Handoff`]).
pub fn discover_with(
    mem: &impl PhysicalMemory,
    input: &DiscoveryInput<'_>,
    handoff: &Handoff<'_>,
    log: &mut impl DiscoveryLog,
    out: &mut Discovered,
) {
    out.images.clear();
    out.refused.clear();
    out.disk_backed.clear();
    out.disk_refused.clear();
    let mut ctx = Ctx::new(mem, input, log, out);
    let mut seen = Seen::default();
    // Each step below is `#[inline(never)]`: inlined into one frame they need more than 4 KiB of
    // the 12 KiB x86 kernel stack at once, and such a frame needs a stack probe (`__chkstk`) that
    // a driver cannot link. Apart, only one step's locals are live at a time.
    if input.firmware != Firmware::Uefi {
        safehook::walk(&mut ctx, &mut seen);
        memdisk::scan(&mut ctx, &seen);
    }
    grub4efi::scan(&mut ctx, &seen);
    if let Some(table) = input.nfit {
        nfit::parse(&mut ctx, table);
    }
    ventoy::find(&mut ctx, handoff);
    validate::finish(&mut ctx);
}

/// Rule 29's fingerprint ([`crate::integrity::Fingerprint`]) of an image read through physical
/// memory, for a caller that has no mapping of it yet. `None` if unreadable or if the image
/// intersects `os_ram`. The ports fingerprint through their mapping instead
/// ([`crate::integrity::FirstIoCheck`]); both give the same value for the same bytes.
pub fn image_fingerprint(
    mem: &impl PhysicalMemory,
    image: &MemoryImage,
    os_ram: &[PhysRange],
) -> Option<u64> {
    let guard = Mem::new(mem, os_ram);
    let n = image.length.min(crate::integrity::FINGERPRINT_BYTES as u64) as usize;
    let mut buf = [0u8; crate::integrity::FINGERPRINT_BYTES];
    guard.read(image.phys_base, &mut buf[..n]).ok()?;
    Some(crate::integrity::Fingerprint::of(&buf[..n]).value())
}

/// Low-memory structures already parsed through the chain, so the scans skip them.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) grub4dos_bases: ArrayVec<u32, MAX_HOPS>,
    pub(crate) mbfts: ArrayVec<u32, MAX_HOPS>,
}

/// Shared state of one discovery run.
pub(crate) struct Ctx<'a, M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized> {
    pub(crate) mem: Mem<'a, M>,
    pub(crate) input: &'a DiscoveryInput<'a>,
    log: &'a mut L,
    pub(crate) out: &'a mut Discovered,
    /// BDA 0x413 × 1024: the reserved top of conventional memory (0 if unreadable).
    pub(crate) bda_top: u32,
}

impl<'a, M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized> Ctx<'a, M, L> {
    fn new(
        mem: &'a M,
        input: &'a DiscoveryInput<'a>,
        log: &'a mut L,
        out: &'a mut Discovered,
    ) -> Self {
        let mem = Mem::new(mem, input.os_ram);
        let bda_top = match input.firmware {
            Firmware::Uefi => 0,
            _ => mem.low_u16(0x413).map_or(0, |kib| u32::from(kib) * 1024),
        };
        Ctx {
            mem,
            input,
            log,
            out,
            bda_top,
        }
    }

    pub(crate) fn log(&mut self, event: Event<'_>) {
        self.log.event(&event);
    }

    /// Record a refusal (rule 30) and log it.
    pub(crate) fn refuse(
        &mut self,
        phys_base: u64,
        length: u64,
        source: LoaderSource,
        reason: RefusalReason,
    ) {
        let r = Refusal {
            phys_base,
            length,
            source,
            reason,
        };
        self.log.event(&Event::Refused(&r));
        if self.out.refused.try_push(r).is_err() {
            self.log.event(&Event::RefusalListFull);
        }
    }

    /// Record a disk-backed refusal and log it.
    pub(crate) fn refuse_disk(&mut self, r: DiskRefusal) {
        self.log.event(&Event::DiskRefused(&r));
        if self.out.disk_refused.try_push(r).is_err() {
            self.log.event(&Event::RefusalListFull);
        }
    }

    /// Offer a disk-backed candidate: extent rules ([`validate::offer_disk`]).
    pub(crate) fn offer_disk(&mut self, image: DiskBackedImage) {
        validate::offer_disk(self, image);
    }

    /// Offer a candidate: the range rules run now (so hostile tables cannot fill the list),
    /// content and cross-candidate rules in [`validate::finish`].
    pub(crate) fn offer(&mut self, found: Found) {
        validate::offer(self, found);
    }
}
