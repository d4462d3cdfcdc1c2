//! The decisions the port's worker makes while it serves an admitted MOUNT FILE, CREATE RAM DISK
//! or REMOVE (`docs/control.md` §6, §10): who asked, what an NTSTATUS from opening or reading a
//! file means, whether a file can be served, how a RAM disk is cut into chunks and how a byte
//! range crosses them, and the life of a runtime LUN slot. Pure: the port calls the kernel and
//! asks these functions what to do with the answers.

use super::ControlError;
use crate::image::DeviceKind;

/// NTSTATUS values the worker meets while opening, examining and reading a file
/// (`docs/windows-integration.md` §9.2), as their 32-bit patterns.
pub mod ntstatus {
    pub const STATUS_ACCESS_DENIED: u32 = 0xC000_0022;
    pub const STATUS_OBJECT_NAME_INVALID: u32 = 0xC000_0033;
    pub const STATUS_OBJECT_NAME_NOT_FOUND: u32 = 0xC000_0034;
    pub const STATUS_OBJECT_PATH_INVALID: u32 = 0xC000_0039;
    pub const STATUS_OBJECT_PATH_NOT_FOUND: u32 = 0xC000_003A;
    pub const STATUS_NO_SUCH_FILE: u32 = 0xC000_000F;
    pub const STATUS_SHARING_VIOLATION: u32 = 0xC000_0043;
    pub const STATUS_FILE_IS_A_DIRECTORY: u32 = 0xC000_00BA;
    pub const STATUS_INSUFFICIENT_RESOURCES: u32 = 0xC000_009A;
    pub const STATUS_NO_MEMORY: u32 = 0xC000_0017;
    pub const STATUS_PRIVILEGE_NOT_HELD: u32 = 0xC000_0061;
    pub const STATUS_BAD_IMPERSONATION_LEVEL: u32 = 0xC000_00A5;
    pub const STATUS_CANNOT_DELETE: u32 = 0xC000_0121;
    pub const STATUS_DELETE_PENDING: u32 = 0xC000_0056;
    pub const STATUS_END_OF_FILE: u32 = 0xC000_0011;
    pub const STATUS_FILE_INVALID: u32 = 0xC000_0098;
}

/// `FILE_BASIC_INFORMATION.FileAttributes` bits the worker looks at.
pub mod attributes {
    pub const READONLY: u32 = 0x0001;
    pub const DIRECTORY: u32 = 0x0010;
    pub const SPARSE_FILE: u32 = 0x0200;
    pub const COMPRESSED: u32 = 0x0800;
    pub const ENCRYPTED: u32 = 0x4000;
}

/// What the SRB's OriginalRequest says about the requester (`docs/control.md` §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequesterFacts {
    /// OriginalRequest is not NULL.
    pub irp: bool,
    /// `Irp->RequestorMode` (0 KernelMode, 1 UserMode); meaningless without an IRP.
    pub mode: u8,
    /// `Irp->Tail.Overlay.Thread` is not NULL.
    pub thread: bool,
}

/// How the worker establishes the requester's rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequesterCheck {
    /// A kernel-mode request: served with the driver's own rights (it could do anything anyway).
    Kernel,
    /// A user-mode request: capture the thread's security (SeCreateClientSecurity), require an
    /// administrator's token, open files impersonating it with every access check forced.
    Impersonate,
    /// Who asked cannot be told: refused with [`ControlError::NotAdministrator`].
    Unknown,
}

/// Decides [`RequesterCheck`] (`docs/control.md` §6.3): no IRP or no thread → unknown; kernel
/// mode → the driver's rights; user mode → impersonation; any other mode value is not trusted.
pub const fn requester_check(facts: RequesterFacts) -> RequesterCheck {
    match facts {
        RequesterFacts { irp: false, .. } | RequesterFacts { thread: false, .. } => {
            RequesterCheck::Unknown
        }
        RequesterFacts { mode: 0, .. } => RequesterCheck::Kernel,
        RequesterFacts { mode: 1, .. } => RequesterCheck::Impersonate,
        _ => RequesterCheck::Unknown,
    }
}

