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

/// Compares QEMU's answer `q` with rvblk's `r` for a CDB whose data is compared as `form`.
pub fn compare(form: Form, q: &Answer, r: &Answer) -> Vec<Diff> {
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

    #[test]
    fn identity_fields_are_compared_by_form() {
        let mut q = vec![0u8; 36];
        q[8..36].copy_from_slice(b"QEMU    QEMU CD-ROM     2.5+");
        let mut r = q.clone();
        r[8..36].copy_from_slice(b"RVBLK   RAM CD-ROM      0.1 ");
        assert!(compare(Form::StdInquiry, &Answer::good(&q), &Answer::good(&r)).is_empty());
        r[9] = 0x01;
        let d = compare(Form::StdInquiry, &Answer::good(&q), &Answer::good(&r));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].field, "vendor-form");
        // The same bytes compared exactly differ.
        assert!(!compare(Form::Exact, &Answer::good(&q), &Answer::good(&r)).is_empty());
    }

    #[test]
    fn status_sense_length_and_byte_runs() {
        let q = Answer::check(5, 0x20, 0);
        let r = Answer::check(5, 0x24, 0);
        let d = compare(Form::Exact, &q, &r);
        assert_eq!(
            d,
            vec![Diff {
                field: "sense".into(),
                qemu: "02 05/20/00".into(),
                rvblk: "02 05/24/00".into()
            }]
        );
        let d = compare(Form::Exact, &Answer::good(&[]), &r);
        assert_eq!(d[0].field, "status");
        let d = compare(
            Form::Exact,
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
