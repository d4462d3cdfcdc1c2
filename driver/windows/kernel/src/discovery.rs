//! Discovery inside Windows (PASSIVE_LEVEL, HwFindAdapter): snapshot low memory, read the OS RAM
//! ranges and the NFIT, run `rvblk_core::discovery`, log the result.
//!
//! `docs/loaders.md` §8: low memory is read once, in 4 KiB non-cached pieces (mapping the whole
//! first MiB bug-checks some Windows 10 builds), into a private pool copy that the core parses.

use crate::{nt, rvblk_log};
use arrayvec::ArrayVec;
use rvblk_core::discovery::{
    discover_into, Discovered, DiscoveryInput, DiscoveryLog, Event, Firmware, PhysRange,
    PhysicalMemory, Unreadable,
};

const LOW_END: usize = 0xA_0000;
const PAGE: usize = 0x1000;
const LOW_PAGES: usize = LOW_END / PAGE;
/// OS RAM ranges kept; more than this (never seen: Windows reports a handful) fails safe.
pub const MAX_OS_RANGES: usize = 64;

/// Private copy of [0, 0xA0000) plus on-demand reads above it.
struct KernelMemory {
    low: *mut u8,
    present: [bool; LOW_PAGES],
}

impl KernelMemory {
    #[inline(never)]
    fn snapshot() -> Option<Self> {
        let low = nt::alloc_nonpaged(LOW_END)?;
        let mut present = [false; LOW_PAGES];
        for (page, ok) in present.iter_mut().enumerate() {
            if let Some(va) = nt::map_io_space((page * PAGE) as u64, PAGE, false) {
                // SAFETY: `va` maps one page; `low` has LOW_END bytes; the ranges are disjoint.
                unsafe {
                    core::ptr::copy_nonoverlapping(va, low.add(page * PAGE), PAGE);
                    nt::unmap_io_space(va, PAGE);
                }
                *ok = true;
            }
        }
        Some(Self { low, present })
    }
}

impl Drop for KernelMemory {
    fn drop(&mut self) {
        // SAFETY: `low` came from the pool in `snapshot` and is not used after drop.
        unsafe { nt::free_pool(self.low) }
    }
}

impl PhysicalMemory for KernelMemory {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        let end = phys.checked_add(buf.len() as u64).ok_or(Unreadable)?;
        if end <= LOW_END as u64 {
            let (first, last) = (
                phys as usize / PAGE,
                (end as usize).saturating_sub(1) / PAGE,
            );
            if buf.is_empty() || !(first..=last).all(|p| self.present[p]) {
                return if buf.is_empty() {
                    Ok(())
                } else {
                    Err(Unreadable)
                };
            }
            // SAFETY: `phys..end` lies inside the LOW_END-byte snapshot.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    self.low.add(phys as usize),
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            return Ok(());
        }
        // Above low memory the core only reads a few KiB of candidates it has already checked
        // against the OS RAM ranges (rule 23); map just those pages, cached above 1 MiB.
        let start = phys & !(PAGE as u64 - 1);
        let span = usize::try_from(end - start).map_err(|_| Unreadable)?;
        let span = (span + PAGE - 1) & !(PAGE - 1);
        let va = nt::map_io_space(start, span, phys >= 0x10_0000).ok_or(Unreadable)?;
        // SAFETY: the mapping covers `start..start+span` ⊇ `phys..end`.
        unsafe {
            core::ptr::copy_nonoverlapping(
                va.add((phys - start) as usize),
                buf.as_mut_ptr(),
                buf.len(),
            );
            nt::unmap_io_space(va, span);
        }
        Ok(())
    }
}

/// Turns the core's events into `rvblk:` lines.
struct DbgLog;

impl DiscoveryLog for DbgLog {
    fn event(&mut self, event: &Event<'_>) {
        rvblk_log!("{}", event);
    }
}

/// OS-owned RAM from MmGetPhysicalMemoryRanges. `None` if Windows gave nothing or too much: then
/// nothing can be proven safe to map and discovery must not run.
#[inline(never)]
fn os_ram_ranges() -> Option<ArrayVec<PhysRange, MAX_OS_RANGES>> {
    let p = nt::physical_memory_ranges();
    if p.is_null() {
        return None;
    }
    let mut out = ArrayVec::new();
    let mut ok = true;
    let mut i = 0;
    loop {
        // SAFETY: the array is terminated by an all-zero entry (DDI contract); we stop there.
        let r = unsafe { p.add(i).read() };
        let (base, len) = (r.base_address.0, r.number_of_bytes.0);
        if base == 0 && len == 0 {
            break;
        }
        if out
            .try_push(PhysRange::new(base as u64, len as u64))
            .is_err()
        {
            ok = false;
            break;
        }
        i += 1;
    }
    // SAFETY: the array is pool the caller owns (DDI contract) and is not used after this.
    unsafe { nt::free_pool(p.cast()) };
    ok.then_some(out)
}

