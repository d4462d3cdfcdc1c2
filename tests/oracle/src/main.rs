//! `rvblk-oracle`: runs the differential SCSI test (`docs/scsi-oracle.md`) and prints
//! `N CDBs compared, M differ (K listed), F unexplained`. `cargo xtask oracle` runs it.

use clap::Parser;
use rvblk_oracle::answer::{self, Answer};
use rvblk_oracle::compare::{self, Diff};
use rvblk_oracle::script::{self, DeviceKind, Entry};
use rvblk_oracle::{guest, images, table};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[derive(Parser)]
#[command(
    about = "Differential SCSI test: QEMU's scsi-cd/scsi-hd (asked through Linux's sg driver in a \
             Debian kernel under QEMU TCG) against the real rvblk binaries in the harness",
    long_about = None
)]
struct Cli {
    /// The driver package (`cargo xtask package` output).
    #[arg(long, default_value = "target/package")]
    package: PathBuf,
    /// rvblk-harness (x64 build; it runs x86 drivers in its i686 sibling).
    #[arg(
        long,
        env = "RVBLK_HARNESS",
        default_value = "target/release/rvblk-harness"
    )]
    harness: PathBuf,
    /// Work directory: images, initramfs, answers and the report `results.txt`.
    #[arg(long, default_value = "target/oracle")]
    out: PathBuf,
    /// The document holding the table of listed differences.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/scsi-oracle.md"))]
    doc: PathBuf,
}

struct Binary {
    label: &'static str,
    path: PathBuf,
    personality: &'static str,
}

fn harness_answers(
    cli: &Cli,
    bin: &Binary,
    kind: &str,
    image: &Path,
    script: &Path,
) -> Result<BTreeMap<String, Answer>, String> {
    let out = Command::new(&cli.harness)
        .arg("cdbs")
        .arg("--driver")
        .arg(&bin.path)
        .arg("--personality")
        .arg(bin.personality)
        .arg("--kind")
        .arg(kind)
        .arg("--image")
        .arg(image)
        .arg("--script")
        .arg(script)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cli.harness.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{} cdbs ({kind}) failed ({}): {}{}",
            bin.label,
            out.status,
            text.lines()
                .filter(|l| l.starts_with('V'))
                .collect::<Vec<_>>()
                .join("\n"),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    answer::parse(&text)
}

/// One compared CDB with its differences and the table rows that list them.
struct Outcome {
    binary: &'static str,
    device: &'static str,
    id: String,
    diffs: Vec<(Diff, Option<String>)>,
}

fn compare_all(
    binary: &'static str,
    device: DeviceKind,
    entries: &[Entry],
    q: &BTreeMap<String, Answer>,
    r: &BTreeMap<String, Answer>,
    rows: &[table::Row],
) -> Vec<Outcome> {
    let missing = Answer::Transport("no answer".into());
    entries
        .iter()
        .map(|e| {
            let (qa, ra) = (
                q.get(&e.id).unwrap_or(&missing),
                r.get(&e.id).unwrap_or(&missing),
            );
            let diffs = compare::compare(e.form, &e.cdb, qa, ra)
                .into_iter()
                .map(|d| {
                    let row = table::find(rows, device.name(), &e.id, &d).map(|r| r.number.clone());
                    (d, row)
                })
                .collect();
            Outcome {
                binary,
                device: device.name(),
                id: e.id.clone(),
                diffs,
            }
        })
        .collect()
}

/// Deliberately wrong answers must fail the comparison (`docs/scsi-oracle.md` §4): a 4 MiB CD
/// reporting the DVD-ROM profile, and INVALID FIELD IN CDB for an unknown opcode.
fn mutants(
    entries: &[Entry],
    q: &BTreeMap<String, Answer>,
    r: &BTreeMap<String, Answer>,
    rows: &[table::Row],
) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut m = r.clone();
    let id = "get-configuration-rt0-0000-1024";
    if let Some(Answer::Scsi { data, .. }) = m.get_mut(id) {
        if data.len() >= 8 {
            data[6..8].copy_from_slice(&0x0010u16.to_be_bytes());
        }
    }
    let mut n = r.clone();
    let id2 = "opcode-02";
    n.insert(id2.into(), Answer::check(5, 0x24, 0));
    for (name, id, alt) in [
        (
            "CD reports profile 0010h (DVD-ROM) for a 4 MiB image",
            id,
            &m,
        ),
        ("unknown opcode answered 05/24/00", id2, &n),
    ] {
        let e: Vec<Entry> = entries.iter().filter(|e| e.id == id).cloned().collect();
        let o = compare_all("mutant", DeviceKind::Cd, &e, q, alt, rows);
        let caught = o
            .iter()
            .any(|o| o.diffs.iter().any(|(_, row)| row.is_none()));
        out.push((name.to_string(), caught && !e.is_empty()));
    }
    out
}

