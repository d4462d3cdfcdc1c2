//! Deliberately wrong answers must fail the oracle (`docs/scsi-oracle.md` §4): rvblk's core
//! answers the whole CDB list for a 4 MiB CD (both sides start equal), then single fields of
//! one side are altered, and the comparator together with the real table of listed differences
//! must report them as unexplained.

use rvblk_core::image::{DeviceKind as CoreKind, LoaderSource, MemoryImage, WritePolicy};
use rvblk_core::scsi::{CommandStatus, DataDirection, Medium, MediumError, ScsiTarget};
use rvblk_oracle::answer::Answer;
use rvblk_oracle::compare::compare;
use rvblk_oracle::script::{self, DeviceKind, Dir, Entry};
use rvblk_oracle::{images, table};

struct Image(Vec<u8>);

impl Medium for Image {
    fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), MediumError> {
        dst.copy_from_slice(&self.0[offset as usize..offset as usize + dst.len()]);
        Ok(())
    }
    fn write(&self, _: u64, _: &[u8]) -> Result<(), MediumError> {
        Err(MediumError::Unreadable)
    }
}

fn core_answer(t: &ScsiTarget, m: &Image, e: &Entry) -> Answer {
    let mut buf = vec![0u8; e.len as usize];
    let dir = match e.dir {
        Dir::In => DataDirection::In,
        Dir::Out => {
            buf.copy_from_slice(&e.out);
            DataDirection::Out
        }
        Dir::None => DataDirection::None,
    };
    let o = t.execute(&e.cdb, &mut buf, dir, m);
    match o.status() {
        CommandStatus::Good => Answer::good(if e.dir == Dir::In {
            &buf[..o.transferred()]
        } else {
            &[]
        }),
        CommandStatus::CheckCondition => Answer::Scsi {
            status: 2,
            sense: o.sense().expect("sense").to_bytes().to_vec(),
            data: Vec::new(),
        },
        CommandStatus::Busy => Answer::Scsi {
            status: 8,
            sense: Vec::new(),
            data: Vec::new(),
        },
    }
}

fn cd() -> (ScsiTarget, Image, Vec<Entry>) {
    let bytes = images::image(DeviceKind::Cd).expect("CD image");
    assert_eq!(bytes.len() as u64, 4 << 20);
    let image = MemoryImage {
        kind: CoreKind::CdRom,
        phys_base: 0x1000_0000,
        length: bytes.len() as u64,
        write_policy: WritePolicy::ReadOnly,
        source: LoaderSource::Grub4Dos,
        table_address: 0x9CC00,
        slot: 0,
        bios_drive: 0xFF,
    };
    let entries = script::entries(DeviceKind::Cd, images::blocks(DeviceKind::Cd));
    (ScsiTarget::new(image), Image(bytes), entries)
}

fn rows() -> Vec<table::Row> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/scsi-oracle.md"
    ))
    .expect("docs/scsi-oracle.md");
    table::parse(&doc).expect("the table parses")
}

/// Unexplained differences of `e` on device `device` between `q` and `r`.
fn unexplained(device: &str, e: &Entry, q: &Answer, r: &Answer) -> Vec<String> {
    let rows = rows();
    compare(e.form, &e.cdb, q, r)
        .into_iter()
        .filter(|d| table::find(&rows, device, &e.id, d).is_none())
        .map(|d| format!("{} {} {}", d.field, d.qemu, d.rvblk))
        .collect()
}

#[test]
fn equal_answers_have_no_differences() {
    let (t, m, entries) = cd();
    for e in &entries {
        let a = core_answer(&t, &m, e);
        assert!(compare(e.form, &e.cdb, &a, &a).is_empty(), "{}", e.id);
    }
}

#[test]
fn a_4mib_cd_reporting_the_dvd_profile_fails() {
    let (t, m, entries) = cd();
    let mut caught = 0;
    for e in entries.iter().filter(|e| e.cdb[0] == 0x46) {
        let good = core_answer(&t, &m, e);
        let Answer::Scsi {
            status: 0, data, ..
        } = &good
        else {
            continue;
        };
        if data.len() < 8 {
            continue;
        }
        // The core says CD-ROM for this image; the altered answer says DVD-ROM.
        assert_eq!(&data[6..8], &[0x00, 0x08], "{}", e.id);
        let mut bad = data.clone();
        bad[6..8].copy_from_slice(&[0x00, 0x10]);
        for device in ["cd", "empty"] {
            let u = unexplained(device, e, &good, &Answer::good(&bad));
            assert!(
                !u.is_empty(),
                "{device} {}: the DVD profile was explained away",
                e.id
            );
        }
        caught += 1;
    }
    assert!(
        caught >= 10,
        "only {caught} GET CONFIGURATION answers checked"
    );
}

#[test]
fn invalid_field_for_an_unknown_opcode_fails() {
    let (t, m, entries) = cd();
    let mut caught = 0;
    for e in entries.iter().filter(|e| e.id.starts_with("opcode-")) {
        let good = core_answer(&t, &m, e);
        assert_eq!(good, {
            let mut a = Answer::check(5, 0x20, 0);
            if let (Answer::Scsi { sense: s, .. }, Answer::Scsi { sense: g, .. }) = (&mut a, &good)
            {
                *s = g.clone();
            }
            a
        });
        for device in ["cd", "disk", "floppy"] {
            let u = unexplained(device, e, &good, &Answer::check(5, 0x24, 0));
            assert!(
                !u.is_empty(),
                "{device} {}: 05/24/00 was explained away",
                e.id
            );
        }
        caught += 1;
    }
    assert_eq!(caught, 5);
}

#[test]
fn other_single_field_changes_fail() {
    let (t, m, entries) = cd();
    let find = |id: &str| entries.iter().find(|e| e.id == id).expect(id);
    // READ CAPACITY with one block too many; a READ returning other bytes; a TOC lead-out
    // one block off; a READ past the end answered GOOD.
    for (id, mutate) in [
        ("read-capacity10", 3usize),
        ("read10-mid-x4", 100),
        ("read-toc-f0-lba", 19),
    ] {
        let e = find(id);
        let good = core_answer(&t, &m, e);
        let Answer::Scsi { data, .. } = &good else {
            panic!()
        };
        let mut bad = data.clone();
        bad[mutate] ^= 1;
        assert!(
            !unexplained("cd", e, &good, &Answer::good(&bad)).is_empty(),
            "{id}"
        );
    }
    let e = find("read10-past-end");
    let good = core_answer(&t, &m, e);
    assert!(!unexplained("cd", e, &good, &Answer::good(&[0; 2048])).is_empty());
}