/// The service error for a failed `ZwCreateFile` of the requester's path (`status` as its
/// 32-bit pattern, not a success). A directory is "no such file": the path names no file.
pub const fn open_error(status: u32) -> ControlError {
    use ntstatus::*;
    match status {
        STATUS_OBJECT_NAME_NOT_FOUND
        | STATUS_OBJECT_PATH_NOT_FOUND
        | STATUS_OBJECT_NAME_INVALID
        | STATUS_OBJECT_PATH_INVALID
        | STATUS_NO_SUCH_FILE
        | STATUS_FILE_IS_A_DIRECTORY
        | STATUS_DELETE_PENDING => ControlError::FileNotFound,
        STATUS_ACCESS_DENIED
        | STATUS_PRIVILEGE_NOT_HELD
        | STATUS_BAD_IMPERSONATION_LEVEL
        | STATUS_CANNOT_DELETE => ControlError::AccessDenied,
        STATUS_SHARING_VIOLATION => ControlError::SharingViolation,
        STATUS_INSUFFICIENT_RESOURCES | STATUS_NO_MEMORY => ControlError::InsufficientMemory,
        _ => ControlError::IoError,
    }
}

/// What `ZwQueryInformationFile` told about an opened file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileFacts {
    /// FILE_STANDARD_INFORMATION.EndOfFile (negative values never reach here: they read as 0).
    pub end_of_file: u64,
    /// FILE_STANDARD_INFORMATION.Directory.
    pub directory: bool,
    /// FILE_BASIC_INFORMATION.FileAttributes.
    pub attributes: u32,
}

/// Whether a file can be served as a LUN of `kind` and how many bytes it exposes: whole blocks
/// of the kind (a trailing partial block is not served; `docs/control.md` §10.1). A directory →
/// [`ControlError::FileNotFound`]; compressed or encrypted → [`ControlError::UnsupportedFile`]
/// (the file system would transform every block, and an encrypted file opened by the system
/// worker reads as ciphertext or not at all); less than one block → [`ControlError::FileTooSmall`].
/// Sparse files are served: holes read as zeros, as any reader sees them.
pub const fn file_length(kind: DeviceKind, facts: FileFacts) -> Result<u64, ControlError> {
    if facts.directory || facts.attributes & attributes::DIRECTORY != 0 {
        return Err(ControlError::FileNotFound);
    }
    if facts.attributes & (attributes::COMPRESSED | attributes::ENCRYPTED) != 0 {
        return Err(ControlError::UnsupportedFile);
    }
    let block = kind.block_size() as u64;
    let length = facts.end_of_file - facts.end_of_file % block;
    if length == 0 {
        return Err(ControlError::FileTooSmall);
    }
    Ok(length)
}

/// Whether a RAM disk of `disk_bytes` can take a source image of these facts: a regular file,
/// not empty, not larger than the disk (§3.3). Returns the bytes to copy (the whole file).
pub const fn source_length(disk_bytes: u64, facts: FileFacts) -> Result<u64, ControlError> {
    if facts.directory || facts.attributes & attributes::DIRECTORY != 0 {
        return Err(ControlError::FileNotFound);
    }
    if facts.attributes & (attributes::COMPRESSED | attributes::ENCRYPTED) != 0 {
        return Err(ControlError::UnsupportedFile);
    }
    if facts.end_of_file == 0 || facts.end_of_file > disk_bytes {
        return Err(ControlError::FileTooSmall);
    }
    Ok(facts.end_of_file)
}

/// Bytes of one RAM-disk chunk: one MDL page allocation (`docs/control.md` §10.2). Large enough
/// that a 64 MiB disk is 32 allocations, small enough that memory need not be one contiguous
/// request and UNMAP can return memory in useful pieces.
pub const RAM_CHUNK: u64 = 2 << 20;
/// The page size allocations are rounded to.
pub const PAGE: u64 = 4096;

/// How a RAM disk of `size` bytes is cut into chunks: all [`RAM_CHUNK`] bytes but the last,
/// which is rounded up to whole pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkLayout {
    size: u64,
}