fn run(cli: &Cli) -> Result<bool, String> {
    let doc =
        std::fs::read_to_string(&cli.doc).map_err(|e| format!("{}: {e}", cli.doc.display()))?;
    let rows = table::parse(&doc)?;
    let work = &cli.out;
    std::fs::create_dir_all(work.join("images")).map_err(|e| e.to_string())?;
    let mut image_paths = Vec::new();
    for k in [DeviceKind::Cd, DeviceKind::Disk, DeviceKind::Floppy] {
        let p = work.join("images").join(format!("{}.img", k.name()));
        std::fs::write(&p, images::image(k).expect("has an image")).map_err(|e| e.to_string())?;
        image_paths.push((k, std::fs::canonicalize(&p).map_err(|e| e.to_string())?));
    }
    let mut entries = BTreeMap::new();
    let mut scripts = Vec::new();
    for k in DeviceKind::ALL {
        let e = script::entries(k, images::blocks(k));
        let text = script::text(&e);
        let p = work.join(format!("{}.script", k.name()));
        std::fs::write(&p, &text).map_err(|e| e.to_string())?;
        scripts.push((k, text));
        entries.insert(k.name(), e);
    }
    let g = guest::run_guest(work, &scripts, &image_paths)?;
    eprintln!("oracle: guest run took {:.1} s", g.seconds);
    let mut qemu: BTreeMap<&str, BTreeMap<String, Answer>> = BTreeMap::new();
    for k in DeviceKind::ALL {
        let text = g
            .answers
            .get(k.name())
            .ok_or_else(|| format!("the guest found no /dev/sg for {}", k.name()))?;
        std::fs::write(work.join(format!("qemu-{}.answers", k.name())), text)
            .map_err(|e| e.to_string())?;
        qemu.insert(k.name(), answer::parse(text)?);
    }
    let binaries = [
        Binary {
            label: "x64",
            path: cli.package.join("amd64/rvblk.sys"),
            personality: "win8",
        },
        Binary {
            label: "x86",
            path: cli.package.join("x86/rvblk.sys"),
            personality: "win8",
        },
        Binary {
            label: "xp-x86",
            path: cli.package.join("xp/rvblkxp.sys"),
            personality: "xp",
        },
        Binary {
            label: "xp-x64",
            path: cli.package.join("xp/amd64/rvblkxp.sys"),
            personality: "xp",
        },
    ];
    let mut outcomes = Vec::new();
    let mut mutant_results = Vec::new();
    for bin in &binaries {
        let mut by_kind: BTreeMap<&str, BTreeMap<String, Answer>> = BTreeMap::new();
        for k in [DeviceKind::Cd, DeviceKind::Disk, DeviceKind::Floppy] {
            let img = &image_paths.iter().find(|(x, _)| *x == k).expect("image").1;
            let script = work.join(format!("{}.script", k.name()));
            let a = harness_answers(cli, bin, k.harness_kind(), img, &script)?;
            let mut text = String::new();
            for (id, ans) in &a {
                let _ = writeln!(text, "{id}: {ans:?}");
            }
            std::fs::write(
                work.join(format!("rvblk-{}-{}.answers", bin.label, k.name())),
                text,
            )
            .map_err(|e| e.to_string())?;
            by_kind.insert(k.name(), a);
        }
        for k in DeviceKind::ALL {
            let r = &by_kind[k.harness_kind()];
            outcomes.extend(compare_all(
                bin.label,
                k,
                &entries[k.name()],
                &qemu[k.name()],
                r,
                &rows,
            ));
        }
        if bin.label == "x64" {
            mutant_results = mutants(&entries["cd"], &qemu["cd"], &by_kind["cd"], &rows);
        }
    }

    // Report.
    let mut report = String::new();
    let _ = writeln!(report, "QEMU: {}", g.qemu_version);
    let _ = writeln!(
        report,
        "guest kernel: {} (Debian linux-image-amd64)",
        g.kernel
    );
    let _ = writeln!(report, "guest run: {:.1} s", g.seconds);
    let (mut differ, mut listed, mut unexplained) = (0, 0, 0);
    let mut used = BTreeSet::new();
    for o in &outcomes {
        if o.diffs.is_empty() {
            continue;
        }
        differ += 1;
        let all_listed = o.diffs.iter().all(|(_, r)| r.is_some());
        if all_listed {
            listed += 1;
        } else {
            unexplained += 1;
        }
        for (d, r) in &o.diffs {
            if let Some(r) = r {
                used.insert(r.clone());
            }
            let _ = writeln!(
                report,
                "{} {} {} {} | QEMU `{}` | rvblk `{}` | {}",
                o.binary,
                o.device,
                o.id,
                d.field,
                d.qemu,
                d.rvblk,
                r.as_ref()
                    .map_or("UNEXPLAINED".to_string(), |r| format!("listed #{r}"))
            );
        }
    }
    let stale: Vec<&str> = rows
        .iter()
        .filter(|r| !used.contains(&r.number))
        .map(|r| r.number.as_str())
        .collect();
    for (m, caught) in &mutant_results {
        let _ = writeln!(
            report,
            "deliberately wrong answer: {m}: {}",
            if *caught { "detected" } else { "NOT DETECTED" }
        );
    }
    if !stale.is_empty() {
        let _ = writeln!(
            report,
            "table rows that list no difference (stale): {}",
            stale.join(", ")
        );
    }
    let summary = format!(
        "{} CDBs compared, {differ} differ ({listed} listed), {unexplained} unexplained",
        outcomes.len()
    );
    let _ = writeln!(report, "{summary}");
    std::fs::write(work.join("results.txt"), &report).map_err(|e| e.to_string())?;
    for line in report.lines() {
        if line.contains("UNEXPLAINED") || !line.contains(" | ") {
            println!("{line}");
        }
    }
    println!(
        "oracle: full report in {}",
        work.join("results.txt").display()
    );
    let mutants_ok = mutant_results.len() == 2 && mutant_results.iter().all(|(_, c)| *c);
    Ok(unexplained == 0 && stale.is_empty() && mutants_ok)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("rvblk-oracle: {e}");
            ExitCode::from(2)
        }
    }
}
