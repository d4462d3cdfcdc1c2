//! The emulated ntoskrnl/hal/storport/scsiport exports the driver imports, with per-thread IRQL,
//! pool, mapping and registry-handle tracking, fault injection and verifier checks. Exports have no context argument, so
//! the active `Kernel` is process-global (one session at a time, see `Kernel::activate`).

use crate::checks::guard::{self, GuardedBuf, PAGE};
use crate::emu::phys::PhysMem;
use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
use std::sync::{Arc, Mutex, RwLock};

pub const PASSIVE_LEVEL: u8 = 0;
pub const APC_LEVEL: u8 = 1;
pub const DISPATCH_LEVEL: u8 = 2;
/// Stand-in for a device IRQL (HwInitialize runs at DIRQL).
pub const DIRQL: u8 = 5;

pub const STATUS_SUCCESS: i32 = 0;
pub const STATUS_INVALID_PARAMETER: i32 = 0xC000_000D_u32 as i32;
pub const STATUS_INFO_LENGTH_MISMATCH: i32 = 0xC000_0004_u32 as i32;
pub const STATUS_INVALID_INFO_CLASS: i32 = 0xC000_0003_u32 as i32;
pub const STATUS_INVALID_HANDLE: i32 = 0xC000_0008_u32 as i32;
pub const STATUS_OBJECT_NAME_INVALID: i32 = 0xC000_0033_u32 as i32;
pub const STATUS_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034_u32 as i32;
pub const STATUS_BUFFER_OVERFLOW: i32 = 0x8000_0005_u32 as i32;
const REG_SZ: u32 = 1;
/// KEY_READ: all a driver that only reads its configuration needs.
const KEY_READ: u32 = 0x0002_0019;
use rvblk_abi::status::{STATUS_BUFFER_TOO_SMALL, STATUS_NOT_FOUND, STATUS_NO_SUCH_DEVICE};

/// A registry value of the emulated hive.
#[derive(Clone, Debug)]
pub enum RegValue {
    Dword(u32),
    Sz(String),
}

impl RegValue {
    /// (REG_* type, data bytes as the registry stores them).
    fn encode(&self) -> (u32, Vec<u8>) {
        match self {
            RegValue::Dword(v) => (rvblk_abi::REG_DWORD, v.to_le_bytes().to_vec()),
            RegValue::Sz(s) => (
                REG_SZ,
                s.encode_utf16()
                    .chain(std::iter::once(0))
                    .flat_map(u16::to_le_bytes)
                    .collect(),
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Personality {
    Win8,
    Win7,
    /// Windows XP/2003 SCSIPORT: a legacy (non-PnP) miniport, HwFindAdapter from inside
    /// ScsiPortInitialize, serialised HwStartIo, RequestComplete + NextRequest.
    Xp,
}

impl Personality {
    pub fn name(self) -> &'static str {
        match self {
            Personality::Win8 => "win8",
            Personality::Win7 => "win7",
            Personality::Xp => "xp",
        }
    }
    pub fn parse(s: &str) -> Option<Personality> {
        match s {
            "win8" | "win8+" | "win10" => Some(Personality::Win8),
            "win7" => Some(Personality::Win7),
            "xp" | "2003" | "scsiport" => Some(Personality::Xp),
            _ => None,
        }
    }
    /// The port driver this personality emulates.
    pub fn port(self) -> &'static str {
        match self {
            Personality::Xp => "SCSIPORT",
            _ => "StorPort",
        }
    }
}

/// Where Windows stands, as a boot driver sees it in the registry (`docs/driver.md` "Setup
/// mode"): `HKLM\System\Setup\SystemSetupInProgress` and the boot options the kernel records
/// in `HKLM\System\CurrentControlSet\Control\SystemStartOptions` before boot drivers start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupPhase {
    /// An installed system: the value exists and is 0.
    Installed,
    /// Text-mode setup: the setup hive has no `System\Setup` key at all.
    TextMode,
    /// GUI-mode setup: the value is 1.
    GuiMode,
    /// An XP-based PE (BartPE, LiveXP, UBCD4Win) booted `/MININT`: a hive derived from the
    /// setup hive, so no `System\Setup` key either, but `MININT` in the boot options. (The
    /// kernel's `Control\MiniNT` key appears only after boot drivers have started, so it is not
    /// emulated.)
    MiniNt,
}

impl SetupPhase {
    pub fn parse(s: &str) -> Option<SetupPhase> {
        match s {
            "installed" | "none" => Some(SetupPhase::Installed),
            "textmode" | "text" => Some(SetupPhase::TextMode),
            "guimode" | "gui" => Some(SetupPhase::GuiMode),
            "minint" | "pe" => Some(SetupPhase::MiniNt),
            _ => None,
        }
    }

    /// `SystemStartOptions` as the loader of this phase leaves it (the kernel stores the options
    /// without their slashes, after a leading space).
    fn start_options(self) -> &'static str {
        match self {
            SetupPhase::Installed | SetupPhase::GuiMode => " NOEXECUTE=OPTIN FASTDETECT",
            // setupldr's options from txtsetup.sif [SetupData] OsLoadOptions.
            SetupPhase::TextMode => " FASTDETECT NOGUIBOOT NODEBUG",
            SetupPhase::MiniNt => " MININT FASTDETECT",
        }
    }
}

/// What a legacy (SCSIPORT) miniport gets from its service configuration.
#[derive(Clone, Debug)]
pub struct LegacyConfig {
    pub setup: SetupPhase,
    /// `Parameters\Device\DriverParameter`, passed to HwFindAdapter as ArgumentString.
    pub argument_string: Option<String>,
    /// The service name (the last component of DriverEntry's RegistryPath).
    pub service: Option<String>,
}

impl Default for LegacyConfig {
    fn default() -> Self {
        LegacyConfig {
            setup: SetupPhase::Installed,
            argument_string: None,
            service: None,
        }
    }
}

thread_local! {
    static IRQL: Cell<u8> = const { Cell::new(PASSIVE_LEVEL) };
    /// Inside a miniport entry point the port called (ScsiPortNotification is only legal there).
    static IN_MINIPORT: Cell<bool> = const { Cell::new(false) };
    static TID: Cell<usize> = const { Cell::new(0) };
}
static NEXT_TID: AtomicUsize = AtomicUsize::new(1);

pub fn irql() -> u8 {
    IRQL.with(|c| c.get())
}

pub fn set_irql(l: u8) {
    IRQL.with(|c| c.set(l));
}

