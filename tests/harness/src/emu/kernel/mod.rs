//! The emulated kernel a session runs: the `Kernel` object that holds a session's state (what it
//! emulates, the driver's pool, mappings and registry handles, the SRBs in flight), its verifier
//! record (failures, leaks) and the DbgPrint log. Exports have no context argument, so the active
//! `Kernel` is process-global (one session at a time, see `Kernel::activate`).
//!
//! One file per kernel service: `irql` (IRQL, spin locks), `pool`, `mmio` (mappings, RAM
//! ranges, firmware tables), `registry`, `dbgprint`, `port_calls` (the port-driver calls both
//! ports share) and `exports` (the ABI wrappers and the import table); `config` is what a
//! session emulates.

#[cfg(all(test, target_arch = "x86_64"))]
mod async_tests;
mod config;
mod dbgprint;
pub mod disk;
mod exports;
pub mod files;
mod irql;
pub mod mdl;
mod mmio;
mod objects;
pub mod pnp;
mod pool;
mod port_calls;
mod registry;
#[cfg(all(test, target_arch = "x86_64"))]
mod runtime_tests;
pub mod security;
pub mod sync;
mod version;

pub use config::{DiskSpec, LegacyConfig, MachineConfig, Personality, Requester, SetupPhase};
pub use exports::resolve;
pub use irql::{
    apcs_disabled, at_irql, in_miniport, irql, set_irql, with_apcs_disabled, APC_LEVEL, DIRQL,
    DISPATCH_LEVEL, PASSIVE_LEVEL,
};
pub use pool::tag_str;
pub use port_calls::{SrbTable, SrbTrack, SRB_ABANDONED, SRB_DONE, SRB_IDLE, SRB_IN_FLIGHT};
pub use registry::RegValue;

use crate::checks::guard::{self};
use crate::emu::phys::PhysMem;
use mmio::IoMap;
use pool::PoolAlloc;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

pub const STATUS_SUCCESS: i32 = 0;
pub const STATUS_INVALID_PARAMETER: i32 = 0xC000_000D_u32 as i32;
pub const STATUS_INFO_LENGTH_MISMATCH: i32 = 0xC000_0004_u32 as i32;
pub const STATUS_INVALID_INFO_CLASS: i32 = 0xC000_0003_u32 as i32;
pub const STATUS_INVALID_HANDLE: i32 = 0xC000_0008_u32 as i32;
pub const STATUS_OBJECT_NAME_INVALID: i32 = 0xC000_0033_u32 as i32;
pub const STATUS_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034_u32 as i32;
pub const STATUS_BUFFER_OVERFLOW: i32 = 0x8000_0005_u32 as i32;

pub struct KernelConfig {
    pub personality: Personality,
    /// Ranges the emulated OS manages as RAM (what MmGetPhysicalMemoryRanges returns).
    pub os_ram: Vec<(u64, u64)>,
    pub nfit: Option<Vec<u8>>,
    pub verbose: bool,
    /// Registry and service facts for the SCSIPORT personality.
    pub legacy: LegacyConfig,
    /// Disks, their PnP timing and the firmware variables (`docs/harness-disks.md`).
    pub machine: MachineConfig,
}

