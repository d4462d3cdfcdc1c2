//! Tests of the asynchronous-path emulation through the exports exactly as a driver binds
//! them (`resolve` + the win64 convention): events and waits, system threads and their
//! objects, the emulated disk and the IRP life cycle, PnP notifications, removal, firmware.

use super::disk::{
    IOCTL_DISK_GET_DRIVE_GEOMETRY_EX, IOCTL_STORAGE_QUERY_PROPERTY, IRP_MJ_READ, IRP_MJ_WRITE,
    STATUS_CANCELLED, STATUS_INVALID_DEVICE_REQUEST, STATUS_MEDIA_WRITE_PROTECTED, STATUS_PENDING,
};
use super::pnp::{
    GUID_DEVICE_INTERFACE_ARRIVAL, GUID_DEVICE_INTERFACE_REMOVAL, GUID_DEVINTERFACE_DISK,
    STATUS_NOT_IMPLEMENTED, STATUS_VARIABLE_NOT_FOUND, VENTOY_GUID,
};
use super::sync::STATUS_TIMEOUT;
use super::*;
use rvblk_abi::status::{STATUS_BUFFER_TOO_SMALL, STATUS_NO_SUCH_DEVICE};
use rvblk_abi::UnicodeString;
use std::ffi::c_void;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn f(name: &str) -> usize {
    resolve("ntoskrnl.exe", name).unwrap_or_else(|| panic!("{name} is not exported"))
}

macro_rules! call {
    ($name:literal ($($a:expr),*) -> $r:ty) => {{
        // SAFETY: the export's win64 signature as the contract (ASYNC.md) gives it.
        let p: extern "win64" fn($(call!(@t $a)),*) -> $r = unsafe { std::mem::transmute(f($name)) };
        p($($a),*)
    }};
    (@t $a:expr) => { usize };
}

fn kernel(machine: MachineConfig, personality: Personality) -> Arc<Kernel> {
    let k = Kernel::new(
        KernelConfig {
            personality,
            os_ram: vec![],
            nfit: None,
            verbose: false,
            legacy: LegacyConfig::default(),
            machine,
        },
        Arc::new(PhysMem::from_segments(1 << 20, &[]).unwrap()),
    );
    k.open_disks().unwrap();
    k
}

fn temp_disk(name: &str, len: usize) -> PathBuf {
    let p = std::env::temp_dir().join(format!("rvblk-harness-{}-{name}.img", std::process::id()));
    let data: Vec<u8> = (0..len).map(|i| (i / 512) as u8 ^ (i as u8)).collect();
    std::fs::write(&p, data).unwrap();
    p
}

fn ustr(s: &str) -> (UnicodeString, Vec<u16>) {
    let w: Vec<u16> = s.encode_utf16().collect();
    (
        UnicodeString {
            length: (w.len() * 2) as u16,
            maximum_length: (w.len() * 2) as u16,
            buffer: w.as_ptr(),
        },
        w,
    )
}

/// A KEVENT-sized, pointer-aligned buffer.
struct KEvent([usize; 3]);

impl KEvent {
    fn new() -> Box<KEvent> {
        Box::new(KEvent([0; 3]))
    }
    fn p(&self) -> usize {
        self.0.as_ptr() as usize
    }
}

fn wait(obj: usize, timeout_100ns: Option<i64>) -> i32 {
    let t = timeout_100ns.map(|t| Box::new(-t));
    let tp = t.as_ref().map_or(0, |b| &**b as *const i64 as usize);
    call!("KeWaitForSingleObject"(obj, 0, 0, 0, tp) -> i32)
}

