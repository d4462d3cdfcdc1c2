//! Block-numbered fill pattern: every 512-byte block starts with `<TAG>-%08X-` (its block number
//! within the image) followed by bytes that depend on both the block number and the offset, so a
//! block served from the wrong place is caught and can be named.

/// Size of one pattern block.
pub const BLOCK: usize = 512;

/// Fills `out` (one 512-byte block) with the pattern for block `block` of an image tagged `tag`
/// (six ASCII characters such as `PATISO`).
pub fn fill_block(tag: &str, block: u64, out: &mut [u8]) {
    assert_eq!(out.len(), BLOCK);
    let head = format!("{tag}-{block:08X}-");
    out[..head.len()].copy_from_slice(head.as_bytes());
    let seed = (block as u32).wrapping_mul(0x9E37_79B1) ^ ((block >> 32) as u32);
    for (i, b) in out.iter_mut().enumerate().skip(head.len()) {
        let x = seed.wrapping_add((i as u32).wrapping_mul(0x0101_0101 ^ 0x1D));
        *b = (x ^ (x >> 13) ^ (x >> 24)) as u8;
    }
}

/// Fills every whole block of `buf` from block number `first` on.
pub fn fill(tag: &str, first: u64, buf: &mut [u8]) {
    for (i, chunk) in buf.chunks_exact_mut(BLOCK).enumerate() {
        fill_block(tag, first + i as u64, chunk);
    }
}

/// The tag at the start of a block (`PATISO-0000002A-`), if it looks like one; for diagnostics.
pub fn tag_of(block: &[u8]) -> Option<&str> {
    let head = block.get(..16)?;
    let s = core::str::from_utf8(head).ok()?;
    (s.starts_with("PAT") && s.as_bytes()[6] == b'-' && s.ends_with('-')).then_some(s)
}

/// Describes where two equal-length byte strings first differ, block by block, naming the
/// pattern tags found there: "block 0x190: expected PATISO-00000190-, found PATISO-00000191-".
pub fn describe_mismatch(expected: &[u8], found: &[u8]) -> Option<String> {
    if expected.len() != found.len() {
        return Some(format!(
            "length differs: expected {} bytes, found {}",
            expected.len(),
            found.len()
        ));
    }
    let bad: Vec<usize> = expected
        .chunks(BLOCK)
        .zip(found.chunks(BLOCK))
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i)
        .collect();
    let first = *bad.first()?;
    let a = &expected[first * BLOCK..(first * BLOCK + BLOCK).min(expected.len())];
    let b = &found[first * BLOCK..(first * BLOCK + BLOCK).min(found.len())];
    Some(format!(
        "{} of {} blocks differ; first at block {first:#x}: expected {:?}, found {:?}",
        bad.len(),
        expected.len().div_ceil(BLOCK),
        tag_of(a).unwrap_or("<no tag>"),
        tag_of(b).unwrap_or("<no tag>")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_tagged_and_distinct() {
        let mut a = [0u8; BLOCK];
        let mut b = [0u8; BLOCK];
        fill_block("PATHDD", 0x2A, &mut a);
        fill_block("PATHDD", 0x2B, &mut b);
        assert_eq!(tag_of(&a), Some("PATHDD-0000002A-"));
        assert_ne!(a[16..], b[16..]);
        let mut e = vec![0u8; 4 * BLOCK];
        fill("PATFDD", 0, &mut e);
        let mut f = e.clone();
        f[2 * BLOCK..3 * BLOCK].copy_from_slice(&a);
        let d = describe_mismatch(&e, &f).unwrap();
        assert!(
            d.contains("block 0x2") && d.contains("PATHDD-0000002A-"),
            "{d}"
        );
        assert!(describe_mismatch(&e, &e).is_none());
    }
}
