//! Shared helpers for the integration tests (no extra crates).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use rvblk_xp::XpArch;

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rvblk-xp-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A stand-in driver: a real (tiny) PE image for `arch`'s machine with 40 KB of filler data.
pub fn fake_driver(arch: XpArch) -> Vec<u8> {
    let filler: Vec<u8> = (0..40_000u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) >> 13) as u8) ^ (arch.pe_machine() as u8))
        .collect();
    let mut pe = rvblk_pe::build::PeBuilder::new(arch.pe_machine());
    pe.section(".data", 0xC000_0040, &filler);
    pe.build()
}

/// Runs a command and returns its stdout, failing the test with a clear message if the tool
/// is missing or fails.
pub fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {program} ({e}): install mtools and dosfstools (apt-get install mtools dosfstools)")
    });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An INF-style file as the tests inspect it: sections in order, each with its non-comment
/// lines as (key, fields) with quotes removed.
pub type Ini = Vec<(String, Vec<(String, Vec<String>)>)>;

/// Reads a generated file with `rvblk-inf`, the tools' INF reader (the templates that write
/// these files do not use it).
pub fn parse_ini(text: &str) -> Ini {
    rvblk_inf::Inf::parse(text)
        .sections
        .into_iter()
        .map(|(name, entries)| {
            let entries = entries
                .into_iter()
                .map(|e| {
                    let fields = e.fields();
                    (e.key, fields)
                })
                .collect();
            (name, entries)
        })
        .collect()
}

pub fn section<'a>(ini: &'a Ini, name: &str) -> &'a [(String, Vec<String>)] {
    let found: Vec<_> = ini
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .collect();
    assert_eq!(found.len(), 1, "exactly one [{name}] section");
    &found[0].1
}
