//! Tests of the runtime-mount emulation (`docs/harness-runtime.md`) through the exports exactly
//! as a driver binds them (`resolve` + the win64 convention): NT paths over host files, sharing,
//! attributes, access checks, reads and writes, the requester's IRP, token and impersonation,
//! MDL pages, and the verifier failures each one reports.

use super::files::*;
use super::mdl::{MDL_BYTE_COUNT, MDL_FLAGS, MDL_MAPPED_VA, MDL_PFNS, MDL_SIZE};
use super::security::{CLIENT_TOKEN, IRP_REQUESTOR_MODE, IRP_THREAD};
use super::*;
use rvblk_abi::{ObjectAttributes, UnicodeString};
use std::path::{Path, PathBuf};

fn f(name: &str) -> usize {
    resolve("ntoskrnl.exe", name).unwrap_or_else(|| panic!("{name} is not exported"))
}

macro_rules! call {
    ($name:literal ($($a:expr),*) -> $r:ty) => {{
        // SAFETY: the export's win64 signature (RUNTIME.md), every argument widened to usize.
        let p: extern "win64" fn($(call!(@t $a)),*) -> $r = unsafe { std::mem::transmute(f($name)) };
        p($($a as usize),*)
    }};
    (@t $a:expr) => { usize };
}

