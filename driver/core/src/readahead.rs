//! Read-ahead for file-backed runtime LUNs (`docs/control.md` §10.4): the decisions only. The
//! port holds one [`ReadAhead`] per mounted file under a spin lock, next to [`BUFFERS`]
//! buffers of [`BUFFER_BYTES`] each, and executes what this module decides:
//!
//! * **Stream detection.** Every READ HwStartIo sees is recorded ([`ReadAhead::read`]); a READ
//!   that starts where the previous one ended continues the stream, and after
//!   [`STREAM_READS`] such reads in a row the LUN is streaming.
//! * **Hits.** A READ lying wholly inside a filled buffer is a hit: the buffer is pinned (it
//!   cannot be refilled while pinned) and the port copies from it in HwStartIo, then releases
//!   the pin. Anything else is a miss and is queued for the worker as without read-ahead.
//! * **Fills.** While streaming and no write is queued, the worker asks for the next fill
//!   ([`ReadAhead::next_fill`]): the first range after the reader's position that no valid
//!   buffer holds, within [`BUFFERS`] × [`BUFFER_BYTES`] of it, into a buffer that is neither
//!   pinned, nor being filled, nor holding data the reader still needs. It reads the file
//!   into it outside the lock and reports back ([`ReadAhead::fill_done`]).
//! * **Invalidation.** A WRITE is recorded before it is queued ([`ReadAhead::write_queued`]):
//!   every buffer it overlaps stops serving at once, a fill it overlaps that is still running
//!   is discarded when it completes (each buffer's generation changes), and no fill starts
//!   until the worker has served every queued write ([`ReadAhead::write_done`]) — so a fill
//!   never reads the file between a write's admission and its execution.
//!
//! Memory safety of the port's buffers rests on two rules this module keeps (and its tests
//! check): a buffer is pinned only while [`State::Filled`], and a buffer is handed out for a
//! fill only while it has no pin and is not already being filled.

use crate::image::DiskBackedImage;
use crate::scsi::cdb::{Command, Opcode};

/// Buffers per LUN.
pub const BUFFERS: usize = 4;
/// Bytes per buffer: one fill reads this much (less at the end of the LUN).
pub const BUFFER_BYTES: usize = 256 * 1024;
/// Sequential READs in a row after which the LUN counts as streaming.
pub const STREAM_READS: u32 = 2;
/// How far ahead of the reader fills may reach.
pub const WINDOW: u64 = (BUFFERS * BUFFER_BYTES) as u64;

/// Whether a disk-backed LUN gets read-ahead buffers (`docs/driver.md` "Read-ahead of
/// disk-backed images"): only an image whose disk no WRITE reaches, so that nothing but a new
/// arrival of its disk can change what the buffers hold. A writable image gets none.
pub const fn wanted_for_disk(image: &DiskBackedImage) -> bool {
    !image.writes_reach_disk()
}

/// What a command does to the medium, as far as read-ahead cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// READ(6/10/12/16) of `len` bytes at byte `offset`.
    Read { offset: u64, len: usize },
    /// WRITE(6/10/12/16) of `len` bytes at byte `offset`.
    Write { offset: u64, len: usize },
    /// Anything else (it neither reads through the buffers nor changes the medium).
    Other,
}

/// Classifies a CDB for a LUN of `block_size`-byte blocks. A CDB whose range does not fit
/// the arithmetic is `Other` for a READ (never a hit; the target refuses it) and a write of
/// everything for a WRITE (invalidating too much is always safe).
pub fn classify(cdb: &[u8], block_size: u32) -> Access {
    let Some(op) = cdb.first().copied().and_then(Opcode::from_u8) else {
        return Access::Other;
    };
    let range = |lba: u64, blocks: u32| {
        let bs = u64::from(block_size);
        let offset = lba.checked_mul(bs)?;
        let len = usize::try_from(u64::from(blocks).checked_mul(bs)?).ok()?;
        offset.checked_add(len as u64)?;
        Some((offset, len))
    };
    match Command::decode(op, cdb) {
        Ok(Command::Read(t)) => match range(t.lba, t.blocks) {
            Some((offset, len)) => Access::Read { offset, len },
            None => Access::Other,
        },
        Ok(Command::Write(t)) => match range(t.lba, t.blocks) {
            Some((offset, len)) => Access::Write { offset, len },
            None => Access::Write {
                offset: 0,
                len: usize::MAX,
            },
        },
        // A WRITE CDB the decoder refuses is refused by the target too: it changes nothing.
        _ => Access::Other,
    }
}

