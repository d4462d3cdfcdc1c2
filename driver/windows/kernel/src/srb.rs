//! Kernel-wrapper module: a safe view of one live SRB for the time the miniport owns it, and
//! of its data and sense buffers.

use core::marker::PhantomData;
use rvblk_abi::ScsiRequestBlock;
use rvblk_core::srb::{BufferUse, SrbCompletion, SrbFlags};

/// Which SRB data buffers the port maps to system addresses (`docs/windows-integration.md` §1.10).
/// Zero is [`BufferMapping::All`], so a zeroed device extension holds a valid value.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferMapping {
    /// Every data buffer: SCSIPORT with MapBuffers = TRUE, StorPort (Windows 8+) with
    /// `STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE`.
    All = 0,
    /// Every buffer but READ/WRITE medium data: StorPort on Vista/7 with `STOR_MAP_ALL_BUFFERS`,
    /// where medium data needs StorPortGetSystemAddress.
    AllButMediumData = 1,
}

impl BufferMapping {
    /// The StorPort MapBuffers value that asks for this mapping, for the init data and for
    /// ConfigInfo alike.
    pub const fn storport_map_buffers(self) -> u8 {
        match self {
            BufferMapping::All => rvblk_abi::STOR_MAP_ALL_BUFFERS_INCLUDING_READ_WRITE,
            BufferMapping::AllButMediumData => rvblk_abi::STOR_MAP_ALL_BUFFERS,
        }
    }

    pub const fn maps(self, usage: BufferUse) -> bool {
        matches!(
            (self, usage),
            (BufferMapping::All, _) | (_, BufferUse::Parameters)
        )
    }
}

/// One live SRB, owned by the miniport until it is completed.
pub struct Srb<'a> {
    raw: &'a mut ScsiRequestBlock,
    mapping: BufferMapping,
    /// The data buffer's system address: DataBuffer, or for a queued request the address
    /// HwStartIo obtained (mapped or through the port).
    data: *mut u8,
}

/// An SRB that HwStartIo left pending (`docs/driver.md` "Disk-backed images"), with the system
/// address of its data buffer. Only [`Srb::defer`] makes one, from the live view HwStartIo had,
/// and HwStartIo then returns without completing the SRB; completing consumes it
/// ([`QueuedSrb::into_raw`]), so it is completed exactly once.
pub struct QueuedSrb {
    srb: core::ptr::NonNull<ScsiRequestBlock>,
    data: *mut u8,
}

// SAFETY: a pending SRB belongs to the miniport until completion, on whatever thread completes
// it; the port does not touch it meanwhile (`docs/windows-integration.md` §8.3).
unsafe impl Send for QueuedSrb {}

impl QueuedSrb {
    /// A view of the pending SRB for the worker, with every buffer reached through the address
    /// HwStartIo recorded.
    pub fn view(&mut self) -> Srb<'_> {
        // SAFETY: a QueuedSrb exists only for a live SRB the miniport owns and has not
        // completed (type invariant, see `Srb::defer`); `&mut self` makes this view the only
        // one; the recorded data address stays valid until completion (port rule, §8.3); the
        // sense buffer is as HwStartIo saw it.
        let raw = unsafe { &mut *self.srb.as_ptr() };
        Srb {
            raw,
            mapping: BufferMapping::All,
            data: self.data,
        }
    }

    /// The SRB for the port's completion call; the queued handle is gone afterwards.
    pub fn into_raw(self) -> *mut ScsiRequestBlock {
        self.srb.as_ptr()
    }
}

impl<'a> Srb<'a> {
    /// # Safety
    /// * `raw` is a live SRB the port handed to this miniport, not completed yet, and nothing
    ///   else accesses it during `'a`;
    /// * its SenseInfoBuffer is null or valid for writes of SenseInfoBufferLength bytes;
    /// * for every usage that `mapping` [maps](BufferMapping::maps), its DataBuffer is null or a
    ///   system address valid for reads and writes of DataTransferLength bytes, disjoint from
    ///   the SRB and the sense buffer, during `'a`;
    /// * for SRB_FUNCTION_IO_CONTROL, OriginalRequest is NULL or the pending IRP that carried
    ///   the request (read by [`Srb::requester`]).
    pub unsafe fn from_raw(raw: *mut ScsiRequestBlock, mapping: BufferMapping) -> Self {
        // SAFETY: live and exclusively ours during `'a` (first point of the contract).
        let raw = unsafe { &mut *raw };
        let data = raw.data_buffer.cast();
        Self { raw, mapping, data }
    }