fn kernel(ram_limit_mib: u64) -> Arc<Kernel> {
    Kernel::new(
        KernelConfig {
            personality: Personality::Win8,
            os_ram: vec![],
            nfit: None,
            verbose: false,
            legacy: LegacyConfig::default(),
            machine: MachineConfig {
                ram_limit_mib,
                ..Default::default()
            },
        },
        Arc::new(PhysMem::from_segments(1 << 20, &[]).unwrap()),
    )
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rvblk-rt-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn file(d: &Path, name: &str, len: usize) -> PathBuf {
    let p = d.join(name);
    std::fs::write(&p, (0..len).map(|i| i as u8).collect::<Vec<u8>>()).unwrap();
    p
}

/// ZwCreateFile(name, access, share, options, OBJ_* attributes): (status, handle, iosb).
fn create(
    name: &str,
    access: u32,
    share: u32,
    options: u32,
    attrs: u32,
) -> (i32, usize, [usize; 2]) {
    let w: Vec<u16> = name.encode_utf16().collect();
    let us = UnicodeString {
        length: (w.len() * 2) as u16,
        maximum_length: (w.len() * 2) as u16,
        buffer: w.as_ptr(),
    };
    let oa = ObjectAttributes {
        length: std::mem::size_of::<ObjectAttributes>() as u32,
        root_directory: std::ptr::null_mut(),
        object_name: &us,
        attributes: attrs,
        security_descriptor: std::ptr::null_mut(),
        security_quality_of_service: std::ptr::null_mut(),
    };
    let mut h = 0usize;
    let mut iosb = [0usize; 2];
    let st = call!("ZwCreateFile"(&mut h as *mut usize, access, &oa as *const ObjectAttributes, iosb.as_mut_ptr(), 0, 0, share, FILE_OPEN, options, 0, 0) -> i32);
    (st, h, iosb)
}

const RO: u32 = GENERIC_READ | SYNCHRONIZE;
const RW: u32 = GENERIC_READ | GENERIC_WRITE | SYNCHRONIZE;
const OPT: u32 = FILE_NON_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT;
const KOBJ: u32 = OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE;

fn io(write: bool, h: usize, buf: &mut [u8], off: i64) -> (i32, usize) {
    let mut iosb = [0usize; 2];
    let o = off;
    let st = if write {
        call!("ZwWriteFile"(h, 0, 0, 0, iosb.as_mut_ptr(), buf.as_mut_ptr(), buf.len(), &o as *const i64, 0) -> i32)
    } else {
        call!("ZwReadFile"(h, 0, 0, 0, iosb.as_mut_ptr(), buf.as_mut_ptr(), buf.len(), &o as *const i64, 0) -> i32)
    };
    (st, iosb[1])
}

/// A value the harness wrote into memory it handed the driver (IRP, MDL, mapping).
fn peek<T: Copy>(a: usize) -> T {
    // SAFETY: every address the tests pass lies in a readable harness page.
    unsafe { (a as *const T).read_unaligned() }
}

fn failed_with(k: &Kernel, needle: &str) -> bool {
    k.failures().iter().any(|f| f.contains(needle))
}

#[test]
fn nt_paths_name_host_files_and_misses_get_their_status() {
    let k = kernel(16);
    let _a = k.activate();
    let d = dir("paths");
    let p = file(&d, "a.img", 4096);
    let (st, h, iosb) = create(&nt_path(&p), RO, FILE_SHARE_READ, OPT, KOBJ);
    assert_eq!(
        (st, iosb[0] as u32 as i32, iosb[1]),
        (STATUS_SUCCESS, STATUS_SUCCESS, 1)
    );
    assert!(
        h >> (usize::BITS - 1) == 1,
        "a kernel handle has the top bit set"
    );
    assert_eq!(k.open_file_handles(&p), 1);
    let nt_missing = nt_path(&d.join("missing.img"));
    assert_eq!(
        create(&nt_missing, RO, 1, OPT, KOBJ).0,
        STATUS_OBJECT_NAME_NOT_FOUND
    );
    let nt_nodir = nt_path(&d.join("nodir/x.img"));
    assert_eq!(
        create(&nt_nodir, RO, 1, OPT, KOBJ).0,
        STATUS_OBJECT_PATH_NOT_FOUND
    );
    assert_eq!(
        create("\\??\\C:\\images\\a.iso", RO, 1, OPT, KOBJ).0,
        STATUS_OBJECT_PATH_NOT_FOUND
    );
    assert_eq!(
        create(&nt_path(&d), RO, 1, OPT, KOBJ).0,
        STATUS_FILE_IS_A_DIRECTORY
    );
    let dotdot = format!("{}\\..\\a.img", nt_path(&d));
    assert_eq!(
        create(&dotdot, RO, 1, OPT, KOBJ).0,
        STATUS_OBJECT_NAME_INVALID
    );
    // The prefix is case-insensitive, as the object manager's `\??\` and drive letters are.
    let lower = nt_path(&p).replacen("\\??\\Z:", "\\??\\z:", 1);
    let (st, h2, _) = create(&lower, RO, FILE_SHARE_READ, OPT, KOBJ);
    assert_eq!(st, STATUS_SUCCESS);
    // A synchronous open without SYNCHRONIZE is refused by the I/O manager.
    assert_eq!(
        create(&nt_path(&p), GENERIC_READ, 1, OPT, KOBJ).0,
        STATUS_INVALID_PARAMETER
    );
    assert!(k.failures().is_empty(), "{:?}", k.failures());
    assert_eq!(call!("ZwClose"(h) -> i32), STATUS_SUCCESS);
    assert_eq!(call!("ZwClose"(h2) -> i32), STATUS_SUCCESS);
    assert_eq!(k.open_file_handles(&p), 0);
    call!("ZwClose"(h) -> i32);
    assert!(failed_with(&k, "double close"), "{:?}", k.failures());
}

#[test]
fn sharing_locks_and_the_open_rules_are_checked() {
    let k = kernel(16);
    let _a = k.activate();
    let d = dir("share");
    let p = file(&d, "a.img", 4096);
    let n = nt_path(&p);
    let all = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
    let (st, ro, _) = create(&n, RO, FILE_SHARE_READ, OPT, KOBJ);
    assert_eq!(st, STATUS_SUCCESS);
    // A read-only mount (share READ): no writer, no deleter; readers welcome.
    assert_eq!(k.other_open(&p, DELETE, all), STATUS_SHARING_VIOLATION);
    assert_eq!(
        k.other_open(&p, GENERIC_WRITE, all),
        STATUS_SHARING_VIOLATION
    );
    assert_eq!(k.other_open(&p, GENERIC_READ, all), STATUS_SUCCESS);
    assert_eq!(create(&n, RW, 0, OPT, KOBJ).0, STATUS_SHARING_VIOLATION);
    call!("ZwClose"(ro) -> i32);
    // A writable mount (share 0): nobody else.
    let (st, rw, _) = create(&n, RW, 0, OPT, KOBJ);
    assert_eq!(st, STATUS_SUCCESS);
    assert_eq!(
        k.other_open(&p, GENERIC_READ, all),
        STATUS_SHARING_VIOLATION
    );
    call!("ZwClose"(rw) -> i32);
    // The harness's own lock.
    k.lock_file(&p, true).unwrap();
    assert_eq!(
        create(&n, RO, FILE_SHARE_READ, OPT, KOBJ).0,
        STATUS_SHARING_VIOLATION
    );
    k.lock_file(&p, false).unwrap();
    assert!(k.failures().is_empty(), "{:?}", k.failures());
    // Verifier: FILE_SHARE_DELETE, a user handle, an asynchronous handle, another disposition.
    let (_, h, _) = create(&n, RO, FILE_SHARE_READ | FILE_SHARE_DELETE, OPT, KOBJ);
    assert!(
        failed_with(&k, "with FILE_SHARE_DELETE"),
        "{:?}",
        k.failures()
    );
    call!("ZwClose"(h) -> i32);
    let (_, h, _) = create(&n, RO, FILE_SHARE_READ, OPT, OBJ_CASE_INSENSITIVE);
    assert!(
        failed_with(&k, "without OBJ_KERNEL_HANDLE"),
        "{:?}",
        k.failures()
    );
    call!("ZwClose"(h) -> i32);
    let (_, h, _) = create(&n, RO, FILE_SHARE_READ, FILE_NON_DIRECTORY_FILE, KOBJ);
    assert!(
        failed_with(&k, "without FILE_SYNCHRONOUS_IO_NONALERT"),
        "{:?}",
        k.failures()
    );
    call!("ZwClose"(h) -> i32);
    // A handle left open is a leak.
    let (_, _h, _) = create(&n, RO, FILE_SHARE_READ, OPT, KOBJ);
    assert!(
        k.leaks()
            .iter()
            .any(|l| l.contains("file handle leaked") && l.contains("a.img")),
        "{:?}",
        k.leaks()
    );
    k.reclaim();
}

#[test]
fn information_reads_writes_and_a_vanished_volume() {
    let k = kernel(16);
    let _a = k.activate();
    let d = dir("io");
    let p = file(&d, "a.img", 5000);
    k.set_file_attributes(&p, FILE_ATTRIBUTE_COMPRESSED | FILE_ATTRIBUTE_SPARSE_FILE)
        .unwrap();
    let (_, h, _) = create(&nt_path(&p), RW, 0, OPT, KOBJ);
    let mut iosb = [0usize; 2];
    let mut std_info = [0u8; 24];
    assert_eq!(
        call!("ZwQueryInformationFile"(h, iosb.as_mut_ptr(), std_info.as_mut_ptr(), 24, FILE_STANDARD_INFORMATION) -> i32),
        STATUS_SUCCESS
    );
    assert_eq!(
        i64::from_le_bytes(std_info[8..16].try_into().unwrap()),
        5000
    );
    assert_eq!(i64::from_le_bytes(std_info[0..8].try_into().unwrap()), 8192);
    assert_eq!(iosb[1], 24);
    assert_eq!(
        call!("ZwQueryInformationFile"(h, iosb.as_mut_ptr(), std_info.as_mut_ptr(), 23, FILE_STANDARD_INFORMATION) -> i32),
        STATUS_INFO_LENGTH_MISMATCH
    );
    let mut basic = [0u8; 40];
    assert_eq!(
        call!("ZwQueryInformationFile"(h, iosb.as_mut_ptr(), basic.as_mut_ptr(), 40, FILE_BASIC_INFORMATION) -> i32),
        STATUS_SUCCESS
    );
    let attrs = u32::from_le_bytes(basic[32..36].try_into().unwrap());
    assert_eq!(
        attrs & (FILE_ATTRIBUTE_COMPRESSED | FILE_ATTRIBUTE_SPARSE_FILE | FILE_ATTRIBUTE_READONLY),
        FILE_ATTRIBUTE_COMPRESSED | FILE_ATTRIBUTE_SPARSE_FILE
    );
    // Reads: whole, short at the end, at EOF.
    let mut b = vec![0u8; 1024];
    assert_eq!(io(false, h, &mut b, 512), (STATUS_SUCCESS, 1024));
    assert_eq!(b[0], (512 % 256) as u8);
    assert_eq!(io(false, h, &mut b, 4608), (STATUS_SUCCESS, 392));
    assert_eq!(io(false, h, &mut b, 5000), (STATUS_END_OF_FILE, 0));
    // Writes land in the host file.
    let mut w = vec![0xA5u8; 512];
    assert_eq!(io(true, h, &mut w, 1024), (STATUS_SUCCESS, 512));
    assert_eq!(std::fs::read(&p).unwrap()[1024..1536], [0xA5; 512]);
    assert!(k.failures().is_empty(), "{:?}", k.failures());
    // A write past the end grows the image: a verifier failure.
    assert_eq!(io(true, h, &mut w, 4608).0, STATUS_SUCCESS);
    assert!(
        failed_with(&k, "grows the file past its end"),
        "{:?}",
        k.failures()
    );
    // The volume goes away.
    k.vanish_file(&p).unwrap();
    assert_eq!(io(false, h, &mut b, 0).0, STATUS_FILE_INVALID);
    assert_eq!(call!("ZwClose"(h) -> i32), STATUS_SUCCESS);
    // A read-only open cannot write; non-cached handles need sector alignment.
    let q = file(&d, "b.img", 4096);
    let (_, h, _) = create(
        &nt_path(&q),
        RO,
        FILE_SHARE_READ,
        OPT | FILE_NO_INTERMEDIATE_BUFFERING,
        KOBJ,
    );
    assert_eq!(io(true, h, &mut w, 0).0, STATUS_ACCESS_DENIED);
    let mut odd = vec![0u8; 100];
    assert_eq!(io(false, h, &mut odd, 0).0, STATUS_INVALID_PARAMETER);
    call!("ZwClose"(h) -> i32);
    // The read-only attribute (host mode without write bits) refuses a write open.
    std::fs::set_permissions(&q, std::os::unix::fs::PermissionsExt::from_mode(0o444)).unwrap();
    assert_eq!(
        create(&nt_path(&q), RW, 0, OPT, KOBJ).0,
        STATUS_ACCESS_DENIED
    );
}

/// The requester's IRP, its token, impersonation and the access checks made with it.
#[test]
fn requesters_tokens_and_impersonation() {
    let k = kernel(16);
    let _a = k.activate();
    let d = dir("sec");
    let p = file(&d, "a.img", 4096);
    let n = nt_path(&p);
    let irp = k.requester_irp(Requester::Admin, true);
    let (mode, thread) = (
        peek::<u8>(irp + IRP_REQUESTOR_MODE),
        peek::<usize>(irp + IRP_THREAD),
    );
    assert_eq!(mode, 1);
    assert!(thread != 0);
    call!("ObfReferenceObject"(thread) -> isize);
    let qos: [u8; 12] = [12, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0];
    let mut ctx = [0u8; 72];
    assert_eq!(
        call!("SeCreateClientSecurity"(thread, qos.as_ptr(), 0, ctx.as_mut_ptr()) -> i32),
        STATUS_SUCCESS
    );
    let token = usize::from_le_bytes(ctx[CLIENT_TOKEN..CLIENT_TOKEN + 8].try_into().unwrap());
    assert_eq!(ctx[..12], qos);
    assert_eq!(call!("SeTokenIsAdmin"(token) -> u8), 1);
    assert_eq!(
        call!("SeImpersonateClientEx"(ctx.as_ptr(), 0) -> i32),
        STATUS_SUCCESS
    );
    // Impersonating: the open must force the access check, which the deny list then refuses.
    k.deny_file(&p).unwrap();
    assert_eq!(
        create(&n, RO, 1, OPT, KOBJ | OBJ_FORCE_ACCESS_CHECK).0,
        STATUS_ACCESS_DENIED
    );
    assert!(k.failures().is_empty(), "{:?}", k.failures());
    let (st, h, _) = create(&n, RO, 1, OPT, KOBJ);
    assert_eq!(
        st, STATUS_SUCCESS,
        "without the forced check the kernel-mode open succeeds"
    );
    assert!(
        failed_with(&k, "without OBJ_FORCE_ACCESS_CHECK"),
        "{:?}",
        k.failures()
    );
    call!("ZwClose"(h) -> i32);
    call!("PsRevertToSelf"() -> ());
    call!("ObfDereferenceObject"(token) -> isize);
    call!("ObfDereferenceObject"(thread) -> isize);
    k.requester_done(irp);
    assert_eq!(k.requester_refs(irp), (0, 0));
    let before = k.failures().len();

    // A filtered (non-elevated) administrator is no admin; a standard user is "others" to a
    // 0600 host file.
    let q = file(&d, "private.img", 4096);
    std::fs::set_permissions(&q, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    for (who, admin) in [(Requester::Filtered, 0u8), (Requester::User, 0)] {
        let irp = k.requester_irp(who, true);
        let thread = peek::<usize>(irp + IRP_THREAD);
        call!("ObfReferenceObject"(thread) -> isize);
        let mut ctx = [0u8; 72];
        call!("SeCreateClientSecurity"(thread, qos.as_ptr(), 0, ctx.as_mut_ptr()) -> i32);
        let token = usize::from_le_bytes(ctx[CLIENT_TOKEN..CLIENT_TOKEN + 8].try_into().unwrap());
        assert_eq!(call!("SeTokenIsAdmin"(token) -> u8), admin, "{who:?}");
        call!("SeImpersonateClientEx"(ctx.as_ptr(), 0) -> i32);
        assert_eq!(
            create(&nt_path(&q), RO, 1, OPT, KOBJ | OBJ_FORCE_ACCESS_CHECK).0,
            STATUS_ACCESS_DENIED,
            "{who:?}"
        );
        call!("PsRevertToSelf"() -> ());
        call!("ObfDereferenceObject"(token) -> isize);
        call!("ObfDereferenceObject"(thread) -> isize);
        k.requester_done(irp);
    }
    assert_eq!(k.failures().len(), before, "{:?}", k.failures());

    // Verifier: a user-mode request served without impersonating, a context captured without
    // a reference on the thread, a revert missing when the next request starts, a token leak.
    let irp = k.requester_irp(Requester::Admin, true);
    let thread = peek::<usize>(irp + IRP_THREAD);
    let (_, h, _) = create(&nt_path(&file(&d, "b.img", 512)), RO, 1, OPT, KOBJ);
    assert!(
        failed_with(
            &k,
            "without impersonating it: the file would be opened with the driver's rights"
        ),
        "{:?}",
        k.failures()
    );
    call!("ZwClose"(h) -> i32);
    let mut ctx = [0u8; 72];
    call!("SeCreateClientSecurity"(thread, qos.as_ptr(), 0, ctx.as_mut_ptr()) -> i32);
    assert!(
        failed_with(&k, "without a reference of the driver's own"),
        "{:?}",
        k.failures()
    );
    call!("SeImpersonateClientEx"(ctx.as_ptr(), 0) -> i32);
    let mut ctx2 = [0u8; 72];
    call!("SeCreateClientSecurity"(thread, qos.as_ptr(), 0, ctx2.as_mut_ptr()) -> i32);
    assert!(
        failed_with(&k, "(the next request starts) while still impersonating"),
        "{:?}",
        k.failures()
    );
    call!("PsRevertToSelf"() -> ());
    k.requester_done(irp);
    assert!(
        k.async_leaks().iter().any(|l| l.contains("access token")),
        "{:?}",
        k.async_leaks()
    );
    // At DISPATCH_LEVEL every one of these is an IRQL failure.
    at_irql(DISPATCH_LEVEL, || call!("PsRevertToSelf"() -> ()));
    assert!(
        failed_with(&k, "PsRevertToSelf called at IRQL 2"),
        "{:?}",
        k.failures()
    );
}

#[test]
fn mdl_pages_have_a_real_header_a_limit_and_an_order() {
    let k = kernel(4);
    let _a = k.activate();
    let m = call!("MmAllocatePagesForMdlEx"(0, -1i64, 0, 1 << 20, 1, 4) -> usize);
    assert!(m != 0);
    let rd = |off: usize| peek::<u32>(m + off);
    assert_eq!(rd(MDL_BYTE_COUNT), 1 << 20);
    assert_eq!(rd(MDL_SIZE) & 0xffff, (MDL_PFNS + 256 * 8) as u32);
    assert!(rd(MDL_PFNS) != 0);
    let va = call!("MmMapLockedPagesSpecifyCache"(m, 0, 1, 0, 0, 16 | 0x4000_0000) -> usize);
    assert!(va != 0);
    assert_eq!(peek::<usize>(m + MDL_MAPPED_VA), va);
    assert_eq!(rd(MDL_FLAGS) & 1, 1);
    // SAFETY: the mapping is 1 MiB of read/write memory.
    unsafe { std::ptr::write_bytes(va as *mut u8, 0x5A, 1 << 20) };
    assert_eq!(k.mdl_bytes(), (1 << 20, 1 << 20));
    // Within the limit only: FULLY_REQUIRED gets NULL, otherwise a short MDL.
    assert_eq!(
        call!("MmAllocatePagesForMdlEx"(0, -1i64, 0, 8 << 20, 1, 4) -> usize),
        0
    );
    let short = call!("MmAllocatePagesForMdlEx"(0, -1i64, 0, 8 << 20, 1, 0) -> usize);
    assert_eq!(peek::<u32>(short + MDL_BYTE_COUNT), 3 << 20);
    call!("MmFreePagesFromMdl"(short) -> ());
    call!("ExFreePool"(short) -> ());
    call!("MmUnmapLockedPages"(va, m) -> ());
    // The pages keep their content across mappings.
    let va2 = call!("MmMapLockedPagesSpecifyCache"(m, 0, 1, 0, 0, 16) -> usize);
    assert_eq!(peek::<u8>(va2 + 4096), 0x5A);
    call!("MmUnmapLockedPages"(va2, m) -> ());
    call!("MmFreePagesFromMdl"(m) -> ());
    call!("ExFreePool"(m) -> ());
    assert_eq!(k.mdl_bytes().0, 0);
    assert!(k.failures().is_empty(), "{:?}", k.failures());
    assert!(k.leaks().is_empty(), "{:?}", k.leaks());
    // Verifier: pages freed while mapped, the MDL freed before its pages, leaks at removal.
    let m = call!("MmAllocatePagesForMdlEx"(0, -1i64, 0, 65536, 1, 4) -> usize);
    let va = call!("MmMapLockedPagesSpecifyCache"(m, 0, 1, 0, 0, 16) -> usize);
    call!("MmFreePagesFromMdl"(m) -> ());
    assert!(
        failed_with(&k, "while the MDL is still mapped"),
        "{:?}",
        k.failures()
    );
    call!("MmMapLockedPagesSpecifyCache"(m, 0, 1, 0, 0, 16) -> usize);
    assert!(failed_with(&k, "already mapped"), "{:?}", k.failures());
    assert!(
        k.leaks()
            .iter()
            .any(|l| l.contains("MDL leaked") && l.contains("still mapped")),
        "{:?}",
        k.leaks()
    );
    call!("MmUnmapLockedPages"(va, m) -> ());
    call!("ExFreePool"(m) -> ());
    assert!(
        failed_with(&k, "still holding its pages"),
        "{:?}",
        k.failures()
    );
    at_irql(
        DISPATCH_LEVEL,
        || call!("MmAllocatePagesForMdlEx"(0, -1i64, 0, 4096, 1, 4) -> usize),
    );
    assert!(
        failed_with(&k, "MmAllocatePagesForMdlEx called at IRQL 2"),
        "{:?}",
        k.failures()
    );
    k.reclaim();
}
