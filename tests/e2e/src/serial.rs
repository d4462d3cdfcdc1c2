//! What the boot program printed on COM1 (`boot/boot.asm`), and the OS RAM ranges derived from it.

/// The line the boot program prints last, just before `cli; hlt`.
pub const MARKER: &str = "MARK:HALT";

/// One INT 15h E820 record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub start: u64,
    pub len: u64,
    pub kind: u32,
}

impl E820Entry {
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// A physical range `[start, start + len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    pub start: u64,
    pub len: u64,
}

impl Range {
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
    pub fn overlaps(&self, start: u64, len: u64) -> bool {
        start < self.end() && self.start < start + len
    }
}

/// Parsed serial log.
#[derive(Clone, Debug, Default)]
pub struct BootLog {
    /// DL at entry.
    pub boot_drive: Option<u8>,
    /// Every `IVT13 seg:off` line in order: MEMDISK's vector, then (hide-chain variant) ours.
    pub ivt13: Vec<(u16, u16)>,
    /// `MBFT` line: the mBFT address from the safe hook's +0x1B.
    pub mbft: Option<u32>,
    /// E820 map through MEMDISK's INT 15h hook: what an OS booted from the image sees.
    pub e820: Vec<E820Entry>,
    /// E820 map from the BIOS handler MEMDISK replaced (MDI.oldint15): the image is usable RAM here.
    pub e820_bios: Vec<E820Entry>,
    pub halted: bool,
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s, 16).ok()
}

/// Parses the boot program's output. Unknown lines (MEMDISK's own messages) are ignored.
pub fn parse(log: &str) -> BootLog {
    let mut out = BootLog::default();
    for line in log.lines().map(str::trim) {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("E2E") => {
                out.boot_drive = w
                    .next()
                    .and_then(|d| d.strip_prefix("DL="))
                    .and_then(hex)
                    .map(|v| v as u8);
            }
            Some("IVT13") => {
                if let Some((s, o)) = w.next().and_then(|p| p.split_once(':')) {
                    if let (Some(s), Some(o)) = (hex(s), hex(o)) {
                        out.ivt13.push((s as u16, o as u16));
                    }
                }
            }
            Some("MBFT") => out.mbft = w.next().and_then(hex).map(|v| v as u32),
            Some(t @ ("E820" | "E820RAW")) => {
                let f: Vec<u64> = w.filter_map(hex).collect();
                if f.len() == 3 {
                    let e = E820Entry {
                        start: f[0],
                        len: f[1],
                        kind: f[2] as u32,
                    };
                    if t == "E820" {
                        out.e820.push(e)
                    } else {
                        out.e820_bios.push(e)
                    }
                }
            }
            Some(MARKER) => out.halted = true,
            _ => {}
        }
    }
    out
}

pub const PAGE: u64 = 4096;

/// The OS RAM ranges Windows would report for this map: every type-1 (usable) entry, rounded
/// **inward** to whole 4 KiB pages (MmGetPhysicalMemoryRanges describes whole pages, and a
/// partial page is not usable RAM to the memory manager), adjacent ranges merged, empty ones
/// dropped. MEMDISK's 2 KiB type-1 sliver right after an ISO (`docs/loaders-observed.md` §3.2) thus
/// disappears, and the page it shares with the image end is not RAM.
pub fn os_ram(map: &[E820Entry]) -> Vec<Range> {
    let mut v: Vec<Range> = map
        .iter()
        .filter(|e| e.kind == 1)
        .filter_map(|e| {
            let s = e.start.div_ceil(PAGE) * PAGE;
            let t = e.end() / PAGE * PAGE;
            (t > s).then_some(Range {
                start: s,
                len: t - s,
            })
        })
        .collect();
    v.sort();
    let mut merged: Vec<Range> = Vec::new();
    for r in v {
        match merged.last_mut() {
            Some(m) if m.end() >= r.start => m.len = m.len.max(r.end() - m.start),
            _ => merged.push(r),
        }
    }
    merged
}

/// The E820 type covering every byte of `[start, start + len)`, if one type does.
pub fn type_of(map: &[E820Entry], start: u64, len: u64) -> Option<u32> {
    let mut at = start;
    let mut kind = None;
    while at < start + len {
        let e = map.iter().find(|e| e.start <= at && at < e.end())?;
        if kind.is_some_and(|k| k != e.kind) {
            return None;
        }
        kind = Some(e.kind);
        at = e.end();
    }
    kind
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rounds_inward() {
        let log = "MEMDISK junk\r\nE2E DL=E0\r\nIVT13 9F00:000A\r\n\
            E820 0000000000000000 000000000009F000 00000001\r\n\
            E820 000000000FBCE000 0000000000411800 00000002\r\n\
            E820 000000000FFDF800 0000000000000800 00000001\r\n\
            E820 0000000000100000 000000000FACE000 00000001\r\n\
            MBFT 0009F660\r\nE820RAW 0000000000100000 000000000FEE0000 00000001\r\nMARK:HALT\r\n";
        let b = parse(log);
        assert_eq!(b.boot_drive, Some(0xE0));
        assert_eq!(b.ivt13, vec![(0x9F00, 0x000A)]);
        assert_eq!(b.mbft, Some(0x9F660));
        assert_eq!(b.e820.len(), 4);
        assert_eq!(b.e820_bios.len(), 1);
        assert!(b.halted);
        let ram = os_ram(&b.e820);
        assert_eq!(
            ram,
            vec![
                Range {
                    start: 0,
                    len: 0x9F000
                },
                Range {
                    start: 0x100000,
                    len: 0xFACE000
                }
            ]
        );
        assert_eq!(type_of(&b.e820, 0xFBCE000, 0x411800), Some(2));
        assert_eq!(type_of(&b.e820, 0xFBCE000, 0x412000), None);
    }
}
