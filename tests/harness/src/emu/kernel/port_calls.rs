//! The port-driver calls both ports share: StorPortInitialize's validation of
//! HW_INITIALIZATION_DATA, StorPortNotification / ScsiPortNotification (SRB completion rules),
//! StorPortExtendedFunction (StorPortGetSystemAddress) and the per-SRB tracking they check
//! against. ScsiPortInitialize itself lives in `emu::scsiport`.

use super::{
    irql, Kernel, Personality, DISPATCH_LEVEL, PASSIVE_LEVEL, STATUS_INVALID_PARAMETER,
    STATUS_SUCCESS,
};
use rvblk_abi::status::STATUS_NO_SUCH_DEVICE;
use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

/// SRB states shared between the issuer and RequestComplete.
pub const SRB_IDLE: u8 = 0;
pub const SRB_IN_FLIGHT: u8 = 1;
pub const SRB_DONE: u8 = 2;
/// The issuer gave up waiting for a pending SRB (a hang); its buffers are never reused.
pub const SRB_ABANDONED: u8 = 3;

/// Per-SRB bookkeeping the notification handlers reach through the SRB address.
///
/// An SRB is completed almost always from inside HwStartIo, on the thread that issued it. That
/// thread reaches the record through [`ISSUING`] and updates it with plain loads and stores:
/// a locked instruction right after the driver's copy would wait for the whole copy to land
/// and stall everything behind it (`docs/bench.md`, "the harness's per-SRB work"). Any other
/// thread goes through the table and a compare-exchange. Completions are counted per side, so
/// a completion racing between the two is still caught, when the issuer retires the SRB.
///
/// An SRB the driver left pending (HwStartIo returned without completing it,
/// `docs/harness-disks.md` §6) is completed later from another thread, through the table: that
/// completion wakes the issuer waiting in [`SrbTrack::wait_completion`].
pub struct SrbTrack {
    pub state: AtomicU8,
    /// RequestCompletes from threads other than the issuer (atomic increments).
    completions: AtomicU32,
    /// RequestCompletes on the issuing thread while it issues (only that thread writes it).
    own_completions: AtomicU32,
    /// A second completion was already reported when it happened.
    twice_reported: AtomicBool,
    /// The real (mapped) data buffer, for StorPortGetSystemAddress.
    pub real_buf: AtomicUsize,
    /// The issuer waits for a pending SRB: a completion from another thread must wake it. Only
    /// then are `mx`/`cv` touched; the issuer's own completions never look at them.
    waiting: AtomicBool,
    mx: Mutex<()>,
    cv: Condvar,
}

impl Default for SrbTrack {
    fn default() -> Self {
        SrbTrack {
            state: AtomicU8::new(SRB_IDLE),
            completions: AtomicU32::new(0),
            own_completions: AtomicU32::new(0),
            twice_reported: AtomicBool::new(false),
            real_buf: AtomicUsize::new(0),
            waiting: AtomicBool::new(false),
            mx: Mutex::new(()),
            cv: Condvar::new(),
        }
    }
}

thread_local! {
    /// The SRB this thread is issuing (its address and record), while an `Issued` guard lives.
    static ISSUING: Cell<(usize, *const SrbTrack)> = const { Cell::new((0, std::ptr::null())) };
}

/// What one RequestComplete found.
enum Completion {
    First,
    /// The SRB was already completed; the number of this completion.
    Twice(u32),
    /// The issuer gave up on the SRB as hung before this completion came.
    Abandoned,
    NotOutstanding,
}

/// What the issuer finds when it takes an SRB back.
pub struct Retired {
    /// The state the miniport left the SRB in.
    pub state: u8,
    /// Completed more than once without that having been reported (two threads raced).
    pub unreported_double: bool,
}