pub struct Kernel {
    pub cfg: KernelConfig,
    pub phys: Arc<PhysMem>,
    log: Mutex<Vec<String>>,
    failures: Mutex<Vec<String>>,
    pool: Mutex<HashMap<usize, PoolAlloc>>,
    maps: Mutex<HashMap<usize, IoMap>>,
    pub pool_calls: AtomicU64,
    pub map_calls: AtomicU64,
    /// 1-based index of the pool allocation / mapping to fail (0 = none).
    pub fail_pool_at: AtomicU64,
    pub fail_map_at: AtomicU64,
    /// Copy of the HW_INITIALIZATION_DATA passed to StorPortInitialize (its own size).
    pub init_data: Mutex<Option<Vec<u8>>>,
    pub srbs: SrbTable,
    pub device_extension: AtomicUsize,
    pub next_request: AtomicU64,
    pub max_map_bytes: AtomicU64,
    pub live_map_bytes: AtomicU64,
    pub peak_map_bytes: AtomicU64,
    pub pool_bytes: AtomicU64,
    pub peak_pool_bytes: AtomicU64,
    /// Fails the process on the first verifier failure (used by nothing by default).
    pub stop_on_failure: AtomicBool,
    /// Open registry handles (ZwOpenKey) and what they name.
    handles: Mutex<HashMap<usize, String>>,
    next_handle: AtomicUsize,
    /// What ScsiPortInitialize built (SCSIPORT calls HwFindAdapter from inside it).
    pub legacy_start: Mutex<Option<crate::emu::scsiport::Started>>,
    /// DriverEntry's DriverObject and RegistryPath, which the port initialisation must be given.
    pub entry_args: Mutex<(usize, usize)>,
    /// This kernel, for the threads it starts.
    me: Weak<Kernel>,
    dispatcher: sync::Dispatcher,
    objects: objects::Objects,
    io: disk::IoState,
    pnp: pnp::PnpState,
    sec: security::SecState,
    files: files::FileState,
    mdls: mdl::MdlState,
    /// Set once HwFreeAdapterResources returned: nothing may complete after that.
    pub adapter_removed: AtomicBool,
    /// How long an issuer waits for a pending SRB before calling it a hang (ms).
    pub srb_hang_ms: AtomicU64,
    /// RequestTimerCall: the HwTimer routine and when it is due.
    pub timer: Mutex<Option<(usize, std::time::Instant)>>,
}

/// How long a pending SRB may stay pending before it is a hang: 30 s (ASYNC.md), or
/// `RVBLK_HARNESS_SRB_HANG_MS` (for the harness's own tests of the hang check).
fn srb_hang_ms() -> u64 {
    std::env::var("RVBLK_HARNESS_SRB_HANG_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000)
}

static CURRENT: AtomicPtr<Kernel> = AtomicPtr::new(std::ptr::null_mut());
static SESSION: Mutex<()> = Mutex::new(());

pub fn current() -> &'static Kernel {
    let p = CURRENT.load(Ordering::Acquire);
    // A system thread the driver left running when its session ended (a legacy SCSIPORT
    // driver's worker lives until shutdown) finds its machine gone: it stops here for good
    // rather than calling into another session's kernel.
    if let Some(own) = sync::system_thread_kernel() {
        if !std::ptr::eq(own, p) {
            loop {
                std::thread::park();
            }
        }
    }
    if p.is_null() {
        eprintln!("rvblk-harness: a driver called into the kernel with no active session");
        std::process::abort();
    }
    // SAFETY: CURRENT is only non-null while `Active` keeps the Arc alive.
    unsafe { &*p }
}

/// Keeps a kernel installed as the process-global one; uninstalls on drop.
pub struct Active {
    pub k: Arc<Kernel>,
    _g: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Active {
    fn drop(&mut self) {
        CURRENT.store(std::ptr::null_mut(), Ordering::Release);
    }
}

impl Kernel {
    pub fn new(cfg: KernelConfig, phys: Arc<PhysMem>) -> Arc<Kernel> {
        Arc::new_cyclic(|me| Kernel {
            cfg,
            phys,
            log: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
            pool: Mutex::new(HashMap::new()),
            maps: Mutex::new(HashMap::new()),
            pool_calls: AtomicU64::new(0),
            map_calls: AtomicU64::new(0),
            fail_pool_at: AtomicU64::new(0),
            fail_map_at: AtomicU64::new(0),
            init_data: Mutex::new(None),
            srbs: SrbTable::default(),
            device_extension: AtomicUsize::new(0),
            next_request: AtomicU64::new(0),
            max_map_bytes: AtomicU64::new(0),
            live_map_bytes: AtomicU64::new(0),
            peak_map_bytes: AtomicU64::new(0),
            pool_bytes: AtomicU64::new(0),
            peak_pool_bytes: AtomicU64::new(0),
            stop_on_failure: AtomicBool::new(false),
            handles: Mutex::new(HashMap::new()),
            next_handle: AtomicUsize::new(1),
            legacy_start: Mutex::new(None),
            entry_args: Mutex::new((0, 0)),
            me: me.clone(),
            dispatcher: Default::default(),
            objects: Default::default(),
            io: Default::default(),
            pnp: Default::default(),
            sec: Default::default(),
            files: Default::default(),
            mdls: Default::default(),
            adapter_removed: AtomicBool::new(false),
            srb_hang_ms: AtomicU64::new(srb_hang_ms()),
            timer: Mutex::new(None),
        })
    }

