//! Byte access to a mapped RAM image: the I/O path (HwStartIo, IRQL ≤ DISPATCH_LEVEL, many
//! CPUs at once).
//!
//! Images are mapped at discovery time, never per request (`docs/windows-integration.md` §1.12):
//! * x64/arm64 map each image once, whole, cached.
//! * x86 has little system address space, and how little depends on the kernel
//!   (`docs/x86-mapping.md`): each image gets a [`Budget`] chosen from the running Windows
//!   version. An image within the budget is mapped whole; a larger one goes through a
//!   [`ViewCache`] of windows, mapped on first use and replaced (unmapped at ≤ DISPATCH_LEVEL,
//!   which MmUnmapIoSpace allows) only when needed. A request that finds every slot pinned, or
//!   a kernel that cannot map a window, gets `MediumError::Busy` and the port retries it.

use crate::nt;
use rvblk_core::image::MemoryImage;
use rvblk_core::scsi::{Medium, MediumError};
use rvblk_irql::Passive;

/// How much system address space one x86 image may use (`docs/x86-mapping.md`).
#[cfg(target_arch = "x86")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Images up to this size are mapped whole.
    pub whole_limit: u64,
    /// log2 of a view window's size.
    pub window_shift: u32,
    /// View windows per image: at most `slots << window_shift` bytes of address space.
    pub slots: usize,
}

#[cfg(target_arch = "x86")]
impl Budget {
    /// NT 5.x (XP/2003, where `rvblkxp.sys` runs): system PTEs come from a pool sized at boot,
    /// ~50 000 PTEs for general use and, with /3GB, sometimes near the 10 000 free that is
    /// considered the danger line (`docs/x86-mapping.md` §1). 32 MiB (8 192 PTEs) per image,
    /// as 8 windows of 4 MiB.
    pub const NT5: Budget = Budget {
        whole_limit: 32 << 20,
        window_shift: 22,
        slots: 8,
    };
    /// NT 6.0+ (Vista and later, where `rvblk.sys` runs): system PTEs are allocated on demand
    /// from the whole kernel address space, 2 GiB (1 GiB at the smallest, with
    /// `increaseuserva`) (`docs/x86-mapping.md` §1). 256 MiB per image, as 32 windows of
    /// 8 MiB.
    pub const NT6: Budget = Budget {
        whole_limit: 256 << 20,
        window_shift: 23,
        slots: 32,
    };

    /// The budget for the running kernel; NT 5.x's when the version is unknown.
    pub fn for_running_kernel(irql: &Passive) -> Budget {
        match nt::os_version(irql) {
            Some((major, _)) if major >= 6 => Budget::NT6,
            _ => Budget::NT5,
        }
    }
}

/// Capacity of a [`ViewCache`]: the largest `Budget::slots`.
#[cfg(target_arch = "x86")]
pub const MAX_SLOTS: usize = 32;

/// One image's bytes, reachable from the I/O path.
pub struct ImageMedium {
    phys_base: u64,
    length: u64,
    whole: *mut u8,
    /// The x86 view cache, in pool (it is too big for the stack and the LUN table).
    #[cfg(target_arch = "x86")]
    views: *mut ViewCache,
}

// SAFETY: after `map` the fields never change; concurrent copies to/from the image are what a
// disk does (Windows serialises overlapping writes above us), and the x86 view cache does its
// own locking.
unsafe impl Sync for ImageMedium {}
// SAFETY: as above; the mapping is a system-space address valid in any thread.
unsafe impl Send for ImageMedium {}

