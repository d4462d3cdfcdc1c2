//! Checks of the parser and scanner against real images linked by rust-lld (compiled at test
//! time with `rustc --target *-pc-windows-msvc`) and against images from the crate's own writer.

use rvblk_pe::build::{ImportSpec, PeBuilder};
use rvblk_pe::scan::{instruction_scan, SimdClass};
use rvblk_pe::{Pe, MACHINE_AMD64, MACHINE_ARM64, MACHINE_I386, SUBSYSTEM_NATIVE};
use std::path::Path;

/// Compile `src` as a no_std native driver for `target` with rust-lld; returns the image bytes.
fn compile(dir: &Path, target: &str, src: &str) -> Vec<u8> {
    rvblk_pe::build::compile_native_driver(dir, target, src).unwrap()
}

const DRIVER: &str = r#"
#![no_std]
#![no_main]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! { loop {} }
#[cfg_attr(target_arch = "x86", link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim", import_name_type = "undecorated"))]
#[cfg_attr(not(target_arch = "x86"), link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim"))]
extern "system" {
    fn ExFreePoolWithTag(p: *mut u8, tag: u32);
}
#[cfg_attr(target_arch = "x86", link(name = "storport.sys", kind = "raw-dylib", modifiers = "+verbatim", import_name_type = "undecorated"))]
#[cfg_attr(not(target_arch = "x86"), link(name = "storport.sys", kind = "raw-dylib", modifiers = "+verbatim"))]
extern "system" {
    fn StorPortGetLogicalUnit(e: *mut u8, p: u8, t: u8, l: u8) -> *mut u8;
}
static mut TABLE: [fn(*mut u8); 1] = [f];
fn f(p: *mut u8) { unsafe { ExFreePoolWithTag(p, 0x6b6c6276) } }
#[no_mangle]
pub extern "system" fn DriverEntry(a: *mut u8, b: *mut u8) -> i32 {
    unsafe {
        let lu = StorPortGetLogicalUnit(a, 0, 0, 0);
        let t = core::ptr::read_volatile(&raw const TABLE);
        (t[0])(lu);
        core::ptr::write_volatile(a, *b);
    }
    0
}
"#;

#[test]
fn rust_lld_images_parse_with_valid_checksum_and_imports() {
    let dir = tempfile::tempdir().unwrap();
    for (target, machine) in [
        ("x86_64-pc-windows-msvc", MACHINE_AMD64),
        ("i686-pc-windows-msvc", MACHINE_I386),
        ("aarch64-pc-windows-msvc", MACHINE_ARM64),
    ] {
        let img = compile(dir.path(), target, DRIVER);
        let pe = Pe::parse(&img).unwrap();
        assert_eq!(pe.machine, machine, "{target}");
        assert_eq!(pe.is_pe32_plus, machine != MACHINE_I386);
        assert_eq!(pe.subsystem, SUBSYSTEM_NATIVE);
        // lld-link /RELEASE wrote the checksum: an independent check of our algorithm.
        assert_ne!(pe.checksum, 0, "{target}: lld wrote no checksum");
        assert_eq!(pe.checksum, pe.computed_checksum(), "{target}");
        assert!(pe.checksum_valid());
        assert!(!pe.relocs_stripped());
        assert!(pe.write_execute_sections().is_empty());
        let mut names: Vec<(String, String)> = pe
            .imports
            .iter()
            .flat_map(|d| {
                d.functions
                    .iter()
                    .map(move |f| (d.dll.to_ascii_lowercase(), f.to_string()))
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                ("ntoskrnl.exe".into(), "ExFreePoolWithTag".into()),
                ("storport.sys".into(), "StorPortGetLogicalUnit".into())
            ],
            "{target}: imports"
        );
        // The function table holds an absolute address → a base relocation.
        assert!(pe.relocation_count >= 1, "{target}: relocations");
        let text = pe.sections.iter().find(|s| s.name == ".text").unwrap();
        assert!(text.is_executable() && !text.is_writable());
        let report = instruction_scan(&pe);
        if machine == MACHINE_ARM64 {
            assert!(!report.scanned);
            assert!(report.not_scanned_reason.unwrap().contains("not scanned"));
        } else {
            assert!(report.scanned && report.instructions > 0);
        }
    }
}

