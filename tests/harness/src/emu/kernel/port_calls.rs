//! The port-driver calls both ports share: StorPortInitialize's validation of
//! HW_INITIALIZATION_DATA, StorPortNotification / ScsiPortNotification (SRB completion rules),
//! StorPortExtendedFunction (StorPortGetSystemAddress) and the per-SRB tracking they check
//! against. ScsiPortInitialize itself lives in `emu::scsiport`.

use super::{
    irql, Kernel, Personality, DISPATCH_LEVEL, PASSIVE_LEVEL, STATUS_INVALID_PARAMETER,
    STATUS_SUCCESS,
};
use rvblk_abi::status::STATUS_NO_SUCH_DEVICE;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// SRB states shared between the issuer and RequestComplete.
pub const SRB_IDLE: u8 = 0;
pub const SRB_IN_FLIGHT: u8 = 1;
pub const SRB_DONE: u8 = 2;
/// The issuer gave up waiting for a pending SRB (a hang); its buffers are never reused.
pub const SRB_ABANDONED: u8 = 3;

/// Per-SRB bookkeeping the notification handlers reach through the SRB address.
pub struct SrbTrack {
    pub state: AtomicU8,
    pub completions: AtomicU32,
    /// The real (mapped) data buffer, for StorPortGetSystemAddress.
    pub real_buf: AtomicUsize,
    /// The issuer waits for a pending SRB (HwStartIo returned without completing it): a
    /// completion must wake it. Only then is `mx`/`cv` touched, so the synchronous path costs
    /// one atomic load.
    pub waiting: AtomicBool,
    pub mx: Mutex<()>,
    pub cv: Condvar,
}

impl Default for SrbTrack {
    fn default() -> Self {
        SrbTrack {
            state: AtomicU8::new(SRB_IDLE),
            completions: AtomicU32::new(0),
            real_buf: AtomicUsize::new(0),
            waiting: AtomicBool::new(false),
            mx: Mutex::new(()),
            cv: Condvar::new(),
        }
    }
}

impl Kernel {
    /// The tracking record of the SRB at `srb`, if the emulated port issued it and it is live.
    fn issued_srb(&self, srb: usize) -> Option<Arc<SrbTrack>> {
        self.srbs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&srb)
            .cloned()
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
                if self.adapter_removed.load(Ordering::SeqCst) {
                    self.fail(format!(
                        "{port}Notification(RequestComplete) for {a1:#x} after the adapter was removed (HwFreeAdapterResources returned)"
                    ));
                }
                let t = self.issued_srb(a1);
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
                            Ok(_) => {
                                if t.waiting.load(Ordering::SeqCst) {
                                    let _g = t.mx.lock().unwrap_or_else(|e| e.into_inner());
                                    t.cv.notify_all();
                                }
                            }
                            Err(SRB_ABANDONED) => self.fail(format!(
                                "RequestComplete for SRB {a1:#x} after the port gave up on it (pending longer than {} ms: a hang)",
                                self.srb_hang_ms.load(Ordering::Relaxed)
                            )),
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
        let t = self.issued_srb(a1);
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
}