/// A buffer's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Holds nothing usable.
    Empty,
    /// The worker is reading the file into it (no pins, none taken).
    Filling,
    /// Holds the file's bytes `[start, start + len)`.
    Filled,
}

#[derive(Clone, Copy, Debug)]
struct Buffer {
    state: State,
    start: u64,
    len: usize,
    /// Changes whenever a fill starts or the buffer is invalidated: a fill reports back with
    /// the generation it started with, and a different one means "discard".
    generation: u32,
    /// Requests copying out of the buffer right now.
    pins: u32,
}

impl Buffer {
    const EMPTY: Buffer = Buffer {
        state: State::Empty,
        start: 0,
        len: 0,
        generation: 0,
        pins: 0,
    };

    fn end(&self) -> u64 {
        self.start + self.len as u64
    }

    /// Filled, or being filled for data still wanted.
    fn valid(&self) -> bool {
        self.state != State::Empty
    }

    fn overlaps(&self, offset: u64, end: u64) -> bool {
        self.start < end && offset < self.end()
    }

    fn holds(&self, offset: u64, len: usize) -> bool {
        self.state == State::Filled
            && self.start <= offset
            && offset
                .checked_add(len as u64)
                .is_some_and(|e| e <= self.end())
    }
}

/// A pinned hit: copy `len` bytes from buffer `buffer` at `within`, then
/// [`ReadAhead::release`] it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    pub buffer: usize,
    pub within: usize,
}

/// A fill the worker is to do: read `len` bytes of the file at `offset` into buffer `buffer`,
/// then [`ReadAhead::fill_done`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    pub buffer: usize,
    pub offset: u64,
    pub len: usize,
    generation: u32,
}

/// One LUN's read-ahead state (module documentation).
#[derive(Clone, Debug)]
pub struct ReadAhead {
    /// The LUN's length in bytes: no fill reaches past it.
    length: u64,
    buffers: [Buffer; BUFFERS],
    /// Where the last READ ended.
    next: u64,
    /// Sequential READs in a row ending at `next`.
    run: u32,
    /// WRITEs queued and not yet served.
    writes: u32,
    /// A nudge was asked for since the last fill started (one is enough).
    nudged: bool,
}

impl Default for ReadAhead {
    /// A LUN of no bytes: never fills (the port sets the real length before use).
    fn default() -> Self {
        Self::new(0)
    }
}

impl ReadAhead {
    pub const fn new(length: u64) -> Self {
        Self {
            length,
            buffers: [Buffer::EMPTY; BUFFERS],
            next: 0,
            run: 0,
            writes: 0,
            nudged: false,
        }
    }

    /// Whether the LUN is streaming (the last [`STREAM_READS`] READs were sequential).
    pub fn streaming(&self) -> bool {
        self.run >= STREAM_READS
    }

    /// HwStartIo's READ of `len` bytes at `offset`: recorded for stream detection, and pinned
    /// when a filled buffer holds all of it.
    pub fn read(&mut self, offset: u64, len: usize) -> Option<Hit> {
        if offset == self.next && self.run > 0 {
            self.run = self.run.saturating_add(1);
        } else {
            self.run = 1;
        }
        self.next = offset.saturating_add(len as u64);
        self.lookup(offset, len)
    }

    /// A READ the worker is about to serve from the file: pinned if a buffer filled since it
    /// was queued holds it (not recorded again).
    pub fn lookup(&mut self, offset: u64, len: usize) -> Option<Hit> {
        if len == 0 {
            return None;
        }
        let i = self.buffers.iter().position(|b| b.holds(offset, len))?;
        let b = &mut self.buffers[i];
        b.pins += 1;
        Some(Hit {
            buffer: i,
            within: (offset - b.start) as usize,
        })
    }

    /// The copy of `hit` is done. True when the worker should be nudged: a fill is possible
    /// now, none is running, and no nudge was asked for since the last fill started.
    pub fn release(&mut self, hit: Hit) -> bool {
        let b = &mut self.buffers[hit.buffer];
        debug_assert!(b.pins > 0);
        b.pins = b.pins.saturating_sub(1);
        let running = self.buffers.iter().any(|b| b.state == State::Filling);
        if self.nudged || running || self.plan().is_none() {
            return false;
        }
        self.nudged = true;
        true
    }

