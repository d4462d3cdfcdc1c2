//! Plug and Play as the driver sees it (`docs/harness-disks.md` §4): disk interface
//! notifications (IoRegisterPlugPlayNotification / IoUnregisterPlugPlayNotification) delivered
//! from the harness's PnP thread, disk arrival and surprise removal at the configured times,
//! BusChangeDetected, and the firmware the driver may ask (MmGetSystemRoutineAddress,
//! ExGetFirmwareEnvironmentVariable).

use super::objects;
use super::{irql, Kernel, Personality, DISPATCH_LEVEL, PASSIVE_LEVEL};
use super::{STATUS_INVALID_PARAMETER, STATUS_SUCCESS};
use crate::checks::guard::GuardedBuf;
use crate::emu::stack::on_kernel_stack;
use rvblk_abi::status::STATUS_BUFFER_TOO_SMALL;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

pub const STATUS_NOT_IMPLEMENTED: i32 = 0xC000_0002_u32 as i32;
pub const STATUS_VARIABLE_NOT_FOUND: i32 = 0xC000_0100_u32 as i32;
pub const STATUS_NOT_SUPPORTED: i32 = 0xC000_00BB_u32 as i32;

/// A GUID in its in-memory layout (Data1..3 little-endian, Data4 as bytes).
pub const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

pub const GUID_DEVINTERFACE_DISK: [u8; 16] = guid(
    0x53F5_6307,
    0xB6BF,
    0x11D0,
    [0x94, 0xF2, 0x00, 0xA0, 0xC9, 0x1E, 0xFB, 0x8B],
);
pub const GUID_DEVICE_INTERFACE_ARRIVAL: [u8; 16] = guid(
    0xCB3A_4004,
    0x46F0,
    0x11D0,
    [0xB0, 0x8F, 0x00, 0x60, 0x97, 0x13, 0x05, 0x3F],
);
pub const GUID_DEVICE_INTERFACE_REMOVAL: [u8; 16] = guid(
    0xCB3A_4005,
    0x46F0,
    0x11D0,
    [0xB0, 0x8F, 0x00, 0x60, 0x97, 0x13, 0x05, 0x3F],
);
/// Ventoy's vendor GUID for its UEFI variables {77772020-2E77-6576-6E74-6F792E6E6574}.
pub const VENTOY_GUID: [u8; 16] = guid(
    0x7777_2020,
    0x2E77,
    0x6576,
    [0x6E, 0x74, 0x6F, 0x79, 0x2E, 0x6E, 0x65, 0x74],
);

/// How long a notification callback may run (ASYNC.md).
pub const CALLBACK_LIMIT: Duration = Duration::from_secs(2);

struct Registration {
    callback: usize,
    context: usize,
    disk_class: bool,
    active: bool,
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Arrive(usize),
    Remove(usize),
    Notify {
        entry: usize,
        disk: usize,
        arrival: bool,
    },
}

#[derive(Default)]
pub(crate) struct PnpState {
    regs: Mutex<HashMap<usize, Registration>>,
    /// Held while a callback runs (IoUnregisterPlugPlayNotification waits on it).
    dispatching: Mutex<()>,
    events: Mutex<Vec<(Instant, u64, Ev)>>,
    cv: Condvar,
    seq: AtomicU64,
    stop: AtomicBool,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// When the driver first registered for disk interfaces.
    pub(crate) registered_at: Mutex<Option<Instant>>,
    /// Disk arrival notifications delivered to every registration.
    pub(crate) arrivals_delivered: AtomicU64,
    /// The bus-change count just before the first disk arrival was processed.
    pub(crate) bus_before_arrival: Mutex<Option<u64>>,
    /// BusChangeDetected calls so far.
    pub(crate) bus_changes: Mutex<u64>,
    pub(crate) bus_cv: Condvar,
    pnp_thread: Mutex<Option<std::thread::ThreadId>>,
}

impl Kernel {
    fn schedule(&self, at: Instant, ev: Ev) {
        let seq = self.pnp.seq.fetch_add(1, Ordering::SeqCst);
        self.pnp
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((at, seq, ev));
        self.pnp.cv.notify_all();
    }