#[test]
fn events_signal_reset_and_time_out() {
    let k = kernel(MachineConfig::default(), Personality::Win8);
    let _a = k.activate();
    let sync = KEvent::new();
    let note = KEvent::new();
    call!("KeInitializeEvent"(sync.p(), 1, 0) -> ());
    call!("KeInitializeEvent"(note.p(), 0, 1) -> ());
    // The DISPATCHER_HEADER is written: Type, Size in 32-bit units, SignalState.
    assert_eq!(sync.0[0] as u8, 1);
    assert_eq!((sync.0[0] >> 16) as u8, 6);
    assert_eq!((note.0[0] >> 32) as i32, 1);
    assert_eq!(wait(sync.p(), Some(0)), STATUS_TIMEOUT);
    assert_eq!(call!("KeSetEvent"(sync.p(), 0, 0) -> i32), 0);
    assert_eq!(call!("KeSetEvent"(sync.p(), 0, 0) -> i32), 1);
    assert_eq!(wait(sync.p(), Some(0)), STATUS_SUCCESS);
    // Synchronization: the satisfied wait reset it.
    assert_eq!(wait(sync.p(), Some(0)), STATUS_TIMEOUT);
    assert_eq!(k.event_state(sync.p()), Some(false));
    // Notification: stays signalled until cleared.
    assert_eq!(wait(note.p(), None), STATUS_SUCCESS);
    assert_eq!(wait(note.p(), Some(0)), STATUS_SUCCESS);
    call!("KeClearEvent"(note.p()) -> ());
    assert_eq!(wait(note.p(), Some(0)), STATUS_TIMEOUT);
    // A relative timeout waits at least that long.
    let t0 = Instant::now();
    assert_eq!(wait(sync.p(), Some(200_000)), STATUS_TIMEOUT);
    assert!(t0.elapsed() >= Duration::from_millis(20));
    // A set from another thread ends an infinite wait.
    let p = sync.p();
    let kk = k.clone();
    let h = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        kk.set_event(None, p);
    });
    assert_eq!(wait(sync.p(), None), STATUS_SUCCESS);
    h.join().unwrap();
    assert!(k.failures().is_empty(), "{:?}", k.failures());
}

#[test]
fn waits_at_dispatch_need_a_zero_timeout_and_unknown_objects_fail() {
    let k = kernel(MachineConfig::default(), Personality::Win8);
    let _a = k.activate();
    let ev = KEvent::new();
    call!("KeInitializeEvent"(ev.p(), 1, 0) -> ());
    at_irql(DISPATCH_LEVEL, || {
        assert_eq!(wait(ev.p(), Some(0)), STATUS_TIMEOUT)
    });
    assert!(k.failures().is_empty(), "{:?}", k.failures());
    at_irql(DISPATCH_LEVEL, || wait(ev.p(), Some(10)));
    assert!(
        k.failures()
            .iter()
            .any(|f| f.contains("KeWaitForSingleObject") && f.contains("IRQL 2")),
        "{:?}",
        k.failures()
    );
    let other = KEvent::new();
    wait(other.p(), Some(0));
    assert!(k
        .failures()
        .iter()
        .any(|f| f.contains("neither a KEVENT initialised")));
    call!("KeSetEvent"(other.p(), 0, 0) -> i32);
    assert!(k
        .failures()
        .iter()
        .any(|f| f.starts_with("KeSetEvent") && f.contains("not a KEVENT")));
}

static THREAD_SAW: std::sync::Mutex<Vec<(u8, usize)>> = std::sync::Mutex::new(Vec::new());

extern "win64" fn start_returns(ctx: usize) {
    THREAD_SAW.lock().unwrap().push((irql(), ctx));
    call!("KeSetEvent"(ctx, 0, 0) -> i32);
}

extern "win64" fn start_terminates(ctx: usize) {
    call!("KeSetEvent"(ctx, 0, 0) -> i32);
    call!("PsTerminateSystemThread"(0) -> i32);
    unreachable!("PsTerminateSystemThread returned");
}

fn create_thread(start: usize, ctx: usize) -> usize {
    let mut h = 0usize;
    let st = call!("PsCreateSystemThread"(&mut h as *mut usize as usize, 0x1F_FFFF, 0, 0, 0, start, ctx) -> i32);
    assert_eq!(st, STATUS_SUCCESS);
    assert_ne!(h, 0);
    h
}

#[test]
fn system_threads_run_at_passive_and_their_objects_are_waitable() {
    let k = kernel(MachineConfig::default(), Personality::Win8);
    let _a = k.activate();
    for start in [
        start_returns as *const () as usize,
        start_terminates as *const () as usize,
    ] {
        let ev = KEvent::new();
        call!("KeInitializeEvent"(ev.p(), 0, 0) -> ());
        let h = create_thread(start, ev.p());
        let mut obj = 0usize;
        let st = call!("ObReferenceObjectByHandle"(h, 0x1F_FFFF, 0, 0, &mut obj as *mut usize as usize, 0) -> i32);
        assert_eq!(st, STATUS_SUCCESS);
        assert_eq!(call!("ZwClose"(h) -> i32), STATUS_SUCCESS);
        assert_eq!(wait(obj, Some(50_000_000)), STATUS_SUCCESS);
        assert_eq!(wait(ev.p(), Some(0)), STATUS_SUCCESS);
        // Still signalled: a thread object is not reset by a wait.
        assert_eq!(wait(obj, Some(0)), STATUS_SUCCESS);
        assert_eq!(call!("ObfDereferenceObject"(obj) -> isize), 0);
    }
    assert!(THREAD_SAW
        .lock()
        .unwrap()
        .iter()
        .all(|&(l, _)| l == PASSIVE_LEVEL));
    assert!(k.running_threads().is_empty());
    assert!(k.async_leaks().is_empty(), "{:?}", k.async_leaks());
    assert!(k.failures().is_empty(), "{:?}", k.failures());
}

