//! Byte access to a mapped RAM image: the I/O path (HwStartIo, IRQL ≤ DISPATCH_LEVEL, many
//! CPUs at once).
//!
//! Images are mapped at discovery time, never per request (`docs/windows-integration.md` §1.12):
//! * x64/arm64 map each image once, whole, cached.
//! * x86 has little system address space, so images larger than [`WHOLE_MAP_LIMIT`] go through
//!   a small per-image cache of [`VIEW_BYTES`] windows ([`ViewCache`]), mapped on first use and
//!   replaced (unmapped at ≤ DISPATCH_LEVEL, which MmUnmapIoSpace allows) only when all slots
//!   are taken. A request that finds every slot busy gets `MediumError::Busy` and is retried by
//!   the port.

use crate::nt;
use rvblk_core::image::MemoryImage;
use rvblk_core::scsi::{Medium, MediumError};
use rvblk_irql::Passive;

/// Images up to this size are mapped whole on x86 too (floppies, small disks, small PE ISOs).
#[cfg(target_arch = "x86")]
pub const WHOLE_MAP_LIMIT: u64 = 64 << 20;
/// Size of one x86 view window.
#[cfg(target_arch = "x86")]
pub const VIEW_BYTES: u64 = 1 << 20;
/// Windows per x86 image: 64 × 1 MiB = 64 MiB of system address space per image, a budget a
/// 32-bit kernel (XP's system PTE pool included) can spare for one or two images.
#[cfg(target_arch = "x86")]
pub const VIEW_SLOTS: usize = 64;

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
    /// Maps `image` for I/O. Contract: PASSIVE_LEVEL (HwFindAdapter). `None` if the mapping
    /// cannot be made (the LUN is then not exposed).
    pub fn map(image: &MemoryImage, irql: &Passive) -> Option<Self> {
        let length = image.length;
        #[cfg(target_arch = "x86")]
        if length > WHOLE_MAP_LIMIT {
            let views =
                nt::alloc_nonpaged(core::mem::size_of::<ViewCache>(), irql)?.cast::<ViewCache>();
            // SAFETY: fresh pool of the right size; pool alignment (8) suits ViewCache.
            unsafe { ViewCache::init(views, image.phys_base, length) };
            return Some(Self {
                phys_base: image.phys_base,
                length,
                whole: core::ptr::null_mut(),
                views,
            });
        }
        let len = usize::try_from(length).ok()?;
        let whole = nt::map_io_space(image.phys_base, len, true, irql)?;
        Some(Self {
            phys_base: image.phys_base,
            length,
            whole,
            #[cfg(target_arch = "x86")]
            views: core::ptr::null_mut(),
        })
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
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        chunk_src.0,
                        dst.as_mut_ptr().wrapping_add(at),
                        chunk_src.1,
                    )
                }
            });
        }
        // SAFETY: `whole` maps `length` bytes and `offset + dst.len() <= length` was checked; the
        // destination is a distinct buffer owned by the caller.
        unsafe {
            core::ptr::copy_nonoverlapping(
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
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        src.as_ptr().wrapping_add(at),
                        chunk_dst.0,
                        chunk_dst.1,
                    )
                }
            });
        }
        // SAFETY: as in `read`; the image memory is hidden from Windows, so nothing else owns it.
        unsafe {
            core::ptr::copy_nonoverlapping(
                src.as_ptr(),
                self.whole.wrapping_add(offset as usize),
                src.len(),
            )
        };
        Ok(())
    }
}

#[cfg(target_arch = "x86")]
pub use views::ViewCache;