    /// A WRITE of `len` bytes at `offset` is about to be queued: buffers it overlaps stop
    /// serving, a fill it overlaps is discarded when done, and no fill starts until it is
    /// served ([`ReadAhead::write_done`]).
    pub fn write_queued(&mut self, offset: u64, len: usize) {
        self.writes = self.writes.saturating_add(1);
        let end = offset.saturating_add(len as u64);
        for b in self.buffers.iter_mut().filter(|b| b.overlaps(offset, end)) {
            b.generation = b.generation.wrapping_add(1);
            if b.state == State::Filled {
                b.state = State::Empty;
            }
        }
    }

    /// The medium may have changed (its disk arrived again): every buffer stops serving, a
    /// running fill is discarded when it completes, and the stream starts over. Pins stay; a
    /// pinned buffer is not handed to a fill before its pins are released.
    pub fn invalidate(&mut self) {
        for b in self.buffers.iter_mut() {
            b.generation = b.generation.wrapping_add(1);
            if b.state == State::Filled {
                b.state = State::Empty;
            }
        }
        self.run = 0;
    }

    /// A WRITE recorded by [`ReadAhead::write_queued`] was served (or never queued).
    pub fn write_done(&mut self) {
        debug_assert!(self.writes > 0);
        self.writes = self.writes.saturating_sub(1);
    }

    /// The worker: the next fill to do, if any (the buffer is `Filling` from now on).
    pub fn next_fill(&mut self) -> Option<Fill> {
        if self.buffers.iter().any(|b| b.state == State::Filling) {
            return None;
        }
        let (i, offset, len) = self.plan()?;
        self.nudged = false;
        let b = &mut self.buffers[i];
        b.state = State::Filling;
        b.start = offset;
        b.len = len;
        b.generation = b.generation.wrapping_add(1);
        Some(Fill {
            buffer: i,
            offset,
            len,
            generation: b.generation,
        })
    }

    /// The worker read the file for `fill`: `ok` when all `fill.len` bytes arrived. The buffer
    /// serves from now on unless a write invalidated it meanwhile. A failed fill ends the
    /// stream (the next misses report the error through the normal path).
    pub fn fill_done(&mut self, fill: Fill, ok: bool) {
        let b = &mut self.buffers[fill.buffer];
        debug_assert_eq!(b.state, State::Filling);
        b.state = if ok && b.generation == fill.generation {
            State::Filled
        } else {
            State::Empty
        };
        if !ok {
            self.run = 0;
        }
    }