/// The ACPI NFIT, through ZwQuerySystemInformation(SystemFirmwareTableInformation). Vista+;
/// XP answers "invalid class" and we simply have no NFIT. The buffer is pool the caller frees.
#[inline(never)]
fn nfit_table() -> Option<(*mut u8, usize)> {
    use rvblk_abi::{
        SystemFirmwareTableInformation as Info, ACPI_TABLE_NFIT, FIRMWARE_PROVIDER_ACPI,
        FIRMWARE_TABLE_GET,
    };
    let header = core::mem::size_of::<Info>();
    let ask = |buf: *mut u8, len: u32, ret: &mut u32| {
        let info = Info {
            provider_signature: FIRMWARE_PROVIDER_ACPI,
            action: FIRMWARE_TABLE_GET,
            table_id: ACPI_TABLE_NFIT,
            table_buffer_length: len - header as u32,
        };
        // SAFETY: `buf` has `len ≥ header` writable bytes (callers below); the header is written
        // unaligned-safe and the query fills the rest.
        unsafe {
            buf.cast::<Info>().write_unaligned(info);
            nt::query_system_information(
                rvblk_abi::SYSTEM_FIRMWARE_TABLE_INFORMATION_CLASS,
                buf,
                len,
                ret,
            )
        }
    };
    let mut probe = [0u8; 16];
    let mut need = 0u32;
    let st = ask(probe.as_mut_ptr(), header as u32, &mut need);
    if st != rvblk_abi::status::STATUS_BUFFER_TOO_SMALL
        || (need as usize) <= header
        || need > (1 << 20)
    {
        return None;
    }
    let buf = nt::alloc_nonpaged(need as usize)?;
    let mut got = 0u32;
    if ask(buf, need, &mut got) != rvblk_abi::status::STATUS_SUCCESS
        || got as usize <= header
        || got > need
    {
        // SAFETY: our own allocation, unused afterwards.
        unsafe { nt::free_pool(buf) };
        return None;
    }
    Some((buf, got as usize))
}

/// The discovery result, kept in pool: it is a few KiB, too much for a kernel stack.
pub struct PoolDiscovered(*mut Discovered);

impl core::ops::Deref for PoolDiscovered {
    type Target = Discovered;
    fn deref(&self) -> &Discovered {
        // SAFETY: points to an initialised `Discovered` in our pool allocation (see `run`).
        unsafe { &*self.0 }
    }
}

impl Drop for PoolDiscovered {
    fn drop(&mut self) {
        // SAFETY: initialised in `run`, dropped once, then its pool freed.
        unsafe {
            core::ptr::drop_in_place(self.0);
            nt::free_pool(self.0.cast());
        }
    }
}

/// Runs the whole discovery. Contract: PASSIVE_LEVEL. `None` when nothing can be examined safely
/// (the reason is logged).
#[inline(never)]
pub fn run() -> Option<PoolDiscovered> {
    let Some(os_ram) = os_ram_ranges() else {
        rvblk_log!("cannot read the OS memory map (MmGetPhysicalMemoryRanges); exposing nothing");
        return None;
    };
    let Some(out) = nt::alloc_nonpaged(core::mem::size_of::<Discovered>()) else {
        rvblk_log!("out of pool for discovery; exposing nothing");
        return None;
    };
    let out = out.cast::<Discovered>();
    // SAFETY: fresh pool of the right size (pool is 8/16-byte aligned, enough for Discovered).
    unsafe { out.write(Discovered::default()) };
    let found = PoolDiscovered(out);
    let Some(mem) = KernelMemory::snapshot() else {
        rvblk_log!("out of pool for the low-memory snapshot; exposing nothing");
        return None;
    };
    let total = os_ram.iter().map(|r| r.end()).max().unwrap_or(0);
    let nfit = nfit_table();
    let input = DiscoveryInput {
        os_ram: &os_ram,
        // SAFETY: `nfit` is our pool buffer of `len` initialised bytes, freed below after use.
        nfit: nfit.map(|(p, len)| unsafe { core::slice::from_raw_parts(p.add(16), len - 16) }),
        firmware: Firmware::Unknown,
        max_phys_end: if cfg!(target_arch = "x86") {
            1 << 36
        } else {
            0
        },
        total_ram_bytes: total,
    };
    // SAFETY: `found.0` is our initialised pool object; discovery overwrites it in place.
    discover_into(&mem, &input, &mut DbgLog, unsafe { &mut *found.0 });
    if let Some((p, _)) = nfit {
        // SAFETY: our allocation; the slice borrowed from it died with `input`.
        unsafe { nt::free_pool(p) };
    }
    for r in found.refused.iter() {
        rvblk_log!(
            "refused: source={} phys_base={:#x} length={:#x} reason={}",
            r.source,
            r.phys_base,
            r.length,
            r.reason
        );
    }
    Some(found)
}
