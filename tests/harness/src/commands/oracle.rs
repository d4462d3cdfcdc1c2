//! `rvblk-harness cdbs`: the harness side of the SCSI oracle (`docs/scsi-oracle.md`). One image
//! file is placed in emulated RAM as a GRUB4DOS `map --mem` drive of the requested kind, the
//! real driver is started over it, and every CDB of a script is sent to the LUN it exposes. The
//! answers are printed in the same line format as the guest-side SG_IO runner, so that one
//! parser (in `tests/oracle`) reads both.
//!
//! Script lines (`#` starts a comment): `ID DIR LEN CDB-HEX [DATA-OUT-HEX]`, DIR one of
//! `in`, `out`, `none`; LEN is the data transfer length. Answer lines:
//! `R ID STATUS SENSE-HEX|- DATA-HEX|-` (STATUS is the SCSI status byte in hex), or
//! `X ID REASON` when the request did not complete with a SCSI status (an SRB status such as
//! INVALID_REQUEST).

use crate::commands::scenario::{ExpectedLun, Setup};
use crate::commands::scsi::Io;
use crate::emu::kernel::Personality;
use crate::emu::phys::PhysMem;
use crate::emu::storport::{self as sp, Adapter, Dir, Request};
use rvblk_core::image::WritePolicy;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the image is placed: 256 MiB, as in the benchmark setup (`Setup::big_disk`).
pub const IMAGE_BASE: u64 = 0x1000_0000;

/// The kind of GRUB4DOS drive the image is mapped as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `map --mem x.iso (0xff)`: 2048-byte blocks.
    Cd,
    /// `map --mem x.img (hd0)`.
    Disk,
    /// `map --mem x.img (fd0)`.
    Floppy,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "cd" => Some(Kind::Cd),
            "disk" => Some(Kind::Disk),
            "floppy" => Some(Kind::Floppy),
            _ => None,
        }
    }
}

/// One CDB of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptLine {
    pub id: String,
    pub dir: Dir,
    pub len: u32,
    pub cdb: Vec<u8>,
    pub out: Vec<u8>,
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits in {s:?}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("bad hex {s:?}")))
        .collect()
}

fn hex(b: &[u8]) -> String {
    if b.is_empty() {
        return "-".into();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses a script (format in the module comment).
pub fn parse_script(text: &str) -> Result<Vec<ScriptLine>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |e: String| format!("script line {}: {e}", n + 1);
        let w: Vec<&str> = line.split_whitespace().collect();
        if !(4..=5).contains(&w.len()) {
            return Err(err("expected ID DIR LEN CDB [DATA]".into()));
        }
        let dir = match w[1] {
            "in" => Dir::In,
            "out" => Dir::Out,
            "none" => Dir::None,
            d => return Err(err(format!("unknown direction {d:?}"))),
        };
        let len: u32 = w[2]
            .parse()
            .map_err(|_| err(format!("bad length {:?}", w[2])))?;
        let cdb = unhex(w[3]).map_err(err)?;
        if cdb.is_empty() || cdb.len() > 16 {
            return Err(err(format!("CDB of {} bytes", cdb.len())));
        }
        let out_data = match w.get(4) {
            Some(h) => unhex(h).map_err(err)?,
            None => Vec::new(),
        };
        if dir == Dir::Out && out_data.len() != len as usize {
            return Err(err(format!(
                "data-out of {} bytes for length {len}",
                out_data.len()
            )));
        }
        out.push(ScriptLine {
            id: w[0].to_string(),
            dir,
            len,
            cdb,
            out: out_data,
        });
    }
    Ok(out)
}

/// A GRUB4DOS setup with `image` mapped as `kind` at [`IMAGE_BASE`].
pub fn setup_for(image: &[u8], kind: Kind, writable: bool) -> Result<Setup, String> {
    let bytes = image.len() as u64;
    if bytes == 0 || !bytes.is_multiple_of(512) {
        return Err(format!(
            "image of {bytes} bytes: must be a non-empty multiple of 512"
        ));
    }
    let base = IMAGE_BASE;
    let mut mem = rvblk_memimage::PhysMem::new();
    mem.with_bios_defaults();
    let slot = match kind {
        Kind::Cd => rvblk_memimage::G4dSlot::memdrive_cd(base, bytes),
        Kind::Disk => rvblk_memimage::G4dSlot::memdrive_hdd(0x80, base, bytes),
        Kind::Floppy => rvblk_memimage::G4dSlot::memdrive_floppy(0x00, base, bytes),
    };
    let slot = if writable { slot } else { slot.read_only() };
    rvblk_memimage::Grub4DosBlock::new(0x9CC00)
        .slot(slot)
        .install(&mut mem);
    // GRUB4DOS rounds a drive up to 4 KiB: keep the padding inside emulated RAM.
    let padded = (bytes + 0xFFF) & !0xFFF;
    let phys = PhysMem::from_segments(base + padded + (16 << 20), &[])?;
    for p in mem.pages() {
        phys.write(p, &mem.bytes(p, 4096))?;
    }
    phys.write(base, image)?;
    Ok(Setup {
        name: format!("oracle_{kind:?}"),
        phys: Arc::new(phys),
        os_ram: vec![
            (0x1000, 0x9B000),
            (0x10_0000, base - 0x10_0000),
            (base + padded, 16 << 20),
        ],
        nfit: None,
        expected: vec![ExpectedLun {
            kind: match kind {
                Kind::Cd => "cdrom",
                Kind::Disk => "disk",
                Kind::Floppy => "floppy",
            },
            phys_base: base,
            length: bytes,
            source: "grub4dos",
            policy: if writable {
                WritePolicy::ReadWrite
            } else {
                WritePolicy::ReadOnly
            },
        }],
    })
}