    /// The next fill without taking it: (buffer, offset, len).
    fn plan(&self) -> Option<(usize, u64, usize)> {
        if self.writes > 0 || !self.streaming() {
            return None;
        }
        let (next, end) = (self.next, self.next.saturating_add(WINDOW).min(self.length));
        // The first byte after the reader that no valid buffer holds.
        let mut pos = next;
        while let Some(b) = self
            .buffers
            .iter()
            .find(|b| b.valid() && b.start <= pos && pos < b.end())
        {
            pos = b.end();
        }
        if pos >= end {
            return None;
        }
        // A free buffer: no pin, not filling, and nothing the reader still needs (an empty one
        // first, then the one whose data lies furthest behind the reader).
        let needed = |b: &Buffer| b.valid() && b.overlaps(next, end);
        let free = self
            .buffers
            .iter()
            .enumerate()
            .filter(|(_, b)| b.pins == 0 && b.state != State::Filling && !needed(b))
            .min_by_key(|(_, b)| (b.state != State::Empty, b.end()))?
            .0;
        // Up to the next range a buffer already holds (no byte is read twice), the end of the
        // LUN, or a buffer's size.
        let until = self
            .buffers
            .iter()
            .filter(|b| b.valid() && b.start > pos)
            .map(|b| b.start)
            .min()
            .unwrap_or(u64::MAX)
            .min(self.length);
        let len = (until - pos).min(BUFFER_BYTES as u64) as usize;
        Some((free, pos, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const K: usize = 1024;
    const B: usize = BUFFER_BYTES;
    const LEN: u64 = 64 << 20;

    /// Reads `n` 64 KiB pieces from `at`, returning how many hit (pins released at once).
    fn reads(ra: &mut ReadAhead, at: u64, n: usize) -> usize {
        let mut hits = 0;
        for i in 0..n {
            if let Some(h) = ra.read(at + (i * 64 * K) as u64, 64 * K) {
                hits += 1;
                ra.release(h);
            }
        }
        hits
    }

    /// Does every fill on offer.
    fn fill_all(ra: &mut ReadAhead) -> usize {
        let mut n = 0;
        while let Some(f) = ra.next_fill() {
            ra.fill_done(f, true);
            n += 1;
        }
        n
    }

    #[test]
    fn classify_reads_writes_and_others() {
        // READ(10) of 128 blocks at LBA 256.
        let r10 = [0x28, 0, 0, 0, 1, 0, 0, 0, 128, 0];
        assert_eq!(
            classify(&r10, 512),
            Access::Read {
                offset: 256 * 512,
                len: 64 * K
            }
        );
        let w10 = [0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0];
        assert_eq!(
            classify(&w10, 2048),
            Access::Write {
                offset: 8 * 2048,
                len: 2048
            }
        );
        assert_eq!(classify(&[0x00; 6], 512), Access::Other); // TEST UNIT READY
        assert_eq!(classify(&[], 512), Access::Other);
        assert_eq!(
            classify(&[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], 512),
            Access::Other
        );
    }

    #[test]
    fn no_stream_after_one_read() {
        let mut ra = ReadAhead::new(LEN);
        assert_eq!(ra.read(0, 64 * K), None);
        assert!(!ra.streaming());
        assert_eq!(ra.next_fill(), None);
    }

    #[test]
    fn two_sequential_reads_start_a_stream_and_fill_ahead() {
        let mut ra = ReadAhead::new(LEN);
        ra.read(0, 64 * K);
        ra.read(64 * K as u64, 64 * K);
        assert!(ra.streaming());
        let f = ra.next_fill().expect("a fill");
        assert_eq!((f.offset, f.len), (128 * K as u64, B));
        // One fill at a time.
        assert_eq!(ra.next_fill(), None);
        ra.fill_done(f, true);
        // Then the rest of the window, contiguous.
        let mut at = f.offset + B as u64;
        for _ in 1..BUFFERS {
            let g = ra.next_fill().expect("a fill");
            assert_eq!(g.offset, at);
            at += B as u64;
            ra.fill_done(g, true);
        }
        assert_eq!(ra.next_fill(), None, "the window is full");
    }

    #[test]
    fn random_reads_never_fill() {
        let mut ra = ReadAhead::new(LEN);
        for off in [5 << 20, 1 << 20, 30 << 20, 7 << 20, 0u64] {
            ra.read(off, 4 * K);
            assert_eq!(ra.next_fill(), None);
        }
    }

    #[test]
    fn a_stream_reads_from_the_buffers() {
        let mut ra = ReadAhead::new(LEN);
        assert_eq!(reads(&mut ra, 0, 2), 0);
        assert_eq!(fill_all(&mut ra), BUFFERS);
        // The whole window hits.
        let n = BUFFERS * B / (64 * K);
        assert_eq!(reads(&mut ra, 128 * K as u64, n), n);
    }

    #[test]
    fn consumed_buffers_are_reused_for_the_next_range() {
        let mut ra = ReadAhead::new(LEN);
        reads(&mut ra, 0, 2);
        fill_all(&mut ra);
        // Consume the first buffer: one fill becomes possible, right after the window.
        reads(&mut ra, 128 * K as u64, B / (64 * K));
        let f = ra.next_fill().expect("a fill");
        assert_eq!(f.offset, 128 * K as u64 + (BUFFERS * B) as u64);
        ra.fill_done(f, true);
        assert_eq!(ra.next_fill(), None);
    }

    #[test]
    fn release_nudges_once_when_a_fill_is_possible() {
        let mut ra = ReadAhead::new(LEN);
        reads(&mut ra, 0, 2);
        fill_all(&mut ra);
        let mut nudges = 0;
        for i in 0..(B / (64 * K)) {
            let h = ra.read((128 * K + i * 64 * K) as u64, 64 * K).expect("hit");
            nudges += usize::from(ra.release(h));
        }
        assert_eq!(nudges, 1, "the buffer just consumed frees room");
        // Still no second nudge until a fill starts.
        let h = ra.read((128 * K + B) as u64, 64 * K).expect("hit");
        assert!(!ra.release(h));
        let f = ra.next_fill().expect("fill");
        ra.fill_done(f, true);
    }

    #[test]
    fn a_pinned_buffer_is_never_refilled() {
        let mut ra = ReadAhead::new(LEN);
        reads(&mut ra, 0, 2);
        fill_all(&mut ra);
        // Pin the first buffer's last piece, then move the reader far away in a stream.
        let first = ra.read((128 * K + B - 64 * K) as u64, 64 * K).expect("hit");
        reads(&mut ra, 32 << 20, 2);
        let mut used = [false; BUFFERS];
        while let Some(f) = ra.next_fill() {
            used[f.buffer] = true;
            assert_ne!(f.buffer, first.buffer, "a pinned buffer was handed out");
            ra.fill_done(f, true);
        }
        assert_eq!(used.iter().filter(|u| **u).count(), BUFFERS - 1);
        ra.release(first);
        assert!(ra.next_fill().is_some(), "free once released");
    }

    #[test]
    fn a_filling_buffer_is_never_a_hit() {
        let mut ra = ReadAhead::new(LEN);
        reads(&mut ra, 0, 2);
        let f = ra.next_fill().expect("fill");
        assert_eq!(ra.read(f.offset, 64 * K), None);
        assert_eq!(ra.lookup(f.offset, 64 * K), None);
        ra.fill_done(f, true);
        assert!(ra.lookup(f.offset, 64 * K).is_some());
    }

    #[test]
    fn a_write_invalidates_overlapping_buffers_only() {
        let mut ra = ReadAhead::new(LEN);
        reads(&mut ra, 0, 2);
        fill_all(&mut ra);
        let first = 128 * K as u64;
        ra.write_queued(first + 4096, 512);
        assert_eq!(ra.lookup(first, 64 * K), None, "overlapping: invalidated");
        let h = ra
            .lookup(first + B as u64, 64 * K)
            .expect("other buffers still serve");
        ra.release(h);
        // No fill while the write is queued, even though a buffer is free now.
        assert_eq!(ra.next_fill(), None);
        ra.write_done();
        assert!(ra.next_fill().is_some());
    }

    #[test]
    fn a_write_during_a_fill_discards_it() {
        let mut ra = ReadAhead::new(LEN);
        reads(&mut ra, 0, 2);
        let f = ra.next_fill().expect("fill");
        ra.write_queued(f.offset + 100 * 512, 512);
        ra.fill_done(f, true);
        assert_eq!(ra.lookup(f.offset, 64 * K), None, "stale fill served");
        ra.write_done();
        // Refilled afterwards (with the written data).
        let g = ra.next_fill().expect("refill");
        assert_eq!(g.offset, f.offset);
        ra.fill_done(g, true);
        assert!(ra.lookup(f.offset, 64 * K).is_some());
    }

    #[test]
    fn a_write_elsewhere_keeps_a_running_fill() {
        let mut ra = ReadAhead::new(LEN);
        reads(&mut ra, 0, 2);
        let f = ra.next_fill().expect("fill");
        ra.write_queued(40 << 20, 4096);
        ra.fill_done(f, true);
        ra.write_done();
        assert!(ra.lookup(f.offset, 64 * K).is_some());
    }

    #[test]
    fn a_pinned_buffer_invalidated_stops_serving_but_stays_reserved() {
        let mut ra = ReadAhead::new(LEN);
        reads(&mut ra, 0, 2);
        fill_all(&mut ra);
        let h = ra.read(128 * K as u64, 64 * K).expect("hit");
        ra.write_queued(192 * K as u64, 512);
        ra.write_done();
        assert_eq!(ra.lookup(192 * K as u64, 64 * K), None);
        // Every other buffer holds bytes ahead of the reader: the invalidated one is the only
        // candidate, and it stays reserved while pinned.
        assert_eq!(ra.next_fill(), None);
        ra.release(h);
        let f = ra.next_fill().expect("refill");
        assert_eq!(f.buffer, h.buffer);
        // Only up to the next buffer's range: no byte is read twice.
        assert_eq!((f.offset, f.len), (192 * K as u64, B - 64 * K));
        ra.fill_done(f, true);
        assert!(ra.lookup(192 * K as u64, 64 * K).is_some());
    }

    #[test]
    fn invalidate_drops_buffers_and_running_fills_but_not_pins() {
        let mut ra = ReadAhead::new(LEN);
        reads(&mut ra, 0, 2);
        let f = ra.next_fill().expect("fill");
        ra.fill_done(f, true);
        let pinned = ra.read(f.offset, 64 * K).expect("a hit");
        let g = ra.next_fill().expect("a second fill");
        ra.invalidate();
        // The running fill is discarded, the filled buffer serves no more.
        ra.fill_done(g, true);
        assert_eq!(ra.lookup(g.offset, 64 * K), None);
        assert_eq!(ra.lookup(f.offset, 64 * K), None);
        // The stream starts over; the pinned buffer is never handed to a fill.
        assert!(!ra.streaming());
        reads(&mut ra, 0, 2);
        while let Some(h) = ra.next_fill() {
            assert_ne!(
                h.buffer, pinned.buffer,
                "a pinned buffer was handed to a fill"
            );
            ra.fill_done(h, true);
        }
        ra.release(pinned);
    }

    #[test]
    fn only_disk_images_no_write_reaches_get_read_ahead() {
        use crate::image::{DeviceKind, WritePolicy};
        let img = |kind, policy| {
            let ss = if kind == DeviceKind::CdRom { 2048 } else { 512 };
            crate::backed::tests::image_with(kind, policy, ss, &[(0, 64)], 64 * u64::from(ss))
        };
        for (kind, policy, wanted) in [
            (DeviceKind::CdRom, WritePolicy::ReadOnly, true),
            (DeviceKind::CdRom, WritePolicy::ReadWrite, true),
            (DeviceKind::Disk, WritePolicy::ReadOnly, true),
            (DeviceKind::Disk, WritePolicy::DiscardWrites, true),
            (DeviceKind::Disk, WritePolicy::ReadWrite, false),
            (DeviceKind::Floppy, WritePolicy::ReadWrite, false),
        ] {
            assert_eq!(
                wanted_for_disk(&img(kind, policy)),
                wanted,
                "{kind:?} {policy:?}"
            );
        }
    }

    #[test]
    fn a_failed_fill_ends_the_stream() {
        let mut ra = ReadAhead::new(LEN);
        reads(&mut ra, 0, 2);
        let f = ra.next_fill().expect("fill");
        ra.fill_done(f, false);
        assert_eq!(ra.lookup(f.offset, 64 * K), None);
        assert!(!ra.streaming());
        assert_eq!(ra.next_fill(), None);
    }

    #[test]
    fn fills_stop_at_the_end_of_the_lun() {
        let len = (128 * K + B + B / 2) as u64;
        let mut ra = ReadAhead::new(len);
        reads(&mut ra, 0, 2);
        let f = ra.next_fill().expect("fill");
        assert_eq!((f.offset, f.len), (128 * K as u64, B));
        ra.fill_done(f, true);
        let g = ra.next_fill().expect("the tail");
        assert_eq!((g.offset, g.len), (f.offset + B as u64, B / 2));
        ra.fill_done(g, true);
        assert_eq!(ra.next_fill(), None);
        // A read past the end is never a hit.
        assert_eq!(ra.read(len - 512, 64 * K), None);
    }

    #[test]
    fn a_stream_restarting_elsewhere_reuses_old_buffers() {
        let mut ra = ReadAhead::new(LEN);
        reads(&mut ra, (60 << 20) as u64, 2);
        fill_all(&mut ra);
        reads(&mut ra, 0, 2);
        let mut n = 0;
        while let Some(f) = ra.next_fill() {
            assert!(f.offset < WINDOW + 128 * K as u64);
            ra.fill_done(f, true);
            n += 1;
        }
        assert_eq!(n, BUFFERS);
        assert_eq!(reads(&mut ra, 128 * K as u64, 4), 4);
    }

    #[test]
    fn reads_straddling_two_buffers_miss() {
        let mut ra = ReadAhead::new(LEN);
        reads(&mut ra, 0, 2);
        fill_all(&mut ra);
        let at = (128 * K + B - 4 * K) as u64;
        assert_eq!(ra.read(at, 64 * K), None);
    }

    #[test]
    fn zero_length_reads_never_hit() {
        let mut ra = ReadAhead::new(LEN);
        reads(&mut ra, 0, 2);
        fill_all(&mut ra);
        assert_eq!(ra.read(128 * K as u64, 0), None);
    }

    #[test]
    fn an_unplanned_write_invalidates_everything() {
        let mut ra = ReadAhead::new(LEN);
        reads(&mut ra, 0, 2);
        fill_all(&mut ra);
        ra.write_queued(0, usize::MAX);
        ra.write_done();
        for i in 0..BUFFERS {
            assert_eq!(ra.lookup((128 * K + i * B) as u64, 4 * K), None);
        }
    }
}