    /// Leaves the request pending: the caller (HwStartIo) must return without completing it;
    /// the worker completes it later through the returned handle. `data` is the system address
    /// of the whole data buffer (null when it moves no data), valid until completion.
    pub fn defer(self, data: *mut u8) -> QueuedSrb {
        QueuedSrb {
            srb: core::ptr::NonNull::from(self.raw),
            data,
        }
    }

    /// Who sent this SRB_FUNCTION_IO_CONTROL (`docs/control.md` §6.3): what its
    /// OriginalRequest (the requester's IRP) says, and the IRP's thread. Reads only
    /// `Irp->RequestorMode` and `Irp->Tail.Overlay.Thread` (`rvblk_abi::IrpHead`).
    ///
    /// The port passes, for an IO_CONTROL SRB, either NULL or the IRP that carried the
    /// request, pending (so valid) while the SRB is ours (`docs/control.md` §6.3; the harness
    /// pins this behaviour).
    pub fn requester(
        &self,
    ) -> (
        rvblk_core::control::service::RequesterFacts,
        Option<PendingThread<'_>>,
    ) {
        use rvblk_core::control::service::RequesterFacts;
        let irp = self.raw.original_request.cast::<rvblk_abi::IrpHead>();
        if irp.is_null() || self.raw.function != rvblk_core::srb::function::IO_CONTROL {
            return (
                RequesterFacts {
                    irp: false,
                    mode: 0,
                    thread: false,
                },
                None,
            );
        }
        // A non-NULL OriginalRequest of an IO_CONTROL SRB is the requester's pending IRP (port
        // behaviour stated above); only these two fields are read, through raw places, never
        // the whole structure.
        // SAFETY: a place computation inside that IRP; nothing is read.
        let mode = unsafe { core::ptr::addr_of!((*irp).requestor_mode) };
        // SAFETY: as above.
        let thread = unsafe { core::ptr::addr_of!((*irp).thread) };
        // SAFETY: RequestorMode of the live IRP.
        let mode = unsafe { mode.read_volatile() };
        // SAFETY: Tail.Overlay.Thread of the live IRP (pointer-aligned in the IRP).
        let thread = unsafe { thread.read_volatile() };
        let thread = core::ptr::NonNull::new(thread);
        (
            RequesterFacts {
                irp: true,
                mode,
                thread: thread.is_some(),
            },
            thread.map(|t| PendingThread {
                thread: t,
                _srb: PhantomData,
            }),
        )
    }

    pub fn function(&self) -> u8 {
        self.raw.function
    }

    /// (PathId, TargetId, Lun).
    pub fn address(&self) -> (u8, u8, u8) {
        (self.raw.path_id, self.raw.target_id, self.raw.lun)
    }

    /// The CDB bytes (at most CdbLength, at most 16).
    pub fn cdb(&self) -> ([u8; 16], usize) {
        let n = usize::from(self.raw.cdb_length).min(self.raw.cdb.len());
        (self.raw.cdb, n)
    }

    pub fn flags(&self) -> SrbFlags {
        SrbFlags::from_bits_retain(self.raw.srb_flags)
    }

    pub fn transfer_length(&self) -> u32 {
        self.raw.data_transfer_length
    }

    /// Completes with `status` and no data (no device, invalid request, …).
    pub fn set_status(&mut self, status: u8) {
        self.raw.srb_status = status;
        self.raw.data_transfer_length = 0;
    }