/// One piece of a byte range inside one chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSpan {
    pub chunk: usize,
    /// Offset inside the chunk.
    pub within: usize,
    /// Offset inside the caller's buffer.
    pub buf: usize,
    pub len: usize,
}

impl ChunkLayout {
    pub const fn new(size: u64) -> Self {
        Self { size }
    }

    pub const fn size(&self) -> u64 {
        self.size
    }

    /// Number of chunks.
    pub const fn count(&self) -> usize {
        self.size.div_ceil(RAM_CHUNK) as usize
    }

    /// Bytes to allocate for chunk `i` (whole pages).
    pub const fn alloc_len(&self, i: usize) -> u64 {
        let start = i as u64 * RAM_CHUNK;
        if start >= self.size {
            return 0;
        }
        let len = if self.size - start < RAM_CHUNK {
            self.size - start
        } else {
            RAM_CHUNK
        };
        len.div_ceil(PAGE) * PAGE
    }

    /// The pieces of `[offset, offset + len)`, chunk by chunk; `None` when the range is not
    /// inside the disk.
    pub fn spans(&self, offset: u64, len: usize) -> Option<impl Iterator<Item = ChunkSpan>> {
        let end = offset.checked_add(len as u64)?;
        if end > self.size {
            return None;
        }
        let mut done = 0usize;
        Some(core::iter::from_fn(move || {
            if done >= len {
                return None;
            }
            let pos = offset + done as u64;
            let chunk = (pos / RAM_CHUNK) as usize;
            let within = (pos % RAM_CHUNK) as usize;
            let n = (RAM_CHUNK as usize - within).min(len - done);
            let span = ChunkSpan {
                chunk,
                within,
                buf: done,
                len: n,
            };
            done += n;
            Some(span)
        }))
    }
}

impl ChunkLayout {
    /// The chunks lying wholly inside `[offset, offset + len)`: what an UNMAP of that range can
    /// give back (a chunk partly outside keeps its memory). Empty when there is none.
    pub fn whole_chunks(&self, offset: u64, len: u64) -> core::ops::Range<usize> {
        let end = offset.saturating_add(len).min(self.size);
        let first = offset.div_ceil(RAM_CHUNK);
        // The last chunk ends at `size`, not at a multiple of RAM_CHUNK: a range reaching the
        // end of the disk covers it whole.
        let last = if end == self.size {
            self.count() as u64
        } else {
            end / RAM_CHUNK
        };
        if first >= last {
            return 0..0;
        }
        first as usize..last as usize
    }

    /// Unmap granularity in blocks of `block_size`, for the target's Block Limits page.
    pub const fn granularity_blocks(block_size: u32) -> u32 {
        (RAM_CHUNK / block_size as u64) as u32
    }
}

/// Where HwStartIo serves a command for a RAM disk whose chunks may have been given back by
/// UNMAP (`docs/control.md` §10.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RamAdmission {
    /// In HwStartIo, from the mapped chunks (an absent chunk reads as zeros).
    Now,
    /// In the worker at PASSIVE_LEVEL: UNMAP (it frees memory), and a write reaching a chunk
    /// that is not there (its memory must be allocated again first).
    Queue,
}

/// Decides [`RamAdmission`] for `cdb` on a RAM disk of `layout` with `block_size` blocks;
/// `present(i)` says whether chunk `i` has memory. Commands the target will refuse anyway
/// (bad CDB, range outside the disk) are answered at once.
pub fn ram_admission(
    cdb: &[u8],
    block_size: u32,
    layout: &ChunkLayout,
    present: impl Fn(usize) -> bool,
) -> RamAdmission {
    use crate::scsi::cdb::Opcode;
    let Some(op) = cdb.first().copied().and_then(Opcode::from_u8) else {
        return RamAdmission::Now;
    };
    match op {
        Opcode::Unmap => RamAdmission::Queue,
        Opcode::Write6 | Opcode::Write10 | Opcode::Write12 | Opcode::Write16 => {
            let Some((offset, len)) = write_range(cdb, block_size) else {
                return RamAdmission::Now;
            };
            let absent = layout
                .spans(offset, len)
                .is_some_and(|mut spans| spans.any(|s| !present(s.chunk)));
            if absent {
                RamAdmission::Queue
            } else {
                RamAdmission::Now
            }
        }
        _ => RamAdmission::Now,
    }
}