#[test]
fn unbalanced_references_and_open_thread_handles_are_reported() {
    let k = kernel(MachineConfig::default(), Personality::Win8);
    let _a = k.activate();
    let ev = KEvent::new();
    call!("KeInitializeEvent"(ev.p(), 0, 0) -> ());
    let h = create_thread(start_returns as *const () as usize, ev.p());
    let mut obj = 0usize;
    call!("ObReferenceObjectByHandle"(h, 0, 0, 0, &mut obj as *mut usize as usize, 0) -> i32);
    assert_eq!(wait(obj, None), STATUS_SUCCESS);
    let leaks = k.async_leaks();
    assert!(
        leaks
            .iter()
            .any(|l| l.contains("thread object") && l.contains("1 reference")),
        "{leaks:?}"
    );
    assert!(
        leaks.iter().any(|l| l.contains("thread handle leaked")),
        "{leaks:?}"
    );
    call!("ObfDereferenceObject"(obj) -> isize);
    call!("ObfDereferenceObject"(obj) -> isize);
    assert!(k
        .failures()
        .iter()
        .any(|f| f.contains("dereferenced more often than the driver referenced it")));
    call!("ZwClose"(h) -> i32);
    assert!(k.async_leaks().is_empty(), "{:?}", k.async_leaks());
}

static PNP_SEEN: std::sync::Mutex<Vec<([u8; 16], String, u8)>> = std::sync::Mutex::new(Vec::new());
/// Held for the whole of each test that registers `pnp_callback`: the tests run in parallel,
/// and every emulated machine's first disk has the same link name, so one test's removal
/// notification would otherwise land in another's `PNP_SEEN`.
static PNP_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

extern "win64" fn pnp_callback(n: *const u8, ctx: usize) -> i32 {
    let _ = ctx;
    // SAFETY: DEVICE_INTERFACE_CHANGE_NOTIFICATION as the harness builds it (x64 layout):
    // 48 readable bytes.
    let b = unsafe { std::slice::from_raw_parts(n, 48) };
    assert_eq!(u16::from_le_bytes([b[0], b[1]]), 1);
    assert_eq!(&b[20..36], &GUID_DEVINTERFACE_DISK);
    let ev: [u8; 16] = b[4..20].try_into().unwrap();
    let us = usize::from_le_bytes(b[40..48].try_into().unwrap()) as *const UnicodeString;
    // SAFETY: the SymbolicLinkName UNICODE_STRING, valid during the callback.
    let u = unsafe { us.read() };
    // SAFETY: its Length bytes of UTF-16.
    let w = unsafe { std::slice::from_raw_parts(u.buffer, u.length as usize / 2) };
    let name = String::from_utf16_lossy(w);
    PNP_SEEN.lock().unwrap().push((ev, name, irql()));
    STATUS_SUCCESS
}

