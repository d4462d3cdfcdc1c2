//! `RtlGetVersion`: the Windows version a personality stands for (XP SP3, Windows 7 SP1,
//! Windows 8). The x86 driver sizes its mapping budget from it (`docs/x86-mapping.md`).

use super::{Kernel, Personality, PASSIVE_LEVEL, STATUS_INVALID_PARAMETER};

/// `sizeof(RTL_OSVERSIONINFOW)` and `sizeof(RTL_OSVERSIONINFOEXW)`.
const OSVERSIONINFO_SIZES: [u32; 2] = [276, 284];
const VER_PLATFORM_WIN32_NT: u32 = 2;

impl Kernel {
    pub(super) fn get_version(&self, info: *mut u8) -> i32 {
        self.check_irql("RtlGetVersion", PASSIVE_LEVEL);
        if info.is_null() {
            self.fail("RtlGetVersion(NULL)".to_string());
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: RTL_OSVERSIONINFOW starts with its own size (u32), set by the caller.
        let size = unsafe { info.cast::<u32>().read_unaligned() };
        if !OSVERSIONINFO_SIZES.contains(&size) {
            self.fail(format!(
                "RtlGetVersion: dwOSVersionInfoSize {size} is neither RTL_OSVERSIONINFOW (276) nor RTL_OSVERSIONINFOEXW (284)"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        let (major, minor, build) = match self.cfg.personality {
            Personality::Xp => (5u32, 1u32, 2600u32),
            Personality::Win7 => (6, 1, 7601),
            Personality::Win8 => (6, 2, 9200),
        };
        for (i, v) in [major, minor, build, VER_PLATFORM_WIN32_NT]
            .into_iter()
            .enumerate()
        {
            let field = info.wrapping_add(4 + 4 * i).cast::<u32>();
            // SAFETY: the caller's structure is `size` (≥ 276) bytes and starts with
            // dwOSVersionInfoSize, then major, minor, build and platform (u32 each).
            unsafe { field.write_unaligned(v) };
        }
        0
    }
}
