//! Loader and ABI tests against a tiny PE built here (no real driver needed).
mod common;

use rvblk_harness::kernel::{Kernel, KernelConfig, Personality};
use rvblk_harness::phys::PhysMem;
use rvblk_harness::storport::{Adapter, StartError};
use std::sync::Arc;

fn kernel() -> Arc<Kernel> {
    Kernel::new(
        KernelConfig {
            personality: Personality::Win8,
            os_ram: vec![],
            nfit: None,
            verbose: false,
        },
        Arc::new(PhysMem::from_segments(1 << 20, &[]).unwrap()),
    )
}

#[test]
fn x64_tiny_pe_loads_relocates_and_calls_variadic_dbgprint() {
    let p = common::tiny_pe("x86_64-pc-windows-msvc", &[]);
    let bytes = std::fs::read(p).unwrap();
    let k = kernel();
    match Adapter::start(&bytes, k.clone()) {
        Err(StartError::DriverEntry(s)) => assert_eq!(s as u32, 0xC000_0001),
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("tiny driver cannot start an adapter"),
    }
    let log = k.log();
    assert!(
        log.contains(&"rvblk: tiny driver entry".to_string()),
        "{log:?}"
    );
    assert!(
        log.contains(&"rvblk: n=42 x=beef s=two".to_string()),
        "{log:?}"
    );
}

#[test]
fn missing_import_is_named_before_anything_runs() {
    let p = common::tiny_pe("x86_64-pc-windows-msvc", &["missing"]);
    let bytes = std::fs::read(p).unwrap();
    let k = kernel();
    match Adapter::start(&bytes, k.clone()) {
        Err(StartError::Load(e)) => assert!(e.contains("ntoskrnl.exe!IoCreateDevice"), "{e}"),
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("loaded a driver with an unimplemented import"),
    }
    assert!(
        k.log().is_empty(),
        "DriverEntry ran despite the missing import"
    );
}

#[test]
fn x86_tiny_pe_runs_in_the_32_bit_helper() {
    common::ensure_x86_helper();
    let p = common::tiny_pe("i686-pc-windows-msvc", &[]);
    let dump = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("empty16m.dump");
    std::fs::File::create(&dump)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let o = common::run(&[
        "run",
        "--driver",
        p.to_str().unwrap(),
        "--ram",
        dump.to_str().unwrap(),
        "--json",
        "--verbose",
    ]);
    assert_eq!(o.code, 1);
    assert!(
        o.stdout.contains("DriverEntry returned 0xc0000001"),
        "{}",
        o.stdout
    );
    assert!(
        o.stderr.contains("rvblk: n=42 x=beef s=two"),
        "{}",
        o.stderr
    );
}

#[test]
fn helper_lookup_is_relative_to_the_executable() {
    let c = rvblk_harness::helper::candidates(std::path::Path::new("/x/tgt/release/rvblk-harness"));
    assert_eq!(
        c[0],
        std::path::PathBuf::from("/x/tgt/i686-unknown-linux-gnu/release/rvblk-harness")
    );
    let c = rvblk_harness::helper::candidates(std::path::Path::new("/x/tgt/debug/deps/loader-123"));
    assert_eq!(
        c[0],
        std::path::PathBuf::from("/x/tgt/i686-unknown-linux-gnu/debug/rvblk-harness")
    );
}