    /// Writes the core's completion fields back.
    pub fn finish(&mut self, done: &SrbCompletion) {
        use rvblk_core::srb::status::AUTOSENSE_VALID;
        self.raw.srb_status = done.srb_status;
        self.raw.scsi_status = done.scsi_status;
        self.raw.data_transfer_length = done.data_transfer_length;
        if done.sense_length > 0 || done.srb_status & AUTOSENSE_VALID != 0 {
            self.raw.sense_info_buffer_length = done.sense_length;
        }
    }

    /// The data buffer access and the sense buffer, which the core uses at the same time.
    pub fn buffers(&mut self) -> (DataAccess<'_>, &mut [u8]) {
        let sense: &mut [u8] = if self.raw.sense_info_buffer.is_null() {
            &mut []
        } else {
            // SAFETY: valid for SenseInfoBufferLength bytes and disjoint from everything else
            // (`from_raw` contract); borrowed from `self`, so it ends before completion.
            unsafe {
                core::slice::from_raw_parts_mut(
                    self.raw.sense_info_buffer.cast(),
                    usize::from(self.raw.sense_info_buffer_length),
                )
            }
        };
        let access = DataAccess {
            data: self.data,
            len: self.raw.data_transfer_length as usize,
            mapping: self.mapping,
            srb: core::ptr::addr_of_mut!(*self.raw),
            _srb: PhantomData,
        };
        (access, sense)
    }

    /// Deliberate fault for the harness's verifier self-test (never shipped): reads one byte
    /// past the data buffer of a mapped request.
    #[cfg(feature = "selftest-overread")]
    pub fn selftest_overread(&self) {
        let p: *const u8 = self.raw.data_buffer.cast();
        if !p.is_null() && self.raw.data_transfer_length > 0 {
            // SAFETY: none — this build exists only to prove the verifier catches it.
            let _ = unsafe {
                core::ptr::read_volatile(p.wrapping_add(self.raw.data_transfer_length as usize))
            };
        }
    }
}

/// The thread of the requester's IRP, alive while the SRB (and so the IRP) is pending: usable
/// only while the SRB view it came from lives.
pub struct PendingThread<'s> {
    thread: core::ptr::NonNull<core::ffi::c_void>,
    _srb: PhantomData<&'s ScsiRequestBlock>,
}

impl PendingThread<'_> {
    /// `ObfReferenceObject(thread)` (≤ DISPATCH_LEVEL): the worker's own reference.
    pub fn reference(self, irql: &impl rvblk_irql::AtMostDispatch) -> crate::ntmount::ThreadRef {
        // SAFETY: the thread of an IRP that is pending while this SRB is ours (the borrow of
        // the live SRB view proves it), so the thread object exists during the call.
        unsafe { crate::ntmount::ThreadRef::reference(self.thread, irql) }
    }
}

/// The data buffer of one SRB, as far as the port's mapping reaches it.
pub struct DataAccess<'s> {
    data: *mut u8,
    len: usize,
    mapping: BufferMapping,
    srb: *mut ScsiRequestBlock,
    _srb: PhantomData<&'s mut ScsiRequestBlock>,
}

impl DataAccess<'_> {
    /// The buffer when the port mapped it for this usage; `None` otherwise (then only a
    /// port-specific routine can reach it) or when the port left it NULL.
    pub fn mapped(&mut self, usage: BufferUse) -> Option<&mut [u8]> {
        if !self.mapping.maps(usage) || self.data.is_null() {
            return None;
        }
        // SAFETY: mapped for this usage ⇒ a system address valid for `len` bytes, disjoint from
        // the SRB and the sense buffer (`Srb::from_raw` contract), borrowed from `self`.
        Some(unsafe { core::slice::from_raw_parts_mut(self.data, self.len) })
    }

    /// Whether the port maps the buffer for this usage (it may still be NULL).
    pub fn is_mapped(&self, usage: BufferUse) -> bool {
        self.mapping.maps(usage)
    }

    /// DataTransferLength.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The SRB itself, for a port routine that maps its buffer (StorPortGetSystemAddress).
    pub fn srb_ptr(&self) -> *mut ScsiRequestBlock {
        self.srb
    }
}
