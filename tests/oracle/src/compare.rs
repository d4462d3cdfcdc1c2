//! Field-by-field comparison of two answers to one CDB (`docs/scsi-oracle.md` §3): status;
//! sense key/ASC/ASCQ; data up to the length each reply declares (the bytes transferred),
//! with identity fields (vendor, product, revision, serial, VPD 83h designators) compared by
//! form, not value.

use crate::answer::{sense_triple, Answer};
use crate::script::Form;

/// One difference: a named field and how each side renders it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    pub field: String,
    pub qemu: String,
    pub rvblk: String,
}

fn hex(b: &[u8]) -> String {
    if b.is_empty() {
        return "-".into();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `00`, `02 05/24/00`, `X reason`.
pub fn render_status(a: &Answer) -> String {
    match a {
        Answer::Scsi { status, sense, .. } => match sense_triple(sense) {
            Some((k, asc, q)) if *status == 2 => format!("{status:02x} {k:02x}/{asc:02x}/{q:02x}"),
            _ => format!("{status:02x}"),
        },
        Answer::Transport(r) => format!("X {r}"),
    }
}

fn printable(b: &[u8]) -> bool {
    b.iter().all(|&c| (0x20..=0x7E).contains(&c))
}

/// Identity byte ranges of standard INQUIRY data (SPC-4 §6.4.2).
const INQUIRY_IDENTITY: [(&str, usize, usize); 3] =
    [("vendor", 8, 16), ("product", 16, 32), ("revision", 32, 36)];

/// The (code set, designator type) pairs of a VPD 83h page, or why it is malformed
/// (SPC-4 §7.8.6.1).
pub fn designators(page: &[u8]) -> Result<Vec<(u8, u8)>, String> {
    if page.len() < 4 {
        return Err(format!("{} bytes", page.len()));
    }
    let end = (4 + usize::from(u16::from_be_bytes([page[2], page[3]]))).min(page.len());
    let mut out = Vec::new();
    let mut p = 4;
    while p < end {
        let h = page.get(p..p + 4).ok_or("truncated descriptor header")?;
        let (code_set, kind, len) = (h[0] & 0x0F, h[1] & 0x0F, usize::from(h[3]));
        let id = page
            .get(p + 4..p + 4 + len)
            .ok_or("descriptor runs past the page")?;
        match code_set {
            1 => {}
            2 | 3 if printable(id.split(|&c| c == 0).next().unwrap_or(id)) => {}
            2 | 3 => return Err(format!("type {kind}: non-ASCII identifier")),
            c => return Err(format!("code set {c}")),
        }
        if len == 0 {
            return Err(format!("type {kind}: empty identifier"));
        }
        out.push((code_set, kind));
        p += 4 + len;
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn render_designators(d: &Result<Vec<(u8, u8)>, String>) -> String {
    match d {
        Ok(v) => v
            .iter()
            .map(|(c, t)| format!("{c}/{t}"))
            .collect::<Vec<_>>()
            .join(","),
        Err(e) => format!("malformed: {e}"),
    }
}

/// MODE SENSE parameter data split into named parts (SPC-4 §7.5.5, §7.5.6): `medium-type`,
/// `device-specific`, `block-descriptors` and `page XX` (`page XX/YY` for subpages), each
/// rendered in hex. A page cut short by the allocation length is left out.
pub fn mode_fields(cdb: &[u8], d: &[u8]) -> Vec<(String, String)> {
    let ten = cdb.first() == Some(&0x5A);
    let (hlen, medium, dsp, bdl) = if ten {
        let bdl = d
            .get(6..8)
            .map_or(0, |x| usize::from(u16::from_be_bytes([x[0], x[1]])));
        (8, d.get(2), d.get(3), bdl)
    } else {
        (
            4,
            d.get(1),
            d.get(2),
            d.get(3).map_or(0, |&x| usize::from(x)),
        )
    };
    let mut out = Vec::new();
    if let Some(m) = medium {
        out.push(("medium-type".to_string(), format!("{m:02x}")));
    }
    if let Some(x) = dsp {
        out.push(("device-specific".to_string(), format!("{x:02x}")));
    }
    if d.len() < hlen {
        return out;
    }
    let bd = &d[hlen..(hlen + bdl).min(d.len())];
    out.push(("block-descriptors".to_string(), hex(bd)));
    let mut p = hlen + bdl;
    while p + 2 <= d.len() {
        let spf = d[p] & 0x40 != 0;
        let (name, len) = if spf {
            let Some(l) = d.get(p + 2..p + 4) else { break };
            (
                format!("page {:02x}/{:02x}", d[p] & 0x3F, d[p + 1]),
                4 + usize::from(u16::from_be_bytes([l[0], l[1]])),
            )
        } else {
            (
                format!("page {:02x}", d[p] & 0x3F),
                2 + usize::from(d[p + 1]),
            )
        };
        let Some(page) = d.get(p..p + len) else { break };
        out.push((name, hex(page)));
        p += len;
    }
    out
}

/// Runs of differing bytes in `[0, min(len))` as `data[a]` / `data[a..b]` diffs.
fn byte_runs(q: &[u8], r: &[u8], out: &mut Vec<Diff>) {
    let n = q.len().min(r.len());
    let mut i = 0;
    while i < n {
        if q[i] == r[i] {
            i += 1;
            continue;
        }
        let s = i;
        while i < n && q[i] != r[i] {
            i += 1;
        }
        out.push(Diff {
            field: if i - s == 1 {
                format!("data[{s}]")
            } else {
                format!("data[{s}..{i}]")
            },
            qemu: hex(&q[s..i]),
            rvblk: hex(&r[s..i]),
        });
    }
}

/// The length the parameter data declares for itself (its header's length field plus the
/// header bytes before it), for the commands whose data has one; `None` for the others
/// (medium data, READ CAPACITY), which are compared up to the transferred length. Linux's sg
/// does not always learn the residual count from QEMU, so the transferred count alone would
/// compare padding.
pub fn declared_len(cdb: &[u8], d: &[u8]) -> Option<usize> {
    let b16 = |o: usize| {
        d.get(o..o + 2)
            .map(|x| usize::from(u16::from_be_bytes([x[0], x[1]])))
    };
    let b32 = |o: usize| {
        d.get(o..o + 4)
            .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]) as usize)
    };
    match *cdb.first()? {
        // INQUIRY: ADDITIONAL LENGTH (SPC-4 §6.4.2) or the VPD PAGE LENGTH (§7.8.1).
        0x12 if cdb.get(1)? & 1 == 0 => Some(usize::from(*d.get(4)?) + 5),
        0x12 => Some(b16(2)? + 4),
        // REQUEST SENSE: ADDITIONAL SENSE LENGTH (SPC-4 §4.5.2, §4.5.3).
        0x03 => Some(usize::from(*d.get(7)?) + 8),
        // MODE SENSE(6)/(10): MODE DATA LENGTH (SPC-4 §7.5.5).
        0x1A => Some(usize::from(*d.first()?) + 1),
        0x5A => Some(b16(0)? + 2),
        // GET CONFIGURATION: DATA LENGTH (MMC-6 §6.6.2.1).
        0x46 => Some(b32(0)? + 4),
        // READ TOC, READ DISC/TRACK INFORMATION: DATA LENGTH (MMC-6 §6.26.3, §6.22.3, §6.27.3).
        0x43 | 0x51 | 0x52 => Some(b16(0)? + 2),
        // GET EVENT STATUS NOTIFICATION: EVENT DATA LENGTH counts the bytes after the field
        // (MMC-6 §6.7.2.1; Windows' classpnp subtracts the two header bytes that follow it).
        0x4A => Some(b16(0)? + 2),
        // MECHANISM STATUS: header plus SLOT TABLE LENGTH (MMC-6 §6.11.3).
        0xBD => Some(b16(6)? + 8),
        // REPORT LUNS: LUN LIST LENGTH (SPC-4 §6.33.2).
        0xA0 => Some(b32(0)? + 8),
        _ => None,
    }
}

/// Compares QEMU's answer `q` with rvblk's `r` to `cdb`, whose data is compared as `form`.
pub fn compare(form: Form, cdb: &[u8], q: &Answer, r: &Answer) -> Vec<Diff> {
    let mut out = Vec::new();
    let (
        Answer::Scsi {
            status: qs,
            sense: qsense,
            data: qd,
        },
        Answer::Scsi {
            status: rs,
            sense: rsense,
            data: rd,
        },
    ) = (q, r)
    else {
        if q != r {
            out.push(Diff {
                field: "status".into(),
                qemu: render_status(q),
                rvblk: render_status(r),
            });
        }
        return out;
    };
    if qs != rs {
        out.push(Diff {
            field: "status".into(),
            qemu: render_status(q),
            rvblk: render_status(r),
        });
        return out;
    }
    if *qs == 2 {
        let (a, b) = (sense_triple(qsense), sense_triple(rsense));
        if a != b {
            out.push(Diff {
                field: "sense".into(),
                qemu: render_status(q),
                rvblk: render_status(r),
            });
        }
        return out;
    }
    let (mut qd, mut rd) = (qd.clone(), rd.clone());
    for d in [&mut qd, &mut rd] {
        if let Some(n) = declared_len(cdb, d) {
            d.truncate(n);
        }
    }
    match form {
        Form::Exact => {}
        Form::StdInquiry => {
            for (name, a, b) in INQUIRY_IDENTITY {
                let (Some(qf), Some(rf)) = (
                    qd.get(a..b.min(qd.len())).map(<[u8]>::to_vec),
                    rd.get(a..b.min(rd.len())).map(<[u8]>::to_vec),
                ) else {
                    continue;
                };
                let (qok, rok) = (printable(&qf), printable(&rf));
                if !(qok && rok) {
                    out.push(Diff {
                        field: format!("{name}-form"),
                        qemu: if qok { "ascii".into() } else { hex(&qf) },
                        rvblk: if rok { "ascii".into() } else { hex(&rf) },
                    });
                }
                // Values are not compared: the form was, just above.
                let m = qf.len().min(rf.len());
                rd[a..a + m].copy_from_slice(&qf[..m]);
            }
        }
        Form::Vpd80 => {
            let form = |d: &[u8]| {
                if d.len() < 5 {
                    return "short".to_string();
                }
                let n = (4 + usize::from(u16::from_be_bytes([d[2], d[3]]))).min(d.len());
                let serial = &d[4..n];
                let t = serial.iter().rposition(|&c| c != b' ' && c != 0);
                if t.is_none() || !printable(serial) {
                    return format!("not an ASCII serial: {}", hex(serial));
                }
                "ascii".into()
            };
            let (a, b) = (form(&qd), form(&rd));
            if a != b {
                out.push(Diff {
                    field: "serial-form".into(),
                    qemu: a,
                    rvblk: b,
                });
            }
            qd.truncate(2);
            rd.truncate(2);
        }
        Form::ModeSense => {
            let (a, b) = (mode_fields(cdb, &qd), mode_fields(cdb, &rd));
            for (name, qv) in &a {
                let rv = b
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or("absent".to_string(), |x| x.1.clone());
                if *qv != rv {
                    out.push(Diff {
                        field: name.clone(),
                        qemu: qv.clone(),
                        rvblk: rv,
                    });
                }
            }
            for (name, rv) in &b {
                if !a.iter().any(|(n, _)| n == name) {
                    out.push(Diff {
                        field: name.clone(),
                        qemu: "absent".into(),
                        rvblk: rv.clone(),
                    });
                }
            }
            // The parts were compared one by one (the MODE DATA LENGTH follows from them).
            return out;
        }
        Form::Vpd83 => {
            let (a, b) = (designators(&qd), designators(&rd));
            let (a, b) = (render_designators(&a), render_designators(&b));
            if a != b {
                out.push(Diff {
                    field: "designators".into(),
                    qemu: a,
                    rvblk: b,
                });
            }
            qd.truncate(2);
            rd.truncate(2);
        }
    }
    if qd.len() != rd.len() {
        out.push(Diff {
            field: "length".into(),
            qemu: qd.len().to_string(),
            rvblk: rd.len().to_string(),
        });
    }
    byte_runs(&qd, &rd, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INQ: [u8; 6] = [0x12, 0, 0, 0, 36, 0];
    const READ: [u8; 10] = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];

    #[test]
    fn mode_pages_are_compared_one_by_one() {
        let ms6 = [0x1A, 0, 0x3F, 0, 255, 0];
        let q = [15, 0, 0x80, 0, 0x08, 2, 0x04, 0, 0x1C, 6, 0, 0, 0, 0, 0, 0];
        let r = [11, 0, 0x90, 0, 0x08, 2, 0x00, 0];
        let d = compare(Form::ModeSense, &ms6, &Answer::good(&q), &Answer::good(&r));
        let f: Vec<_> = d
            .iter()
            .map(|d| (d.field.as_str(), d.qemu.as_str(), d.rvblk.as_str()))
            .collect();
        assert_eq!(
            f,
            vec![
                ("device-specific", "80", "90"),
                ("page 08", "08020400", "08020000"),
                ("page 1c", "1c06000000000000", "absent"),
            ]
        );
    }

    #[test]
    fn declared_lengths_cut_padding() {
        let mut q = vec![0u8; 64];
        q[4] = 31;
        let mut r = vec![0u8; 36];
        r[4] = 31;
        assert!(compare(Form::Exact, &INQ, &Answer::good(&q), &Answer::good(&r)).is_empty());
        q[4] = 32;
        let d = compare(Form::Exact, &INQ, &Answer::good(&q), &Answer::good(&r));
        assert_eq!(d[0].field, "length");
        assert_eq!(d[1].field, "data[4]");
    }

    #[test]
    fn identity_fields_are_compared_by_form() {
        let mut q = vec![0u8; 36];
        q[4] = 31;
        q[8..36].copy_from_slice(b"QEMU    QEMU CD-ROM     2.5+");
        let mut r = q.clone();
        r[8..36].copy_from_slice(b"RVBLK   RAM CD-ROM      0.1 ");
        assert!(compare(Form::StdInquiry, &INQ, &Answer::good(&q), &Answer::good(&r)).is_empty());
        r[9] = 0x01;
        let d = compare(Form::StdInquiry, &INQ, &Answer::good(&q), &Answer::good(&r));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].field, "vendor-form");
        // The same bytes compared exactly differ.
        assert!(!compare(Form::Exact, &INQ, &Answer::good(&q), &Answer::good(&r)).is_empty());
    }

    #[test]
    fn status_sense_length_and_byte_runs() {
        let q = Answer::check(5, 0x20, 0);
        let r = Answer::check(5, 0x24, 0);
        let d = compare(Form::Exact, &READ, &q, &r);
        assert_eq!(
            d,
            vec![Diff {
                field: "sense".into(),
                qemu: "02 05/20/00".into(),
                rvblk: "02 05/24/00".into()
            }]
        );
        let d = compare(Form::Exact, &READ, &Answer::good(&[]), &r);
        assert_eq!(d[0].field, "status");
        let d = compare(
            Form::Exact,
            &READ,
            &Answer::good(&[1, 2, 3, 4]),
            &Answer::good(&[1, 9, 9, 4, 5]),
        );
        assert_eq!(d[0].field, "length");
        assert_eq!(d[1].field, "data[1..3]");
        assert_eq!((d[1].qemu.as_str(), d[1].rvblk.as_str()), ("0203", "0909"));
    }

    #[test]
    fn vpd83_forms() {
        let page = [0, 0x83, 0, 12, 1, 3, 0, 8, 0x30, 1, 2, 3, 4, 5, 6, 7];
        assert_eq!(designators(&page), Ok(vec![(1, 3)]));
        let mut bad = page;
        bad[7] = 20;
        assert!(designators(&bad).is_err());
    }
}