/// The byte range a WRITE(6/10/12/16) CDB addresses (`None` for anything else or a CDB the
/// target will refuse): the worker gives a RAM disk memory there before the write.
pub fn write_range(cdb: &[u8], block_size: u32) -> Option<(u64, usize)> {
    use crate::scsi::cdb::{Command, Opcode};
    let op = cdb.first().copied().and_then(Opcode::from_u8)?;
    let Ok(Command::Write(t)) = Command::decode(op, cdb) else {
        return None;
    };
    let bs = u64::from(block_size);
    let offset = t.lba.checked_mul(bs)?;
    let len = usize::try_from(u64::from(t.blocks).checked_mul(bs)?).ok()?;
    Some((offset, len))
}

/// The life of one runtime LUN slot (one per target id). The port keeps it in an atomic byte
/// that HwStartIo reads on every request while the worker changes it (`docs/driver.md`
/// "Runtime LUNs").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SlotState {
    /// No runtime LUN: the target id is free (unless a loader LUN has it).
    Empty = 0,
    /// Reserved by an admitted MOUNT / CREATE RAM DISK; the worker is building it. Invisible
    /// (no device), but its target id is taken.
    Creating = 1,
    /// Served.
    Live = 2,
    /// REMOVE admitted: offline (no device), its resources still held until the requests in
    /// flight have finished.
    Removing = 3,
}

