//! Issuing SRBs: the SRB status and flag values, a request and its outcome, the guarded
//! per-thread SRB slot, and `Adapter::execute`, which sends one SRB through HwStartIo at
//! DISPATCH_LEVEL and checks how the miniport completed it.

use super::Adapter;
use crate::checks::guard::{self, GuardedBuf, PAGE};
use crate::emu::kernel::{self, Kernel, SrbTrack, DISPATCH_LEVEL};
use crate::emu::stack::on_kernel_stack;
use rvblk_abi::ScsiRequestBlock;
use std::ffi::c_void;
use std::mem::size_of;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub const SRB_STATUS_PENDING: u8 = 0x00;
pub const SRB_STATUS_SUCCESS: u8 = 0x01;
pub const SRB_STATUS_ERROR: u8 = 0x04;
pub const SRB_STATUS_BUSY: u8 = 0x05;
pub const SRB_STATUS_INVALID_REQUEST: u8 = 0x06;
pub const SRB_STATUS_NO_DEVICE: u8 = 0x08;
pub const SRB_STATUS_SELECTION_TIMEOUT: u8 = 0x0A;
pub const SRB_STATUS_DATA_OVERRUN: u8 = 0x12;
pub const SRB_STATUS_INVALID_LUN: u8 = 0x20;
pub const SRB_STATUS_INVALID_TARGET_ID: u8 = 0x21;
pub const SRB_STATUS_INVALID_PATH_ID: u8 = 0x07;
pub const SRB_STATUS_INSUFFICIENT_RESOURCES: u8 = 0x26;
pub const SRB_STATUS_QUEUE_FROZEN: u8 = 0x40;
pub const SRB_STATUS_AUTOSENSE_VALID: u8 = 0x80;

pub const SRB_FLAGS_DISABLE_AUTOSENSE: u32 = 0x20;
pub const SRB_FLAGS_DATA_IN: u32 = 0x40;
pub const SRB_FLAGS_DATA_OUT: u32 = 0x80;
pub const SRB_FLAGS_QUEUE_ACTION_ENABLE: u32 = 0x02;

/// How long the issuer of a pending SRB polls for its completion before it sleeps
/// (`Adapter::spin_pending`).
pub const PENDING_SPIN: std::time::Duration = std::time::Duration::from_micros(200);