impl SrbTrack {
    /// Arms the record for one request at `srb` and makes this thread its issuer, before the
    /// SRB goes to the miniport, until the returned guard retires it (or is dropped, e.g. by
    /// a panic unwinding out of HwStartIo).
    pub fn issue(&self, srb: usize, real_buf: usize) -> Issued<'_> {
        self.real_buf.store(real_buf, Ordering::Relaxed);
        self.completions.store(0, Ordering::Relaxed);
        self.own_completions.store(0, Ordering::Relaxed);
        self.twice_reported.store(false, Ordering::Relaxed);
        self.state.store(SRB_IN_FLIGHT, Ordering::Release);
        ISSUING.with(|c| c.set((srb, self as *const SrbTrack)));
        Issued(self)
    }

    fn complete(&self, on_issuer: bool) -> Completion {
        let (n, was) = if on_issuer {
            let own = self.own_completions.load(Ordering::Relaxed) + 1;
            self.own_completions.store(own, Ordering::Relaxed);
            let was = self.state.load(Ordering::Acquire);
            if was == SRB_IN_FLIGHT {
                self.state.store(SRB_DONE, Ordering::Release);
            }
            (own + self.completions.load(Ordering::Acquire), was)
        } else {
            let n = self.completions.fetch_add(1, Ordering::AcqRel) + 1;
            // SeqCst here and on `waiting`, as in `wait_completion`: either the waiting issuer
            // sees SRB_DONE or this thread sees `waiting` and wakes it. The compare-exchange
            // also decides between this completion and the issuer's abandonment of the SRB.
            let was = self
                .state
                .compare_exchange(SRB_IN_FLIGHT, SRB_DONE, Ordering::SeqCst, Ordering::SeqCst)
                .unwrap_or_else(|s| s);
            if was == SRB_IN_FLIGHT && self.waiting.load(Ordering::SeqCst) {
                let _g = self.mx.lock().unwrap_or_else(|e| e.into_inner());
                self.cv.notify_all();
            }
            (n + self.own_completions.load(Ordering::Relaxed), was)
        };
        match was {
            SRB_IN_FLIGHT => Completion::First,
            SRB_DONE => {
                self.twice_reported.store(true, Ordering::Release);
                Completion::Twice(n)
            }
            SRB_ABANDONED => Completion::Abandoned,
            _ => Completion::NotOutstanding,
        }
    }

    /// Whether the SRB was completed (a plain load: the fast path's only check after HwStartIo).
    pub fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == SRB_DONE
    }

    /// The issuer waits for the completion of an SRB the driver left pending, until
    /// `deadline`. `poll` runs before every look at the state (the port runs a due HwTimer
    /// there) and says how long the issuer may sleep at most before the next one. At the
    /// deadline the SRB is abandoned (SRB_ABANDONED: a later RequestComplete is an error, and
    /// the caller never reuses its buffers) unless a completion won the compare-exchange
    /// against that; false when abandoned.
    pub fn wait_completion(&self, deadline: Instant, mut poll: impl FnMut() -> Duration) -> bool {
        self.waiting.store(true, Ordering::SeqCst);
        let done = loop {
            let nap = poll();
            let g = self.mx.lock().unwrap_or_else(|e| e.into_inner());
            if self.state.load(Ordering::SeqCst) == SRB_DONE {
                break true;
            }
            let now = Instant::now();
            if now >= deadline {
                break self
                    .state
                    .compare_exchange(
                        SRB_IN_FLIGHT,
                        SRB_ABANDONED,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    )
                    .is_err();
            }
            let _ = self
                .cv
                .wait_timeout(g, (deadline - now).min(nap))
                .unwrap_or_else(|e| e.into_inner());
        };
        self.waiting.store(false, Ordering::SeqCst);
        done
    }
}

/// This thread issues an SRB (see [`SrbTrack::issue`]).
pub struct Issued<'a>(&'a SrbTrack);

impl Issued<'_> {
    /// Takes the SRB back from the miniport.
    pub fn retire(self) -> Retired {
        let t = self.0;
        drop(self);
        let state = t.state.load(Ordering::Acquire);
        t.state.store(SRB_IDLE, Ordering::Release);
        let total =
            t.own_completions.load(Ordering::Relaxed) + t.completions.load(Ordering::Acquire);
        Retired {
            state,
            unreported_double: total > 1 && !t.twice_reported.load(Ordering::Acquire),
        }
    }
}

impl Drop for Issued<'_> {
    fn drop(&mut self) {
        ISSUING.with(|c| c.set((0, std::ptr::null())));
    }
}

/// Runs `f` on the record of the SRB this thread is issuing, if `srb` is that SRB.
fn with_issuing<R>(srb: usize, f: impl FnOnce(&SrbTrack) -> R) -> Option<R> {
    let (addr, t) = ISSUING.with(|c| c.get());
    if addr != srb || t.is_null() {
        return None;
    }
    // SAFETY: set from a live record by `SrbTrack::issue`; the `Issued` guard borrows that
    // record and clears the entry when it goes (same thread), so the record is still alive.
    Some(f(unsafe { &*t }))
}

