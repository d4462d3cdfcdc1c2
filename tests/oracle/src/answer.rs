//! Answers as both sides print them: `R ID STATUS SENSE-HEX|- DATA-HEX|-`, or `X ID REASON`
//! when a request ended without a SCSI status (an SG_IO host/driver error, an SRB status).

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Scsi {
        status: u8,
        sense: Vec<u8>,
        data: Vec<u8>,
    },
    /// No SCSI status; the text says why.
    Transport(String),
}

impl Answer {
    pub fn good(data: &[u8]) -> Answer {
        Answer::Scsi {
            status: 0,
            sense: Vec::new(),
            data: data.to_vec(),
        }
    }

    pub fn check(key: u8, asc: u8, ascq: u8) -> Answer {
        let mut s = vec![0u8; 18];
        s[0] = 0x70;
        s[2] = key;
        s[7] = 10;
        s[12] = asc;
        s[13] = ascq;
        Answer::Scsi {
            status: 2,
            sense: s,
            data: Vec::new(),
        }
    }
}

/// (sense key, ASC, ASCQ) of fixed (70h/71h) or descriptor (72h/73h) sense data.
pub fn sense_triple(s: &[u8]) -> Option<(u8, u8, u8)> {
    let code = s.first()? & 0x7F;
    match code {
        0x70 | 0x71 => Some((s.get(2)? & 0x0F, *s.get(12)?, *s.get(13)?)),
        0x72 | 0x73 => Some((s.get(1)? & 0x0F, *s.get(2)?, *s.get(3)?)),
        _ => None,
    }
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if s == "-" {
        return Ok(Vec::new());
    }
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd hex {s:?}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("bad hex {s:?}")))
        .collect()
}

/// Parses answer lines (other lines are ignored) into id → answer.
pub fn parse(text: &str) -> Result<BTreeMap<String, Answer>, String> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["R", id, status, sense, data] => {
                let status = u8::from_str_radix(status, 16)
                    .map_err(|_| format!("bad status in {line:?}"))?;
                out.insert(
                    id.to_string(),
                    Answer::Scsi {
                        status,
                        sense: unhex(sense)?,
                        data: unhex(data)?,
                    },
                );
            }
            ["X", id, rest @ ..] => {
                out.insert(id.to_string(), Answer::Transport(rest.join(" ")));
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_line_kinds() {
        let a = parse(
            "noise\nR tur 00 - -\nR inq 02 700005000000000a00000000240000000000 -\nX x host=0x3\n",
        )
        .unwrap();
        assert_eq!(a["tur"], Answer::good(&[]));
        let Answer::Scsi { status, sense, .. } = &a["inq"] else {
            panic!()
        };
        assert_eq!(*status, 2);
        assert_eq!(sense_triple(sense), Some((5, 0x24, 0)));
        assert_eq!(a["x"], Answer::Transport("host=0x3".into()));
        assert!(parse("R a zz - -").is_err());
    }
}
