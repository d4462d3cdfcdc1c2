//! Kernel-wrapper module for discovery's memory needs (PASSIVE_LEVEL): pool objects, the
//! low-memory snapshot, the OS RAM ranges and the NFIT. Everything unsafe that discovery needs
//! is here, behind safe types; `discovery.rs` only orchestrates.
//!
//! `docs/loaders.md` §8: low memory is read once, in 4 KiB non-cached pieces (mapping the whole
//! first MiB bug-checks some Windows 10 builds), into a private pool copy that the core parses.

use crate::nt;
use arrayvec::ArrayVec;
use rvblk_core::discovery::{PhysRange, PhysicalMemory, Unreadable};
use rvblk_irql::Passive;

const LOW_END: usize = 0xA_0000;
const PAGE: usize = 0x1000;
const LOW_PAGES: usize = LOW_END / PAGE;
/// OS RAM ranges kept; more than this (never seen: Windows reports a handful) fails safe.
pub const MAX_OS_RANGES: usize = 64;

/// A `T` in non-paged pool: for values too big for a kernel stack. Never null, so an
/// `Option<PoolBox<T>>` of all-zero bytes is `None` (a zeroed device extension stays valid).
pub struct PoolBox<T>(core::ptr::NonNull<T>);

// SAFETY: the box owns its `T` like `Box` does; sending or sharing it is sending or sharing the
// `T`.
unsafe impl<T: Send> Send for PoolBox<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for PoolBox<T> {}

impl<T: Default> PoolBox<T> {
    /// Allocates and initialises `T::default()` in pool. `None` when out of pool.
    pub fn new_default(irql: &Passive) -> Option<Self> {
        let p = nt::alloc_nonpaged(core::mem::size_of::<T>(), irql)?.cast::<T>();
        debug_assert!(p.is_aligned());
        // SAFETY: fresh pool of the right size, suitably aligned (pool is 8/16-byte aligned,
        // enough for the types used here); written before any read.
        unsafe { p.write(T::default()) };
        core::ptr::NonNull::new(p).map(Self)
    }
}

impl<T> core::ops::Deref for PoolBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: points to the initialised `T` this box owns (see `new_default`).
        unsafe { self.0.as_ref() }
    }
}

impl<T> core::ops::DerefMut for PoolBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes the access exclusive.
        unsafe { self.0.as_mut() }
    }
}

impl<T> Drop for PoolBox<T> {
    fn drop(&mut self) {
        // SAFETY: initialised in `new_default`, dropped once here.
        unsafe { core::ptr::drop_in_place(self.0.as_ptr()) };
        // SAFETY: our pool allocation, not used after this.
        unsafe { nt::free_pool(self.0.as_ptr().cast()) };
    }
}