#[cfg(target_arch = "x86")]
mod views {
    use super::{nt, MediumError, VIEW_BYTES, VIEW_SLOTS};
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicU32, Ordering};
    use rvblk_irql::Dispatch;

    const NO_WINDOW: u64 = u64::MAX;

    /// What a slot maps. Read or written only with the cache lock held, or while the slot is
    /// pinned (`users > 0`, which stops anyone from replacing it), or with exclusive access.
    struct Mapping {
        /// Window index (offset / VIEW_BYTES), or NO_WINDOW.
        window: u64,
        va: *mut u8,
        len: usize,
    }

    struct Slot {
        mapping: UnsafeCell<Mapping>,
        /// Requests copying through this view right now; > 0 pins it.
        users: AtomicU32,
    }

    /// Slot state and the replacement hand, all guarded by the cache lock.
    struct Locked<'a> {
        cache: &'a ViewCache,
    }

    impl Locked<'_> {
        fn mapping(&mut self, i: usize) -> &mut Mapping {
            // SAFETY: a `Locked` exists only inside `lock.with` (see `ViewCache::locked`), so
            // the lock is held and no other `&mut Mapping` to this slot exists.
            unsafe { &mut *self.cache.slots[i].mapping.get() }
        }

        fn hand(&mut self) -> &mut usize {
            // SAFETY: as in `mapping`: the lock is held.
            unsafe { &mut *self.cache.hand.get() }
        }
    }

    /// A few mapped windows of one image (x86 only).
    pub struct ViewCache {
        phys_base: u64,
        length: u64,
        lock: nt::SpinLock,
        slots: [Slot; VIEW_SLOTS],
        /// Next slot to consider for replacement (clock hand). Under the lock.
        hand: UnsafeCell<usize>,
    }

    impl ViewCache {
        /// Initialises a cache in place (it is several KiB: never built on the stack).
        ///
        /// # Safety
        /// `this` is valid for writes of one `ViewCache` and suitably aligned.
        pub unsafe fn init(this: *mut Self, phys_base: u64, length: u64) {
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
            let field = unsafe { core::ptr::addr_of_mut!((*this).lock) };
            // SAFETY: as above (the write).
            unsafe { field.write(nt::SpinLock::new()) };
            // SAFETY: as above.
            let field = unsafe { core::ptr::addr_of_mut!((*this).hand) };
            // SAFETY: as above (the write).
            unsafe { field.write(UnsafeCell::new(0)) };
            // SAFETY: as above (a place computation only).
            let slots = unsafe { core::ptr::addr_of_mut!((*this).slots) }.cast::<Slot>();
            for i in 0..VIEW_SLOTS {
                let slot = Slot {
                    mapping: UnsafeCell::new(Mapping {
                        window: NO_WINDOW,
                        va: core::ptr::null_mut(),
                        len: 0,
                    }),
                    users: AtomicU32::new(0),
                };
                // SAFETY: slot `i < VIEW_SLOTS` of the array inside `*this`.
                unsafe { slots.wrapping_add(i).write(slot) };
            }
        }

        /// Runs `f` with the lock held and access to the guarded state.
        fn locked<R>(&self, f: impl FnOnce(Locked<'_>, &Dispatch) -> R) -> R {
            self.lock.with(|irql| f(Locked { cache: self }, irql))
        }

        /// Copies `len` bytes at image `offset`, window by window: `f((ptr, n), at)` moves `n`
        /// bytes between `ptr` (inside a pinned view) and the request buffer at offset `at`.
        pub fn copy(
            &self,
            offset: u64,
            len: usize,
            mut f: impl FnMut((*mut u8, usize), usize),
        ) -> Result<(), MediumError> {
            let mut done = 0usize;
            while done < len {
                let pos = offset + done as u64;
                let window = pos / VIEW_BYTES;
                let within = (pos % VIEW_BYTES) as usize;
                let (slot, va, vlen) = self.pin(window)?;
                let n = (vlen - within).min(len - done);
                // SAFETY: `within + n <= vlen`: inside the mapping, which stays in place while
                // the slot is pinned.
                f((unsafe { va.add(within) }, n), done);
                self.slots[slot].users.fetch_sub(1, Ordering::Release);
                done += n;
            }
            Ok(())
        }

        /// Finds or maps `window`, pins its slot and returns (slot, va, len). Busy when every
        /// slot is pinned or the mapping fails.
        fn pin(&self, window: u64) -> Result<(usize, *mut u8, usize), MediumError> {
            self.locked(|mut g, irql| {
                for i in 0..VIEW_SLOTS {
                    let m = g.mapping(i);
                    if m.window == window {
                        let found = (i, m.va, m.len);
                        self.slots[i].users.fetch_add(1, Ordering::Acquire);
                        return Ok(found);
                    }
                }
                let start = *g.hand();
                for step in 0..VIEW_SLOTS {
                    let i = (start + step) % VIEW_SLOTS;
                    if self.slots[i].users.load(Ordering::Acquire) != 0 {
                        continue;
                    }
                    let first = window * VIEW_BYTES;
                    let len = (self.length - first).min(VIEW_BYTES) as usize;
                    let m = g.mapping(i);
                    if !m.va.is_null() {
                        // SAFETY: the slot is unpinned, so no request uses this view, and it is
                        // exactly the mapping recorded here. MmUnmapIoSpace allows DISPATCH_LEVEL.
                        unsafe { nt::unmap_io_space(m.va, m.len) };
                        *m = Mapping {
                            window: NO_WINDOW,
                            va: core::ptr::null_mut(),
                            len: 0,
                        };
                    }
                    let va = nt::map_io_space(self.phys_base + first, len, true, irql)
                        .ok_or(MediumError::Busy)?;
                    *m = Mapping { window, va, len };
                    self.slots[i].users.fetch_add(1, Ordering::Acquire);
                    *g.hand() = (i + 1) % VIEW_SLOTS;
                    return Ok((i, va, len));
                }
                Err(MediumError::Busy)
            })
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
                *m = Mapping {
                    window: NO_WINDOW,
                    va: core::ptr::null_mut(),
                    len: 0,
                };
            }
        }
    }
}