impl ImageMedium {
    /// Maps `image` for I/O (HwFindAdapter). `None` if the mapping cannot be made (the LUN is
    /// then not exposed).
    pub fn map(image: &MemoryImage, irql: &Passive) -> Option<Self> {
        let length = image.length;
        #[cfg(target_arch = "x86")]
        {
            let budget = Budget::for_running_kernel(irql);
            // Whole where the budget allows it; if the kernel cannot spare that much right now,
            // views still work (`docs/x86-mapping.md` §2).
            let whole = if length <= budget.whole_limit {
                usize::try_from(length)
                    .ok()
                    .and_then(|len| nt::map_io_space(image.phys_base, len, true, irql))
            } else {
                None
            };
            if let Some(whole) = whole {
                return Some(Self {
                    phys_base: image.phys_base,
                    length,
                    whole,
                    views: core::ptr::null_mut(),
                });
            }
            let views =
                nt::alloc_nonpaged(core::mem::size_of::<ViewCache>(), irql)?.cast::<ViewCache>();
            // SAFETY: fresh pool of the right size; pool alignment (8) suits ViewCache.
            unsafe { ViewCache::init(views, image.phys_base, length, budget) };
            Some(Self {
                phys_base: image.phys_base,
                length,
                whole: core::ptr::null_mut(),
                views,
            })
        }
        #[cfg(not(target_arch = "x86"))]
        {
            let len = usize::try_from(length).ok()?;
            let whole = nt::map_io_space(image.phys_base, len, true, irql)?;
            Some(Self {
                phys_base: image.phys_base,
                length,
                whole,
            })
        }
    }

    pub fn phys_base(&self) -> u64 {
        self.phys_base
    }

    /// Releases every mapping. Contract: no I/O in flight (HwAdapterControl stop / remove), IRQL
    /// ≤ DISPATCH_LEVEL.
    pub fn unmap(&mut self) {
        if !self.whole.is_null() {
            // SAFETY: `whole` is the live mapping made in `map` for exactly `length` bytes, and no
            // request can be using it (contract above).
            unsafe { nt::unmap_io_space(self.whole, self.length as usize) };
            self.whole = core::ptr::null_mut();
        }
        #[cfg(target_arch = "x86")]
        if !self.views.is_null() {
            // SAFETY: our pool object, initialised in `map`; no I/O in flight (contract), so
            // nothing else references it.
            unsafe { (*self.views).unmap_all() };
            // SAFETY: as above; freed once, then forgotten.
            unsafe { nt::free_pool(self.views.cast()) };
            self.views = core::ptr::null_mut();
        }
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), MediumError> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.length => Ok(()),
            // The target checks bounds first; this is defence in depth, never reached.
            _ => Err(MediumError::Unreadable),
        }
    }
}

impl Medium for ImageMedium {
    fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), MediumError> {
        self.check(offset, dst.len())?;
        #[cfg(target_arch = "x86")]
        // SAFETY: non-null `views` is our initialised pool object, alive until `unmap`.
        if let Some(v) = unsafe { self.views.as_ref() } {
            return v.copy(offset, dst.len(), |chunk_src, at| {
                // SAFETY: `chunk_src` is valid for the chunk length inside a pinned view, and
                // `dst[at..]` has at least that many bytes (ViewCache::copy splits exactly).
                unsafe { copy_bytes(chunk_src.0, dst.as_mut_ptr().wrapping_add(at), chunk_src.1) }
            });
        }
        // SAFETY: `whole` maps `length` bytes and `offset + dst.len() <= length` was checked; the
        // destination is a distinct buffer owned by the caller.
        unsafe {
            copy_bytes(
                self.whole.wrapping_add(offset as usize),
                dst.as_mut_ptr(),
                dst.len(),
            )
        };
        Ok(())
    }

    fn write(&self, offset: u64, src: &[u8]) -> Result<(), MediumError> {
        self.check(offset, src.len())?;
        #[cfg(target_arch = "x86")]
        // SAFETY: as in `read`.
        if let Some(v) = unsafe { self.views.as_ref() } {
            return v.copy(offset, src.len(), |chunk_dst, at| {
                // SAFETY: as in `read`, with the direction reversed.
                unsafe { copy_bytes(src.as_ptr().wrapping_add(at), chunk_dst.0, chunk_dst.1) }
            });
        }
        // SAFETY: as in `read`; the image memory is hidden from Windows, so nothing else owns it.
        unsafe {
            copy_bytes(
                src.as_ptr(),
                self.whole.wrapping_add(offset as usize),
                src.len(),
            )
        };
        Ok(())
    }
}