/// Zeroed bytes in non-paged pool (the disk worker's bounce sector), freed on drop.
pub struct PoolBuf {
    p: core::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: owns its bytes like a `Box<[u8]>`.
unsafe impl Send for PoolBuf {}

impl PoolBuf {
    pub fn new(len: usize, irql: &impl rvblk_irql::AtMostDispatch) -> Option<Self> {
        let p = core::ptr::NonNull::new(nt::alloc_nonpaged(len, irql)?)?;
        // SAFETY: a fresh allocation of `len` bytes.
        unsafe { core::ptr::write_bytes(p.as_ptr(), 0, len) };
        Some(Self { p, len })
    }
}

impl core::ops::Deref for PoolBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` initialised bytes owned by `self`.
        unsafe { core::slice::from_raw_parts(self.p.as_ptr(), self.len) }
    }
}

impl core::ops::DerefMut for PoolBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, exclusive through `&mut self`.
        unsafe { core::slice::from_raw_parts_mut(self.p.as_ptr(), self.len) }
    }
}

impl Drop for PoolBuf {
    fn drop(&mut self) {
        // SAFETY: our pool allocation, not used after this.
        unsafe { nt::free_pool(self.p.as_ptr()) };
    }
}

/// Up to `capacity` values of `T` in non-paged pool, pushed and popped at the end (a RAM
/// disk's chunk table: too many for a fixed array in the LUN slot). Values left when it drops
/// are dropped in place.
pub struct PoolVec<T> {
    p: core::ptr::NonNull<T>,
    len: usize,
    capacity: usize,
}

// SAFETY: owns its values like a `Vec<T>`.
unsafe impl<T: Send> Send for PoolVec<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for PoolVec<T> {}

impl<T> PoolVec<T> {
    /// Room for `capacity` values (at least one). `None` when out of pool.
    pub fn with_capacity(capacity: usize, irql: &impl rvblk_irql::AtMostDispatch) -> Option<Self> {
        let bytes = core::mem::size_of::<T>().checked_mul(capacity.max(1))?;
        let p = nt::alloc_nonpaged(bytes, irql)?.cast::<T>();
        debug_assert!(p.is_aligned());
        Some(Self {
            p: core::ptr::NonNull::new(p)?,
            len: 0,
            capacity: capacity.max(1),
        })
    }

    /// Appends `v`; gives it back when full.
    pub fn push(&mut self, v: T) -> Result<(), T> {
        if self.len == self.capacity {
            return Err(v);
        }
        let place = self.p.as_ptr().wrapping_add(self.len);
        // SAFETY: `len < capacity`: an unused, aligned place inside the allocation.
        unsafe { place.write(v) };
        self.len += 1;
        Ok(())
    }

    pub fn pop(&mut self) -> Option<T> {
        self.len = self.len.checked_sub(1)?;
        let place = self.p.as_ptr().wrapping_add(self.len);
        // SAFETY: the value at the old last index was initialised and is now outside `len`,
        // so it is moved out exactly once.
        Some(unsafe { place.read() })
    }
}

impl<T> core::ops::Deref for PoolVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the first `len` values are initialised and owned by `self`.
        unsafe { core::slice::from_raw_parts(self.p.as_ptr(), self.len) }
    }
}

impl<T> core::ops::DerefMut for PoolVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, exclusive through `&mut self`.
        unsafe { core::slice::from_raw_parts_mut(self.p.as_ptr(), self.len) }
    }
}

impl<T> Drop for PoolVec<T> {
    fn drop(&mut self) {
        while self.pop().is_some() {}
        // SAFETY: our pool allocation, not used after this.
        unsafe { nt::free_pool(self.p.as_ptr().cast()) };
    }
}

/// Private copy of [0, 0xA0000) plus on-demand reads above it.
pub struct LowMemorySnapshot {
    low: *mut u8,
    present: [bool; LOW_PAGES],
    irql: Passive,
}

impl LowMemorySnapshot {
    #[inline(never)]
    pub fn take(irql: &Passive) -> Option<Self> {
        let low = nt::alloc_nonpaged(LOW_END, irql)?;
        let mut present = [false; LOW_PAGES];
        for (page, ok) in present.iter_mut().enumerate() {
            if let Some(va) = nt::map_io_space((page * PAGE) as u64, PAGE, false, irql) {
                // SAFETY: `va` maps one page; `low` has LOW_END bytes; the ranges are disjoint.
                unsafe { core::ptr::copy_nonoverlapping(va, low.wrapping_add(page * PAGE), PAGE) };
                // SAFETY: the one-page mapping made just above, used by nothing else.
                unsafe { nt::unmap_io_space(va, PAGE) };
                *ok = true;
            }
        }
        // SAFETY: the snapshot lives inside the HwFindAdapter call that gave us `irql`.
        let irql = unsafe { Passive::new_unchecked() };
        Some(Self { low, present, irql })
    }
}

impl Drop for LowMemorySnapshot {
    fn drop(&mut self) {
        // SAFETY: `low` came from the pool in `take` and is not used after drop.
        unsafe { nt::free_pool(self.low) }
    }
}

impl PhysicalMemory for LowMemorySnapshot {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        let end = phys.checked_add(buf.len() as u64).ok_or(Unreadable)?;
        if buf.is_empty() {
            return Ok(());
        }
        if end <= LOW_END as u64 {
            let (first, last) = (phys as usize / PAGE, (end as usize - 1) / PAGE);
            if !(first..=last).all(|p| self.present[p]) {
                return Err(Unreadable);
            }
            // SAFETY: `phys..end` lies inside the LOW_END-byte snapshot.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    self.low.wrapping_add(phys as usize),
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
        let va = nt::map_io_space(start, span, phys >= 0x10_0000, &self.irql).ok_or(Unreadable)?;
        // SAFETY: the mapping covers `start..start+span` ⊇ `phys..end`.
        unsafe {
            core::ptr::copy_nonoverlapping(
                va.wrapping_add((phys - start) as usize),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        // SAFETY: the mapping made just above, used by nothing else.
        unsafe { nt::unmap_io_space(va, span) };
        Ok(())
    }
}

/// OS-owned RAM from MmGetPhysicalMemoryRanges. `None` if Windows gave nothing or too much: then
/// nothing can be proven safe to map and discovery must not run.
#[inline(never)]
pub fn os_ram_ranges(irql: &Passive) -> Option<ArrayVec<PhysRange, MAX_OS_RANGES>> {
    let p = nt::physical_memory_ranges(irql);
    if p.is_null() {
        return None;
    }
    let mut out = ArrayVec::new();
    let mut ok = true;
    let mut i = 0;
    loop {
        // SAFETY: the array is terminated by an all-zero entry (DDI contract); we stop there.
        let r = unsafe { p.wrapping_add(i).read() };
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

/// A firmware table in pool.
pub struct FirmwareTable {
    buf: *mut u8,
    len: usize,
}

impl FirmwareTable {
    /// The table's bytes (after the SYSTEM_FIRMWARE_TABLE_INFORMATION header).
    pub fn bytes(&self) -> &[u8] {
        let header = core::mem::size_of::<rvblk_abi::SystemFirmwareTableInformation>();
        // SAFETY: `buf` holds `len > header` initialised bytes (see `nfit`), alive with `self`.
        unsafe { core::slice::from_raw_parts(self.buf.wrapping_add(header), self.len - header) }
    }
}

impl Drop for FirmwareTable {
    fn drop(&mut self) {
        // SAFETY: our pool allocation; slices from `bytes` cannot outlive `self`.
        unsafe { nt::free_pool(self.buf) };
    }
}

/// The ACPI NFIT, through ZwQuerySystemInformation(SystemFirmwareTableInformation). Vista+;
/// XP answers "invalid class" and we simply have no NFIT.
#[inline(never)]
pub fn nfit(irql: &Passive) -> Option<FirmwareTable> {
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
        // SAFETY: `buf` has `len ≥ header` writable bytes (callers below); written unaligned.
        unsafe { buf.cast::<Info>().write_unaligned(info) };
        // SAFETY: as above; the query writes at most `len` bytes.
        unsafe {
            nt::query_system_information(
                rvblk_abi::SYSTEM_FIRMWARE_TABLE_INFORMATION_CLASS,
                buf,
                len,
                ret,
                irql,
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
    let table = FirmwareTable {
        buf: nt::alloc_nonpaged(need as usize, irql)?,
        len: need as usize,
    };
    let mut got = 0u32;
    if ask(table.buf, need, &mut got) != rvblk_abi::status::STATUS_SUCCESS
        || got as usize <= header
        || got > need
    {
        return None;
    }
    let mut table = table;
    table.len = got as usize;
    Some(table)
}