impl SlotState {
    pub const fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Empty,
            1 => Self::Creating,
            2 => Self::Live,
            _ => Self::Removing,
        }
    }

    /// Whether `self → next` is allowed: empty → creating → live → removing → empty, and
    /// creating → empty when the work fails (nothing half created stays).
    pub const fn may_become(self, next: SlotState) -> bool {
        matches!(
            (self, next),
            (Self::Empty, Self::Creating)
                | (Self::Creating, Self::Live | Self::Empty)
                | (Self::Live, Self::Removing)
                | (Self::Removing, Self::Empty)
        )
    }

    /// Whether the target id is taken for admission (`docs/control.md` §5 step 4).
    pub const fn occupied(self) -> bool {
        !matches!(self, Self::Empty)
    }

    /// Whether requests reach the LUN.
    pub const fn serves(self) -> bool {
        matches!(self, Self::Live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requester() {
        let f = |irp, mode, thread| requester_check(RequesterFacts { irp, mode, thread });
        assert_eq!(f(false, 0, true), RequesterCheck::Unknown);
        assert_eq!(f(true, 1, false), RequesterCheck::Unknown);
        assert_eq!(f(true, 0, false), RequesterCheck::Unknown);
        assert_eq!(f(true, 0, true), RequesterCheck::Kernel);
        assert_eq!(f(true, 1, true), RequesterCheck::Impersonate);
        assert_eq!(f(true, 2, true), RequesterCheck::Unknown);
    }

    #[test]
    fn open_errors() {
        use ntstatus::*;
        assert_eq!(
            open_error(STATUS_OBJECT_NAME_NOT_FOUND),
            ControlError::FileNotFound
        );
        assert_eq!(
            open_error(STATUS_OBJECT_PATH_NOT_FOUND),
            ControlError::FileNotFound
        );
        assert_eq!(
            open_error(STATUS_FILE_IS_A_DIRECTORY),
            ControlError::FileNotFound
        );
        assert_eq!(open_error(STATUS_ACCESS_DENIED), ControlError::AccessDenied);
        assert_eq!(
            open_error(STATUS_SHARING_VIOLATION),
            ControlError::SharingViolation
        );
        assert_eq!(
            open_error(STATUS_INSUFFICIENT_RESOURCES),
            ControlError::InsufficientMemory
        );
        assert_eq!(open_error(0xC000_0001), ControlError::IoError);
    }

    fn facts(end_of_file: u64, directory: bool, attributes: u32) -> FileFacts {
        FileFacts {
            end_of_file,
            directory,
            attributes,
        }
    }

    #[test]
    fn file_lengths() {
        use DeviceKind::*;
        assert_eq!(file_length(Disk, facts(1 << 20, false, 0x20)), Ok(1 << 20));
        // A trailing partial block is not served.
        assert_eq!(file_length(Disk, facts(1000, false, 0)), Ok(512));
        assert_eq!(file_length(CdRom, facts(5000, false, 0)), Ok(4096));
        assert_eq!(
            file_length(CdRom, facts(2047, false, 0)),
            Err(ControlError::FileTooSmall)
        );
        assert_eq!(
            file_length(Disk, facts(0, false, 0)),
            Err(ControlError::FileTooSmall)
        );
        assert_eq!(
            file_length(Disk, facts(4096, true, 0)),
            Err(ControlError::FileNotFound)
        );
        assert_eq!(
            file_length(Disk, facts(4096, false, attributes::DIRECTORY)),
            Err(ControlError::FileNotFound)
        );
        assert_eq!(
            file_length(Disk, facts(4096, false, attributes::COMPRESSED)),
            Err(ControlError::UnsupportedFile)
        );
        assert_eq!(
            file_length(Floppy, facts(4096, false, attributes::ENCRYPTED)),
            Err(ControlError::UnsupportedFile)
        );
        // Sparse and read-only files are served.
        assert_eq!(
            file_length(
                Disk,
                facts(4096, false, attributes::SPARSE_FILE | attributes::READONLY)
            ),
            Ok(4096)
        );
    }

    #[test]
    fn source_lengths() {
        assert_eq!(source_length(4096, facts(4096, false, 0)), Ok(4096));
        assert_eq!(source_length(4096, facts(100, false, 0)), Ok(100));
        assert_eq!(
            source_length(4096, facts(4097, false, 0)),
            Err(ControlError::FileTooSmall)
        );
        assert_eq!(
            source_length(4096, facts(0, false, 0)),
            Err(ControlError::FileTooSmall)
        );
        assert_eq!(
            source_length(4096, facts(10, true, 0)),
            Err(ControlError::FileNotFound)
        );
    }

    #[test]
    fn chunk_layout() {
        let l = ChunkLayout::new(64 << 20);
        assert_eq!(l.count(), 32);
        assert!((0..32).all(|i| l.alloc_len(i) == RAM_CHUNK));
        assert_eq!(l.alloc_len(32), 0);
        let l = ChunkLayout::new(RAM_CHUNK + 512);
        assert_eq!(l.count(), 2);
        assert_eq!(l.alloc_len(1), PAGE);
        let l = ChunkLayout::new(1_474_560);
        assert_eq!(l.count(), 1);
        assert_eq!(l.alloc_len(0), 1_474_560);
    }

    #[test]
    fn spans_cross_chunks() {
        let l = ChunkLayout::new(3 * RAM_CHUNK);
        let c = RAM_CHUNK as usize;
        let v: heapless_spans::Spans = l.spans(RAM_CHUNK - 512, 1024 + c).unwrap().collect();
        assert_eq!(
            v.as_slice(),
            &[
                ChunkSpan {
                    chunk: 0,
                    within: c - 512,
                    buf: 0,
                    len: 512
                },
                ChunkSpan {
                    chunk: 1,
                    within: 0,
                    buf: 512,
                    len: c
                },
                ChunkSpan {
                    chunk: 2,
                    within: 0,
                    buf: 512 + c,
                    len: 512
                },
            ]
        );
        assert!(l.spans(3 * RAM_CHUNK - 512, 513).is_none());
        assert!(l.spans(u64::MAX, 1).is_none());
        assert_eq!(l.spans(0, 0).unwrap().count(), 0);
    }

    #[test]
    fn whole_chunks() {
        let c = RAM_CHUNK;
        let l = ChunkLayout::new(4 * c + 4096);
        assert_eq!(l.whole_chunks(0, c), 0..1);
        assert_eq!(l.whole_chunks(512, c), 0..0);
        assert_eq!(l.whole_chunks(512, 2 * c), 1..2);
        assert_eq!(l.whole_chunks(c, 3 * c), 1..4);
        // Up to the end of the disk: the short last chunk too.
        assert_eq!(l.whole_chunks(4 * c, 4096), 4..5);
        assert_eq!(l.whole_chunks(0, u64::MAX), 0..5);
        assert_eq!(l.whole_chunks(4 * c + 512, 512), 0..0);
        assert_eq!(ChunkLayout::granularity_blocks(512), 4096);
    }

    #[test]
    fn ram_admissions() {
        let l = ChunkLayout::new(4 * RAM_CHUNK);
        let blocks_per_chunk = (RAM_CHUNK / 512) as u32;
        let write10 = |lba: u32, n: u16| {
            let mut c = [0u8; 10];
            c[0] = 0x2A;
            c[2..6].copy_from_slice(&lba.to_be_bytes());
            c[7..9].copy_from_slice(&n.to_be_bytes());
            c
        };
        let read10 = {
            let mut c = write10(0, 8);
            c[0] = 0x28;
            c
        };
        let all = |_: usize| true;
        let no_second = |i: usize| i != 1;
        assert_eq!(
            ram_admission(&write10(0, 8), 512, &l, all),
            RamAdmission::Now
        );
        assert_eq!(
            ram_admission(&write10(0, 8), 512, &l, no_second),
            RamAdmission::Now
        );
        // A write reaching into the absent chunk 1.
        assert_eq!(
            ram_admission(&write10(blocks_per_chunk - 1, 2), 512, &l, no_second),
            RamAdmission::Queue
        );
        // Reads never queue: an absent chunk reads as zeros.
        assert_eq!(
            ram_admission(&read10, 512, &l, |_| false),
            RamAdmission::Now
        );
        let mut unmap = [0u8; 10];
        unmap[0] = 0x42;
        assert_eq!(ram_admission(&unmap, 512, &l, all), RamAdmission::Queue);
        assert_eq!(write_range(&write10(8, 2), 512), Some((4096, 1024)));
        assert_eq!(write_range(&read10, 512), None);
        // Out of range: the target refuses it at once.
        assert_eq!(
            ram_admission(&write10(u32::MAX - 1, 1), 512, &l, |_| false),
            RamAdmission::Now
        );
    }

    mod heapless_spans {
        pub type Spans = arrayvec::ArrayVec<super::ChunkSpan, 8>;
    }

    #[test]
    fn slot_states() {
        use SlotState::*;
        let all = [Empty, Creating, Live, Removing];
        for s in all {
            assert_eq!(SlotState::from_u8(s as u8), s);
        }
        let allowed = [
            (Empty, Creating),
            (Creating, Live),
            (Creating, Empty),
            (Live, Removing),
            (Removing, Empty),
        ];
        for a in all {
            for b in all {
                assert_eq!(a.may_become(b), allowed.contains(&(a, b)), "{a:?}->{b:?}");
            }
        }
        assert!(!Empty.occupied() && Creating.occupied() && Removing.occupied());
        assert!(Live.serves() && !Removing.serves() && !Creating.serves());
    }
}

#[cfg(test)]
mod target_tests {
    use crate::image::DeviceKind;
    use crate::scsi::ScsiTarget;

    #[test]
    fn runtime_targets() {
        let cd = ScsiTarget::for_runtime(DeviceKind::CdRom, 4096, false, 1);
        assert!(
            cd.image().is_read_only(),
            "a CD is read-only whatever the flag says"
        );
        let disk = ScsiTarget::for_runtime(DeviceKind::Disk, 4096, false, 1);
        assert!(!disk.image().is_read_only());
        assert_eq!(disk.image().blocks(), 8);
        let ro = ScsiTarget::for_runtime(DeviceKind::Disk, 4096, true, 1);
        assert!(ro.image().is_read_only());
        // Another creation gets another serial number.
        let again = ScsiTarget::for_runtime(DeviceKind::Disk, 4096, false, 2);
        assert_ne!(disk.identity(), again.identity());
    }
}