/// Runs `f` at IRQL `l` (restoring the previous level).
pub fn at_irql<R>(l: u8, f: impl FnOnce() -> R) -> R {
    let old = irql();
    set_irql(l);
    let r = f();
    set_irql(old);
    r
}

/// Runs `f` as a port-to-miniport call (HwStartIo, HwFindAdapter, ...).
pub fn in_miniport<R>(f: impl FnOnce() -> R) -> R {
    let old = IN_MINIPORT.with(|c| c.replace(true));
    let r = f();
    IN_MINIPORT.with(|c| c.set(old));
    r
}

fn tid() -> usize {
    TID.with(|t| {
        if t.get() == 0 {
            t.set(NEXT_TID.fetch_add(1, Ordering::Relaxed) * 2 + 1);
        }
        t.get()
    })
}

/// SRB states shared between the issuer and RequestComplete.
pub const SRB_IDLE: u8 = 0;
pub const SRB_IN_FLIGHT: u8 = 1;
pub const SRB_DONE: u8 = 2;

/// Per-SRB bookkeeping the notification handlers reach through the SRB address.
pub struct SrbTrack {
    pub state: AtomicU8,
    pub completions: AtomicU32,
    /// The real (mapped) data buffer, for StorPortGetSystemAddress.
    pub real_buf: AtomicUsize,
}

impl Default for SrbTrack {
    fn default() -> Self {
        SrbTrack {
            state: AtomicU8::new(SRB_IDLE),
            completions: AtomicU32::new(0),
            real_buf: AtomicUsize::new(0),
        }
    }
}

struct PoolAlloc {
    buf: GuardedBuf,
    size: usize,
    tag: u32,
    slack: usize,
}

struct IoMap {
    base: *mut u8,
    total: usize,
    pa: u64,
    size: usize,
}

// SAFETY: plain bookkeeping of a mapping owned by the kernel object.
unsafe impl Send for IoMap {}

pub struct KernelConfig {
    pub personality: Personality,
    /// Ranges the emulated OS manages as RAM (what MmGetPhysicalMemoryRanges returns).
    pub os_ram: Vec<(u64, u64)>,
    pub nfit: Option<Vec<u8>>,
    pub verbose: bool,
    /// Registry and service facts for the SCSIPORT personality.
    pub legacy: LegacyConfig,
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
    pub srbs: RwLock<HashMap<usize, Arc<SrbTrack>>>,
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
}

static CURRENT: AtomicPtr<Kernel> = AtomicPtr::new(std::ptr::null_mut());
static SESSION: Mutex<()> = Mutex::new(());

