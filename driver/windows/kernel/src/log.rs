//! Diagnostics through `DbgPrint`, one line per call, always prefixed `rvblk: `.
//!
//! Lines that tools read back are defined in `rvblk_core::log` (the LUN table,
//! [`rvblk_core::log::LunLine`]); the harness parses them with the same types.

use core::fmt::{self, Write};

const LINE_MAX: usize = 240;

/// A stack buffer that truncates instead of failing, so logging can never fail or allocate.
struct Line {
    buf: [u8; LINE_MAX + 1],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == LINE_MAX {
                break;
            }
            // A NUL would cut the line short in DbgPrint; newlines are added by `line`.
            self.buf[self.len] = if b == 0 || b == b'\n' { b' ' } else { b };
            self.len += 1;
        }
        Ok(())
    }
}

/// Emits `rvblk: <args>\n`.
pub fn line(args: fmt::Arguments<'_>) {
    let mut l = Line {
        buf: [0; LINE_MAX + 1],
        len: 0,
    };
    let _ = l.write_str(rvblk_core::log::PREFIX);
    let _ = l.write_fmt(args);
    if l.len == LINE_MAX {
        l.len -= 1;
    }
    l.buf[l.len] = b'\n';
    l.buf[l.len + 1] = 0;
    crate::nt::dbg_print_line(&l.buf[..l.len + 2]);
}

/// `rvblk_log!("format", args…)`: one diagnostic line.
#[macro_export]
macro_rules! rvblk_log {
    ($($arg:tt)*) => { $crate::log::line(format_args!($($arg)*)) };
}