    /// Installs this kernel as the process-global one (waits for any other session to end).
    pub fn activate(self: &Arc<Kernel>) -> Active {
        let g = SESSION.lock().unwrap_or_else(|e| e.into_inner());
        CURRENT.store(Arc::as_ptr(self) as *mut Kernel, Ordering::Release);
        crate::checks::crash::install();
        Active {
            k: self.clone(),
            _g: g,
        }
    }

    /// Whether this kernel is the active session's.
    pub fn is_active(&self) -> bool {
        std::ptr::eq(CURRENT.load(Ordering::Acquire), self)
    }

    pub fn fail(&self, msg: impl Into<String>) {
        let msg = msg.into();
        if self.cfg.verbose {
            eprintln!("VERIFIER: {msg}");
        }
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(msg);
        if self.stop_on_failure.load(Ordering::Relaxed) {
            crate::checks::crash::emergency_report("stopping at first verifier failure", false);
            std::process::exit(crate::checks::crash::CRASH_EXIT);
        }
    }

    pub fn failures(&self) -> Vec<String> {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn log_line(&self, s: String) {
        if self.cfg.verbose {
            eprintln!("[dbg] {s}");
        }
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(s);
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Outstanding pool allocations and mappings, as human-readable lines.
    pub fn leaks(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (p, a) in self.pool.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            out.push(format!(
                "pool allocation leaked: {p:p}, {} bytes, tag {:?}",
                a.size,
                tag_str(a.tag)
            ));
        }
        for (va, m) in self.maps.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            out.push(format!(
                "mapping leaked: MmMapIoSpace({:#x}, {:#x}) -> {va:p}",
                m.pa, m.size
            ));
        }
        out.extend(self.handle_leaks());
        out.extend(self.irp_leaks());
        out.extend(self.file_handle_leaks());
        out.extend(self.mdl_leaks());
        out.sort();
        out
    }

    /// What the asynchronous path must have released before removal returns: PnP
    /// registrations, object references and thread handles (`docs/harness-disks.md` §5).
    pub fn async_leaks(&self) -> Vec<String> {
        let mut out = self.pnp_leaks();
        out.extend(self.reference_leaks());
        out.sort();
        out
    }

    /// Ends the harness's own threads of this session (PnP, IRP completion) and forgets the
    /// objects it handed out.
    pub fn shutdown_async(&self) {
        self.stop_pnp();
        self.stop_io();
        self.drop_objects();
    }

    /// Registry handles still open, as human-readable lines.
    pub fn handle_leaks(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(h, key)| {
                format!("registry handle leaked: {h:#x} ({key}) never passed to ZwClose")
            })
            .collect();
        out.sort();
        out
    }

    /// Releases leaked pool/mappings (after reporting them).
    pub fn reclaim(&self) {
        self.drop_files();
        self.drop_mdls();
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        for (_, m) in self.maps.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            guard::unregister_guards(m.base as usize, m.base as usize + m.total);
            guard::unmap(m.base, m.total);
        }
    }
}

/// What a crash report shows of the active session: the verifier failures so far and the last
/// 20 log lines. Never blocks (the crash handler may interrupt a thread holding either lock), so
/// a part whose lock is held comes back empty.
pub(crate) fn crash_snapshot() -> (Vec<String>, Vec<String>) {
    let p = CURRENT.load(Ordering::Acquire);
    let mut fails = Vec::new();
    let mut log_tail = Vec::new();
    if !p.is_null() {
        // SAFETY: CURRENT points at a live kernel while a session is active.
        let k = unsafe { &*p };
        if let Ok(f) = k.failures.try_lock() {
            fails = f.clone();
        }
        if let Ok(l) = k.log.try_lock() {
            log_tail = l.iter().rev().take(20).rev().cloned().collect();
        }
    }
    (fails, log_tail)
}

impl Kernel {
    /// Starts the harness thread kept in `slot` (the IRP completion thread, the PnP thread)
    /// unless it already runs; it holds a strong reference to the kernel while it runs.
    pub(crate) fn spawn_once(
        &self,
        slot: &Mutex<Option<std::thread::JoinHandle<()>>>,
        name: &str,
        body: fn(&Kernel),
    ) {
        let mut w = slot.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_some() {
            return;
        }
        let Some(me) = self.me.upgrade() else {
            return;
        };
        *w = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(&me))
            .ok();
    }
}