/// All SrbStatus values a miniport may complete with (without the flag bits).
pub fn valid_srb_status(s: u8) -> bool {
    matches!(
        s & 0x3f,
        0x01..=0x0B | 0x0D..=0x16 | 0x18 | 0x19 | 0x20..=0x23 | 0x25..=0x28 | 0x30 | 0x32..=0x34
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    None,
    In,
    Out,
}

#[derive(Clone, Debug)]
pub struct Request {
    pub function: u8,
    pub path: u8,
    pub target: u8,
    pub lun: u8,
    pub cdb: Vec<u8>,
    pub dir: Dir,
    pub len: u32,
    pub sense_len: u8,
    pub extra_flags: u32,
}

impl Request {
    pub fn scsi(target: u8, lun: u8, cdb: &[u8], dir: Dir, len: u32) -> Request {
        Request {
            function: 0,
            path: 0,
            target,
            lun,
            cdb: cdb.to_vec(),
            dir,
            len,
            sense_len: 18,
            extra_flags: 0,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub srb_status: u8,
    pub scsi_status: u8,
    pub transferred: u32,
    /// Sense bytes when AUTOSENSE_VALID was set.
    pub sense: Option<Vec<u8>>,
    pub start_io_returned: bool,
}

impl Outcome {
    pub fn status(&self) -> u8 {
        self.srb_status & 0x3f
    }
    pub fn ok(&self) -> bool {
        self.status() == SRB_STATUS_SUCCESS
    }
    /// (sense key, ASC, ASCQ) from fixed-format sense data.
    pub fn sense_key(&self) -> Option<(u8, u8, u8)> {
        let s = self.sense.as_ref()?;
        if s.len() < 14 {
            return s.get(2).map(|k| (k & 0xf, 0, 0));
        }
        Some((s[2] & 0xf, s[12], s[13]))
    }
}

/// Opcodes whose data buffer Vista/7 StorPort leaves unmapped in this emulation: every SBC/MMC
/// command that moves medium data (READ/WRITE 6/10/12/16, VERIFY 10/12/16, WRITE AND VERIFY
/// 10/12/16, READ CD). Kept independent of the driver's own classification: the harness is
/// the oracle, and erring wide makes the Win7 personality stricter.
pub fn is_rw_opcode(op: u8) -> bool {
    matches!(
        op,
        0x08 | 0x0A
            | 0x28
            | 0x2A
            | 0xA8
            | 0xAA
            | 0x88
            | 0x8A
            | 0x2F
            | 0xAF
            | 0x8F
            | 0x2E
            | 0xAE
            | 0x8E
            | 0xBE
    )
}

/// What the port writes into the sense buffer before each SRB: any other byte after the SRB
/// came from the miniport. As long as the largest SenseInfoBufferLength (a UCHAR).
static SENSE_FILL: [u8; 255] = [0xEE; 255];

/// Whether `sb` still holds only [`SENSE_FILL`] bytes. Compared 8 bytes at a time: a byte loop
/// costs ≈ 40 ns per SRB, and `memcmp`'s wide loads of bytes the port has just written wait for
/// those stores to reach the cache (store-to-load forwarding fails), ≈ 150 ns.
fn untouched(sb: &[u8]) -> bool {
    let fill = u64::from_ne_bytes([SENSE_FILL[0]; 8]);
    let words = sb.chunks_exact(8);
    let rest = words.remainder();
    words
        .map(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")))
        .all(|w| w == fill)
        && rest.iter().all(|&b| b == SENSE_FILL[0])
}

/// One reusable set of guarded SRB/sense/extension/data buffers (one per issuing thread).
pub struct SrbSlot {
    k: Arc<Kernel>,
    _srb_page: GuardedBuf,
    sense: GuardedBuf,
    ext: Option<GuardedBuf>,
    pub data: GuardedBuf,
    fake: GuardedBuf,
    track: Arc<SrbTrack>,
    srb: *mut ScsiRequestBlock,
    /// Lighter checks for benchmarks (no per-I/O pattern fills of the SrbExtension).
    pub light: bool,
    /// SRB.OriginalRequest for the next SRBs: a requester's IRP (`Kernel::requester_irp`);
    /// None: an opaque no-access page.
    pub original_request: Option<usize>,
}

// SAFETY: the slot's memory is owned by it and used by one thread at a time.
unsafe impl Send for SrbSlot {}

impl SrbSlot {
    pub fn srb_addr(&self) -> usize {
        self.srb as usize
    }

    /// The first `len` bytes of the data buffer for the last request of length `len`.
    pub fn data(&self, len: usize) -> &[u8] {
        // SAFETY: `tail(len)` is inside the data buffer.
        unsafe { std::slice::from_raw_parts(self.data.tail(len), len) }
    }

    pub fn data_mut(&mut self, len: usize) -> &mut [u8] {
        // SAFETY: as above; exclusive through &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.data.tail(len), len) }
    }
}

impl Drop for SrbSlot {
    fn drop(&mut self) {
        self.k.srbs.remove(self.srb as usize);
    }
}

impl Adapter {
    pub fn new_slot(&self) -> SrbSlot {
        let srb_size = size_of::<ScsiRequestBlock>();
        let srb_page = GuardedBuf::new(srb_size, "the SRB");
        let sense = GuardedBuf::new(255, "the sense buffer (SenseInfoBufferLength)");
        let ext = (self.srb_ext_size > 0)
            .then(|| GuardedBuf::new(guard::round_up(self.srb_ext_size, 16), "the SRB extension"));
        let cap = (self.cfg.max_transfer as usize)
            .clamp(PAGE, 16 << 20)
            .max(1 << 20);
        let data = GuardedBuf::new(cap, "the SRB data buffer (DataTransferLength)");
        let fake = GuardedBuf::new(cap, "unmapped");
        guard::protect(fake.start(), fake.cap(), libc::PROT_NONE);
        guard::register_guard(
            fake.start() as usize,
            fake.cap(),
            if self.legacy {
                "Srb->DataBuffer under SCSIPORT with MapBuffers = FALSE: not a system address"
            } else {
                "Srb->DataBuffer of a READ/WRITE SRB that Storport did not map (Win7 personality or MapBuffers != 3): use StorPortGetSystemAddress"
            },
        );
        let srb = srb_page.tail(srb_size) as *mut ScsiRequestBlock;
        let track = Arc::new(SrbTrack::default());
        self.k.srbs.insert(srb as usize, track.clone());
        SrbSlot {
            k: self.k.clone(),
            _srb_page: srb_page,
            sense,
            ext,
            data,
            fake,
            track,
            srb,
            light: false,
            original_request: None,
        }
    }

    /// Issues one SRB through HwStartIo (IRQL: see below) and checks its completion. For
    /// `Dir::Out` the caller has filled `slot.data_mut(req.len)` first.
    pub fn execute(&self, slot: &mut SrbSlot, req: &Request) -> Outcome {
        let k = &self.k;
        let len = req.len as usize;
        let real = slot.data.tail(len);
        let rw = req.function == 0 && req.cdb.first().is_some_and(|&o| is_rw_opcode(o));
        let unmapped = if self.legacy {
            !self.map_rw
        } else {
            rw && !self.map_rw
        };
        let data_buffer = if req.dir == Dir::None && len == 0 {
            std::ptr::null_mut()
        } else if unmapped {
            slot.fake.tail(len)
        } else {
            real
        };
        let sense_len = req.sense_len as usize;
        let sense_p = if sense_len > 0 {
            slot.sense.tail(sense_len)
        } else {
            std::ptr::null_mut()
        };
        if sense_len > 0 {
            // SAFETY: `sense_len` writable bytes at `sense_p`.
            unsafe { std::ptr::write_bytes(sense_p, SENSE_FILL[0], sense_len) };
        }
        let ext_p = slot.ext.as_ref().map(|e| {
            let n = guard::round_up(self.srb_ext_size, 16);
            let p = e.tail(n);
            if !slot.light {
                // SAFETY: `n` writable bytes; StorPort does not zero SRB extensions.
                unsafe { std::ptr::write_bytes(p, 0xCD, n) };
            }
            p
        });
        let mut flags = req.extra_flags
            | match req.dir {
                Dir::None => 0,
                Dir::In => SRB_FLAGS_DATA_IN,
                Dir::Out => SRB_FLAGS_DATA_OUT,
            };
        if sense_len == 0 {
            flags |= SRB_FLAGS_DISABLE_AUTOSENSE;
        }
        let mut cdb = [0u8; 16];
        cdb[..req.cdb.len().min(16)].copy_from_slice(&req.cdb[..req.cdb.len().min(16)]);
        let srb = slot.srb;
        // SAFETY: `srb` points at a writable SRB-sized area ending at a guard page.
        unsafe { std::ptr::write_bytes(srb as *mut u8, 0, size_of::<ScsiRequestBlock>()) };
        // SAFETY: as above; zeroed, so a valid SRB value, and not referenced elsewhere.
        let s = unsafe { &mut *srb };
        {
            s.length = size_of::<ScsiRequestBlock>() as u16;
            s.function = req.function;
            s.srb_status = SRB_STATUS_PENDING;
            s.path_id = req.path;
            s.target_id = req.target;
            s.lun = req.lun;
            s.queue_tag = 0xff;
            s.queue_action = 0x20;
            s.cdb_length = req.cdb.len() as u8;
            s.sense_info_buffer_length = req.sense_len;
            s.srb_flags = flags;
            s.data_transfer_length = req.len;
            s.time_out_value = 10;
            s.data_buffer = data_buffer as *mut c_void;
            s.sense_info_buffer = sense_p as *mut c_void;
            s.original_request =
                slot.original_request.unwrap_or(slot.fake.start() as usize) as *mut c_void;
            s.srb_extension = ext_p.unwrap_or(std::ptr::null_mut()) as *mut c_void;
            s.cdb = cdb;
        }
        let issued = slot
            .track
            .issue(srb as usize, if len > 0 { real as usize } else { 0 });
        let f = self.hw.start_io;
        let e = self.ext_ptr();
        // SCSIPORT sends one request at a time and only after the miniport asked for the next.
        let serial = self
            .legacy
            .then(|| self.serial.lock().unwrap_or_else(|e| e.into_inner()));
        let asked_before = k.next_request.load(Ordering::SeqCst);
        // StorPort: every Nth HwStartIo at DISPATCH_LEVEL, the others at PASSIVE_LEVEL
        // (`--startio-dispatch-every N`, default 1: all at DISPATCH), so that the disk-backed
        // fast path (≤ APC_LEVEL only) and the worker path both run (`docs/harness-disks.md`
        // §3); SCSIPORT: always DISPATCH_LEVEL.
        let every = self.startio_dispatch_every.load(Ordering::Relaxed);
        let guarded = self.startio_guarded.load(Ordering::Relaxed);
        // Counted only when the count chooses (every N > 1): no locked add and no division per
        // SRB otherwise.
        let level = if self.legacy
            || every == 1
            || (every > 1
                && (self.start_ios.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(every))
        {
            DISPATCH_LEVEL
        } else {
            kernel::PASSIVE_LEVEL
        };
        let ret = on_kernel_stack(|| {
            kernel::in_miniport(|| {
                kernel::at_irql(level, || {
                    // SAFETY: HwStartIo(DeviceExtension, Srb) with a fully initialised SRB.
                    let call = || unsafe { f(e, srb) };
                    if guarded && level == kernel::PASSIVE_LEVEL {
                        kernel::with_apcs_disabled(call)
                    } else {
                        call()
                    }
                })
            })
        });
        if self.legacy && k.next_request.load(Ordering::SeqCst) == asked_before {
            k.fail(format!(
                "{}: HwStartIo returned without ScsiPortNotification(NextRequest): SCSIPORT sends this adapter no further request",
                describe(req)
            ));
        }
        drop(serial);
        // The fast path: the SRB was completed inside HwStartIo (every RAM request), seen with
        // one plain load. Otherwise it is pending: the driver completes it later from another
        // thread (`docs/harness-disks.md` §6).
        if !slot.track.is_done() && !self.wait_pending(&slot.track) {
            // Abandoned by the wait (SRB_ABANDONED): a later RequestComplete is reported as
            // late. The issuing guard goes first, as the slot is replaced below.
            drop(issued);
            k.fail(format!(
                "{}: SRB pending for {} ms without RequestComplete (a hang)",
                describe(req),
                k.srb_hang_ms.load(Ordering::Relaxed)
            ));
            // The driver may still write the SRB and its buffers: they are never reused, and
            // the SRB stays in the table so that a late RequestComplete is reported.
            let old = std::mem::replace(slot, self.new_slot());
            std::mem::forget(old);
            return Outcome {
                srb_status: SRB_STATUS_PENDING,
                start_io_returned: ret != 0,
                ..Outcome::default()
            };
        }
        // Taken back here, after the completion wait when the SRB was pending: a second
        // completion that raced with the first (issuer and another thread) is found now.
        let retired = issued.retire();
        let state = retired.state;
        // SAFETY: the SRB memory is ours again (the driver completed it).
        let s = unsafe { *srb };
        let what = || describe(req);
        if state != kernel::SRB_DONE {
            k.fail(format!(
                "{}: SRB in state {state} after its completion wait",
                what()
            ));
        }
        if retired.unreported_double {
            k.fail(format!(
                "{}: completed twice (RequestComplete on two threads at once)",
                what()
            ));
        }
        if ret == 0 {
            k.log_line(format!("[harness] {}: HwStartIo returned FALSE", what()));
        }
        let st = s.srb_status;
        if state == kernel::SRB_DONE {
            if st & 0x3f == SRB_STATUS_PENDING {
                k.fail(format!("{}: completed with SRB_STATUS_PENDING", what()));
            } else if !valid_srb_status(st) {
                k.fail(format!(
                    "{}: completed with invalid SrbStatus {st:#04x}",
                    what()
                ));
            }
            if st & SRB_STATUS_QUEUE_FROZEN != 0 {
                k.fail(format!("{}: miniport set SRB_STATUS_QUEUE_FROZEN", what()));
            }
        }
        if s.data_transfer_length > req.len {
            k.fail(format!(
                "{}: DataTransferLength grew from {} to {}",
                what(),
                req.len,
                s.data_transfer_length
            ));
        }
        let moved = |a: *mut c_void, b: *mut u8| !std::ptr::eq(a.cast::<u8>(), b);
        if moved(s.data_buffer, data_buffer)
            || moved(s.sense_info_buffer, sense_p)
            || s.function != req.function
            || moved(s.srb_extension, ext_p.unwrap_or(std::ptr::null_mut()))
        {
            k.fail(format!(
                "{}: miniport changed DataBuffer/SenseInfoBuffer/Function/SrbExtension",
                what()
            ));
        }
        let mut sense = None;
        if sense_len > 0 {
            // SAFETY: `sense_len` readable bytes at `sense_p`.
            let sb = unsafe { std::slice::from_raw_parts(sense_p, sense_len) };
            let written = !untouched(sb);
            let new_len = s.sense_info_buffer_length as usize;
            if new_len > sense_len {
                k.fail(format!(
                    "{}: SenseInfoBufferLength grew from {sense_len} to {new_len}",
                    what()
                ));
            }
            if st & SRB_STATUS_AUTOSENSE_VALID != 0 {
                if !written {
                    k.fail(format!(
                        "{}: AUTOSENSE_VALID set but no sense data written",
                        what()
                    ));
                }
                if st & 0x3f == SRB_STATUS_SUCCESS {
                    k.fail(format!(
                        "{}: AUTOSENSE_VALID with SRB_STATUS_SUCCESS",
                        what()
                    ));
                }
                sense = Some(sb[..new_len.min(sense_len)].to_vec());
            } else if written {
                let pos = sb.iter().position(|&b| b != 0xEE).unwrap_or(0);
                if st & 0x3f == SRB_STATUS_ERROR && s.scsi_status == 2 {
                    k.fail(format!(
                        "{}: CHECK CONDITION with sense data written (byte {pos}) but AUTOSENSE_VALID not set",
                        what()
                    ));
                } else {
                    k.fail(format!(
                        "{}: sense buffer written (byte {pos}) without AUTOSENSE_VALID",
                        what()
                    ));
                }
            }
        } else if st & SRB_STATUS_AUTOSENSE_VALID != 0 {
            k.fail(format!(
                "{}: AUTOSENSE_VALID set although autosense is disabled",
                what()
            ));
        }
        Outcome {
            srb_status: st,
            scsi_status: s.scsi_status,
            transferred: s.data_transfer_length,
            sense,
            start_io_returned: ret != 0,
        }
    }
}

impl Adapter {
    /// Waits for the completion of a pending SRB, up to `Kernel::srb_hang_ms`; runs the
    /// miniport's HwTimer when it is due meanwhile (RequestTimerCall: at DISPATCH_LEVEL inside
    /// the miniport, serialised with HwStartIo under SCSIPORT). False on a hang.
    fn wait_pending(&self, t: &SrbTrack) -> bool {
        let k = &self.k;
        let deadline = std::time::Instant::now()
            + std::time::Duration::from_millis(k.srb_hang_ms.load(Ordering::Relaxed));
        if self.spin_pending(t) {
            return true;
        }
        t.wait_completion(deadline, || {
            self.run_timer_if_due();
            let mut nap = std::time::Duration::from_millis(50);
            if let Some((_, due)) = *k.timer.lock().unwrap_or_else(|e| e.into_inner()) {
                nap = nap.min(due.saturating_duration_since(std::time::Instant::now()));
            }
            nap
        })
    }

    /// The first [`PENDING_SPIN`] of a pending SRB's wait: polls its state, yielding the
    /// processor between looks, without sleeping. On Windows the completion reaches the
    /// requester through StorPort's DPC and the I/O manager, not through a host condition
    /// variable; a sleeping issuer adds a host futex wake-up (3–5 µs measured) to every
    /// disk-backed request, a third of the emulated disk's own 64 KiB read
    /// (`docs/harness-disks.md` §6). A pure spin (no yield) was measured slower: it keeps a
    /// completing thread that shares the processor from running. Not while a HwTimer is armed:
    /// the waiting loop runs it.
    fn spin_pending(&self, t: &SrbTrack) -> bool {
        if self
            .k
            .timer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            return false;
        }
        let until = std::time::Instant::now() + PENDING_SPIN;
        loop {
            if t.is_done() {
                return true;
            }
            // Yielding, not spinning: a completing thread that shares this processor runs.
            std::thread::yield_now();
            if std::time::Instant::now() >= until {
                return false;
            }
        }
    }

    /// Calls the HwTimer armed by RequestTimerCall if its time has come (one-shot).
    pub fn run_timer_if_due(&self) {
        let k = &self.k;
        let f = {
            let mut t = k.timer.lock().unwrap_or_else(|e| e.into_inner());
            match *t {
                Some((f, due)) if due <= std::time::Instant::now() => {
                    *t = None;
                    f
                }
                _ => return,
            }
        };
        let serial = self
            .legacy
            .then(|| self.serial.lock().unwrap_or_else(|e| e.into_inner()));
        // SAFETY: the HwTimer routine the miniport passed to RequestTimerCall.
        let timer = unsafe { std::mem::transmute::<usize, rvblk_abi::HwTimerFn>(f) };
        let e = self.ext_ptr();
        on_kernel_stack(|| {
            kernel::in_miniport(|| {
                kernel::at_irql(DISPATCH_LEVEL, || {
                    // SAFETY: HwTimer(DeviceExtension).
                    unsafe { timer(e) }
                })
            })
        });
        drop(serial);
    }
}

pub fn describe(req: &Request) -> String {
    let cdb: Vec<String> = req.cdb.iter().map(|b| format!("{b:02x}")).collect();
    if req.function == 0 {
        format!(
            "SRB to {}:{}:{} CDB [{}] len {}",
            req.path,
            req.target,
            req.lun,
            cdb.join(" "),
            req.len
        )
    } else {
        format!(
            "SRB function {:#x} to {}:{}:{}",
            req.function, req.path, req.target, req.lun
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{untouched, SENSE_FILL};

    #[test]
    fn sense_fill_check_sees_every_byte() {
        for len in [0usize, 1, 7, 8, 9, 18, 32, 254, 255] {
            let mut sb = SENSE_FILL[..len].to_vec();
            assert!(untouched(&sb), "untouched, {len} bytes");
            for i in 0..len {
                sb[i] = 0;
                assert!(!untouched(&sb), "byte {i} of {len} written");
                sb[i] = SENSE_FILL[0];
            }
        }
    }
}