#[test]
fn x86_raw_dylib_without_undecorated_gives_decorated_names() {
    let dir = tempfile::tempdir().unwrap();
    let src = DRIVER.replace(", import_name_type = \"undecorated\"", "");
    assert_ne!(src, DRIVER);
    let img = compile(dir.path(), "i686-pc-windows-msvc", &src);
    let pe = Pe::parse(&img).unwrap();
    let decorated: Vec<String> = pe
        .imports
        .iter()
        .flat_map(|d| d.functions.iter())
        .filter(|f| f.is_decorated())
        .map(|f| f.to_string())
        .collect();
    assert!(
        decorated.contains(&"_ExFreePoolWithTag@8".to_string()),
        "{decorated:?}"
    );
}

#[test]
fn scan_finds_planted_instructions_in_rustc_image() {
    let dir = tempfile::tempdir().unwrap();
    let src = r#"
#![no_std]
#![no_main]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! { loop {} }
#[no_mangle]
pub extern "system" fn DriverEntry(a: *mut u8, _b: *mut u8) -> i32 {
    unsafe {
        core::arch::asm!(
            "fld dword ptr [{0}]",
            "movups xmm0, [{0}]",
            "paddq mm0, mm1",
            "paddq xmm0, xmm1",
            in(reg) a,
        );
    }
    0
}
"#;
    let img = compile(dir.path(), "i686-pc-windows-msvc", src);
    let pe = Pe::parse(&img).unwrap();
    let r = instruction_scan(&pe);
    let classes: Vec<SimdClass> = r.findings.iter().map(|f| f.class).collect();
    for c in [SimdClass::X87, SimdClass::Sse, SimdClass::Mmx] {
        assert!(classes.contains(&c), "{c} not found in {:#?}", r.findings);
    }
    let text: Vec<&str> = r.findings.iter().map(|f| f.text.as_str()).collect();
    assert!(text.iter().any(|t| t.starts_with("fld")), "{text:?}");
    assert!(text.iter().any(|t| t.starts_with("movups")), "{text:?}");
    assert!(text.iter().any(|t| t.starts_with("paddq mm0")), "{text:?}");
    assert_eq!(r.forbidden(MACHINE_I386).len(), r.findings.len());
}

#[test]
fn scan_x64_allows_sse_but_not_x87_mmx_avx() {
    // movups xmm0,[rax]; fld dword [rax]; paddq mm0,mm1; vmovups ymm0,[rax]; ret
    let code = [
        0x0f, 0x10, 0x00, 0xd9, 0x00, 0x0f, 0xd4, 0xc1, 0xc5, 0xfc, 0x10, 0x00, 0xc3,
    ];
    let mut b = PeBuilder::new(MACHINE_AMD64);
    let t = b.text(&code);
    b.entry = Some((t, 0));
    let img = b.build();
    let pe = Pe::parse(&img).unwrap();
    let r = instruction_scan(&pe);
    assert_eq!(r.findings.len(), 4, "{:#?}", r.findings);
    let forbidden: Vec<SimdClass> = r.forbidden(MACHINE_AMD64).iter().map(|f| f.class).collect();
    assert_eq!(
        forbidden,
        vec![SimdClass::X87, SimdClass::Mmx, SimdClass::Avx]
    );
    // File offsets point at the bytes.
    let movups = &r.findings[0];
    assert_eq!(&img[movups.file_offset..movups.file_offset + 3], &code[..3]);
    assert_eq!(movups.rva, 0x1000);
}

#[test]
fn builder_images_flags_and_imports() {
    let mut b = PeBuilder::new(MACHINE_I386);
    b.text(&[0xc3]);
    b.section(
        ".wx",
        rvblk_pe::section_flags::MEM_EXECUTE | rvblk_pe::section_flags::MEM_WRITE,
        &[0xc3],
    );
    b.dll_characteristics = 0;
    b.subsystem_version = (5, 1);
    b.import("SCSIPORT.SYS", [ImportSpec::Ordinal(3)]);
    let img = b.build();
    let pe = Pe::parse(&img).unwrap();
    assert_eq!(pe.subsystem_version, (5, 1));
    assert!(!pe.has_dll_characteristics(rvblk_pe::dll_characteristics::NX_COMPAT));
    assert_eq!(pe.write_execute_sections().len(), 1);
    assert!(pe.imports[0].functions[0].is_ordinal());
    assert!(!pe.has_relocations());
    // A corrupted byte breaks the checksum.
    let mut bad = img.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(!Pe::parse(&bad).unwrap().checksum_valid());
}

#[test]
fn rejects_non_pe() {
    assert!(Pe::parse(b"hello").is_err());
    let mut img = PeBuilder::new(MACHINE_AMD64).build();
    img[0x80] = b'X';
    assert!(Pe::parse(&img).is_err());
}