/// Hasher for SRB addresses: one folded multiply. The default SipHash costs more than the rest of
/// a lookup, and the addresses need no protection from collisions chosen by an attacker. SRBs
/// end at a guard page, so their low 12 bits are all alike; the fold mixes the page number into
/// the low bits the table indexes with and into the high bits it tags entries with.
#[derive(Default)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        let p = u128::from(self.0) * 0x9E37_79B9_7F4A_7C15;
        (p as u64) ^ ((p >> 64) as u64)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 ^= n as u64;
    }
}

/// The SRBs the emulated port issued and that are still live, by address: what every
/// RequestComplete and StorPortGetSystemAddress checks its SRB argument against.
#[derive(Default)]
pub struct SrbTable(RwLock<HashMap<usize, Arc<SrbTrack>, BuildHasherDefault<AddrHasher>>>);

impl SrbTable {
    pub fn insert(&self, srb: usize, t: Arc<SrbTrack>) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(srb, t);
    }

    pub fn remove(&self, srb: usize) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&srb);
    }

    /// Runs `f` on the record of the SRB at `srb`, if the port issued it. The record is used
    /// in place under the read lock (no reference count traffic per lookup).
    pub fn with<R>(&self, srb: usize, f: impl FnOnce(&SrbTrack) -> R) -> Option<R> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&srb)
            .map(|t| f(t))
    }

    /// The addresses of the SRBs still in flight (pending with the driver), in order.
    pub fn in_flight(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, t)| t.state.load(Ordering::Acquire) == SRB_IN_FLIGHT)
            .map(|(&a, _)| a)
            .collect();
        v.sort_unstable();
        v
    }
}

impl Kernel {
    /// The port's initialisation must get DriverEntry's own two arguments.
    pub(crate) fn check_entry_args(&self, api: &str, drv: *mut c_void, reg: *mut c_void) {
        let (d, r) = *self.entry_args.lock().unwrap_or_else(|e| e.into_inner());
        if (drv as usize, reg as usize) != (d, r) {
            self.fail(format!(
                "{api}(DriverObject {drv:p}, RegistryPath {reg:p}): not the {d:#x}/{r:#x} DriverEntry received"
            ));
        }
    }

    pub(super) fn storport_initialize(
        &self,
        drv: *mut c_void,
        reg: *mut c_void,
        init: *const u8,
        ctx: *mut c_void,
    ) -> u32 {
        let _ = ctx;
        if drv.is_null() || init.is_null() {
            self.fail("StorPortInitialize with NULL DriverObject or HwInitializationData");
            return STATUS_INVALID_PARAMETER as u32;
        }
        self.check_entry_args("StorPortInitialize", drv, reg);
        self.check_irql("StorPortInitialize", PASSIVE_LEVEL);
        // SAFETY: the first ULONG of the caller's HW_INITIALIZATION_DATA.
        let size = unsafe { (init as *const u32).read_unaligned() };
        let full = rvblk_abi::HW_INIT_DATA_SIZE_WIN8;
        let virt = rvblk_abi::HW_INIT_DATA_SIZE_VIRTUAL_WIN7;
        let ok = match self.cfg.personality {
            Personality::Xp => {
                self.log_line(
                    "[harness] StorPortInitialize under the xp personality: XP/2003 setup has no storport.sys (use the SCSIPORT build, rvblkxp.sys)".into(),
                );
                return STATUS_NO_SUCH_DEVICE as u32;
            }
            Personality::Win8 => {
                size == full || size == virt || (cfg!(target_arch = "x86") && size == 108)
            }
            Personality::Win7 => size == virt || (cfg!(target_arch = "x86") && size == 108),
        };
        if !ok {
            self.log_line(format!(
                "[harness] StorPortInitialize: HwInitializationDataSize {size} refused by the {} personality: STATUS_REVISION_MISMATCH",
                self.cfg.personality.name()
            ));
            return rvblk_abi::status::STATUS_REVISION_MISMATCH as u32;
        }
        let mut copy = vec![0u8; full as usize];
        // SAFETY: the caller's structure has `size` readable bytes.
        unsafe { std::ptr::copy_nonoverlapping(init, copy.as_mut_ptr(), size as usize) };
        *self.init_data.lock().unwrap_or_else(|e| e.into_inner()) = Some(copy);
        STATUS_SUCCESS as u32
    }