pub fn current() -> &'static Kernel {
    let p = CURRENT.load(Ordering::Acquire);
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
        Arc::new(Kernel {
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
            srbs: RwLock::new(HashMap::new()),
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
            emergency_report("stopping at first verifier failure", false);
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

    pub(crate) fn check_irql(&self, api: &str, max: u8) -> bool {
        let l = irql();
        if l > max {
            self.fail(format!(
                "{api} called at IRQL {l} (allowed: <= {max}){}",
                if api == "MmMapIoSpace" {
                    " [Driver Verifier bug check 0xC4/0x73]"
                } else {
                    ""
                }
            ));
            return false;
        }
        true
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
        out.sort();
        out
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

    // ---- pool ----

    fn pool_alloc(&self, pool_type: u32, size: usize, tag: u32, what: &str) -> *mut u8 {
        let n = self.pool_calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_pool_at.load(Ordering::SeqCst) == n {
            self.log_line(format!("[harness] fault injection: {what} #{n} fails"));
            return std::ptr::null_mut();
        }
        // Paged pool (odd types other than the Nx/session variants) must not be used at DISPATCH.
        if pool_type & 1 == 1 && irql() > APC_LEVEL {
            self.fail(format!(
                "{what}: paged pool (type {pool_type}) at IRQL {}",
                irql()
            ));
        }
        let align = if cfg!(target_pointer_width = "64") {
            16
        } else {
            8
        };
        let rounded = guard::round_up(size.max(1), align);
        let buf = GuardedBuf::new(
            rounded,
            &format!("pool allocation of {size} bytes (tag {:?})", tag_str(tag)),
        );
        let p = buf.tail(rounded);
        // SAFETY: `p..p+rounded` is writable; fill with garbage like a fresh pool block and
        // mark the alignment slack so overruns into it are found at free time.
        unsafe { std::ptr::write_bytes(p, 0xC5, size) };
        // SAFETY: as above, the slack after the `size` bytes.
        unsafe { std::ptr::write_bytes(p.wrapping_add(size), 0xAB, rounded - size) };
        let total = self.pool_bytes.fetch_add(size as u64, Ordering::Relaxed) + size as u64;
        self.peak_pool_bytes.fetch_max(total, Ordering::Relaxed);
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).insert(
            p as usize,
            PoolAlloc {
                buf,
                size,
                tag,
                slack: rounded - size,
            },
        );
        p
    }

    fn pool_free(&self, p: *mut u8, tag: u32) {
        if p.is_null() {
            self.fail("ExFreePoolWithTag(NULL) [bug check 0xC2]");
            return;
        }
        let a = self
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(p as usize));
        match a {
            None => self.fail(format!(
                "ExFreePoolWithTag({p:p}) of memory that is not an outstanding pool allocation (double free or wild pointer) [bug check 0xC2/0xC4]"
            )),
            Some(a) => {
                if tag != 0 && tag != a.tag {
                    self.fail(format!(
                        "ExFreePoolWithTag({p:p}, {:?}) but allocated with tag {:?}",
                        tag_str(tag),
                        tag_str(a.tag)
                    ));
                }
                // SAFETY: the slack lies inside the allocation's accessible pages.
                let slack = unsafe { std::slice::from_raw_parts(p.wrapping_add(a.size), a.slack) };
                if slack.iter().any(|&b| b != 0xAB) {
                    self.fail(format!(
                        "pool block {p:p} ({} bytes) was overrun (alignment slack modified) [bug check 0xC1]",
                        a.size
                    ));
                }
                self.pool_bytes.fetch_sub(a.size as u64, Ordering::Relaxed);
                let _ = a.buf.label();
            }
        }
    }

    // ---- mappings ----

    fn map_io(&self, pa: i64, size: usize, cache: u32) -> *mut u8 {
        let n = self.map_calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.check_irql("MmMapIoSpace", DISPATCH_LEVEL);
        if self.fail_map_at.load(Ordering::SeqCst) == n {
            self.log_line(format!(
                "[harness] fault injection: MmMapIoSpace #{n} fails"
            ));
            return std::ptr::null_mut();
        }
        if size == 0 || pa < 0 {
            self.fail(format!(
                "MmMapIoSpace({pa:#x}, {size:#x}): invalid arguments"
            ));
            return std::ptr::null_mut();
        }
        if cache > 2 {
            self.fail(format!("MmMapIoSpace: invalid MEMORY_CACHING_TYPE {cache}"));
        }
        let pa = pa as u64;
        let end = pa.saturating_add(size as u64);
        for &(b, l) in &self.cfg.os_ram {
            let (s, e) = (b.max(0x10_0000), b + l);
            if pa < e && end > s {
                let ov = pa.max(s);
                self.fail(format!(
                    "MmMapIoSpace({pa:#x}, {size:#x}) maps RAM managed by the OS (range {b:#x}+{l:#x}, first page {ov:#x}) [bug check 0x1A/0x1233; Driver Verifier 0xC4/0x83]"
                ));
                return std::ptr::null_mut();
            }
        }
        if end > self.phys.size() {
            self.log_line(format!(
                "[harness] MmMapIoSpace({pa:#x}, {size:#x}) beyond emulated physical memory ({:#x}): returning NULL",
                self.phys.size()
            ));
            return std::ptr::null_mut();
        }
        let off = (pa % PAGE as u64) as usize;
        let pages_len = guard::round_up(off + size, PAGE);
        let total = pages_len + 2 * PAGE;
        let base = guard::reserve(total);
        // SAFETY: inside the reservation.
        let win = unsafe { base.add(PAGE) };
        if let Err(e) = self.phys.map_at(win, pa - off as u64, pages_len) {
            guard::unmap(base, total);
            self.log_line(format!("[harness] MmMapIoSpace failed: {e}"));
            return std::ptr::null_mut();
        }
        let label = format!("MmMapIoSpace({pa:#x}, {size:#x})");
        guard::register_guard(base as usize, PAGE, &format!("guard page before {label}"));
        guard::register_guard(
            win as usize + pages_len,
            PAGE,
            &format!("guard page after {label}"),
        );
        // SAFETY: inside the window.
        let va = unsafe { win.add(off) };
        let live = self
            .live_map_bytes
            .fetch_add(size as u64, Ordering::Relaxed)
            + size as u64;
        self.peak_map_bytes.fetch_max(live, Ordering::Relaxed);
        self.max_map_bytes.fetch_max(size as u64, Ordering::Relaxed);
        self.maps.lock().unwrap_or_else(|e| e.into_inner()).insert(
            va as usize,
            IoMap {
                base,
                total,
                pa,
                size,
            },
        );
        va
    }

    fn unmap_io(&self, va: *mut u8, size: usize) {
        // Microsoft's DDI page for MmUnmapIoSpace gives IRQL <= DISPATCH_LEVEL (the spec's
        // "0xC4/0x7B above APC_LEVEL" has no primary source behind it).
        self.check_irql("MmUnmapIoSpace", DISPATCH_LEVEL);
        let m = self
            .maps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(va as usize));
        match m {
            None => self.fail(format!(
                "MmUnmapIoSpace({va:p}, {size:#x}): not a live MmMapIoSpace result"
            )),
            Some(m) => {
                if m.size != size {
                    self.fail(format!(
                        "MmUnmapIoSpace({va:p}, {size:#x}): mapped with size {:#x}",
                        m.size
                    ));
                }
                self.live_map_bytes
                    .fetch_sub(m.size as u64, Ordering::Relaxed);
                guard::unregister_guards(m.base as usize, m.base as usize + m.total);
                guard::unmap(m.base, m.total);
            }
        }
    }

    fn physical_memory_ranges(&self) -> *mut u8 {
        self.check_irql("MmGetPhysicalMemoryRanges", PASSIVE_LEVEL);
        let n = self.cfg.os_ram.len() + 1;
        let p = self.pool_alloc(
            0,
            n * 16,
            u32::from_le_bytes(*b"MmPh"),
            "MmGetPhysicalMemoryRanges",
        );
        if p.is_null() {
            return p;
        }
        for (i, &(b, l)) in self
            .cfg
            .os_ram
            .iter()
            .chain(std::iter::once(&(0, 0)))
            .enumerate()
        {
            // SAFETY: `p` has room for `n` 16-byte entries.
            unsafe { std::ptr::write_unaligned(p.wrapping_add(i * 16) as *mut u64, b) };
            // SAFETY: as above.
            unsafe { std::ptr::write_unaligned(p.wrapping_add(i * 16 + 8) as *mut u64, l) };
        }
        p
    }

    fn query_system_information(&self, class: u32, buf: *mut u8, len: u32, ret: *mut u32) -> i32 {
        self.check_irql("ZwQuerySystemInformation", PASSIVE_LEVEL);
        // SystemFirmwareTableInformation arrived with Server 2003 SP1 / XP x64; 32-bit XP, the
        // main SCSIPORT target, rejects it (so no NFIT there).
        if class != rvblk_abi::SYSTEM_FIRMWARE_TABLE_INFORMATION_CLASS
            || self.cfg.personality == Personality::Xp
        {
            self.log_line(format!(
                "[harness] ZwQuerySystemInformation class {class} not emulated"
            ));
            return STATUS_INVALID_INFO_CLASS;
        }
        if buf.is_null() || len < 16 {
            return STATUS_INFO_LENGTH_MISMATCH;
        }
        // SAFETY: the caller passes `len >= 16` bytes at `buf`.
        let hdr = unsafe { std::slice::from_raw_parts_mut(buf, len as usize) };
        let rd = |o: usize| u32::from_le_bytes(hdr[o..o + 4].try_into().unwrap());
        let (prov, action, id) = (rd(0), rd(4), rd(8));
        if prov != rvblk_abi::FIRMWARE_PROVIDER_ACPI || action != rvblk_abi::FIRMWARE_TABLE_GET {
            self.log_line(format!(
                "[harness] firmware table query provider {prov:#x} action {action} not emulated"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        let table = if id == rvblk_abi::ACPI_TABLE_NFIT {
            self.cfg.nfit.as_ref()
        } else {
            None
        };
        let Some(t) = table else {
            return STATUS_NOT_FOUND;
        };
        let need = 16 + t.len() as u32;
        hdr[12..16].copy_from_slice(&(t.len() as u32).to_le_bytes());
        if !ret.is_null() {
            // SAFETY: caller-provided out pointer.
            unsafe { ret.write_unaligned(need) };
        }
        if len < need {
            return STATUS_BUFFER_TOO_SMALL;
        }
        hdr[16..16 + t.len()].copy_from_slice(t);
        STATUS_SUCCESS
    }

    fn dbg_print(&self, fmt: *const u8, args: &[usize]) {
        let f = cstr(fmt);
        let mut out = String::new();
        let mut it = args.iter();
        let mut chars = f.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let mut spec = String::new();
            while let Some(&n) = chars.peek() {
                chars.next();
                spec.push(n);
                if n.is_ascii_alphabetic() && !matches!(n, 'l' | 'h' | 'I') || n == '%' {
                    break;
                }
            }
            let conv = spec.chars().last().unwrap_or('%');
            let wide = spec.contains("ll") || spec.contains("I64");
            let mut next = || *it.next().unwrap_or(&0);
            let num = |lo: usize, hi: Option<usize>| -> u64 {
                match hi {
                    Some(h) if cfg!(target_pointer_width = "32") => lo as u64 | (h as u64) << 32,
                    _ => lo as u64,
                }
            };
            match conv {
                '%' => out.push('%'),
                's' => out.push_str(&cstr(next() as *const u8)),
                'c' => out.push(next() as u8 as char),
                'd' | 'i' | 'u' | 'x' | 'X' | 'p' => {
                    let lo = next();
                    let hi = if wide { Some(next()) } else { None };
                    let v = num(lo, hi);
                    match conv {
                        'd' | 'i' => {
                            if wide || cfg!(target_pointer_width = "32") {
                                out.push_str(&(v as i64).to_string())
                            } else {
                                out.push_str(&(v as i32).to_string())
                            }
                        }
                        'u' => out.push_str(&v.to_string()),
                        _ => out.push_str(&format!("{v:x}")),
                    }
                }
                _ => {
                    out.push('%');
                    out.push_str(&spec);
                }
            }
        }
        for line in out.split('\n').filter(|l| !l.is_empty()) {
            self.log_line(line.trim_end_matches('\r').to_string());
        }
    }

    // ---- registry (ZwOpenKey / ZwQueryValueKey / ZwClose) ----

    /// The values of an emulated registry key (names as given, compared case-insensitively),
    /// or None when the key does not exist.
    fn registry_key(&self, path: &str) -> Option<Vec<(&'static str, RegValue)>> {
        let lower = path.trim_end_matches('\\').to_ascii_lowercase();
        let services = "\\registry\\machine\\system\\currentcontrolset\\services\\";
        let service = self.service_name().to_ascii_lowercase();
        if lower == "\\registry\\machine\\system\\setup" {
            return match self.cfg.legacy.setup {
                SetupPhase::TextMode | SetupPhase::MiniNt => None,
                SetupPhase::Installed => Some(vec![("SystemSetupInProgress", RegValue::Dword(0))]),
                SetupPhase::GuiMode => Some(vec![("SystemSetupInProgress", RegValue::Dword(1))]),
            };
        }
        if lower == "\\registry\\machine\\system\\currentcontrolset\\control" {
            return Some(vec![(
                "SystemStartOptions",
                RegValue::Sz(self.cfg.legacy.setup.start_options().into()),
            )]);
        }
        let rest = lower.strip_prefix(services)?;
        if rest == service || rest == format!("{service}\\parameters") {
            return Some(Vec::new());
        }
        if rest == format!("{service}\\parameters\\device") {
            let mut v = vec![
                ("NumberOfRequests", RegValue::Dword(0xff)),
                ("MaximumSGList", RegValue::Dword(0xff)),
            ];
            if let Some(a) = &self.cfg.legacy.argument_string {
                v.push(("DriverParameter", RegValue::Sz(a.clone())));
            }
            return Some(v);
        }
        None
    }

    /// The driver's service name (the key DriverEntry's RegistryPath names).
    pub fn service_name(&self) -> String {
        match (&self.cfg.legacy.service, self.cfg.personality) {
            (Some(s), _) => s.clone(),
            (None, Personality::Xp) => "rvblkxp".into(),
            (None, _) => "rvblk".into(),
        }
    }

    fn open_key(
        &self,
        out: *mut usize,
        access: u32,
        oa: *const rvblk_abi::ObjectAttributes,
    ) -> i32 {
        self.check_irql("ZwOpenKey", PASSIVE_LEVEL);
        if out.is_null() || oa.is_null() {
            self.fail("ZwOpenKey with a NULL KeyHandle or ObjectAttributes");
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: non-null OBJECT_ATTRIBUTES from the driver.
        let a = unsafe { oa.read_unaligned() };
        if a.length as usize != std::mem::size_of::<rvblk_abi::ObjectAttributes>() {
            self.fail(format!(
                "ZwOpenKey: OBJECT_ATTRIBUTES.Length {} (expected {})",
                a.length,
                std::mem::size_of::<rvblk_abi::ObjectAttributes>()
            ));
            return STATUS_INVALID_PARAMETER;
        }
        let Some(name) = self.unicode(a.object_name, "ZwOpenKey ObjectName") else {
            return STATUS_OBJECT_NAME_INVALID;
        };
        if !a.root_directory.is_null() {
            self.log_line(format!(
                "[harness] ZwOpenKey relative to a root handle is not emulated ({name})"
            ));
            return STATUS_OBJECT_NAME_NOT_FOUND;
        }
        if a.attributes & rvblk_abi::OBJ_KERNEL_HANDLE == 0 {
            self.log_line(format!(
                "[harness] ZwOpenKey({name}) without OBJ_KERNEL_HANDLE: the handle is reachable from the current process"
            ));
        }
        if access & !KEY_READ != 0 {
            self.fail(format!(
                "ZwOpenKey({name}) asks for access {access:#x}: more than KEY_READ for a key the driver only reads"
            ));
        }
        if self.registry_key(&name).is_none() {
            return STATUS_OBJECT_NAME_NOT_FOUND;
        }
        // Kernel handles have the top bit set.
        let n = self.next_handle.fetch_add(1, Ordering::Relaxed);
        let h = (usize::MAX << (usize::BITS - 1)) | (n << 2);
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(h, name);
        // SAFETY: non-null HANDLE out-pointer from the driver.
        unsafe { out.write_unaligned(h) };
        STATUS_SUCCESS
    }

    fn query_value_key(
        &self,
        h: usize,
        name: *const rvblk_abi::UnicodeString,
        class: u32,
        info: *mut u8,
        len: u32,
        ret: *mut u32,
    ) -> i32 {
        self.check_irql("ZwQueryValueKey", PASSIVE_LEVEL);
        let key = self
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&h)
            .cloned();
        let Some(key) = key else {
            self.fail(format!(
                "ZwQueryValueKey with handle {h:#x}, which is not an open key [bug check 0x93]"
            ));
            return STATUS_INVALID_HANDLE;
        };
        if ret.is_null() {
            self.fail("ZwQueryValueKey with a NULL ResultLength (it is not optional)");
            return STATUS_INVALID_PARAMETER;
        }
        let Some(value) = self.unicode(name, "ZwQueryValueKey ValueName") else {
            return STATUS_OBJECT_NAME_INVALID;
        };
        if class != rvblk_abi::KEY_VALUE_PARTIAL_INFORMATION {
            self.log_line(format!(
                "[harness] ZwQueryValueKey information class {class} not emulated"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        let values = self.registry_key(&key).unwrap_or_default();
        let Some((_, v)) = values.iter().find(|(n, _)| n.eq_ignore_ascii_case(&value)) else {
            return STATUS_OBJECT_NAME_NOT_FOUND;
        };
        let (ty, data) = v.encode();
        let need = 12 + data.len() as u32;
        // SAFETY: non-null ULONG out-pointer.
        unsafe { ret.write_unaligned(need) };
        if info.is_null() || len < 12 {
            return STATUS_BUFFER_TOO_SMALL;
        }
        // SAFETY: the caller passes `len` writable bytes at `info`.
        let out = unsafe { std::slice::from_raw_parts_mut(info, len as usize) };
        out[0..4].copy_from_slice(&0u32.to_le_bytes());
        out[4..8].copy_from_slice(&ty.to_le_bytes());
        out[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        if len < need {
            return STATUS_BUFFER_OVERFLOW;
        }
        out[12..need as usize].copy_from_slice(&data);
        STATUS_SUCCESS
    }

    fn close(&self, h: usize) -> i32 {
        self.check_irql("ZwClose", PASSIVE_LEVEL);
        if self
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&h)
            .is_none()
        {
            self.fail(format!(
                "ZwClose({h:#x}): not an open handle (double close?) [bug check 0x93 INVALID_KERNEL_HANDLE]"
            ));
            return STATUS_INVALID_HANDLE;
        }
        STATUS_SUCCESS
    }

    /// Reads a driver-supplied UNICODE_STRING, failing on malformed ones.
    fn unicode(&self, p: *const rvblk_abi::UnicodeString, what: &str) -> Option<String> {
        if p.is_null() {
            self.fail(format!("{what}: NULL UNICODE_STRING"));
            return None;
        }
        // SAFETY: non-null UNICODE_STRING from the driver.
        let u = unsafe { p.read_unaligned() };
        if u.length % 2 != 0 || u.length > u.maximum_length || u.buffer.is_null() {
            self.fail(format!(
                "{what}: malformed UNICODE_STRING (Length {}, MaximumLength {}, Buffer {:p})",
                u.length, u.maximum_length, u.buffer
            ));
            return None;
        }
        // SAFETY: `Length` bytes of UTF-16 at `Buffer` (UNICODE_STRING contract).
        let units = unsafe { std::slice::from_raw_parts(u.buffer, usize::from(u.length) / 2) };
        Some(String::from_utf16_lossy(units))
    }

    /// The port's initialisation must get DriverEntry's own two arguments.
    pub(crate) fn check_entry_args(&self, api: &str, drv: *mut c_void, reg: *mut c_void) {
        let (d, r) = *self.entry_args.lock().unwrap_or_else(|e| e.into_inner());
        if (drv as usize, reg as usize) != (d, r) {
            self.fail(format!(
                "{api}(DriverObject {drv:p}, RegistryPath {reg:p}): not the {d:#x}/{r:#x} DriverEntry received"
            ));
        }
    }

    // ---- storport ----

    fn storport_initialize(
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

    fn notification(&self, port: &str, ty: u32, ext: usize, args: [usize; 3]) {
        let a1 = args[0];
        use rvblk_abi::notification::*;
        let de = self.device_extension.load(Ordering::Relaxed);
        if ext != de {
            self.fail(format!(
                "{port}Notification({ty}) with HwDeviceExtension {ext:#x}, expected {de:#x}"
            ));
        }
        if self.cfg.personality == Personality::Xp && !IN_MINIPORT.with(|c| c.get()) {
            self.fail(format!(
                "{port}Notification({ty}) outside a miniport entry point (SCSIPORT allows it only in HwStartIo, HwInterrupt, HwTimer, ...)"
            ));
        }
        match ty {
            REQUEST_COMPLETE => {
                if irql() > DISPATCH_LEVEL {
                    self.fail(format!("RequestComplete at IRQL {}", irql()));
                }
                let t = self
                    .srbs
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&a1)
                    .cloned();
                match t {
                    None => self.fail(format!(
                        "{port}Notification(RequestComplete) for {a1:#x}, which is not an SRB the port issued"
                    )),
                    Some(t) => {
                        let n = t.completions.fetch_add(1, Ordering::SeqCst) + 1;
                        match t.state.compare_exchange(
                            SRB_IN_FLIGHT,
                            SRB_DONE,
                            Ordering::SeqCst,
                            Ordering::SeqCst,
                        ) {
                            Ok(_) => {}
                            Err(SRB_DONE) => self.fail(format!(
                                "SRB {a1:#x} completed twice (RequestComplete #{n}) [{port} would bug check / corrupt the IRP]"
                            )),
                            Err(_) => self.fail(format!(
                                "RequestComplete for SRB {a1:#x}, which is not outstanding"
                            )),
                        }
                    }
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
            _ => self.log_line(format!("[harness] {port}Notification type {ty:#x} ignored")),
        }
    }

    fn extended_function(&self, code: u32, ext: usize, a1: usize, a2: usize) -> u32 {
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
        let t = self
            .srbs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&a1)
            .cloned();
        let Some(t) = t else {
            self.fail(format!(
                "StorPortGetSystemAddress for {a1:#x}, not an SRB the port issued"
            ));
            return stor_status::INVALID_PARAMETER;
        };
        if t.state.load(Ordering::SeqCst) != SRB_IN_FLIGHT {
            self.fail(format!(
                "StorPortGetSystemAddress for SRB {a1:#x} that is not outstanding"
            ));
        }
        if a2 == 0 {
            self.fail("StorPortGetSystemAddress with a NULL output pointer");
            return stor_status::INVALID_PARAMETER;
        }
        let real = t.real_buf.load(Ordering::SeqCst);
        // SAFETY: caller-provided out pointer (PVOID*).
        unsafe { (a2 as *mut usize).write_unaligned(real) };
        if real == 0 {
            return stor_status::UNSUCCESSFUL;
        }
        stor_status::SUCCESS
    }

    // ---- spin locks ----

    fn acquire(&self, lock: *mut usize) -> u8 {
        let old = irql();
        if old > DISPATCH_LEVEL {
            self.fail(format!("spin lock acquired at IRQL {old}"));
        }
        set_irql(DISPATCH_LEVEL);
        // SAFETY: a KSPIN_LOCK is a pointer-sized, pointer-aligned word in driver memory.
        let a = unsafe { &*(lock as *const AtomicUsize) };
        let me = tid();
        if a.load(Ordering::Relaxed) == me {
            self.fail(format!(
                "spin lock {lock:p} acquired recursively (deadlock on Windows)"
            ));
            return old;
        }
        let start = std::time::Instant::now();
        let mut spins = 0u32;
        while a
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins.is_multiple_of(1024) {
                std::thread::yield_now();
                if start.elapsed().as_secs() > 20 {
                    emergency_report(
                        &format!("spin lock {lock:p} held for over 20 s (deadlock)"),
                        crate::checks::crash::JSON.load(Ordering::Relaxed),
                    );
                    // SAFETY: immediate exit after a deadlock.
                    unsafe { libc::_exit(crate::checks::crash::CRASH_EXIT) };
                }
            }
            std::hint::spin_loop();
        }
        old
    }

    fn release(&self, lock: *mut usize, old: u8) {
        // SAFETY: as in `acquire`.
        let a = unsafe { &*(lock as *const AtomicUsize) };
        let me = tid();
        let v = a.load(Ordering::Relaxed);
        if v != me {
            self.fail(format!(
                "spin lock {lock:p} released by a thread that does not hold it (value {v:#x})"
            ));
        }
        a.store(0, Ordering::Release);
        if old > irql() {
            self.fail(format!(
                "KeReleaseSpinLock lowers to IRQL {old} > current {}",
                irql()
            ));
        }
        set_irql(old);
    }
}

pub fn tag_str(t: u32) -> String {
    t.to_le_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
        .collect()
}

fn cstr(p: *const u8) -> String {
    if p.is_null() {
        return "(null)".into();
    }
    // SAFETY: the driver passes NUL-terminated strings.
    let s = unsafe { std::ffi::CStr::from_ptr(p as *const std::ffi::c_char) };
    String::from_utf8_lossy(s.to_bytes()).into_owned()
}

/// Printed from the crash handler / watchdog: all failures so far plus `msg`.
pub fn emergency_report(msg: &str, json: bool) {
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
    fails.push(msg.to_string());
    if json {
        println!("{}", rvblk_report::Report::failed(fails.clone()).to_json());
    }
    for l in &log_tail {
        eprintln!("  log: {l}");
    }
    for f in &fails {
        eprintln!("VERIFIER FAILURE: {f}");
    }
}

// ======== ABI wrappers ========

macro_rules! sysfn {
    ($(fn $name:ident($($a:ident: $t:ty),*) $(-> $r:ty)? $body:block)*) => {$(
        #[cfg(target_arch = "x86_64")]
        extern "win64" fn $name($($a: $t),*) $(-> $r)? $body
        #[cfg(target_arch = "x86")]
        extern "stdcall" fn $name($($a: $t),*) $(-> $r)? {
            crate::emu::stack::realigned(|| $body)
        }
        aarch64_sysfn!(fn $name($($a: $t),*) $(-> $r)? $body);
    )*};
}

/// arm64: one calling convention for all exports (variadic ones included: `docs/arm64.md` §3),
/// reached through an x18-preserving thunk.
#[cfg(target_arch = "aarch64")]
macro_rules! aarch64_sysfn {
    (fn $name:ident($($a:ident: $t:ty),*) $(-> $r:ty)? $body:block) => {
        #[allow(non_snake_case)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            pub(super) extern "C" fn imp($($a: $t),*) $(-> $r)? $body
        }
        crate::aarch64_export!($name, $name::imp);
    };
}

#[cfg(not(target_arch = "aarch64"))]
macro_rules! aarch64_sysfn {
    ($($t:tt)*) => {};
}

macro_rules! cdeclfn {
    ($(fn $name:ident($($a:ident: $t:ty),*) $(-> $r:ty)? $body:block)*) => {$(
        #[cfg(target_arch = "x86_64")]
        extern "win64" fn $name($($a: $t),*) $(-> $r)? $body
        #[cfg(target_arch = "x86")]
        extern "C" fn $name($($a: $t),*) $(-> $r)? {
            crate::emu::stack::realigned(|| $body)
        }
        aarch64_sysfn!(fn $name($($a: $t),*) $(-> $r)? $body);
    )*};
}

sysfn! {
    fn storport_initialize(drv: *mut c_void, reg: *mut c_void, init: *const u8, ctx: *mut c_void) -> u32 {
        current().storport_initialize(drv, reg, init, ctx)
    }
    fn mm_map_io_space(pa: i64, size: usize, cache: u32) -> *mut u8 {
        current().map_io(pa, size, cache)
    }
    fn mm_unmap_io_space(va: *mut u8, size: usize) {
        current().unmap_io(va, size)
    }
    fn mm_get_physical_memory_ranges() -> *mut u8 {
        current().physical_memory_ranges()
    }
    fn ex_allocate_pool_with_tag(ty: u32, size: usize, tag: u32) -> *mut u8 {
        let k = current();
        let max = if ty & 1 == 1 { APC_LEVEL } else { DISPATCH_LEVEL };
        k.check_irql("ExAllocatePoolWithTag", max);
        k.pool_alloc(ty, size, tag, "ExAllocatePoolWithTag")
    }
    fn ex_free_pool_with_tag(p: *mut u8, tag: u32) {
        let k = current();
        k.check_irql("ExFreePoolWithTag", DISPATCH_LEVEL);
        k.pool_free(p, tag)
    }
    fn ex_free_pool(p: *mut u8) {
        let k = current();
        k.check_irql("ExFreePool", DISPATCH_LEVEL);
        k.pool_free(p, 0)
    }
    fn zw_query_system_information(class: u32, buf: *mut u8, len: u32, ret: *mut u32) -> i32 {
        current().query_system_information(class, buf, len, ret)
    }
    fn zw_open_key(out: *mut usize, access: u32, oa: *const rvblk_abi::ObjectAttributes) -> i32 {
        current().open_key(out, access, oa)
    }
    fn zw_query_value_key(h: usize, name: *const rvblk_abi::UnicodeString, class: u32, info: *mut u8, len: u32, ret: *mut u32) -> i32 {
        current().query_value_key(h, name, class, info, len, ret)
    }
    fn zw_close(h: usize) -> i32 {
        current().close(h)
    }
    fn scsi_port_initialize(drv: *mut c_void, reg: *mut c_void, init: *const u8, ctx: *mut c_void) -> u32 {
        crate::emu::scsiport::initialize(current(), drv, reg, init, ctx) as u32
    }
    fn ke_get_current_irql() -> u8 {
        irql()
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
sysfn! {
    fn ke_acquire_spin_lock_raise_to_dpc(lock: *mut usize) -> u8 {
        current().acquire(lock)
    }
    fn ke_release_spin_lock(lock: *mut usize, old: u8) {
        current().release(lock, old)
    }
}

#[cfg(target_arch = "x86")]
extern "fastcall" fn kf_acquire_spin_lock(lock: *mut usize) -> u8 {
    crate::emu::stack::realigned(|| current().acquire(lock))
}

#[cfg(target_arch = "x86")]
extern "fastcall" fn kf_release_spin_lock(lock: *mut usize, old: u8) {
    crate::emu::stack::realigned(|| current().release(lock, old))
}

cdeclfn! {
    fn storport_notification(ty: u32, ext: usize, a1: usize, a2: usize, a3: usize) {
        current().notification("StorPort", ty, ext, [a1, a2, a3])
    }
    fn scsi_port_notification(ty: u32, ext: usize, a1: usize, a2: usize, a3: usize) {
        current().notification("ScsiPort", ty, ext, [a1, a2, a3])
    }
    fn storport_extended_function(code: u32, ext: usize, a1: usize, a2: usize, a3: usize) -> u32 {
        let _ = a3;
        current().extended_function(code, ext, a1, a2)
    }
    fn dbg_print(fmt: *const u8, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize, a6: usize, a7: usize) -> i32 {
        current().dbg_print(fmt, &[a1, a2, a3, a4, a5, a6, a7]);
        STATUS_SUCCESS
    }
    fn k_memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
        // SAFETY: memcpy contract: the driver passes valid, non-overlapping ranges.
        unsafe { std::ptr::copy_nonoverlapping(s, d, n) };
        d
    }
    fn k_memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
        // SAFETY: memmove contract: valid ranges, overlap allowed.
        unsafe { std::ptr::copy(s, d, n) };
        d
    }
    fn k_memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
        // SAFETY: memset contract: `d..d+n` is writable.
        unsafe { std::ptr::write_bytes(d, c as u8, n) };
        d
    }
    fn k_memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: memcmp contract: both ranges are readable.
        let x = unsafe { std::slice::from_raw_parts(a, n) };
        // SAFETY: as above.
        let y = unsafe { std::slice::from_raw_parts(b, n) };
        match x.cmp(y) {
            std::cmp::Ordering::Less => -1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => 1,
        }
    }
}

#[cfg(target_arch = "x86")]
mod x86_helpers {
    // 64-bit arithmetic helpers of the MSVC x86 runtime: both operands on the stack, callee
    // pops them, result in edx:eax (exactly `extern "stdcall" fn(u64, u64) -> u64`).
    pub extern "stdcall" fn aulldiv(a: u64, b: u64) -> u64 {
        a / b
    }
    pub extern "stdcall" fn aullrem(a: u64, b: u64) -> u64 {
        a % b
    }
    pub extern "stdcall" fn alldiv(a: i64, b: i64) -> i64 {
        a.wrapping_div(b)
    }
    pub extern "stdcall" fn allrem(a: i64, b: i64) -> i64 {
        a.wrapping_rem(b)
    }
    pub extern "stdcall" fn allmul(a: u64, b: u64) -> u64 {
        a.wrapping_mul(b)
    }
}

/// Address of the harness implementation of `dll!name` (dll lower-case).
pub fn resolve(dll: &str, name: &str) -> Option<usize> {
    let f: usize = match (dll, name) {
        ("storport.sys", "StorPortInitialize") => storport_initialize as *const () as usize,
        ("storport.sys", "StorPortNotification") => storport_notification as *const () as usize,
        ("storport.sys", "StorPortExtendedFunction") => {
            storport_extended_function as *const () as usize
        }
        ("scsiport.sys", "ScsiPortInitialize") => scsi_port_initialize as *const () as usize,
        ("scsiport.sys", "ScsiPortNotification") => scsi_port_notification as *const () as usize,
        ("ntoskrnl.exe", "ZwOpenKey") => zw_open_key as *const () as usize,
        ("ntoskrnl.exe", "ZwQueryValueKey") => zw_query_value_key as *const () as usize,
        ("ntoskrnl.exe", "ZwClose") => zw_close as *const () as usize,
        ("ntoskrnl.exe", "MmMapIoSpace") => mm_map_io_space as *const () as usize,
        ("ntoskrnl.exe", "MmUnmapIoSpace") => mm_unmap_io_space as *const () as usize,
        ("ntoskrnl.exe", "MmGetPhysicalMemoryRanges") => {
            mm_get_physical_memory_ranges as *const () as usize
        }
        ("ntoskrnl.exe", "ExAllocatePoolWithTag") => {
            ex_allocate_pool_with_tag as *const () as usize
        }
        ("ntoskrnl.exe", "ExFreePoolWithTag") => ex_free_pool_with_tag as *const () as usize,
        ("ntoskrnl.exe", "ExFreePool") => ex_free_pool as *const () as usize,
        ("ntoskrnl.exe", "DbgPrint") => dbg_print as *const () as usize,
        ("ntoskrnl.exe", "ZwQuerySystemInformation") => {
            zw_query_system_information as *const () as usize
        }
        ("ntoskrnl.exe", "memcpy") => k_memcpy as *const () as usize,
        ("ntoskrnl.exe", "memmove") => k_memmove as *const () as usize,
        ("ntoskrnl.exe", "memset") => k_memset as *const () as usize,
        ("ntoskrnl.exe", "memcmp") => k_memcmp as *const () as usize,
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        ("ntoskrnl.exe", "KeGetCurrentIrql") => ke_get_current_irql as *const () as usize,
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        ("ntoskrnl.exe", "KeAcquireSpinLockRaiseToDpc") => {
            ke_acquire_spin_lock_raise_to_dpc as *const () as usize
        }
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        ("ntoskrnl.exe", "KeReleaseSpinLock") => ke_release_spin_lock as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("hal.dll", "KeGetCurrentIrql") => ke_get_current_irql as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("hal.dll", "KfAcquireSpinLock") => kf_acquire_spin_lock as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("hal.dll", "KfReleaseSpinLock") => kf_release_spin_lock as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("ntoskrnl.exe", "_aulldiv") => x86_helpers::aulldiv as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("ntoskrnl.exe", "_aullrem") => x86_helpers::aullrem as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("ntoskrnl.exe", "_alldiv") => x86_helpers::alldiv as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("ntoskrnl.exe", "_allrem") => x86_helpers::allrem as *const () as usize,
        #[cfg(target_arch = "x86")]
        ("ntoskrnl.exe", "_allmul") => x86_helpers::allmul as *const () as usize,
        _ => return None,
    };
    Some(f)
}

#[cfg(test)]
mod registry_tests {
    use super::*;
    use rvblk_abi::{ObjectAttributes, UnicodeString, OBJ_KERNEL_HANDLE};

    fn kernel(setup: SetupPhase) -> Arc<Kernel> {
        Kernel::new(
            KernelConfig {
                personality: Personality::Xp,
                os_ram: vec![],
                nfit: None,
                verbose: false,
                legacy: LegacyConfig {
                    setup,
                    ..LegacyConfig::default()
                },
            },
            Arc::new(PhysMem::from_segments(1 << 20, &[]).unwrap()),
        )
    }

    fn unicode(units: &[u16]) -> UnicodeString {
        UnicodeString {
            length: (units.len() * 2) as u16,
            maximum_length: (units.len() * 2) as u16,
            buffer: units.as_ptr(),
        }
    }

    /// ZwOpenKey + ZwQueryValueKey(SystemSetupInProgress) as the driver does; returns the
    /// handle (left open) and the DWORD, if any.
    fn read_setup_value(k: &Kernel) -> (Option<usize>, Option<u32>) {
        let key: Vec<u16> = "\\Registry\\Machine\\System\\Setup"
            .encode_utf16()
            .collect();
        let value: Vec<u16> = "SystemSetupInProgress".encode_utf16().collect();
        let name = unicode(&key);
        let oa = ObjectAttributes {
            length: std::mem::size_of::<ObjectAttributes>() as u32,
            root_directory: std::ptr::null_mut(),
            object_name: &name,
            attributes: OBJ_KERNEL_HANDLE,
            security_descriptor: std::ptr::null_mut(),
            security_quality_of_service: std::ptr::null_mut(),
        };
        let mut h = 0usize;
        if k.open_key(&mut h, rvblk_abi::KEY_QUERY_VALUE, &oa) != STATUS_SUCCESS {
            return (None, None);
        }
        let mut info = [0u32; 4];
        let mut got = 0u32;
        let st = k.query_value_key(
            h,
            &unicode(&value),
            rvblk_abi::KEY_VALUE_PARTIAL_INFORMATION,
            info.as_mut_ptr().cast(),
            16,
            &mut got,
        );
        assert_eq!(got, 16);
        (Some(h), (st == STATUS_SUCCESS).then_some(info[3]))
    }

    /// The emulated registry of each phase is what the core's decision
    /// (`rvblk_core::policy::SetupPhase::detect`) reads as that phase.
    #[test]
    fn every_emulated_phase_is_detected_as_itself() {
        use rvblk_core::policy::SetupPhase as Detected;
        for (phase, want) in [
            (SetupPhase::Installed, Detected::Installed),
            (SetupPhase::GuiMode, Detected::GuiMode),
            (SetupPhase::TextMode, Detected::TextMode),
            (SetupPhase::MiniNt, Detected::MiniNt),
        ] {
            let k = kernel(phase);
            let (h, in_progress) = read_setup_value(&k);
            if let Some(h) = h {
                assert_eq!(k.close(h), STATUS_SUCCESS);
            }
            let control = k
                .registry_key("\\Registry\\Machine\\System\\CurrentControlSet\\Control")
                .expect("the Control key exists in every phase");
            let options: Vec<u16> = control
                .iter()
                .find_map(|(n, v)| match v {
                    RegValue::Sz(s) if n.eq_ignore_ascii_case("SystemStartOptions") => {
                        Some(s.encode_utf16().collect())
                    }
                    _ => None,
                })
                .expect("SystemStartOptions is a REG_SZ");
            assert_eq!(
                Detected::detect(in_progress, Some(&options)),
                want,
                "{phase:?}"
            );
        }
    }

    #[test]
    fn setup_phases_read_as_the_driver_expects() {
        for (phase, want) in [
            (SetupPhase::Installed, Some(0)),
            (SetupPhase::GuiMode, Some(1)),
            (SetupPhase::MiniNt, None),
            (SetupPhase::TextMode, None),
        ] {
            let k = kernel(phase);
            let (h, v) = read_setup_value(&k);
            assert_eq!(v, want, "{phase:?}");
            if let Some(h) = h {
                assert_eq!(k.close(h), STATUS_SUCCESS);
            }
            assert!(k.leaks().is_empty() && k.failures().is_empty(), "{phase:?}");
        }
    }

    #[test]
    fn open_handles_are_leaks_and_double_close_is_caught() {
        let k = kernel(SetupPhase::Installed);
        let (h, _) = read_setup_value(&k);
        let h = h.expect("the key exists on an installed system");
        assert_eq!(k.handle_leaks().len(), 1, "{:?}", k.handle_leaks());
        assert_eq!(k.close(h), STATUS_SUCCESS);
        assert!(k.handle_leaks().is_empty());
        assert_eq!(k.close(h), STATUS_INVALID_HANDLE);
        assert!(
            k.failures().iter().any(|f| f.contains("double close")),
            "{:?}",
            k.failures()
        );
    }
}
