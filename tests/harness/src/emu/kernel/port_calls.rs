//! The port-driver calls both ports share: StorPortInitialize's validation of
//! HW_INITIALIZATION_DATA, StorPortNotification / ScsiPortNotification (SRB completion rules),
//! StorPortExtendedFunction (StorPortGetSystemAddress) and the per-SRB tracking they check
//! against. ScsiPortInitialize itself lives in `emu::scsiport`.

use super::{
    irql, Kernel, Personality, DISPATCH_LEVEL, PASSIVE_LEVEL, STATUS_INVALID_PARAMETER,
    STATUS_SUCCESS,
};
use rvblk_abi::status::STATUS_NO_SUCH_DEVICE;
use std::collections::HashMap;
use std::ffi::c_void;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// SRB states shared between the issuer and RequestComplete.
pub const SRB_IDLE: u8 = 0;
pub const SRB_IN_FLIGHT: u8 = 1;
pub const SRB_DONE: u8 = 2;

/// Per-SRB bookkeeping the notification handlers reach through the SRB address.
///
/// The issuer writes `completions` and `real_buf` before it publishes the SRB by storing
/// `SRB_IN_FLIGHT` into `state` with Release; readers load `state` with Acquire first. So plain
/// Release/Acquire is enough, and the issuing path pays no locked instruction per store
/// (`docs/bench.md`, "the harness's per-SRB work").
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

impl SrbTrack {
    /// Arms the record for one request (before the SRB goes to the miniport).
    pub fn issue(&self, real_buf: usize) {
        self.real_buf.store(real_buf, Ordering::Relaxed);
        self.completions.store(0, Ordering::Relaxed);
        self.state.store(SRB_IN_FLIGHT, Ordering::Release);
    }

    /// Takes the SRB back from the miniport; returns the state it was left in.
    pub fn retire(&self) -> u8 {
        self.state.swap(SRB_IDLE, Ordering::AcqRel)
    }
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
                let issued = self.srbs.with(a1, |t| {
                    let n = t.completions.fetch_add(1, Ordering::Relaxed) + 1;
                    (
                        n,
                        t.state.compare_exchange(
                            SRB_IN_FLIGHT,
                            SRB_DONE,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        ),
                    )
                });
                match issued {
                    None => self.fail(format!(
                        "{port}Notification(RequestComplete) for {a1:#x}, which is not an SRB the port issued"
                    )),
                    Some((_, Ok(_))) => {}
                    Some((n, Err(SRB_DONE))) => self.fail(format!(
                        "SRB {a1:#x} completed twice (RequestComplete #{n}) [{port} would bug check / corrupt the IRP]"
                    )),
                    Some((_, Err(_))) => self.fail(format!(
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
        let t = self.srbs.with(a1, |t| {
            let outstanding = t.state.load(Ordering::Acquire) == SRB_IN_FLIGHT;
            (outstanding, t.real_buf.load(Ordering::Relaxed))
        });
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