fn register(k: &Kernel) -> usize {
    let mut entry = 0usize;
    let drv = k.entry_args.lock().unwrap().0;
    let st = call!("IoRegisterPlugPlayNotification"(2, 1, GUID_DEVINTERFACE_DISK.as_ptr() as usize, drv, pnp_callback as *const () as usize, 0, &mut entry as *mut usize as usize) -> i32);
    assert_eq!(st, STATUS_SUCCESS);
    entry
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

struct Io {
    ev: Box<KEvent>,
    iosb: Box<[usize; 2]>,
}

impl Io {
    fn new() -> Io {
        let ev = KEvent::new();
        call!("KeInitializeEvent"(ev.p(), 0, 0) -> ());
        Io {
            ev,
            iosb: Box::new([0xdead; 2]),
        }
    }
    fn iosb(&self) -> usize {
        self.iosb.as_ptr() as usize
    }
    /// Sends `irp`; waits when it pended; returns (status from IofCallDriver, iosb status, info).
    fn send(&mut self, dev: usize, irp: usize) -> (i32, i32, usize) {
        assert_ne!(irp, 0);
        let st = call!("IofCallDriver"(dev, irp) -> i32);
        if st == STATUS_PENDING {
            assert_eq!(wait(self.ev.p(), None), STATUS_SUCCESS);
        }
        (st, self.iosb[0] as u32 as i32, self.iosb[1])
    }
    fn rw(&mut self, major: usize, dev: usize, buf: &mut [u8], off: i64) -> (i32, i32, usize) {
        call!("KeClearEvent"(self.ev.p()) -> ());
        let o = Box::new(off);
        let irp = call!("IoBuildSynchronousFsdRequest"(major, dev, buf.as_mut_ptr() as usize, buf.len(), &*o as *const i64 as usize, self.ev.p(), self.iosb()) -> usize);
        self.send(dev, irp)
    }
    fn ioctl(&mut self, dev: usize, code: u32, input: &[u8], out: &mut [u8]) -> (i32, i32, usize) {
        call!("KeClearEvent"(self.ev.p()) -> ());
        let irp = call!("IoBuildDeviceIoControlRequest"(code as usize, dev, input.as_ptr() as usize, input.len(), out.as_mut_ptr() as usize, out.len(), 0, self.ev.p(), self.iosb()) -> usize);
        self.send(dev, irp)
    }
}

fn open(link: &str) -> (i32, usize, usize) {
    let (u, _w) = ustr(link);
    let (mut file, mut dev) = (0usize, 0usize);
    let st = call!("IoGetDeviceObjectPointer"(&u as *const UnicodeString as usize, 3, &mut file as *mut usize as usize, &mut dev as *mut usize as usize) -> i32);
    (st, file, dev)
}

#[test]
fn the_emulated_disk_serves_aligned_io_answers_ioctls_and_refuses_the_rest() {
    let _serial = PNP_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    PNP_SEEN.lock().unwrap().clear();
    let path = temp_disk("serve", 64 << 10);
    let orig = std::fs::read(&path).unwrap();
    let k = kernel(
        MachineConfig {
            disks: vec![DiskSpec::parse(&path.display().to_string(), false).unwrap()],
            ..MachineConfig::default()
        },
        Personality::Win8,
    );
    let _a = k.activate();
    let link = super::disk::disk_link(0);
    assert_eq!(
        open(&link).0,
        STATUS_OBJECT_NAME_NOT_FOUND,
        "before arrival"
    );
    let entry = register(&k);
    wait_until("the arrival notification", || {
        !PNP_SEEN.lock().unwrap().is_empty()
    });
    {
        let seen = PNP_SEEN.lock().unwrap();
        assert_eq!(seen[0].0, GUID_DEVICE_INTERFACE_ARRIVAL);
        assert_eq!(seen[0].1, link);
        assert_eq!(seen[0].2, PASSIVE_LEVEL);
    }
    assert_eq!(open("\\??\\nothing").0, STATUS_OBJECT_NAME_NOT_FOUND);
    let (st, file, dev) = open(&link);
    assert_eq!(st, STATUS_SUCCESS);
    let mut io = Io::new();
    // Both paths: every other IRP pends.
    let mut statuses = Vec::new();
    for i in 0..8i64 {
        let mut buf = vec![0u8; 4096];
        let (st, ios, info) = io.rw(IRP_MJ_READ as usize, dev, &mut buf, i * 4096);
        statuses.push(st);
        assert_eq!((ios, info), (STATUS_SUCCESS, 4096));
        assert_eq!(&buf[..], &orig[i as usize * 4096..(i as usize + 1) * 4096]);
    }
    assert!(statuses.contains(&STATUS_PENDING) && statuses.contains(&STATUS_SUCCESS));
    let (sent, pended, done) = k.irp_counts();
    assert_eq!((sent, done), (8, 8));
    assert_eq!(pended, 4);
    // Unaligned length / offset, and past the end.
    let mut buf = vec![0u8; 4096];
    assert_eq!(
        io.rw(IRP_MJ_READ as usize, dev, &mut buf[..100], 0).1,
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        io.rw(IRP_MJ_READ as usize, dev, &mut buf, 100).1,
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        io.rw(IRP_MJ_READ as usize, dev, &mut buf, 63 << 10).1,
        STATUS_INVALID_PARAMETER
    );
    // A write lands in the file, at its place only.
    let mut w = vec![0x5au8; 1024];
    assert_eq!(
        io.rw(IRP_MJ_WRITE as usize, dev, &mut w, 8192).1,
        STATUS_SUCCESS
    );
    let now = std::fs::read(&path).unwrap();
    assert_eq!(&now[8192..9216], &w[..]);
    assert_eq!(&now[..8192], &orig[..8192]);
    assert_eq!(&now[9216..], &orig[9216..]);
    // IOCTLs.
    let mut g = [0u8; 40];
    let (_, st, info) = io.ioctl(dev, IOCTL_DISK_GET_DRIVE_GEOMETRY_EX, &[], &mut g);
    assert_eq!((st, info), (STATUS_SUCCESS, 32));
    assert_eq!(u32::from_le_bytes(g[20..24].try_into().unwrap()), 512);
    assert_eq!(u64::from_le_bytes(g[24..32].try_into().unwrap()), 64 << 10);
    let (_, st, _) = io.ioctl(dev, IOCTL_DISK_GET_DRIVE_GEOMETRY_EX, &[], &mut g[..31]);
    assert_eq!(st, STATUS_BUFFER_TOO_SMALL);
    let mut d = [0u8; 128];
    let (_, st, info) = io.ioctl(dev, IOCTL_STORAGE_QUERY_PROPERTY, &[0; 12], &mut d);
    assert_eq!(st, STATUS_SUCCESS);
    assert!(info > 40);
    let vo = u32::from_le_bytes(d[12..16].try_into().unwrap()) as usize;
    assert_eq!(&d[vo..vo + 8], b"Harness\0");
    assert_eq!(u32::from_le_bytes(d[28..32].try_into().unwrap()), 7);
    let (_, st, _) = io.ioctl(dev, 0x0007_4080, &[], &mut d);
    assert_eq!(st, STATUS_INVALID_DEVICE_REQUEST);
    assert_eq!(call!("ObfDereferenceObject"(file) -> isize), 0);
    assert_eq!(
        call!("IoUnregisterPlugPlayNotification"(entry) -> i32),
        STATUS_SUCCESS
    );
    assert!(k.leaks().is_empty(), "{:?}", k.leaks());
    assert!(k.async_leaks().is_empty(), "{:?}", k.async_leaks());
    assert!(k.failures().is_empty(), "{:?}", k.failures());
    k.shutdown_async();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn irp_life_cycle_rules_and_cancel() {
    let _serial = PNP_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let path = temp_disk("irps", 16 << 10);
    let k = kernel(
        MachineConfig {
            disks: vec![DiskSpec::parse(&format!("{}:4096", path.display()), true).unwrap()],
            pend_every: 1,
            pend_us: 5_000_000,
            ..MachineConfig::default()
        },
        Personality::Win8,
    );
    let _a = k.activate();
    let entry = register(&k);
    wait_until("the arrival", || k.arrivals_delivered() == 1);
    let (_, file, dev) = open(&super::disk::disk_link(0));
    let io = Io::new();
    // Every IRP pends for 5 s here (the offset, unaligned for 4096-byte sectors, would fail
    // only at completion).
    let mut b = vec![0u8; 4096];
    let off = Box::new(512i64);
    let irp = call!("IoBuildSynchronousFsdRequest"(IRP_MJ_READ as usize, dev, b.as_mut_ptr() as usize, 4096, &*off as *const i64 as usize, io.ev.p(), io.iosb()) -> usize);
    // Built, never sent: a leak at removal.
    assert!(k.irp_leaks().iter().any(|l| l.contains("never sent")));
    assert_eq!(call!("IofCallDriver"(dev, irp) -> i32), STATUS_PENDING);
    // Sent twice while in flight.
    assert_eq!(
        call!("IofCallDriver"(dev, irp) -> i32),
        STATUS_INVALID_PARAMETER
    );
    assert!(k.failures().iter().any(|f| f.contains("sent twice")));
    // The driver's timeout path: the wait times out, IoCancelIrp completes it CANCELLED.
    assert_eq!(wait(io.ev.p(), Some(10_000)), STATUS_TIMEOUT);
    assert_eq!(call!("IoCancelIrp"(irp) -> u8), 1);
    assert_eq!(wait(io.ev.p(), None), STATUS_SUCCESS);
    assert_eq!(io.iosb[0] as u32 as i32, STATUS_CANCELLED);
    // After completion: cancel is FALSE, another send is a failure.
    assert_eq!(call!("IoCancelIrp"(irp) -> u8), 0);
    call!("IofCallDriver"(dev, irp) -> i32);
    assert!(k
        .failures()
        .iter()
        .any(|f| f.contains("sent twice (it already completed")));
    // Read-only disk.
    let mut w = vec![0u8; 4096];
    let mut io2 = Io::new();
    let o = Box::new(0i64);
    let irp = call!("IoBuildSynchronousFsdRequest"(IRP_MJ_WRITE as usize, dev, w.as_mut_ptr() as usize, 4096, &*o as *const i64 as usize, io2.ev.p(), io2.iosb()) -> usize);
    assert_eq!(io2.send(dev, irp).1, STATUS_MEDIA_WRITE_PROTECTED);
    call!("ObfDereferenceObject"(file) -> isize);
    call!("IoUnregisterPlugPlayNotification"(entry) -> i32);
    // Unregistering twice is a failure.
    call!("IoUnregisterPlugPlayNotification"(entry) -> i32);
    assert!(k
        .failures()
        .iter()
        .any(|f| f.contains("unregistered twice")));
    k.shutdown_async();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn surprise_removal_fails_pending_and_new_io_then_notifies() {
    let _serial = PNP_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    PNP_SEEN.lock().unwrap().clear();
    let path = temp_disk("removal", 16 << 10);
    let k = kernel(
        MachineConfig {
            disks: vec![DiskSpec::parse(&path.display().to_string(), false).unwrap()],
            pend_every: 1,
            pend_us: 10_000_000,
            remove_ms: Some(1000),
            ..MachineConfig::default()
        },
        Personality::Win8,
    );
    let _a = k.activate();
    let entry = register(&k);
    wait_until("the arrival", || k.arrivals_delivered() == 1);
    let link = super::disk::disk_link(0);
    let (_, file, dev) = open(&link);
    let mut io = Io::new();
    let mut b = vec![0u8; 512];
    // Pends (for 10 s) until the removal fails it.
    let (st, ios, _) = io.rw(IRP_MJ_READ as usize, dev, &mut b, 0);
    assert_eq!((st, ios), (STATUS_PENDING, STATUS_NO_SUCH_DEVICE));
    assert!(k.any_disk_removed());
    let (st, ios, _) = io.rw(IRP_MJ_READ as usize, dev, &mut b, 0);
    assert_eq!((st, ios), (STATUS_NO_SUCH_DEVICE, STATUS_NO_SUCH_DEVICE));
    assert_eq!(open(&link).0, STATUS_NO_SUCH_DEVICE);
    wait_until("the removal notification", || {
        PNP_SEEN
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.0 == GUID_DEVICE_INTERFACE_REMOVAL && s.1 == link)
    });
    // Still registered and a file reference held: both reported.
    let leaks = k.async_leaks();
    assert!(
        leaks.iter().any(|l| l.contains("still registered")),
        "{leaks:?}"
    );
    assert!(
        leaks.iter().any(|l| l.contains("FILE_OBJECT of disk 0")),
        "{leaks:?}"
    );
    call!("ObfDereferenceObject"(file) -> isize);
    call!("IoUnregisterPlugPlayNotification"(entry) -> i32);
    assert!(k.async_leaks().is_empty());
    assert!(k.failures().is_empty(), "{:?}", k.failures());
    k.shutdown_async();
    let _ = std::fs::remove_file(&path);
}

static SLOW_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "win64" fn slow_callback(_n: usize, _ctx: usize) -> i32 {
    SLOW_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    std::thread::sleep(CALLBACK_LIMIT_FOR_TEST);
    STATUS_SUCCESS
}
const CALLBACK_LIMIT_FOR_TEST: Duration = Duration::from_millis(2100);

#[test]
fn slow_callbacks_fail_and_none_runs_after_unregister() {
    let path = temp_disk("slow", 4096);
    let k = kernel(
        MachineConfig {
            disks: vec![DiskSpec::parse(&path.display().to_string(), false).unwrap()],
            arrival_ms: 0,
            remove_ms: Some(0),
            ..MachineConfig::default()
        },
        Personality::Win8,
    );
    let _a = k.activate();
    let mut entry = 0usize;
    let drv = k.entry_args.lock().unwrap().0;
    call!("IoRegisterPlugPlayNotification"(2, 1, GUID_DEVINTERFACE_DISK.as_ptr() as usize, drv, slow_callback as *const () as usize, 0, &mut entry as *mut usize as usize) -> i32);
    wait_until("the first callback", || {
        SLOW_CALLS.load(std::sync::atomic::Ordering::SeqCst) == 1
    });
    // Unregister while the arrival callback runs: waits for it; the removal (due at once) is
    // never delivered.
    call!("IoUnregisterPlugPlayNotification"(entry) -> i32);
    let n = SLOW_CALLS.load(std::sync::atomic::Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(SLOW_CALLS.load(std::sync::atomic::Ordering::SeqCst), n);
    assert_eq!(n, 1);
    assert!(
        k.failures()
            .iter()
            .any(|f| f.contains("took") && f.contains("must not block")),
        "{:?}",
        k.failures()
    );
    k.shutdown_async();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn firmware_variables_and_the_routine_lookup() {
    let k = kernel(MachineConfig::default(), Personality::Win7);
    let _a = k.activate();
    let (n, _w) = ustr("ExGetFirmwareEnvironmentVariable");
    let np = &n as *const UnicodeString as usize;
    assert_eq!(call!("MmGetSystemRoutineAddress"(np) -> usize), 0, "win7");
    drop(_a);
    let bios = kernel(MachineConfig::default(), Personality::Win8);
    let a = bios.activate();
    let fp = call!("MmGetSystemRoutineAddress"(np) -> usize);
    assert_eq!(fp, f("ExGetFirmwareEnvironmentVariable"));
    let (v, _vw) = ustr("VentoyOsParam");
    let mut buf = [0u8; 512];
    let mut len = 512u32;
    let get = |len: &mut u32, buf: &mut [u8], guid: &[u8; 16], name: usize| -> i32 {
        call!("ExGetFirmwareEnvironmentVariable"(name, guid.as_ptr() as usize, buf.as_mut_ptr() as usize, len as *mut u32 as usize, 0) -> i32)
    };
    let vp = &v as *const UnicodeString as usize;
    assert_eq!(
        get(&mut len, &mut buf, &VENTOY_GUID, vp),
        STATUS_NOT_IMPLEMENTED
    );
    drop(a);
    let uefi = kernel(
        MachineConfig {
            uefi_vars: vec![("VentoyOsParam".into(), vec![7u8; 512])],
            ..MachineConfig::default()
        },
        Personality::Win8,
    );
    let _a = uefi.activate();
    let mut small = 100u32;
    assert_eq!(
        get(&mut small, &mut buf, &VENTOY_GUID, vp),
        STATUS_BUFFER_TOO_SMALL
    );
    assert_eq!(small, 512);
    assert_eq!(get(&mut len, &mut buf, &VENTOY_GUID, vp), STATUS_SUCCESS);
    assert_eq!((len, buf[511]), (512, 7));
    let (r, _rw) = ustr("VentoyRamDisk");
    assert_eq!(
        get(
            &mut len,
            &mut buf,
            &VENTOY_GUID,
            &r as *const UnicodeString as usize
        ),
        STATUS_VARIABLE_NOT_FOUND
    );
    assert_eq!(
        get(&mut len, &mut buf, &GUID_DEVINTERFACE_DISK, vp),
        STATUS_VARIABLE_NOT_FOUND
    );
    assert!(uefi.failures().is_empty(), "{:?}", uefi.failures());
}

#[test]
fn new_calls_check_their_irql() {
    let k = kernel(MachineConfig::default(), Personality::Win8);
    let _a = k.activate();
    let mut h = 0usize;
    at_irql(
        DISPATCH_LEVEL,
        || call!("PsCreateSystemThread"(&mut h as *mut usize as usize, 0, 0, 0, 0, start_returns as *const () as usize, 0) -> i32),
    );
    let (n, _w) = ustr("x");
    at_irql(
        DISPATCH_LEVEL,
        || call!("MmGetSystemRoutineAddress"(&n as *const UnicodeString as usize) -> usize),
    );
    for api in ["PsCreateSystemThread", "MmGetSystemRoutineAddress"] {
        assert!(
            k.failures()
                .iter()
                .any(|f| f.starts_with(api) && f.contains("IRQL 2")),
            "{api}: {:?}",
            k.failures()
        );
    }
    k.wait_threads(Duration::from_secs(5));
    call!("ZwClose"(h) -> i32);
}

/// Calls of [`keep_irp`]: (status, information, context) of each.
static KEPT: std::sync::Mutex<Vec<(i32, usize, usize)>> = std::sync::Mutex::new(Vec::new());

/// A completion routine that keeps its IRP (STATUS_MORE_PROCESSING_REQUIRED).
extern "win64" fn keep_irp(dev: *mut c_void, irp: *mut rvblk_abi::Irp, ctx: *mut c_void) -> i32 {
    assert!(
        dev.is_null(),
        "the IRP's creator has no stack location: DeviceObject is NULL"
    );
    // SAFETY: the IRP being completed, handed to its completion routine.
    let s = unsafe { &(*irp).head.io_status };
    KEPT.lock()
        .unwrap()
        .push((s.status as u32 as i32, s.information, ctx as usize));
    rvblk_abi::STATUS_MORE_PROCESSING_REQUIRED
}

/// Builds an asynchronous READ of `len` bytes at `offset` into `buf` with `keep_irp` set in the
/// next stack location (as the driver's fast path does); returns (IRP, its MDL).
fn async_read(
    dev: usize,
    buf: &mut [u8],
    offset: &i64,
    ctx: usize,
    routine: bool,
) -> (usize, usize) {
    let irp = call!("IoBuildAsynchronousFsdRequest"(IRP_MJ_READ as usize, dev, buf.as_mut_ptr() as usize, buf.len(), offset as *const i64 as usize, 0) -> usize);
    assert_ne!(irp, 0);
    // SAFETY: a fresh IRP from IoBuildAsynchronousFsdRequest, not sent: ours.
    let r = unsafe { &mut *(irp as *mut rvblk_abi::Irp) };
    assert_eq!((r.head.stack_count, r.head.current_location), (1, 2));
    // SAFETY: IoGetNextIrpStackLocation: the disk's location, inside the IRP block.
    let next = unsafe { &mut *r.current_stack_location.wrapping_sub(1) };
    assert_eq!(next.major_function, IRP_MJ_READ as u8);
    assert_eq!(
        (next.rw_length() as usize, next.rw_offset()),
        (buf.len(), *offset as u64)
    );
    if routine {
        next.completion_routine = Some(keep_irp);
        next.context = ctx as *mut c_void;
        next.control = rvblk_abi::SL_INVOKE_ON_SUCCESS
            | rvblk_abi::SL_INVOKE_ON_ERROR
            | rvblk_abi::SL_INVOKE_ON_CANCEL;
    }
    (irp, r.head.mdl_address as usize)
}

#[test]
fn asynchronous_irps_completion_walk_and_free_rules() {
    let _serial = PNP_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let path = temp_disk("asyncirps", 16 << 10);
    let k = kernel(
        MachineConfig {
            disks: vec![DiskSpec::parse(&format!("{}:512", path.display()), true).unwrap()],
            pend_every: 0,
            // The third asynchronous IRP hangs until cancelled.
            hang_async_after: 2,
            ..MachineConfig::default()
        },
        Personality::Win8,
    );
    let _a = k.activate();
    let entry = register(&k);
    wait_until("the arrival", || k.arrivals_delivered() == 1);
    let (_, file, dev) = open(&super::disk::disk_link(0));
    let want = std::fs::read(&path).unwrap();
    KEPT.lock().unwrap().clear();

    // 1. Completed inline; the routine keeps it; the owner frees MDL and IRP.
    let mut b = vec![0u8; 1024];
    let off = Box::new(512i64);
    let (irp, mdl) = async_read(dev, &mut b, &off, 0x1234, true);
    assert_eq!(call!("IofCallDriver"(dev, irp) -> i32), STATUS_SUCCESS);
    assert_eq!(
        KEPT.lock().unwrap().as_slice(),
        &[(STATUS_SUCCESS, 1024, 0x1234)]
    );
    assert_eq!(&b[..], &want[512..1536]);
    assert!(k
        .irp_leaks()
        .iter()
        .any(|l| l.contains("never freed (IoFreeIrp)")));
    // Freeing the MDL before its pages are unlocked is a failure (it is freed anyway).
    call!("IoFreeMdl"(mdl) -> ());
    assert!(k.failures().iter().any(|f| f.contains("still locked")));
    call!("IoFreeIrp"(irp) -> ());
    call!("IoFreeIrp"(irp) -> ());
    assert!(k.failures().iter().any(|f| f.contains("freed twice")));
    let before = k.failures().len();

    // 2. No routine: the I/O manager finishes the IRP itself (nothing to free, no leak).
    let (irp, _) = async_read(dev, &mut b, &off, 0, false);
    assert_eq!(call!("IofCallDriver"(dev, irp) -> i32), STATUS_SUCCESS);
    assert!(k.irp_leaks().is_empty(), "{:?}", k.irp_leaks());

    // 3. Hangs (the third asynchronous IRP): pending until cancelled; the routine then sees
    // STATUS_CANCELLED; unlock, free the MDL, free the IRP: no failure, no leak.
    let (irp, mdl) = async_read(dev, &mut b, &off, 0x99, true);
    assert_eq!(call!("IofCallDriver"(dev, irp) -> i32), STATUS_PENDING);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        KEPT.lock().unwrap().len(),
        1,
        "a hung IRP completed by itself"
    );
    assert_eq!(call!("IoCancelIrp"(irp) -> u8), 1);
    assert_eq!(KEPT.lock().unwrap()[1], (STATUS_CANCELLED, 0, 0x99));
    assert_eq!(call!("IoCancelIrp"(irp) -> u8), 0);
    call!("MmUnlockPages"(mdl) -> ());
    call!("IoFreeMdl"(mdl) -> ());
    call!("IoFreeIrp"(irp) -> ());
    assert_eq!(k.failures().len(), before, "{:?}", k.failures());
    assert!(k.irp_leaks().is_empty(), "{:?}", k.irp_leaks());

    assert_eq!(call!("ObfDereferenceObject"(file) -> isize), 0);
    assert_eq!(
        call!("IoUnregisterPlugPlayNotification"(entry) -> i32),
        STATUS_SUCCESS
    );
    k.shutdown_async();
    let _ = std::fs::remove_file(&path);
}
