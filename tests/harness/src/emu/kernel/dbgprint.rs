//! DbgPrint: formats the driver's printf-style messages into the session log.

use super::Kernel;

impl Kernel {
    pub(super) fn dbg_print(&self, fmt: *const u8, args: &[usize]) {
        let f = cstr(fmt);
        let mut out = String::new();
        let mut it = args.iter();
        let mut chars = f.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let mut spec = String::new();
            while let Some(&n) = chars.peek() {
                chars.next();
                spec.push(n);
                if n.is_ascii_alphabetic() && !matches!(n, 'l' | 'h' | 'I') || n == '%' {
                    break;
                }
            }
            let conv = spec.chars().last().unwrap_or('%');
            let wide = spec.contains("ll") || spec.contains("I64");
            let mut next = || *it.next().unwrap_or(&0);
            let num = |lo: usize, hi: Option<usize>| -> u64 {
                match hi {
                    Some(h) if cfg!(target_pointer_width = "32") => lo as u64 | (h as u64) << 32,
                    _ => lo as u64,
                }
            };
            match conv {
                '%' => out.push('%'),
                's' => out.push_str(&cstr(next() as *const u8)),
                'c' => out.push(next() as u8 as char),
                'd' | 'i' | 'u' | 'x' | 'X' | 'p' => {
                    let lo = next();
                    let hi = if wide { Some(next()) } else { None };
                    let v = num(lo, hi);
                    match conv {
                        'd' | 'i' => {
                            if wide || cfg!(target_pointer_width = "32") {
                                out.push_str(&(v as i64).to_string())
                            } else {
                                out.push_str(&(v as i32).to_string())
                            }
                        }
                        'u' => out.push_str(&v.to_string()),
                        _ => out.push_str(&format!("{v:x}")),
                    }
                }
                _ => {
                    out.push('%');
                    out.push_str(&spec);
                }
            }
        }
        for line in out.split('\n').filter(|l| !l.is_empty()) {
            self.log_line(line.trim_end_matches('\r').to_string());
        }
    }
}

pub(super) fn cstr(p: *const u8) -> String {
    if p.is_null() {
        return "(null)".into();
    }
    // SAFETY: the driver passes NUL-terminated strings.
    let s = unsafe { std::ffi::CStr::from_ptr(p as *const std::ffi::c_char) };
    String::from_utf8_lossy(s.to_bytes()).into_owned()
}