    pub(super) fn notification(&self, port: &str, ty: u32, ext: usize, args: [usize; 3]) {
        let a1 = args[0];
        use rvblk_abi::notification::*;
        let de = self.device_extension.load(Ordering::Relaxed);
        if ext != de {
            self.fail(format!(
                "{port}Notification({ty}) with HwDeviceExtension {ext:#x}, expected {de:#x}"
            ));
        }
        if self.cfg.personality == Personality::Xp && !irql::IN_MINIPORT.with(|c| c.get()) {
            self.fail(format!(
                "{port}Notification({ty}) outside a miniport entry point (SCSIPORT allows it only in HwStartIo, HwInterrupt, HwTimer, ...)"
            ));
        }
        match ty {
            REQUEST_COMPLETE => {
                if irql() > DISPATCH_LEVEL {
                    self.fail(format!("RequestComplete at IRQL {}", irql()));
                }
                if self.thread_impersonates() {
                    self.check_not_impersonating(&format!(
                        "{port}Notification(RequestComplete, {a1:#x})"
                    ));
                }
                if self.adapter_removed.load(Ordering::Acquire) {
                    self.fail(format!(
                        "{port}Notification(RequestComplete) for {a1:#x} after the adapter was removed (HwFreeAdapterResources returned)"
                    ));
                }
                let issued = with_issuing(a1, |t| t.complete(true))
                    .or_else(|| self.srbs.with(a1, |t| t.complete(false)));
                match issued {
                    None => self.fail(format!(
                        "{port}Notification(RequestComplete) for {a1:#x}, which is not an SRB the port issued"
                    )),
                    Some(Completion::First) => {}
                    Some(Completion::Twice(n)) => self.fail(format!(
                        "SRB {a1:#x} completed twice (RequestComplete #{n}) [{port} would bug check / corrupt the IRP]"
                    )),
                    Some(Completion::Abandoned) => self.fail(format!(
                        "RequestComplete for SRB {a1:#x} after the port gave up on it (pending longer than {} ms: a hang)",
                        self.srb_hang_ms.load(Ordering::Relaxed)
                    )),
                    Some(Completion::NotOutstanding) => self.fail(format!(
                        "RequestComplete for SRB {a1:#x}, which is not outstanding"
                    )),
                }
            }
            // NextLuRequest also makes the adapter ready for its next request (as in SCSIPORT).
            NEXT_REQUEST => {
                self.next_request.fetch_add(1, Ordering::Relaxed);
            }
            NEXT_LU_REQUEST => {
                // Variadic UCHARs arrive promoted to int: only the low 32 bits are defined.
                if args.iter().any(|&a| a as u32 > 0xff) {
                    self.fail(format!(
                        "{port}Notification(NextLuRequest, {:#x}, {:#x}, {:#x}): PathId/TargetId/Lun are UCHARs",
                        args[0], args[1], args[2]
                    ));
                }
                self.next_request.fetch_add(1, Ordering::Relaxed);
            }
            BUS_CHANGE_DETECTED => self.bus_change(port, a1),
            REQUEST_TIMER_CALL => {
                let (f, us) = (a1, args[1] as u32);
                let mut t = self.timer.lock().unwrap_or_else(|e| e.into_inner());
                *t = (us != 0 && f != 0).then(|| {
                    (
                        f,
                        std::time::Instant::now() + std::time::Duration::from_micros(us as u64),
                    )
                });
            }
            _ => self.log_line(format!("[harness] {port}Notification type {ty:#x} ignored")),
        }
    }

