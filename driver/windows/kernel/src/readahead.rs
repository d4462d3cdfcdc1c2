//! Read-ahead buffers (`docs/control.md` §10.4 for file LUNs, `docs/driver.md` "Read-ahead of
//! disk-backed images"): the pool buffers of one LUN and the core's `rvblk_core::readahead`
//! state that says which holds what. Kernel-wrapper module (pool memory touched by raw
//! pointer); HwStartIo's use of a hit is `crate::io::serve_read_ahead_hit`.

use core::ptr::NonNull;
use rvblk_core::readahead::{Hit, ReadAhead, BUFFERS, BUFFER_BYTES};
use rvblk_core::scsi::{Medium, MediumError};
use rvblk_irql::{AtMostDispatch, Passive};

/// One LUN's read-ahead buffers: [`BUFFERS`] pool buffers of
/// [`BUFFER_BYTES`] and the core's [`ReadAhead`] that says, under a spin lock, which of them
/// holds what. The bytes are touched outside the lock, by rule of the core's state machine: a
/// buffer is written only by the worker between `next_fill` and `fill_done` (state Filling:
/// no pin exists and none is granted), and read only by a holder of a pin (state Filled when
/// pinned; never handed to a fill while pinned). Freed on drop (the LUN's release, PASSIVE).
pub struct ReadAheadBuffers {
    state: crate::ntio::SpinLocked<ReadAhead>,
    bufs: [NonNull<u8>; BUFFERS],
}

// SAFETY: pool memory reachable from any CPU; who may touch which bytes when is decided under
// the spin lock (type documentation).
unsafe impl Send for ReadAheadBuffers {}
// SAFETY: as above.
unsafe impl Sync for ReadAheadBuffers {}

impl ReadAheadBuffers {
    /// All [`BUFFERS`] buffers, or `None` (nothing left allocated) when the pool cannot give
    /// them; `length` is the LUN's size in bytes.
    pub fn allocate(length: u64, irql: &Passive) -> Option<Self> {
        let mut bufs = [NonNull::<u8>::dangling(); BUFFERS];
        for i in 0..BUFFERS {
            match crate::nt::alloc_nonpaged(BUFFER_BYTES, irql).and_then(NonNull::new) {
                Some(p) => bufs[i] = p,
                None => {
                    for p in &bufs[..i] {
                        // SAFETY: allocated just above, never shared.
                        unsafe { crate::nt::free_pool(p.as_ptr()) };
                    }
                    return None;
                }
            }
        }
        let this = Self {
            state: crate::ntio::SpinLocked::default(),
            bufs,
        };
        this.state.with(irql, |ra, _| *ra = ReadAhead::new(length));
        Some(this)
    }

    /// HwStartIo's READ (recorded for stream detection): a pinned hit when a filled buffer
    /// holds all of it.
    pub fn read(
        &self,
        offset: u64,
        len: usize,
        irql: &impl AtMostDispatch,
    ) -> Option<ReadAheadHit<'_>> {
        let hit = self.state.with(irql, |ra, _| ra.read(offset, len))?;
        Some(self.pinned(hit, offset, len))
    }

    /// The worker's queued READ: a pinned hit if a buffer filled meanwhile holds it.
    pub fn lookup(
        &self,
        offset: u64,
        len: usize,
        irql: &impl AtMostDispatch,
    ) -> Option<ReadAheadHit<'_>> {
        let hit = self.state.with(irql, |ra, _| ra.lookup(offset, len))?;
        Some(self.pinned(hit, offset, len))
    }

    fn pinned(&self, hit: Hit, offset: u64, len: usize) -> ReadAheadHit<'_> {
        ReadAheadHit {
            owner: self,
            hit,
            offset,
            len,
        }
    }

    /// A WRITE of `[offset, offset + len)` is about to be queued (`ReadAhead::write_queued`).
    pub fn write_queued(&self, offset: u64, len: usize, irql: &impl AtMostDispatch) {
        self.state.with(irql, |ra, _| ra.write_queued(offset, len));
    }

    /// That WRITE was served, or not queued after all (`ReadAhead::write_done`).
    pub fn write_done(&self, irql: &impl AtMostDispatch) {
        self.state.with(irql, |ra, _| ra.write_done());
    }

    /// The worker: does the next fill the core asks for, reading `medium` (the file, or the
    /// disk through the image's extents) into its buffer. False when there is none.
    pub fn fill_one(&self, medium: &impl Medium, irql: &Passive) -> bool {
        let Some(fill) = self.state.with(irql, |ra, _| ra.next_fill()) else {
            return false;
        };
        debug_assert!(fill.buffer < BUFFERS && fill.len <= BUFFER_BYTES);
        // SAFETY: buffer `fill.buffer` is ours alone until `fill_done` (type documentation):
        // `fill.len` ≤ BUFFER_BYTES bytes of its pool allocation.
        let dst =
            unsafe { core::slice::from_raw_parts_mut(self.bufs[fill.buffer].as_ptr(), fill.len) };
        let ok = medium.read(fill.offset, dst).is_ok();
        self.state.with(irql, |ra, _| ra.fill_done(fill, ok));
        true
    }

    /// The LUN's medium may have changed (`ReadAhead::invalidate`).
    pub fn invalidate(&self, irql: &impl AtMostDispatch) {
        self.state.with(irql, |ra, _| ra.invalidate());
    }
}

impl Drop for ReadAheadBuffers {
    fn drop(&mut self) {
        for p in &self.bufs {
            // SAFETY: our pool allocations; nothing references them (`&mut self`, and pins
            // borrow `self`).
            unsafe { crate::nt::free_pool(p.as_ptr()) };
        }
    }
}

/// A READ served from a read-ahead buffer: the medium for exactly `[offset, offset + len)`,
/// pinned until [`ReadAheadHit::release`].
pub struct ReadAheadHit<'a> {
    owner: &'a ReadAheadBuffers,
    hit: Hit,
    offset: u64,
    len: usize,
}

impl ReadAheadHit<'_> {
    /// Gives the pin back; true when the worker should be nudged to fill (the core decides).
    pub fn release(self, irql: &impl AtMostDispatch) -> bool {
        self.owner.state.with(irql, |ra, _| ra.release(self.hit))
    }
}

impl Medium for ReadAheadHit<'_> {
    fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), MediumError> {
        let at = offset
            .checked_sub(self.offset)
            .and_then(|d| usize::try_from(d).ok())
            .filter(|&d| d.checked_add(dst.len()).is_some_and(|e| e <= self.len))
            .ok_or(MediumError::Unreadable)?;
        let src = self.owner.bufs[self.hit.buffer]
            .as_ptr()
            .wrapping_add(self.hit.within + at);
        // SAFETY: the buffer is pinned and Filled (type documentation), and the core's hit
        // lies inside it: `within + len` ≤ BUFFER_BYTES, and `at + dst.len()` ≤ `len` was
        // checked; `dst` is the request's own buffer.
        unsafe { crate::medium::copy_bytes(src, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    fn write(&self, _: u64, _: &[u8]) -> Result<(), MediumError> {
        // Only READs are served from the buffers.
        Err(MediumError::Unreadable)
    }
}
