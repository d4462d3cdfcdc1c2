//! Big-endian field types and the fixed-capacity response builder.
//!
//! SCSI puts every multi-byte field in big-endian order (SPC-4 §3.5.1). All encoding and decoding
//! goes through [`Be16`]/[`Be24`]/[`Be32`]/[`Be64`], so no other module shifts bytes around.

macro_rules! be_type {
    ($name:ident, $int:ty, $len:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
        #[repr(transparent)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            pub const fn new(v: $int) -> Self {
                Self(v.to_be_bytes())
            }

            pub const fn get(self) -> $int {
                <$int>::from_be_bytes(self.0)
            }
        }
    };
}

be_type!(Be16, u16, 2, "A big-endian 16-bit field.");
be_type!(Be32, u32, 4, "A big-endian 32-bit field.");
be_type!(Be64, u64, 8, "A big-endian 64-bit field.");

/// A big-endian 24-bit field (READ(6) LBA, READ CD transfer length, MODE block length).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct Be24(pub [u8; 3]);

impl Be24 {
    /// Values above 0xFF_FFFF are truncated to their low 24 bits.
    pub const fn new(v: u32) -> Self {
        let [_, a, b, c] = v.to_be_bytes();
        Self([a, b, c])
    }

    pub const fn get(self) -> u32 {
        let [a, b, c] = self.0;
        u32::from_be_bytes([0, a, b, c])
    }
}

/// Largest response any target builds (MODE SENSE(10) of all floppy pages with a long block
/// descriptor is 76 bytes, GET CONFIGURATION 88); generous so that a page added later still fits.
pub const RESPONSE_CAPACITY: usize = 256;

/// A parameter-data response being built on the stack (no allocation in the driver).
pub struct Response {
    bytes: [u8; RESPONSE_CAPACITY],
    len: usize,
}

impl Response {
    pub const fn new() -> Self {
        Self {
            bytes: [0; RESPONSE_CAPACITY],
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Appends `src`; responses are bounded by construction, so running out of room is a bug
    /// (caught in debug builds) and the excess is dropped in release builds.
    pub fn push(&mut self, src: &[u8]) -> &mut Self {
        debug_assert!(
            self.len + src.len() <= RESPONSE_CAPACITY,
            "response overflow"
        );
        let room = RESPONSE_CAPACITY - self.len;
        let n = src.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&src[..n]);
        self.len += n;
        self
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.push(&[v])
    }

    pub fn be16(&mut self, v: u16) -> &mut Self {
        self.push(&Be16::new(v).0)
    }

    pub fn be24(&mut self, v: u32) -> &mut Self {
        self.push(&Be24::new(v).0)
    }

    pub fn be32(&mut self, v: u32) -> &mut Self {
        self.push(&Be32::new(v).0)
    }

    pub fn be64(&mut self, v: u64) -> &mut Self {
        self.push(&Be64::new(v).0)
    }

    /// Appends `n` zero bytes (bytes past `len` are never written, so they are still zero).
    pub fn zeros(&mut self, n: usize) -> &mut Self {
        debug_assert!(self.len + n <= RESPONSE_CAPACITY, "response overflow");
        self.len = (self.len + n).min(RESPONSE_CAPACITY);
        self
    }

    /// Zeroes the pushed bytes from `from` to the end (changeable-values mode pages).
    pub fn clear_from(&mut self, from: usize) {
        if let Some(tail) = self.bytes[..self.len].get_mut(from..) {
            tail.fill(0);
        }
    }

    /// Overwrites already-pushed bytes at `at` (length fields filled in after the body).
    pub fn set(&mut self, at: usize, src: &[u8]) {
        if let Some(dst) = self.bytes[..self.len].get_mut(at..at + src.len()) {
            dst.copy_from_slice(src);
        } else {
            debug_assert!(false, "set outside the response");
        }
    }

    pub fn set_u8(&mut self, at: usize, v: u8) {
        self.set(at, &[v]);
    }

    pub fn set_be16(&mut self, at: usize, v: u16) {
        self.set(at, &Be16::new(v).0);
    }

    pub fn set_be32(&mut self, at: usize, v: u32) {
        self.set(at, &Be32::new(v).0);
    }
}

impl Default for Response {
    fn default() -> Self {
        Self::new()
    }
}