/// Copies `n` bytes between the image and a request buffer.
///
/// # Safety
/// As `core::ptr::copy_nonoverlapping`: `src` readable and `dst` writable for `n` bytes, no
/// overlap.
#[inline(always)]
pub(crate) unsafe fn copy_bytes(src: *const u8, dst: *mut u8, n: usize) {
    #[cfg(target_arch = "x86")]
    // SAFETY: `rep movsd` then `rep movsb` move exactly `n` bytes from `src` to `dst` (valid
    // per the contract), touching only ecx/esi/edi and memory; the Windows x86 calling
    // convention guarantees DF = 0 (ascending copies) at function entry. esi is saved in the
    // `src` operand register and restored, as LLVM may use esi itself.
    unsafe {
        // Without SSE (the x86 target spec forbids it), compiler-builtins' memcpy copies one
        // 4-byte word per iteration: half the speed of the CPU's string moves, which every
        // x86 CPU since the Pentium Pro runs as fast strings (`docs/x86-mapping.md` §3).
        core::arch::asm!(
            "xchg esi, {src}",
            "rep movsd",
            "mov ecx, {rest}",
            "rep movsb",
            "mov esi, {src}",
            src = inout(reg) src => _,
            rest = in(reg) n & 3,
            inout("ecx") n >> 2 => _,
            inout("edi") dst => _,
            options(nostack, preserves_flags),
        );
    }
    #[cfg(not(target_arch = "x86"))]
    // SAFETY: forwarded contract.
    unsafe {
        core::ptr::copy_nonoverlapping(src, dst, n)
    }
}

#[cfg(target_arch = "x86")]
pub use views::ViewCache;