    pub(super) fn extended_function(&self, code: u32, ext: usize, a1: usize, a2: usize) -> u32 {
        use rvblk_abi::stor_status;
        if self.cfg.personality == Personality::Xp {
            self.fail("StorPortExtendedFunction called under SCSIPORT");
            return stor_status::NOT_IMPLEMENTED;
        }
        if code != rvblk_abi::EXT_FUNCTION_GET_SYSTEM_ADDRESS {
            self.log_line(format!(
                "[harness] StorPortExtendedFunction({code}) not implemented"
            ));
            return stor_status::NOT_IMPLEMENTED;
        }
        if irql() > DISPATCH_LEVEL {
            self.fail(format!("StorPortGetSystemAddress at IRQL {}", irql()));
            return stor_status::INVALID_IRQL;
        }
        if ext != self.device_extension.load(Ordering::Relaxed) {
            self.fail(format!(
                "StorPortGetSystemAddress with a wrong HwDeviceExtension {ext:#x}"
            ));
        }
        // (outstanding, real buffer): the buffer is read after the Acquire load of the state.
        let look = |t: &SrbTrack| {
            let outstanding = t.state.load(Ordering::Acquire) == SRB_IN_FLIGHT;
            (outstanding, t.real_buf.load(Ordering::Relaxed))
        };
        let t = with_issuing(a1, look).or_else(|| self.srbs.with(a1, look));
        let Some((outstanding, real)) = t else {
            self.fail(format!(
                "StorPortGetSystemAddress for {a1:#x}, not an SRB the port issued"
            ));
            return stor_status::INVALID_PARAMETER;
        };
        if !outstanding {
            self.fail(format!(
                "StorPortGetSystemAddress for SRB {a1:#x} that is not outstanding"
            ));
        }
        if a2 == 0 {
            self.fail("StorPortGetSystemAddress with a NULL output pointer");
            return stor_status::INVALID_PARAMETER;
        }
        // SAFETY: caller-provided out pointer (PVOID*).
        unsafe { (a2 as *mut usize).write_unaligned(real) };
        if real == 0 {
            return stor_status::UNSUCCESSFUL;
        }
        stor_status::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::{
        with_issuing, Completion, SrbTable, SrbTrack, SRB_ABANDONED, SRB_DONE, SRB_IN_FLIGHT,
    };
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Barrier};
    use std::time::{Duration, Instant};

    const SRB: usize = 0x7000_0fb0;

    #[test]
    fn issuer_completes_once_without_the_table() {
        let t = SrbTrack::default();
        let issued = t.issue(SRB, 0x1234);
        assert!(with_issuing(SRB + 8, |_| ()).is_none(), "another address");
        assert!(matches!(
            with_issuing(SRB, |t| t.complete(true)),
            Some(Completion::First)
        ));
        let r = issued.retire();
        assert_eq!(r.state, SRB_DONE);
        assert!(!r.unreported_double);
        assert!(with_issuing(SRB, |_| ()).is_none(), "retired");
    }

    #[test]
    fn second_completion_is_counted_on_either_side() {
        let t = SrbTrack::default();
        let issued = t.issue(SRB, 0);
        assert!(matches!(t.complete(true), Completion::First));
        assert!(matches!(t.complete(false), Completion::Twice(2)));
        assert!(matches!(t.complete(true), Completion::Twice(3)));
        // Reported when it happened, so not again at retirement.
        assert!(!issued.retire().unreported_double);
    }

    #[test]
    fn racing_completions_are_caught_at_retirement() {
        let t = SrbTrack::default();
        let issued = t.issue(SRB, 0);
        // Another thread completes between the issuer's load of the state and its store.
        assert!(matches!(t.complete(false), Completion::First));
        t.state.store(SRB_IN_FLIGHT, Ordering::Relaxed);
        assert!(matches!(t.complete(true), Completion::First));
        assert!(issued.retire().unreported_double);
    }

    #[test]
    fn completion_of_an_idle_srb_is_not_outstanding() {
        let t = SrbTrack::default();
        assert!(matches!(t.complete(false), Completion::NotOutstanding));
        let issued = t.issue(SRB, 0);
        drop(issued);
        assert!(
            with_issuing(SRB, |_| ()).is_none(),
            "a dropped guard clears the entry"
        );
    }

    #[test]
    fn table_finds_only_registered_srbs() {
        let tab = SrbTable::default();
        let a = Arc::new(SrbTrack::default());
        tab.insert(SRB, a.clone());
        a.real_buf.store(42, Ordering::Relaxed);
        assert_eq!(
            tab.with(SRB, |t| t.real_buf.load(Ordering::Relaxed)),
            Some(42)
        );
        assert_eq!(tab.with(SRB + 0x1000, |_| ()), None);
        tab.remove(SRB);
        assert_eq!(tab.with(SRB, |_| ()), None);
    }

