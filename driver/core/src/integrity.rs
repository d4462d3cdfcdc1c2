//! Rule 29 (`docs/loaders.md` §10): an image must still hold what discovery saw when its first I/O
//! arrives. A loader that is still running, or a stale table that pointed at recycled RAM,
//! shows up here as a different first block.
//!
//! The port records a [`Fingerprint`] right after mapping the image and keeps a
//! [`FirstIoCheck`] per LUN; every request asks [`FirstIoCheck::verify`], which reads the image
//! once and then answers from its remembered verdict.

use core::sync::atomic::{AtomicU8, Ordering};

use crate::scsi::{Medium, MediumError};

/// Bytes of the image that the fingerprint covers (fewer for a smaller image).
pub const FINGERPRINT_BYTES: usize = 64;

/// FNV-1a over the image's first [`FINGERPRINT_BYTES`] bytes: cheap, and any change of the boot
/// sector or volume descriptor area that a recycled or half-written image shows changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint(u64);

impl Fingerprint {
    /// The fingerprint of `first_bytes` (at most [`FINGERPRINT_BYTES`] of them are used).
    pub fn of(first_bytes: &[u8]) -> Self {
        let n = first_bytes.len().min(FINGERPRINT_BYTES);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in &first_bytes[..n] {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
        Self(h)
    }

    /// Reads the first bytes of an image of `length` bytes through `medium`.
    pub fn read(medium: &impl Medium, length: u64) -> Result<Self, MediumError> {
        // At most FINGERPRINT_BYTES: the cast cannot truncate.
        let n = length.min(FINGERPRINT_BYTES as u64) as usize;
        let mut buf = [0u8; FINGERPRINT_BYTES];
        medium.read(0, &mut buf[..n])?;
        Ok(Self::of(&buf[..n]))
    }

    pub const fn value(self) -> u64 {
        self.0
    }
}

/// What [`FirstIoCheck::verify`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Intact,
    /// The image could not be read just now (`MediumError::Busy`, e.g. every x86 view pinned):
    /// no verdict yet; the request is answered BUSY and the check runs again on the retry.
    Retry,
    /// The image changed since discovery; `first_report` is true exactly once per LUN, so the
    /// port logs the refusal once however many requests arrive.
    Changed {
        first_report: bool,
    },
}

const UNVERIFIED: u8 = 0;
const INTACT: u8 = 1;
/// Changed, and already reported once.
const CHANGED: u8 = 2;

/// Rule 29 state of one LUN. Safe to share between CPUs: two requests racing at the first I/O
/// both compare, and the result is the same.
#[derive(Debug)]
pub struct FirstIoCheck {
    expected: Fingerprint,
    length: u64,
    state: AtomicU8,
}

impl FirstIoCheck {
    /// `expected` was read at discovery from an image of `length` bytes.
    pub const fn new(expected: Fingerprint, length: u64) -> Self {
        Self {
            expected,
            length,
            state: AtomicU8::new(UNVERIFIED),
        }
    }

    /// Compares the image with its discovery-time fingerprint on the first call and remembers
    /// the answer; an image that cannot be read any more counts as changed, one that is only
    /// busy gets no verdict yet.
    pub fn verify(&self, medium: &impl Medium) -> Verdict {
        match self.state.load(Ordering::Acquire) {
            INTACT => return Verdict::Intact,
            CHANGED => {
                return Verdict::Changed {
                    first_report: false,
                }
            }
            _ => {}
        }
        match Fingerprint::read(medium, self.length) {
            Ok(now) if now == self.expected => {
                self.state.store(INTACT, Ordering::Release);
                return Verdict::Intact;
            }
            Err(MediumError::Busy | MediumError::TimedOut) => return Verdict::Retry,
            Ok(_) | Err(MediumError::Unreadable | MediumError::Removed) => {}
        }
        let before = self.state.swap(CHANGED, Ordering::AcqRel);
        Verdict::Changed {
            first_report: before != CHANGED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::MediumError;
    use core::cell::RefCell;

    struct Ram(RefCell<[u8; 128]>);

    impl Medium for Ram {
        fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), MediumError> {
            let o = offset as usize;
            dst.copy_from_slice(&self.0.borrow()[o..o + dst.len()]);
            Ok(())
        }
        fn write(&self, offset: u64, src: &[u8]) -> Result<(), MediumError> {
            let o = offset as usize;
            self.0.borrow_mut()[o..o + src.len()].copy_from_slice(src);
            Ok(())
        }
    }

    /// A medium whose every access fails with one error.
    struct Failing(MediumError);

    impl Medium for Failing {
        fn read(&self, _: u64, _: &mut [u8]) -> Result<(), MediumError> {
            Err(self.0)
        }
        fn write(&self, _: u64, _: &[u8]) -> Result<(), MediumError> {
            Err(self.0)
        }
    }

    #[test]
    fn fingerprint_covers_the_first_64_bytes_only() {
        let a = [7u8; 100];
        let mut b = a;
        b[80] = 0;
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&b));
        b[63] = 0;
        assert_ne!(Fingerprint::of(&a), Fingerprint::of(&b));
        // FNV-1a of nothing is its offset basis.
        assert_eq!(Fingerprint::of(&[]).value(), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn an_unchanged_image_is_intact_and_the_verdict_is_remembered() {
        let ram = Ram(RefCell::new([0x5a; 128]));
        let check = FirstIoCheck::new(Fingerprint::read(&ram, 128).unwrap(), 128);
        assert_eq!(check.verify(&ram), Verdict::Intact);
        ram.write(0, &[0]).unwrap();
        assert_eq!(
            check.verify(&ram),
            Verdict::Intact,
            "checked at the first I/O only"
        );
    }

    #[test]
    fn a_changed_image_is_reported_once_and_stays_refused() {
        let ram = Ram(RefCell::new([0x5a; 128]));
        let check = FirstIoCheck::new(Fingerprint::read(&ram, 128).unwrap(), 128);
        ram.write(10, &[1]).unwrap();
        assert_eq!(check.verify(&ram), Verdict::Changed { first_report: true });
        ram.write(10, &[0x5a]).unwrap();
        assert_eq!(
            check.verify(&ram),
            Verdict::Changed {
                first_report: false
            }
        );
    }

    #[test]
    fn a_short_image_and_an_unreadable_one() {
        let ram = Ram(RefCell::new([1; 128]));
        let f = Fingerprint::read(&ram, 10).unwrap();
        assert_eq!(f, Fingerprint::of(&[1; 10]));
        let unreadable = Failing(MediumError::Unreadable);
        assert_eq!(
            Fingerprint::read(&unreadable, 10),
            Err(MediumError::Unreadable)
        );
        let check = FirstIoCheck::new(f, 10);
        assert_eq!(
            check.verify(&unreadable),
            Verdict::Changed { first_report: true }
        );
    }

    #[test]
    fn a_busy_image_gets_its_verdict_on_the_retry() {
        let ram = Ram(RefCell::new([3; 128]));
        let check = FirstIoCheck::new(Fingerprint::read(&ram, 128).unwrap(), 128);
        assert_eq!(check.verify(&Failing(MediumError::Busy)), Verdict::Retry);
        assert_eq!(
            check.verify(&ram),
            Verdict::Intact,
            "not condemned by a busy moment"
        );
    }
}
