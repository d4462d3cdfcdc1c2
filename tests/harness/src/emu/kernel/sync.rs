//! Dispatcher objects and system threads (`docs/harness-disks.md` §1): KEVENTs in driver
//! memory (state keyed by the KEVENT's address, header mirrored into it), thread objects,
//! KeWaitForSingleObject with timeouts, PsCreateSystemThread / PsTerminateSystemThread.
//!
//! System threads are host threads that run the start routine on their own emulated kernel
//! stack at PASSIVE_LEVEL; their thread object becomes signalled when the routine returns or
//! calls PsTerminateSystemThread (which then parks the host thread for good).

use super::objects::ObjKind;
use super::{
    irql, Kernel, DISPATCH_LEVEL, PASSIVE_LEVEL, STATUS_INVALID_PARAMETER, STATUS_SUCCESS,
};
use crate::emu::stack::on_kernel_stack;
use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const STATUS_TIMEOUT: i32 = 0x102;

/// KEVENT size: a DISPATCHER_HEADER (16 bytes x86, 24 bytes x64/arm64).
const KEVENT_SIZE: usize = if cfg!(target_pointer_width = "64") {
    24
} else {
    16
};

struct Event {
    synchronization: bool,
    signalled: bool,
}

pub(crate) struct ThreadRec {
    pub(crate) object: usize,
    pub(crate) start: usize,
    pub(crate) done: bool,
    pub(crate) ended_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    events: HashMap<usize, Event>,
    threads: Vec<ThreadRec>,
    /// Threads blocked on `Dispatcher::cv` right now: KeSetEvent wakes only when there is one
    /// (the completion of every IRP sets an event nobody may be waiting on yet).
    waiters: usize,
}

/// The dispatcher state of a session: one lock and one condition variable for every wait.
#[derive(Default)]
pub(crate) struct Dispatcher {
    m: Mutex<State>,
    cv: Condvar,
}

thread_local! {
    /// Index+1 of the system thread running on this host thread (0: not a system thread).
    static SYSTEM_THREAD: Cell<usize> = const { Cell::new(0) };
    /// The kernel that created the system thread running on this host thread.
    static SYSTEM_KERNEL: Cell<*const Kernel> = const { Cell::new(std::ptr::null()) };
}

/// The kernel of the system thread running on this host thread, if it is one.
pub(crate) fn system_thread_kernel() -> Option<*const Kernel> {
    let k = SYSTEM_KERNEL.with(|c| c.get());
    (!k.is_null()).then_some(k)
}

/// A KEVENT's SignalState mirrored into the driver's memory (DISPATCHER_HEADER + 4).
fn mirror(ev: usize, signalled: bool) {
    // SAFETY: `ev` is a KEVENT the driver initialised with KeInitializeEvent (checked by the
    // callers), at least 8 bytes of driver memory.
    unsafe { ((ev + 4) as *mut i32).write_unaligned(signalled as i32) };
}

/// Decodes a KeWaitForSingleObject timeout: None = forever.
fn deadline(timeout: *const i64) -> Option<Instant> {
    if timeout.is_null() {
        return None;
    }
    // SAFETY: a non-null PLARGE_INTEGER from the driver.
    let t = unsafe { timeout.read_unaligned() };
    let now = Instant::now();
    if t <= 0 {
        return Some(now + Duration::from_nanos(t.unsigned_abs().saturating_mul(100)));
    }
    // Absolute: 100 ns units since 1601-01-01.
    const EPOCH_DIFF_100NS: i64 = 116_444_736_000_000_000;
    let unix_100ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| (d.as_nanos() / 100) as i64)
        + EPOCH_DIFF_100NS;
    let rel = t.saturating_sub(unix_100ns).max(0) as u64;
    Some(now + Duration::from_nanos(rel.saturating_mul(100)))
}

/// The performance counter's frequency: 100 ns ticks, as on most Windows 8+ machines.
pub const PERFORMANCE_FREQUENCY: i64 = 10_000_000;

/// KeQueryPerformanceCounter (any IRQL): 100 ns ticks of the host's monotonic clock since the
/// first call; the frequency goes to `freq` when it is not NULL.
pub(crate) fn performance_counter(freq: *mut i64) -> i64 {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    if !freq.is_null() {
        // SAFETY: a non-null PLARGE_INTEGER from the driver.
        unsafe { freq.write_unaligned(PERFORMANCE_FREQUENCY) };
    }
    let e = ORIGIN.get_or_init(Instant::now).elapsed();
    // Never 0 at the first call: a counter that starts at boot is never 0 once a driver runs.
    // (No 128-bit division: the driver may read the counter for every request.)
    e.as_secs() as i64 * PERFORMANCE_FREQUENCY + i64::from(e.subsec_nanos() / 100) + 1
}