    #[test]
    fn racing_completions_on_two_threads_are_reported_once() {
        // The issuer (fast path) and another thread (table path) complete the same SRB at the
        // same moment: whichever way the race goes, exactly one report comes out of it.
        let t = Arc::new(SrbTrack::default());
        let go = Arc::new(Barrier::new(2));
        let other = {
            let (t, go) = (t.clone(), go.clone());
            std::thread::spawn(move || {
                (0..500)
                    .map(|_| {
                        go.wait();
                        let c = t.complete(false);
                        go.wait();
                        matches!(c, Completion::Twice(2))
                    })
                    .collect::<Vec<_>>()
            })
        };
        let mut own = Vec::new();
        for _ in 0..500 {
            let issued = t.issue(SRB, 0);
            go.wait();
            let c = with_issuing(SRB, |t| t.complete(true)).expect("the issuing SRB");
            go.wait();
            let r = issued.retire();
            assert_eq!(r.state, SRB_DONE);
            own.push((matches!(c, Completion::Twice(2)), r.unreported_double));
        }
        let theirs = other.join().unwrap();
        for ((twice_here, missed), twice_there) in own.into_iter().zip(theirs) {
            let reports = [twice_here, missed, twice_there];
            assert_eq!(reports.iter().filter(|&&r| r).count(), 1, "{reports:?}");
        }
    }

    #[test]
    fn pending_completion_from_another_thread_wakes_the_issuer() {
        let t = Arc::new(SrbTrack::default());
        let issued = t.issue(SRB, 0);
        assert!(!t.is_done(), "pending after HwStartIo");
        let done = {
            let t = t.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                t.complete(false)
            })
        };
        // Polls only once a minute: returning well before that takes the completion's wake.
        let begin = Instant::now();
        assert!(t.wait_completion(begin + Duration::from_secs(120), || Duration::from_secs(60)));
        assert!(
            begin.elapsed() < Duration::from_secs(60),
            "woken, not polled"
        );
        assert!(matches!(done.join().unwrap(), Completion::First));
        let r = issued.retire();
        assert_eq!(r.state, SRB_DONE);
        assert!(!r.unreported_double);
    }

    #[test]
    fn pending_srb_completed_twice_by_its_worker() {
        let t = SrbTrack::default();
        let issued = t.issue(SRB, 0);
        assert!(matches!(t.complete(false), Completion::First));
        assert!(matches!(t.complete(false), Completion::Twice(2)));
        assert!(t.wait_completion(Instant::now(), || Duration::ZERO));
        assert!(
            !issued.retire().unreported_double,
            "reported when it happened"
        );
    }

    #[test]
    fn abandoned_srb_reports_a_late_completion() {
        let t = SrbTrack::default();
        let issued = t.issue(SRB, 0);
        let mut polls = 0;
        assert!(
            !t.wait_completion(Instant::now() + Duration::from_millis(30), || {
                polls += 1;
                Duration::from_millis(5)
            })
        );
        assert!(polls > 1, "polled while waiting");
        assert_eq!(t.state.load(Ordering::SeqCst), SRB_ABANDONED);
        drop(issued);
        assert!(matches!(t.complete(false), Completion::Abandoned));
        assert_eq!(t.state.load(Ordering::SeqCst), SRB_ABANDONED);
    }

    #[test]
    fn completion_at_the_deadline_beats_abandonment() {
        // The HwTimer run in the issuer's own poll completes the SRB at the last moment.
        let t = SrbTrack::default();
        let issued = t.issue(SRB, 0);
        assert!(t.wait_completion(Instant::now(), || {
            assert!(matches!(
                with_issuing(SRB, |t| t.complete(true)),
                Some(Completion::First)
            ));
            Duration::ZERO
        }));
        assert_eq!(issued.retire().state, SRB_DONE);
    }

    #[test]
    fn table_lists_the_srbs_in_flight() {
        let tab = SrbTable::default();
        let (a, b) = (Arc::new(SrbTrack::default()), Arc::new(SrbTrack::default()));
        tab.insert(SRB + 0x1000, a.clone());
        tab.insert(SRB, b.clone());
        assert!(tab.in_flight().is_empty());
        let ia = a.issue(SRB + 0x1000, 0);
        assert_eq!(tab.in_flight(), vec![SRB + 0x1000]);
        ia.retire();
        let ib = b.issue(SRB, 0);
        assert_eq!(
            tab.with(SRB, |t| matches!(t.complete(false), Completion::First)),
            Some(true)
        );
        assert!(tab.in_flight().is_empty(), "completed");
        drop(ib);
    }
}
