//! Sending control requests (`docs/control.md`) as a requester would: the bytes from the CLI's
//! own encoder (`rvblk_core::control::encode`) in an SRB_FUNCTION_IO_CONTROL SRB whose
//! OriginalRequest is the requester's IRP (`docs/harness-runtime.md` §1), and what follows a
//! successful MOUNT or CREATE RAM DISK: the bus change and Windows' re-enumeration.

use crate::commands::scsi::{Io, LunInfo as ScsiLun};
use crate::emu::kernel::{Kernel, Requester};
use crate::emu::storport::{Dir, Request, SRB_FLAGS_DATA_IN};
use rvblk_core::control::{
    encode, read_reply, ControlCode, NtPath, Reply, ReplyError, Request as Control, HEADER_LEN,
};
use rvblk_core::image::DeviceKind;
use std::path::Path;
use std::time::Duration;

/// srb.h's SRB_FUNCTION_IO_CONTROL.
pub const SRB_FUNCTION_IO_CONTROL: u8 = 0x02;

/// How long a served request may take to show up as a bus change.
pub const BUS_CHANGE_WAIT: Duration = Duration::from_secs(5);

/// What one SRB_FUNCTION_IO_CONTROL came back with.
pub struct Answer {
    pub srb_status: u8,
    /// The buffer after completion, whole.
    pub buf: Vec<u8>,
    /// DataTransferLength after completion: the bytes the I/O manager copies back.
    pub transferred: usize,
    /// The requester's IRP (0: none), to ask the kernel about references afterwards.
    pub irp: usize,
}

impl Answer {
    /// What the requester receives (DeviceIoControl's output).
    pub fn returned(&self) -> &[u8] {
        &self.buf[..self.transferred.min(self.buf.len())]
    }
}

/// Sends `bytes` as `who`; `read_only`: the request asks for a read-only mount (the verifier
/// then refuses a write open).
pub fn send_as(io: &mut Io<'_>, bytes: &[u8], who: Requester, read_only: bool) -> Answer {
    let k = io.a.k.clone();
    let irp = k.requester_irp(who, read_only);
    io.slot.original_request = Some(irp);
    io.slot.data_mut(bytes.len()).copy_from_slice(bytes);
    // METHOD_BUFFERED: one system buffer, read and written; no sense buffer.
    let o = io.run(&Request {
        function: SRB_FUNCTION_IO_CONTROL,
        path: 0,
        target: 0,
        lun: 0,
        cdb: Vec::new(),
        dir: Dir::Out,
        len: bytes.len() as u32,
        sense_len: 0,
        extra_flags: SRB_FLAGS_DATA_IN,
    });
    io.slot.original_request = None;
    k.requester_done(irp);
    Answer {
        srb_status: o.status(),
        buf: io.slot.data(bytes.len()).to_vec(),
        transferred: o.transferred as usize,
        irp,
    }
}

/// A request with `room` payload bytes.
pub fn encoded(request: &Control<'_>, room: usize) -> Vec<u8> {
    let mut buf = vec![0u8; HEADER_LEN + room.max(request.body_len())];
    encode(request, 30, &mut buf).expect("encode");
    buf
}

pub fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// The LUN a MOUNT or CREATE RAM DISK created, as the reply and Windows' re-enumeration see it.
pub struct NewLun {
    pub target: u8,
    pub kind: DeviceKind,
    pub read_only: bool,
    pub block_size: u32,
    pub blocks: u64,
    pub scsi: ScsiLun,
}

/// Waits for references the driver took on the requester of `irp` (its thread, its tokens)
/// to be dropped; Err names what is still held after `limit`.
pub fn requester_released(k: &Kernel, irp: usize, limit: Duration) -> Result<(), String> {
    let end = std::time::Instant::now() + limit;
    loop {
        let (t, tok) = k.requester_refs(irp);
        if t == 0 && tok == 0 {
            return Ok(());
        }
        if std::time::Instant::now() >= end {
            return Err(format!(
                "after the request completed the driver still holds {t} reference(s) on the requester's thread and {tok} on its token(s) (ObfDereferenceObject missing)"
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends a MOUNT FILE or CREATE RAM DISK; on success waits for BusChangeDetected and the
/// re-enumeration (REPORT LUNS, INQUIRY, READ CAPACITY, MODE SENSE) that shows the new LUN.
/// `Err(Ok(e))`: the driver refused with `e`; `Err(Err(msg))`: anything else went wrong.
pub fn create_lun(
    io: &mut Io<'_>,
    request: &Control<'_>,
    who: Requester,
) -> Result<NewLun, Result<ReplyError, String>> {
    let k = io.a.k.clone();
    let read_only = match request {
        Control::MountFile {
            kind, read_only, ..
        } => *read_only || *kind == DeviceKind::CdRom,
        // A RAM disk's source image is only read.
        Control::CreateRamDisk { .. } => true,
        _ => false,
    };
    let before = k.bus_change_count();
    let a = send_as(
        io,
        &encoded(
            request,
            rvblk_core::control::buffer_len(request) - HEADER_LEN,
        ),
        who,
        read_only,
    );
    if a.srb_status != crate::emu::storport::SRB_STATUS_SUCCESS {
        return Err(Err(format!(
            "{:?} completed with SrbStatus {:#x}",
            request.code(),
            a.srb_status
        )));
    }
    let lun = match read_reply(request.code(), a.returned()) {
        Ok(Reply::Lun(l)) => l,
        Ok(other) => return Err(Err(format!("answered {other:?}"))),
        Err(e) => return Err(Ok(e)),
    };
    if k.wait_bus_change(before, BUS_CHANGE_WAIT) <= before {
        return Err(Err(format!(
            "no BusChangeDetected within {} s after the new LUN (target {}) was reported",
            BUS_CHANGE_WAIT.as_secs(),
            lun.target_id
        )));
    }
    let scan = io.rescan().map_err(Err)?;
    let Some(scsi) = scan.into_iter().find(|s| s.target == lun.target_id) else {
        return Err(Err(format!(
            "target {} is not in the re-enumeration (REPORT LUNS / INQUIRY) after BusChangeDetected",
            lun.target_id
        )));
    };
    Ok(NewLun {
        target: lun.target_id,
        kind: lun.kind,
        read_only: lun.read_only,
        block_size: lun.block_size,
        blocks: lun.blocks,
        scsi,
    })
}

/// MOUNT FILE of host file `file` (an absolute path, given as `\??\Z:\…`).
pub fn mount_file(
    io: &mut Io<'_>,
    file: &Path,
    kind: DeviceKind,
    read_only: bool,
    who: Requester,
) -> Result<NewLun, Result<ReplyError, String>> {
    let nt = utf16(&crate::emu::kernel::files::nt_path(file));
    let path = NtPath::new(&nt).map_err(|e| Err(format!("{}: {e:?}", file.display())))?;
    create_lun(
        io,
        &Control::MountFile {
            kind,
            read_only,
            path,
        },
        who,
    )
}

/// The code a request was sent with (for decoding its refusal).
pub fn code_of(bytes: &[u8]) -> ControlCode {
    let code = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    ControlCode::from_u32(code).unwrap_or(ControlCode::ListLuns)
}