impl Kernel {
    fn disp(&self) -> std::sync::MutexGuard<'_, State> {
        self.dispatcher.m.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn initialize_event(&self, ev: usize, ty: u32, state: bool) {
        self.check_irql("KeInitializeEvent", DISPATCH_LEVEL);
        if ev == 0 {
            self.fail("KeInitializeEvent(NULL)");
            return;
        }
        if ty > 1 {
            self.fail(format!(
                "KeInitializeEvent({ev:#x}, type {ty}): EVENT_TYPE is 0 (Notification) or 1 (Synchronization)"
            ));
        }
        let synchronization = ty == 1;
        // DISPATCHER_HEADER: Type, Absolute, Size (in 32-bit units), Inserted; SignalState;
        // WaitListHead (an empty list points at itself).
        let mut hdr = [0u8; KEVENT_SIZE];
        hdr[0] = synchronization as u8;
        hdr[2] = (KEVENT_SIZE / 4) as u8;
        hdr[4..8].copy_from_slice(&(state as i32).to_le_bytes());
        let p = std::mem::size_of::<usize>();
        let list = (ev + 8).to_le_bytes();
        hdr[8..8 + p].copy_from_slice(&list[..p]);
        hdr[8 + p..8 + 2 * p].copy_from_slice(&list[..p]);
        // SAFETY: a KEVENT is KEVENT_SIZE bytes of driver memory (the KeInitializeEvent
        // contract).
        unsafe { std::ptr::copy_nonoverlapping(hdr.as_ptr(), ev as *mut u8, KEVENT_SIZE) };
        self.disp().events.insert(
            ev,
            Event {
                synchronization,
                signalled: state,
            },
        );
    }

    /// KeSetEvent; also used by the harness's own completions (no IRQL check then).
    pub(crate) fn set_event(&self, api: Option<&str>, ev: usize) -> i32 {
        if let Some(api) = api {
            self.check_irql(api, DISPATCH_LEVEL);
        }
        let mut s = self.disp();
        let Some(e) = s.events.get_mut(&ev) else {
            drop(s);
            self.fail(format!(
                "{}({ev:#x}): not a KEVENT initialised with KeInitializeEvent",
                api.unwrap_or("IRP completion: KeSetEvent")
            ));
            return 0;
        };
        let prev = e.signalled as i32;
        e.signalled = true;
        mirror(ev, true);
        let wake = s.waiters > 0;
        drop(s);
        if wake {
            self.dispatcher.cv.notify_all();
        }
        prev
    }

    pub(crate) fn clear_event(&self, ev: usize) {
        self.check_irql("KeClearEvent", DISPATCH_LEVEL);
        let mut s = self.disp();
        match s.events.get_mut(&ev) {
            Some(e) => {
                e.signalled = false;
                mirror(ev, false);
            }
            None => {
                drop(s);
                self.fail(format!(
                    "KeClearEvent({ev:#x}): not a KEVENT initialised with KeInitializeEvent"
                ));
            }
        }
    }

    /// Whether the KEVENT at `ev` is known and signalled (for tests).
    pub fn event_state(&self, ev: usize) -> Option<bool> {
        self.disp().events.get(&ev).map(|e| e.signalled)
    }