/// Runs `script` against the single LUN the driver exposes for `setup`; one answer line per
/// CDB. Verifier failures are appended as `V` lines (and make the caller fail).
pub fn run_script(
    driver: &[u8],
    setup: &Setup,
    personality: Personality,
    script: &[ScriptLine],
) -> Result<(Vec<String>, Vec<String>), String> {
    let k = setup.kernel(personality, false);
    let mut a = Adapter::start(driver, k.clone())
        .map_err(|e| format!("adapter did not start: {e:?}; {:?}", k.failures()))?;
    let mut lines = Vec::new();
    {
        let mut io = Io::new(&a);
        let luns = io.enumerate()?;
        let [lun] = luns.as_slice() else {
            return Err(format!(
                "expected exactly one LUN, the driver exposed {}",
                luns.len()
            ));
        };
        let (t, l) = (lun.target, lun.lun);
        for s in script {
            let mut req = Request::scsi(t, l, &s.cdb, s.dir, s.len);
            req.sense_len = 252;
            if s.dir == Dir::Out {
                io.slot.data_mut(s.out.len()).copy_from_slice(&s.out);
            }
            let o = io.run(&req);
            let st = o.status();
            if st == sp::SRB_STATUS_SUCCESS || st == sp::SRB_STATUS_DATA_OVERRUN {
                let n = if s.dir == Dir::In {
                    o.transferred.min(s.len) as usize
                } else {
                    0
                };
                let data = io.slot.data(s.len as usize)[..n].to_vec();
                lines.push(format!("R {} 00 - {}", s.id, hex(&data)));
            } else if st == sp::SRB_STATUS_ERROR && o.scsi_status != 0 {
                let sense = o.sense.clone().unwrap_or_default();
                lines.push(format!(
                    "R {} {:02x} {} -",
                    s.id,
                    o.scsi_status,
                    hex(&sense)
                ));
            } else if st == sp::SRB_STATUS_BUSY {
                lines.push(format!("R {} 08 - -", s.id));
            } else {
                lines.push(format!("X {} srb_status={:#04x}", s.id, o.srb_status));
            }
        }
    }
    a.remove();
    Ok((lines, k.failures()))
}

/// The value of `--flag` in `argv`, if present.
pub fn flag(argv: &[String], name: &str) -> Option<String> {
    argv.iter()
        .position(|a| a == name)
        .and_then(|i| argv.get(i + 1).cloned())
}

/// `--driver`'s value (for the x86 delegation in main.rs).
pub fn driver_arg(argv: &[String]) -> Result<PathBuf, String> {
    flag(argv, "--driver")
        .map(PathBuf::from)
        .ok_or_else(|| "--driver is required".to_string())
}

fn read(p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// `rvblk-harness cdbs --driver X.sys --image FILE --kind cd|disk|floppy --script FILE
/// [--personality win8|win7|xp]`: prints one answer line per CDB; exit 1 on verifier failures.
pub fn main(argv: &[String]) -> Result<i32, String> {
    let driver = read(&driver_arg(argv)?)?;
    let image = read(Path::new(
        &flag(argv, "--image").ok_or("--image is required")?,
    ))?;
    let kind_s = flag(argv, "--kind").ok_or("--kind is required (cd, disk or floppy)")?;
    let kind = Kind::parse(&kind_s)
        .ok_or_else(|| format!("unknown --kind {kind_s:?} (cd, disk or floppy)"))?;
    let script_path = flag(argv, "--script").ok_or("--script is required")?;
    let text = std::fs::read_to_string(&script_path).map_err(|e| format!("{script_path}: {e}"))?;
    let script = parse_script(&text)?;
    let personality = match flag(argv, "--personality") {
        Some(p) => Personality::parse(&p).ok_or_else(|| format!("unknown personality {p}"))?,
        None => Personality::Win8,
    };
    // The oracle's images are read-only (a CD always is): answers must not depend on order.
    let setup = setup_for(&image, kind, false)?;
    let (lines, failures) = run_script(&driver, &setup, personality, &script)?;
    for l in &lines {
        println!("{l}");
    }
    for f in &failures {
        println!("V {f}");
    }
    Ok(i32::from(!failures.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_script_lines_and_rejects_bad_ones() {
        let s = parse_script("# c\ninq in 36 120000002400\nw out 2 2a00 abcd # x\n").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].cdb, vec![0x12, 0, 0, 0, 0x24, 0]);
        assert_eq!(s[1].dir, Dir::Out);
        assert_eq!(s[1].out, vec![0xab, 0xcd]);
        assert!(parse_script("x in 36 12000").is_err());
        assert!(parse_script("x up 36 120000002400").is_err());
        assert!(parse_script("x out 4 2a00 ab").is_err());
    }
}