#[cfg(target_arch = "x86")]
mod views {
    use super::{nt, Budget, MediumError, MAX_SLOTS};
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicU32, Ordering};

    const NO_WINDOW: u64 = u64::MAX;
    /// Set in `Slot::users` while one replacer owns the slot (to unmap or remap it).
    const EXCLUSIVE: u32 = 1 << 31;

    /// What a slot maps. Written only by the slot's owner (`users` holds `EXCLUSIVE`, taken
    /// under the cache lock) or with `&mut` access; read by whoever pins the slot (`users`
    /// raised while `EXCLUSIVE` is clear, which keeps owners out) or holds the cache lock.
    struct Mapping {
        /// Window index (offset >> window_shift), or NO_WINDOW.
        window: u64,
        va: *mut u8,
        len: usize,
    }

    const UNMAPPED: Mapping = Mapping {
        window: NO_WINDOW,
        va: core::ptr::null_mut(),
        len: 0,
    };

    struct Slot {
        mapping: UnsafeCell<Mapping>,
        /// Pins (requests copying through this view), plus `EXCLUSIVE` while owned.
        users: AtomicU32,
    }

    impl Slot {
        /// Pins the slot unless someone owns it.
        fn try_pin(&self) -> bool {
            if self.users.fetch_add(1, Ordering::Acquire) & EXCLUSIVE == 0 {
                return true;
            }
            self.unpin();
            false
        }

        fn unpin(&self) {
            self.users.fetch_sub(1, Ordering::Release);
        }
    }

    /// A slot taken for unmapping/remapping: no pin exists and no other owner can appear.
    /// Readers that bump `users` meanwhile see `EXCLUSIVE` and undo their bump.
    struct Owned<'a>(&'a Slot);

    impl Owned<'_> {
        fn mapping(&mut self) -> &mut Mapping {
            // SAFETY: `EXCLUSIVE` is held, so nobody else reads or writes the mapping.
            unsafe { &mut *self.0.mapping.get() }
        }

        /// Unmaps the slot's view, if any.
        fn clear(&mut self) {
            let m = self.mapping();
            if !m.va.is_null() {
                // SAFETY: no request uses the view (no pin exists while the slot is owned), and
                // it is exactly the mapping recorded here. MmUnmapIoSpace allows DISPATCH_LEVEL.
                unsafe { nt::unmap_io_space(m.va, m.len) };
            }
            *m = UNMAPPED;
        }

        /// Gives the slot back, pinned once for the caller if `keep_pin`.
        fn release(self, keep_pin: bool) {
            let by = if keep_pin { EXCLUSIVE - 1 } else { EXCLUSIVE };
            self.0.users.fetch_sub(by, Ordering::Release);
        }
    }

    /// The mapped windows of one image (x86 only), `budget.slots` of them.
    ///
    /// Window `w` lives in its home slot `w % slots` when it can, and a hit there takes no
    /// lock: one atomic increment pins the slot (`docs/x86-mapping.md` §2). A miss takes the
    /// cache lock, looks through the other slots, and maps the window into its home slot, or,
    /// if that one is pinned, into the next unpinned slot in clock order (where a later
    /// lookup may miss it and map it again: harmless, two views of the same pages).
    pub struct ViewCache {
        phys_base: u64,
        length: u64,
        budget: Budget,
        /// Serialises owners (at most one slot is remapped at a time per cache).
        lock: nt::SpinLock,
        slots: [Slot; MAX_SLOTS],
        /// Next slot to try when the home slot is pinned (clock hand). Under the lock.
        hand: UnsafeCell<usize>,
    }

    impl ViewCache {
        /// Initialises a cache in place (it is too big for a kernel stack).
        ///
        /// # Safety
        /// `this` is valid for writes of one `ViewCache` and suitably aligned.
        pub unsafe fn init(this: *mut Self, phys_base: u64, length: u64, budget: Budget) {
            let budget = Budget {
                slots: budget.slots.clamp(1, MAX_SLOTS),
                ..budget
            };
            // Every field is written before the value is used; each place below is computed
            // inside `*this`, which is valid for writes (contract), and nothing is read.
            // SAFETY: as just stated.
            let field = unsafe { core::ptr::addr_of_mut!((*this).phys_base) };
            // SAFETY: as above (the write).
            unsafe { field.write(phys_base) };
            // SAFETY: as above.
            let field = unsafe { core::ptr::addr_of_mut!((*this).length) };
            // SAFETY: as above (the write).
            unsafe { field.write(length) };
            // SAFETY: as above.
            let field = unsafe { core::ptr::addr_of_mut!((*this).budget) };
            // SAFETY: as above (the write).
            unsafe { field.write(budget) };
            // SAFETY: as above.
            let field = unsafe { core::ptr::addr_of_mut!((*this).lock) };
            // SAFETY: as above (the write).
            unsafe { field.write(nt::SpinLock::new()) };
            // SAFETY: as above.
            let field = unsafe { core::ptr::addr_of_mut!((*this).hand) };
            // SAFETY: as above (the write).
            unsafe { field.write(UnsafeCell::new(0)) };
            // SAFETY: as above (a place computation only).
            let slots = unsafe { core::ptr::addr_of_mut!((*this).slots) }.cast::<Slot>();
            for i in 0..MAX_SLOTS {
                let slot = Slot {
                    mapping: UnsafeCell::new(UNMAPPED),
                    users: AtomicU32::new(0),
                };
                // SAFETY: slot `i < MAX_SLOTS` of the array inside `*this`.
                unsafe { slots.wrapping_add(i).write(slot) };
            }
        }

        /// Copies `len` bytes at image `offset`, window by window: `f((ptr, n), at)` moves `n`
        /// bytes between `ptr` (inside a pinned view) and the request buffer at offset `at`.
        pub fn copy(
            &self,
            offset: u64,
            len: usize,
            mut f: impl FnMut((*mut u8, usize), usize),
        ) -> Result<(), MediumError> {
            let shift = self.budget.window_shift;
            let mut done = 0usize;
            while done < len {
                let pos = offset + done as u64;
                let window = pos >> shift;
                let within = (pos - (window << shift)) as usize;
                let (slot, va, vlen) = self.pin(window)?;
                let n = (vlen - within).min(len - done);
                // `within + n <= vlen`: inside the mapping, which stays in place while the slot
                // is pinned.
                f((va.wrapping_add(within), n), done);
                self.slots[slot].unpin();
                done += n;
            }
            Ok(())
        }

        /// Finds or maps `window`, pins its slot and returns (slot, va, len).
        fn pin(&self, window: u64) -> Result<(usize, *mut u8, usize), MediumError> {
            let n = self.budget.slots;
            let home = (window % n as u64) as usize;
            if let Some(hit) = self.pin_if(home, window) {
                return Ok(hit);
            }
            self.lock.with(|irql| {
                // Mapped meanwhile by a racing request, or earlier outside its home slot.
                for i in (0..n).map(|k| (home + k) % n) {
                    if let Some(hit) = self.pin_if(i, window) {
                        return Ok(hit);
                    }
                }
                // SAFETY: the lock is held, and the hand is only used under it.
                let hand = unsafe { &mut *self.hand.get() };
                let start = *hand;
                let Some((i, mut slot)) = core::iter::once(home)
                    .chain((0..n).map(|k| (start + k) % n))
                    .find_map(|i| self.own(i).map(|s| (i, s)))
                else {
                    return Err(MediumError::Busy);
                };
                *hand = (i + 1) % n;
                slot.clear();
                let first = window << self.budget.window_shift;
                let len = (self.length - first).min(1 << self.budget.window_shift) as usize;
                let mut va = nt::map_io_space(self.phys_base + first, len, true, irql);
                if va.is_none() {
                    // The kernel is short of address space: give back one idle view and try
                    // once more before reporting Busy (`docs/x86-mapping.md` §2).
                    for j in (0..n).filter(|&j| j != i) {
                        let Some(mut spare) = self.own(j) else {
                            continue;
                        };
                        let was_mapped = !spare.mapping().va.is_null();
                        spare.clear();
                        spare.release(false);
                        if was_mapped {
                            va = nt::map_io_space(self.phys_base + first, len, true, irql);
                            break;
                        }
                    }
                }
                let Some(va) = va else {
                    slot.release(false);
                    return Err(MediumError::Busy);
                };
                *slot.mapping() = Mapping { window, va, len };
                slot.release(true);
                Ok((i, va, len))
            })
        }

        /// Pins slot `i` if it maps `window`.
        fn pin_if(&self, i: usize, window: u64) -> Option<(usize, *mut u8, usize)> {
            let slot = &self.slots[i];
            if !slot.try_pin() {
                return None;
            }
            // SAFETY: pinned just above, so no owner can write the mapping meanwhile.
            let m = unsafe { &*slot.mapping.get() };
            if m.window == window {
                return Some((i, m.va, m.len));
            }
            slot.unpin();
            None
        }

        /// Takes slot `i` for remapping if nobody has it pinned. Contract: the cache lock is
        /// held (one owner at a time, so the clock hand and the mappings stay consistent).
        fn own(&self, i: usize) -> Option<Owned<'_>> {
            let slot = &self.slots[i];
            slot.users
                .compare_exchange(0, EXCLUSIVE, Ordering::Acquire, Ordering::Relaxed)
                .ok()
                .map(|_| Owned(slot))
        }

        /// Contract: no I/O in flight.
        pub fn unmap_all(&mut self) {
            for s in &mut self.slots {
                let m = s.mapping.get_mut();
                if !m.va.is_null() {
                    // SAFETY: exclusive access (`&mut self`) and no I/O in flight; this is the
                    // slot's own live mapping.
                    unsafe { nt::unmap_io_space(m.va, m.len) };
                }
                *m = UNMAPPED;
            }
        }
    }
}