    pub(crate) fn wait_for_single_object(
        &self,
        obj: usize,
        reason: u32,
        mode: u32,
        alertable: u8,
        timeout: *const i64,
    ) -> i32 {
        if SYSTEM_THREAD.with(|c| c.get()) != 0 && self.thread_impersonates() {
            self.check_not_impersonating(&format!(
                "KeWaitForSingleObject({obj:#x}) in a system thread (the worker back at its loop)"
            ));
        }
        let l = irql();
        let zero = !timeout.is_null()
            // SAFETY: a non-null PLARGE_INTEGER from the driver.
            && unsafe { timeout.read_unaligned() } == 0;
        if l > DISPATCH_LEVEL || (l == DISPATCH_LEVEL && !zero) {
            self.fail(format!(
                "KeWaitForSingleObject({obj:#x}) at IRQL {l} with {} timeout (only a zero timeout is allowed at DISPATCH_LEVEL) [bug check 0xA IRQL_NOT_LESS_OR_EQUAL]",
                if timeout.is_null() { "no (infinite)" } else { "a non-zero" }
            ));
        }
        if mode != 0 || alertable != 0 {
            self.log_line(format!(
                "[harness] KeWaitForSingleObject(reason {reason}, mode {mode}, alertable {alertable}): the contract uses KernelMode, not alertable"
            ));
        }
        let thread = match self.object_kind(obj) {
            Some(ObjKind::Thread(i)) => Some(i),
            Some(k) => {
                self.fail(format!(
                    "KeWaitForSingleObject on the {} ({obj:#x}): not a dispatcher object",
                    k.describe()
                ));
                return STATUS_INVALID_PARAMETER;
            }
            None => None,
        };
        let until = deadline(timeout);
        let mut s = self.disp();
        if thread.is_none() && !s.events.contains_key(&obj) {
            drop(s);
            self.fail(format!(
                "KeWaitForSingleObject({obj:#x}): neither a KEVENT initialised with KeInitializeEvent nor a thread object"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        loop {
            let ready = match thread {
                Some(i) => s.threads.get(i).is_some_and(|t| t.done),
                None => match s.events.get_mut(&obj) {
                    Some(e) if e.signalled => {
                        if e.synchronization {
                            e.signalled = false;
                            mirror(obj, false);
                        }
                        true
                    }
                    Some(_) => false,
                    // Re-initialised away under the wait: treat as never signalled.
                    None => false,
                },
            };
            if ready {
                return STATUS_SUCCESS;
            }
            s.waiters += 1;
            match until {
                None => {
                    s = self
                        .dispatcher
                        .cv
                        .wait(s)
                        .unwrap_or_else(|e| e.into_inner())
                }
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        s.waiters -= 1;
                        return STATUS_TIMEOUT;
                    }
                    s = self
                        .dispatcher
                        .cv
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
            s.waiters -= 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create_system_thread(
        &self,
        out: *mut usize,
        access: u32,
        oa: *const rvblk_abi::ObjectAttributes,
        process: usize,
        cid: usize,
        start: usize,
        ctx: usize,
    ) -> i32 {
        self.check_irql("PsCreateSystemThread", PASSIVE_LEVEL);
        if out.is_null() || start == 0 {
            self.fail("PsCreateSystemThread with a NULL ThreadHandle or StartRoutine");
            return STATUS_INVALID_PARAMETER;
        }
        if process != 0 {
            self.fail(format!(
                "PsCreateSystemThread(ProcessHandle {process:#x}): a driver's system thread passes NULL (the system process)"
            ));
        }
        if cid != 0 {
            self.log_line("[harness] PsCreateSystemThread: ClientId is ignored".into());
        }
        if access != 0 && access != 0x1F_FFFF && access != 0x1F_03FF {
            self.log_line(format!(
                "[harness] PsCreateSystemThread DesiredAccess {access:#x} (THREAD_ALL_ACCESS or 0 expected)"
            ));
        }
        if !oa.is_null() {
            // SAFETY: a non-null OBJECT_ATTRIBUTES from the driver.
            let attrs = unsafe { oa.read_unaligned() }.attributes;
            if attrs & rvblk_abi::OBJ_KERNEL_HANDLE == 0 {
                self.fail("PsCreateSystemThread without OBJ_KERNEL_HANDLE: the handle would belong to the calling process, not the kernel");
            }
        }
        let Some(me) = self.me.upgrade() else {
            return STATUS_INVALID_PARAMETER;
        };
        // The slot is taken under the lock (two threads may be created at once); its object
        // is filled in right after.
        let idx = {
            let mut s = self.disp();
            s.threads.push(ThreadRec {
                object: 0,
                start,
                done: false,
                ended_at: None,
            });
            s.threads.len() - 1
        };
        let object = self.new_object(ObjKind::Thread(idx), 0);
        self.disp().threads[idx].object = object;
        let n = self
            .next_handle
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let h = (usize::MAX << (usize::BITS - 1)) | (n << 2);
        self.objects
            .thread_handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(h, object);
        // SAFETY: non-null HANDLE out-pointer from the driver.
        unsafe { out.write_unaligned(h) };
        let spawned = std::thread::Builder::new()
            .name(format!("sys-thread-{idx}"))
            .spawn(move || {
                SYSTEM_THREAD.with(|c| c.set(idx + 1));
                SYSTEM_KERNEL.with(|c| c.set(Arc::as_ptr(&me)));
                // SAFETY: KSTART_ROUTINE `void start(PVOID)` in the driver's calling convention.
                let f = unsafe { std::mem::transmute::<usize, StartRoutine>(start) };
                on_kernel_stack(|| {
                    super::at_irql(PASSIVE_LEVEL, || {
                        // SAFETY: the driver's start routine with the context it gave.
                        unsafe { f(ctx as *mut c_void) };
                        if irql() != PASSIVE_LEVEL {
                            me.fail(format!(
                                "system thread #{idx}: start routine returned at IRQL {}",
                                irql()
                            ));
                        }
                        me.check_not_impersonating(&format!(
                            "system thread #{idx}: start routine returned"
                        ));
                        me.forget_impersonation();
                    })
                });
                me.thread_ended(idx);
            });
        if let Err(e) = spawned {
            self.fail(format!(
                "PsCreateSystemThread: host thread not created: {e}"
            ));
        }
        STATUS_SUCCESS
    }

    fn thread_ended(&self, idx: usize) {
        let mut s = self.disp();
        if let Some(t) = s.threads.get_mut(idx) {
            t.done = true;
            t.ended_at = Some(Instant::now());
        }
        drop(s);
        self.dispatcher.cv.notify_all();
    }

    /// PsTerminateSystemThread: signals the thread object and parks this host thread forever.
    pub(crate) fn terminate_system_thread(&self, status: i32) -> ! {
        self.check_irql("PsTerminateSystemThread", PASSIVE_LEVEL);
        let idx = SYSTEM_THREAD.with(|c| c.get());
        if idx == 0 {
            self.fail(format!(
                "PsTerminateSystemThread({status:#x}) on a thread the driver did not create with PsCreateSystemThread"
            ));
            crate::checks::crash::emergency_report(
                "PsTerminateSystemThread on a non-system thread",
                crate::checks::crash::JSON.load(std::sync::atomic::Ordering::Relaxed),
            );
            // SAFETY: immediate exit; the driver's state is unknown.
            unsafe { libc::_exit(crate::checks::crash::CRASH_EXIT) };
        }
        self.check_not_impersonating(&format!(
            "PsTerminateSystemThread (system thread #{})",
            idx - 1
        ));
        self.forget_impersonation();
        self.thread_ended(idx - 1);
        loop {
            std::thread::park();
        }
    }

    /// ObReferenceObjectByHandle on a thread handle.
    pub(crate) fn reference_by_handle(&self, h: usize, out: *mut usize) -> i32 {
        self.check_irql("ObReferenceObjectByHandle", PASSIVE_LEVEL);
        let obj = self
            .objects
            .thread_handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&h)
            .copied();
        let Some(obj) = obj else {
            self.fail(format!(
                "ObReferenceObjectByHandle({h:#x}): not an open thread handle [bug check 0x93 INVALID_KERNEL_HANDLE]"
            ));
            return super::STATUS_INVALID_HANDLE;
        };
        if out.is_null() {
            self.fail("ObReferenceObjectByHandle with a NULL Object pointer");
            return STATUS_INVALID_PARAMETER;
        }
        self.reference("ObReferenceObjectByHandle", obj);
        // SAFETY: non-null PVOID* from the driver.
        unsafe { out.write_unaligned(obj) };
        STATUS_SUCCESS
    }

    /// ZwClose of a thread handle; false when `h` is not one.
    pub(crate) fn close_thread_handle(&self, h: usize) -> bool {
        self.objects
            .thread_handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&h)
            .is_some()
    }

    /// Start routines of system threads still running.
    pub(crate) fn running_threads(&self) -> Vec<(usize, usize)> {
        self.disp()
            .threads
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.done)
            .map(|(i, t)| (i, t.start))
            .collect()
    }

    /// Threads that ended after `t`, with how long after.
    pub(crate) fn threads_ended_after(&self, t: Instant) -> Vec<(usize, Duration)> {
        self.disp()
            .threads
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.ended_at.filter(|e| *e > t).map(|e| (i, e - t)))
            .collect()
    }

    /// Waits until every system thread ended or `limit` passed; true when all ended.
    pub(crate) fn wait_threads(&self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        let mut s = self.disp();
        loop {
            if s.threads.iter().all(|t| t.done) {
                return true;
            }
            let now = Instant::now();
            if now >= end {
                return false;
            }
            s = self
                .dispatcher
                .cv
                .wait_timeout(s, end - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The thread object of system thread `i` (for tests).
    pub fn thread_object(&self, i: usize) -> Option<usize> {
        self.disp().threads.get(i).map(|t| t.object)
    }
}

#[cfg(target_arch = "x86")]
type StartRoutine = unsafe extern "stdcall" fn(*mut c_void);
#[cfg(target_arch = "x86_64")]
type StartRoutine = unsafe extern "win64" fn(*mut c_void);
#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
type StartRoutine = unsafe extern "C" fn(*mut c_void);