    fn ensure_pnp_thread(&self) {
        self.spawn_once(&self.pnp.worker, "pnp", Kernel::pnp_loop);
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn register_pnp(
        &self,
        category: u32,
        flags: u32,
        data: *const u8,
        drv: usize,
        callback: usize,
        context: usize,
        entry: *mut usize,
    ) -> i32 {
        let api = "IoRegisterPlugPlayNotification";
        self.check_irql(api, PASSIVE_LEVEL);
        if entry.is_null() || callback == 0 {
            self.fail(format!("{api} with a NULL callback or NotificationEntry"));
            return STATUS_INVALID_PARAMETER;
        }
        let (d, _) = *self.entry_args.lock().unwrap_or_else(|e| e.into_inner());
        if drv != d {
            self.fail(format!(
                "{api}: DriverObject {drv:#x} is not the {d:#x} DriverEntry received"
            ));
        }
        if category != 2 {
            self.log_line(format!(
                "[harness] {api}(category {category}): only EventCategoryDeviceInterfaceChange (2) is emulated"
            ));
            return STATUS_NOT_SUPPORTED;
        }
        if data.is_null() {
            self.fail(format!(
                "{api}: NULL EventCategoryData (the interface class GUID)"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        let mut g = [0u8; 16];
        // SAFETY: EventCategoryData points at a GUID for this category.
        unsafe { std::ptr::copy_nonoverlapping(data, g.as_mut_ptr(), 16) };
        let disk_class = g == GUID_DEVINTERFACE_DISK;
        if !disk_class {
            self.log_line(format!(
                "[harness] {api} for an interface class other than GUID_DEVINTERFACE_DISK: no notifications"
            ));
        }
        let e = objects::opaque_page();
        self.pnp
            .regs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                e,
                Registration {
                    callback,
                    context,
                    disk_class,
                    active: true,
                },
            );
        // SAFETY: non-null PVOID* from the driver.
        unsafe { entry.write_unaligned(e) };
        if disk_class {
            self.ensure_pnp_thread();
            let now = Instant::now();
            let first = {
                let mut r = self
                    .pnp
                    .registered_at
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let first = r.is_none();
                r.get_or_insert(now);
                first
            };
            if first {
                let at = now + Duration::from_millis(self.cfg.machine.arrival_ms);
                for d in self.disks() {
                    let later = self.cfg.machine.stagger_ms.saturating_mul(d.index as u64);
                    self.schedule(at + Duration::from_millis(later), Ev::Arrive(d.index));
                }
            }
            if flags & 1 != 0 {
                for d in self.disks() {
                    if d.arrived.load(Ordering::SeqCst) && !d.removed.load(Ordering::SeqCst) {
                        self.schedule(
                            now,
                            Ev::Notify {
                                entry: e,
                                disk: d.index,
                                arrival: true,
                            },
                        );
                    }
                }
            }
        }
        STATUS_SUCCESS
    }

    pub(crate) fn unregister_pnp(&self, entry: usize) -> i32 {
        self.check_irql("IoUnregisterPlugPlayNotification", PASSIVE_LEVEL);
        let found = {
            let mut r = self.pnp.regs.lock().unwrap_or_else(|e| e.into_inner());
            match r.get_mut(&entry) {
                Some(x) if x.active => {
                    x.active = false;
                    true
                }
                _ => false,
            }
        };
        if !found {
            self.fail(format!(
                "IoUnregisterPlugPlayNotification({entry:#x}): not a registered notification entry (unregistered twice?)"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        // After this returns no callback runs: wait for one in progress (unless it is the
        // caller itself, unregistering from inside its callback).
        let on_pnp = *self
            .pnp
            .pnp_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            == Some(std::thread::current().id());
        if !on_pnp {
            drop(
                self.pnp
                    .dispatching
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            );
        }
        STATUS_SUCCESS
    }

    /// Notification entries still registered, as verifier lines.
    pub(crate) fn pnp_leaks(&self) -> Vec<String> {
        let r = self.pnp.regs.lock().unwrap_or_else(|e| e.into_inner());
        r.iter()
            .filter(|(_, x)| x.active)
            .map(|(e, _)| {
                format!(
                    "PnP notification {e:#x} still registered at removal (IoUnregisterPlugPlayNotification missing)"
                )
            })
            .collect()
    }

    fn pnp_loop(&self) {
        *self
            .pnp
            .pnp_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(std::thread::current().id());
        let mut q = self.pnp.events.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.pnp.stop.load(Ordering::SeqCst) {
                return;
            }
            let next = q
                .iter()
                .enumerate()
                .min_by_key(|(_, (at, seq, _))| (*at, *seq))
                .map(|(i, (at, _, _))| (i, *at));
            let Some((i, at)) = next else {
                q = self
                    .pnp
                    .cv
                    .wait_timeout(q, Duration::from_millis(100))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                continue;
            };
            let now = Instant::now();
            if at > now {
                q = self
                    .pnp
                    .cv
                    .wait_timeout(q, at - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                continue;
            }
            let (_, _, ev) = q.swap_remove(i);
            drop(q);
            self.pnp_event(ev);
            q = self.pnp.events.lock().unwrap_or_else(|e| e.into_inner());
        }
    }

    fn disk_regs(&self) -> Vec<usize> {
        self.pnp
            .regs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, r)| r.active && r.disk_class)
            .map(|(e, _)| *e)
            .collect()
    }

    fn pnp_event(&self, ev: Ev) {
        let now = Instant::now();
        match ev {
            Ev::Arrive(i) => {
                {
                    let mut b = self
                        .pnp
                        .bus_before_arrival
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    if b.is_none() {
                        *b = Some(
                            *self
                                .pnp
                                .bus_changes
                                .lock()
                                .unwrap_or_else(|e| e.into_inner()),
                        );
                    }
                }
                let d = &self.disks()[i];
                d.arrived.store(true, Ordering::SeqCst);
                self.log_line(format!("[harness] disk {i} arrived ({})", d.link));
                for e in self.disk_regs() {
                    self.pnp_event(Ev::Notify {
                        entry: e,
                        disk: i,
                        arrival: true,
                    });
                }
                self.pnp.arrivals_delivered.fetch_add(1, Ordering::SeqCst);
                self.pnp.bus_cv.notify_all();
                if let Some(ms) = self.cfg.machine.remove_ms {
                    self.schedule(now + Duration::from_millis(ms), Ev::Remove(i));
                }
            }
            Ev::Remove(i) => {
                self.log_line(format!("[harness] disk {i} surprise-removed"));
                self.remove_disk(i);
                for e in self.disk_regs() {
                    self.pnp_event(Ev::Notify {
                        entry: e,
                        disk: i,
                        arrival: false,
                    });
                }
            }
            Ev::Notify {
                entry,
                disk,
                arrival,
            } => {
                let _g = self
                    .pnp
                    .dispatching
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let reg = {
                    let r = self.pnp.regs.lock().unwrap_or_else(|e| e.into_inner());
                    r.get(&entry)
                        .filter(|x| x.active)
                        .map(|x| (x.callback, x.context))
                };
                // Never into a driver whose session has ended (a failed start).
                if let Some((cb, ctx)) = reg.filter(|_| self.is_active()) {
                    self.deliver(cb, ctx, disk, arrival);
                }
            }
        }
    }

    /// Calls one notification callback at PASSIVE_LEVEL on the PnP thread's kernel stack with a
    /// DEVICE_INTERFACE_CHANGE_NOTIFICATION that lives only for the call.
    fn deliver(&self, cb: usize, ctx: usize, disk: usize, arrival: bool) {
        let link = self.disks()[disk].link.clone();
        let name = crate::emu::storport::unicode_string_buf(
            &link,
            "the notification's SymbolicLinkName (valid only during the callback)",
        );
        let p = std::mem::size_of::<usize>();
        let size = 36usize.next_multiple_of(p) + p;
        let n = GuardedBuf::new(
            size,
            "DEVICE_INTERFACE_CHANGE_NOTIFICATION (valid only during the callback)",
        );
        let np = n.tail(size);
        let mut b = vec![0u8; size];
        b[0..2].copy_from_slice(&1u16.to_le_bytes());
        b[2..4].copy_from_slice(&(size as u16).to_le_bytes());
        b[4..20].copy_from_slice(if arrival {
            &GUID_DEVICE_INTERFACE_ARRIVAL
        } else {
            &GUID_DEVICE_INTERFACE_REMOVAL
        });
        b[20..36].copy_from_slice(&GUID_DEVINTERFACE_DISK);
        let off = 36usize.next_multiple_of(p);
        b[off..off + p].copy_from_slice(&name.0.to_le_bytes()[..p]);
        // SAFETY: `size` writable bytes at `np`.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), np, size) };
        // SAFETY: the driver's PDRIVER_NOTIFICATION_CALLBACK_ROUTINE.
        let f = unsafe { std::mem::transmute::<usize, NotifyFn>(cb) };
        let t0 = Instant::now();
        let watchdog = crate::checks::crash::watchdog(
            Duration::from_secs(30),
            format!("the PnP notification callback for disk {disk}"),
        );
        let st = on_kernel_stack(|| {
            super::at_irql(PASSIVE_LEVEL, || {
                // SAFETY: callback(NotificationStructure, Context).
                let st = unsafe { f(np as *mut c_void, ctx as *mut c_void) };
                if irql() != PASSIVE_LEVEL {
                    self.fail(format!(
                        "PnP notification callback returned at IRQL {}",
                        irql()
                    ));
                }
                st
            })
        });
        drop(watchdog);
        let took = t0.elapsed();
        if took > CALLBACK_LIMIT {
            self.fail(format!(
                "PnP notification callback ({} of disk {disk}) took {} ms (> {} ms): it must not block on disk I/O",
                if arrival { "arrival" } else { "removal" },
                took.as_millis(),
                CALLBACK_LIMIT.as_millis()
            ));
        }
        if st < 0 {
            self.log_line(format!(
                "[harness] PnP notification callback returned {:#010x}",
                st as u32
            ));
        }
        drop(n);
        drop(name);
    }

    /// StorPortNotification / ScsiPortNotification(BusChangeDetected, ext, PathId).
    pub(crate) fn bus_change(&self, port: &str, path: usize) {
        if irql() > DISPATCH_LEVEL {
            self.fail(format!(
                "{port}Notification(BusChangeDetected) at IRQL {}",
                irql()
            ));
        }
        if path as u32 != 0 {
            self.fail(format!(
                "{port}Notification(BusChangeDetected, PathId {path:#x}): the adapter has one bus (0)"
            ));
        }
        let mut n = self
            .pnp
            .bus_changes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *n += 1;
        drop(n);
        self.pnp.bus_cv.notify_all();
    }

    /// BusChangeDetected calls so far.
    pub fn bus_change_count(&self) -> u64 {
        *self
            .pnp
            .bus_changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the bus-change count exceeds `seen` or `limit` passes; returns the count.
    pub fn wait_bus_change(&self, seen: u64, limit: Duration) -> u64 {
        let end = Instant::now() + limit;
        let mut n = self
            .pnp
            .bus_changes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while *n <= seen {
            let now = Instant::now();
            if now >= end {
                break;
            }
            n = self
                .pnp
                .bus_cv
                .wait_timeout(n, end - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *n
    }

    /// When the driver first registered for disk interfaces.
    pub fn pnp_registered_at(&self) -> Option<Instant> {
        *self
            .pnp
            .registered_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The bus-change count before the first disk arrived, once one has.
    pub fn bus_changes_before_arrival(&self) -> Option<u64> {
        *self
            .pnp
            .bus_before_arrival
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Disk arrivals delivered so far.
    pub fn arrivals_delivered(&self) -> u64 {
        self.pnp.arrivals_delivered.load(Ordering::SeqCst)
    }

    /// Stops the PnP thread.
    pub(crate) fn stop_pnp(&self) {
        self.pnp.stop.store(true, Ordering::SeqCst);
        self.pnp.cv.notify_all();
        let h = self
            .pnp
            .worker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = h {
            let _ = h.join();
        }
    }

    pub(crate) fn system_routine_address(&self, name: *const rvblk_abi::UnicodeString) -> usize {
        self.check_irql("MmGetSystemRoutineAddress", PASSIVE_LEVEL);
        let Some(n) = self.unicode(name, "MmGetSystemRoutineAddress SystemRoutineName") else {
            return 0;
        };
        // ExGetFirmwareEnvironmentVariable is exported from Windows 8 on (ASYNC.md).
        if n == "ExGetFirmwareEnvironmentVariable" && self.cfg.personality != Personality::Win8 {
            return 0;
        }
        // NT 5.2 x64 (the xp personality's 64-bit Windows) reads CR8 inline and exports no
        // KeGetCurrentIrql (`docs/windows-integration.md` §8.5).
        if n == "KeGetCurrentIrql"
            && self.cfg.personality == Personality::Xp
            && cfg!(target_pointer_width = "64")
        {
            return 0;
        }
        // KeAreAllApcsDisabled is exported from NT 5.2 (Server 2003, XP x64) on, not by XP
        // x86 (NT 5.1) (`docs/control.md` §10.5).
        if n == "KeAreAllApcsDisabled"
            && self.cfg.personality == Personality::Xp
            && cfg!(target_pointer_width = "32")
        {
            return 0;
        }
        let a = super::resolve("ntoskrnl.exe", &n)
            .or_else(|| super::resolve("hal.dll", &n))
            .unwrap_or(0);
        self.log_line(format!(
            "[harness] MmGetSystemRoutineAddress({n}) -> {}",
            if a == 0 { "NULL" } else { "found" }
        ));
        a
    }

    pub(crate) fn firmware_variable(
        &self,
        name: *const rvblk_abi::UnicodeString,
        vendor: *const u8,
        value: *mut u8,
        len: *mut u32,
        attrs: *mut u32,
    ) -> i32 {
        self.check_irql("ExGetFirmwareEnvironmentVariable", PASSIVE_LEVEL);
        let Some(n) = self.unicode(name, "ExGetFirmwareEnvironmentVariable VariableName") else {
            return STATUS_INVALID_PARAMETER;
        };
        if vendor.is_null() || len.is_null() {
            self.fail("ExGetFirmwareEnvironmentVariable with a NULL VendorGuid or ValueLength");
            return STATUS_INVALID_PARAMETER;
        }
        let vars = &self.cfg.machine.uefi_vars;
        if vars.is_empty() {
            return STATUS_NOT_IMPLEMENTED;
        }
        let mut g = [0u8; 16];
        // SAFETY: a non-null LPGUID from the driver.
        unsafe { std::ptr::copy_nonoverlapping(vendor, g.as_mut_ptr(), 16) };
        let Some((_, data)) = vars
            .iter()
            .find(|(v, _)| *v == n)
            .filter(|_| g == VENTOY_GUID)
        else {
            return STATUS_VARIABLE_NOT_FOUND;
        };
        // SAFETY: non-null PULONG from the driver.
        let have = unsafe { len.read_unaligned() };
        // SAFETY: as above.
        unsafe { len.write_unaligned(data.len() as u32) };
        if (have as usize) < data.len() || (value.is_null() && !data.is_empty()) {
            return STATUS_BUFFER_TOO_SMALL;
        }
        // SAFETY: `have` >= data.len() writable bytes at `value`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), value, data.len()) };
        if !attrs.is_null() {
            // EFI_VARIABLE_BOOTSERVICE_ACCESS | EFI_VARIABLE_RUNTIME_ACCESS.
            // SAFETY: non-null PULONG from the driver.
            unsafe { attrs.write_unaligned(6) };
        }
        STATUS_SUCCESS
    }
}

#[cfg(target_arch = "x86")]
type NotifyFn = unsafe extern "stdcall" fn(*mut c_void, *mut c_void) -> i32;
#[cfg(target_arch = "x86_64")]
type NotifyFn = unsafe extern "win64" fn(*mut c_void, *mut c_void) -> i32;
#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
type NotifyFn = unsafe extern "C" fn(*mut c_void, *mut c_void) -> i32;
