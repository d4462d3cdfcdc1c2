//! A minimal DER writer: the Authenticode and catalog structures are Microsoft extensions that
//! the RustCrypto type libraries do not model, and their digests depend on exact bytes, so they
//! are assembled here from tag-length-value pieces.

/// Encode a DER length.
fn len(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A TLV with `tag` around `content`.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    len(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

/// SEQUENCE of the concatenated `items`.
pub fn seq(items: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &items.concat())
}

/// SET OF `items`, sorted by their encodings (DER).
pub fn set_of(items: &[&[u8]]) -> Vec<u8> {
    let mut v: Vec<&[u8]> = items.to_vec();
    v.sort();
    tlv(0x31, &v.concat())
}

/// Context-specific constructed `[n]` (EXPLICIT, or IMPLICIT of a constructed type).
pub fn ctx(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | n, content)
}

/// Context-specific primitive `[n]` (IMPLICIT of a primitive type).
pub fn ctx_prim(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0x80 | n, content)
}

/// OCTET STRING.
pub fn octets(b: &[u8]) -> Vec<u8> {
    tlv(0x04, b)
}

/// NULL.
pub fn null() -> Vec<u8> {
    vec![0x05, 0x00]
}

/// INTEGER from an unsigned value.
pub fn uint(v: u64) -> Vec<u8> {
    uint_bytes(&v.to_be_bytes())
}

/// INTEGER from big-endian unsigned bytes.
pub fn uint_bytes(be: &[u8]) -> Vec<u8> {
    let skip = be
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(be.len().saturating_sub(1));
    let mut c = Vec::new();
    let rest = if be.is_empty() {
        &[0u8][..]
    } else {
        &be[skip..]
    };
    if rest[0] & 0x80 != 0 {
        c.push(0);
    }
    c.extend_from_slice(rest);
    tlv(0x02, &c)
}

/// BMPString (UTF-16BE).
pub fn bmp(s: &str) -> Vec<u8> {
    let b: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    tlv(0x1e, &b)
}

/// UTF-16LE bytes with a terminating NUL (Windows `WCHAR*` as catalogs store it).
pub fn utf16le_nul(s: &str) -> Vec<u8> {
    let mut b: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    b.extend_from_slice(&[0, 0]);
    b
}

/// OBJECT IDENTIFIER from dotted text.
pub fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|a| a.parse().expect("numeric OID arc"))
        .collect();
    let mut c = Vec::new();
    let mut put = |mut v: u64| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        c.extend_from_slice(&tmp);
    };
    put(arcs[0] * 40 + arcs[1]);
    for &a in &arcs[2..] {
        put(a);
    }
    tlv(0x06, &c)
}

/// UTCTime `YYMMDDHHMMSSZ` from seconds since the Unix epoch (years 1950–2049).
pub fn utc_time(unix: u64) -> Vec<u8> {
    let (y, mo, d, h, mi, s) = civil(unix);
    tlv(
        0x17,
        format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100).as_bytes(),
    )
}

/// Calendar date and time of a Unix timestamp (UTC).
pub fn civil(unix: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = (unix / 86400) as i64;
    let rem = unix % 86400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y as u64,
        m as u64,
        d as u64,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    )
}

/// Split one TLV at the start of `data`: `(tag, header length, content)`.
pub fn read_tlv(data: &[u8]) -> Option<(u8, usize, &[u8])> {
    let tag = *data.first()?;
    let first = *data.get(1)? as usize;
    let (n, hdr) = if first < 0x80 {
        (first, 2)
    } else {
        let k = first & 0x7f;
        if k == 0 || k > 4 {
            return None;
        }
        let mut n = 0usize;
        for i in 0..k {
            n = (n << 8) | *data.get(2 + i)? as usize;
        }
        (n, 2 + k)
    };
    let content = data.get(hdr..hdr + n)?;
    Some((tag, hdr, content))
}

/// The content octets of the TLV at the start of `data` (without tag and length).
pub fn content_of(data: &[u8]) -> &[u8] {
    read_tlv(data).map(|(_, _, c)| c).unwrap_or(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(
            oid("1.2.840.113549.1.7.2"),
            [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]
        );
        assert_eq!(uint(0), [2, 1, 0]);
        assert_eq!(uint(128), [2, 2, 0, 128]);
        assert_eq!(tlv(4, &[0; 200])[..3], [4, 0x81, 200]);
        assert_eq!(tlv(4, &[0; 300])[..4], [4, 0x82, 1, 44]);
        assert_eq!(utc_time(0), tlv(0x17, b"700101000000Z"));
        assert_eq!(civil(1_700_000_000), (2023, 11, 14, 22, 13, 20));
        let t = seq(&[&uint(5)]);
        assert_eq!(content_of(&t), &uint(5)[..]);
    }
}
