//! Kernel-wrapper module for the runtime mounts (`docs/control.md` §6, §10;
//! `docs/windows-integration.md` §9): the requester's thread and security context,
//! impersonation, files opened by path, RAM-disk chunks (MDL page allocations and their
//! system mappings).
//!
//! Each wrapper states its contract; those with an IRQL rule take the token of the level the
//! routine needs (§9.1 lists each rule). The safe logic using them is `crate::runtime`.

use core::ffi::c_void;
use core::ptr::{null_mut, NonNull};
use rvblk_abi::{
    AlignedI64, FileBasicInformation, FileStandardInformation, IoStatusBlock, Mdl,
    ObjectAttributes, SecurityClientContext, SecurityQualityOfService, UnicodeString,
};
use rvblk_irql::{AtMostDispatch, Passive};

crate::kernel_imports!("ntoskrnl.exe", "system" {
    fn SeCreateClientSecurity(
        thread: *mut c_void,
        qos: *const SecurityQualityOfService,
        remote: u8,
        context: *mut SecurityClientContext,
    ) -> i32;
    fn SeTokenIsAdmin(token: *mut c_void) -> u8;
    fn SeImpersonateClientEx(context: *mut SecurityClientContext, server: *mut c_void) -> i32;
    fn PsRevertToSelf();
    fn ZwCreateFile(
        handle: *mut *mut c_void,
        access: u32,
        attributes: *const ObjectAttributes,
        iosb: *mut IoStatusBlock,
        allocation_size: *const AlignedI64,
        file_attributes: u32,
        share: u32,
        disposition: u32,
        options: u32,
        ea: *mut c_void,
        ea_length: u32,
    ) -> i32;
    fn ZwQueryInformationFile(
        handle: *mut c_void,
        iosb: *mut IoStatusBlock,
        info: *mut c_void,
        length: u32,
        class: u32,
    ) -> i32;
    fn ZwReadFile(
        handle: *mut c_void,
        event: *mut c_void,
        apc: *mut c_void,
        apc_context: *mut c_void,
        iosb: *mut IoStatusBlock,
        buffer: *mut c_void,
        length: u32,
        offset: *const AlignedI64,
        key: *const u32,
    ) -> i32;
    fn ZwWriteFile(
        handle: *mut c_void,
        event: *mut c_void,
        apc: *mut c_void,
        apc_context: *mut c_void,
        iosb: *mut IoStatusBlock,
        buffer: *const c_void,
        length: u32,
        offset: *const AlignedI64,
        key: *const u32,
    ) -> i32;
    fn MmAllocatePagesForMdlEx(
        low: i64,
        high: i64,
        skip: i64,
        bytes: usize,
        cache: u32,
        flags: u32,
    ) -> *mut Mdl;
    fn MmMapLockedPagesSpecifyCache(
        mdl: *mut Mdl,
        mode: i8,
        cache: u32,
        requested: *mut c_void,
        bug_check: u32,
        priority: u32,
    ) -> *mut c_void;
    fn MmUnmapLockedPages(va: *mut c_void, mdl: *mut Mdl);
    fn MmFreePagesFromMdl(mdl: *mut Mdl);
    fn ExFreePool(p: *mut c_void);
});

// ObfReferenceObject is fastcall on x86 (§8.1); ObfDereferenceObject is `crate::ntio`'s.
#[cfg(target_arch = "x86")]
#[link(
    name = "ntoskrnl.exe",
    kind = "raw-dylib",
    modifiers = "+verbatim",
    import_name_type = "undecorated"
)]
extern "fastcall" {
    fn ObfReferenceObject(object: *mut c_void) -> isize;
}
#[cfg(not(target_arch = "x86"))]
crate::kernel_imports!("ntoskrnl.exe", "system" {
    fn ObfReferenceObject(object: *mut c_void) -> isize;
});

use crate::ntio::dereference_object as ObfDereferenceObject;

const STATUS_SUCCESS: i32 = 0;
const STATUS_INVALID_PARAMETER: i32 = 0xC000_000Du32 as i32;
const STATUS_INFO_LENGTH_MISMATCH: i32 = 0xC000_0004u32 as i32;

/// A referenced thread object: the requester's thread from its IRP (`docs/control.md` §6.3),
/// released with [`ThreadRef::release`] (exactly once, consumed).
pub struct ThreadRef(NonNull<c_void>);

// SAFETY: a referenced kernel object pointer, usable from any thread.
unsafe impl Send for ThreadRef {}

impl ThreadRef {
    /// `ObfReferenceObject(thread)` (≤ DISPATCH_LEVEL).
    ///
    /// # Safety
    /// `thread` is a thread object that stays alive during this call (the IRP that names it
    /// is pending, so its thread has not gone).
    pub unsafe fn reference(thread: NonNull<c_void>, _irql: &impl AtMostDispatch) -> Self {
        // SAFETY: a live object (contract); allowed at ≤ DISPATCH_LEVEL (token).
        unsafe { ObfReferenceObject(thread.as_ptr()) };
        Self(thread)
    }

    /// `ObfDereferenceObject` (≤ DISPATCH_LEVEL): the reference [`ThreadRef::reference`] took.
    pub fn release(self, _irql: &impl AtMostDispatch) {
        // SAFETY: the one reference this value owns, released once (consumed).
        unsafe { ObfDereferenceObject(self.0.as_ptr()) };
    }
}

/// The requester's security context (`SeCreateClientSecurity`, static tracking), in storage
/// the driver owns; [`ClientSecurity::release`] drops its token reference (what
/// SeDeleteClientSecurity does).
pub struct ClientSecurity {
    ctx: SecurityClientContext,
}

impl ClientSecurity {
    /// `SeCreateClientSecurity(thread, {SecurityImpersonation, static, not effective only},
    /// not remote)` (PASSIVE_LEVEL). The NTSTATUS on failure.
    pub fn capture(thread: &ThreadRef, _irql: &Passive) -> Result<Self, i32> {
        let qos = SecurityQualityOfService {
            length: core::mem::size_of::<SecurityQualityOfService>() as u32,
            impersonation_level: rvblk_abi::SECURITY_IMPERSONATION,
            context_tracking_mode: rvblk_abi::SECURITY_STATIC_TRACKING,
            effective_only: 0,
            reserved: [0; 2],
        };
        let mut this = Self {
            ctx: SecurityClientContext {
                security_qos: SecurityQualityOfService::default(),
                client_token: null_mut(),
                directly_access_client_token: 0,
                direct_access_effective_only: 0,
                server_is_remote: 0,
                client_token_control: Default::default(),
            },
        };
        // SAFETY: PASSIVE_LEVEL (token); a referenced thread object; the QoS and the context
        // storage are locals that outlive the call.
        let st = unsafe { SeCreateClientSecurity(thread.0.as_ptr(), &qos, 0, &mut this.ctx) };
        if st != STATUS_SUCCESS || this.ctx.client_token.is_null() {
            return Err(st);
        }
        Ok(this)
    }

    /// `SeTokenIsAdmin(ClientToken)` (PASSIVE_LEVEL): whether the token holds Administrators
    /// enabled (a UAC-filtered token has it deny-only and answers no).
    pub fn is_admin(&self, _irql: &Passive) -> bool {
        // SAFETY: the token SeCreateClientSecurity referenced, alive until `release`.
        unsafe { SeTokenIsAdmin(self.ctx.client_token) != 0 }
    }

    /// Runs `f` impersonating the client (`SeImpersonateClientEx(ctx, NULL)` … `PsRevertToSelf`,
    /// PASSIVE_LEVEL). The worker thread is back to its own token when this returns, whatever
    /// `f` did. The impersonation's failure status when it could not start (then `f` never runs).
    pub fn impersonating<R>(
        &mut self,
        irql: &Passive,
        f: impl FnOnce(&Passive) -> R,
    ) -> Result<R, i32> {
        // SAFETY: PASSIVE_LEVEL (token); a context SeCreateClientSecurity filled; NULL server
        // thread = the current (worker) thread.
        let st = unsafe { SeImpersonateClientEx(&mut self.ctx, null_mut()) };
        if st != STATUS_SUCCESS {
            return Err(st);
        }
        let r = f(irql);
        // SAFETY: ends the impersonation begun above, on the same thread at PASSIVE_LEVEL.
        unsafe { PsRevertToSelf() };
        Ok(r)
    }

    /// Drops the token reference the context holds (SeDeleteClientSecurity's work).
    pub fn release(self, _irql: &impl AtMostDispatch) {
        // SAFETY: the token reference SeCreateClientSecurity took, released once (consumed).
        unsafe { ObfDereferenceObject(self.ctx.client_token) };
    }
}

/// A file opened by the worker (`ZwCreateFile`), a kernel handle closed with
/// [`FileHandle::close`] (exactly once, consumed).
pub struct FileHandle(NonNull<c_void>);

// SAFETY: a kernel handle (OBJ_KERNEL_HANDLE) is valid in every thread of the system process,
// and only the worker uses it.
unsafe impl Send for FileHandle {}

impl FileHandle {
    /// Opens an existing file by NT path for synchronous, non-directory I/O (PASSIVE_LEVEL,
    /// `docs/windows-integration.md` §9.1): read access (and write access when `write`), shared
    /// for reading only when not `write` and not at all otherwise — never for deletion.
    /// `force_access_check` sets OBJ_FORCE_ACCESS_CHECK (a user-mode requester's open). The
    /// NTSTATUS on failure.
    pub fn open(
        path: &[u16],
        write: bool,
        force_access_check: bool,
        _irql: &Passive,
    ) -> Result<Self, i32> {
        let bytes = u16::try_from(path.len() * 2).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let name = UnicodeString {
            length: bytes,
            maximum_length: bytes,
            buffer: path.as_ptr(),
        };
        let mut attributes = rvblk_abi::OBJ_CASE_INSENSITIVE | rvblk_abi::OBJ_KERNEL_HANDLE;
        if force_access_check {
            attributes |= rvblk_abi::OBJ_FORCE_ACCESS_CHECK;
        }
        let oa = ObjectAttributes {
            length: core::mem::size_of::<ObjectAttributes>() as u32,
            root_directory: null_mut(),
            object_name: &name,
            attributes,
            security_descriptor: null_mut(),
            security_quality_of_service: null_mut(),
        };
        let access = rvblk_abi::GENERIC_READ
            | rvblk_abi::SYNCHRONIZE
            | if write { rvblk_abi::GENERIC_WRITE } else { 0 };
        let share = if write { 0 } else { rvblk_abi::FILE_SHARE_READ };
        let mut handle: *mut c_void = null_mut();
        let mut iosb = IoStatusBlock::default();
        // SAFETY: PASSIVE_LEVEL (token); every pointer is a local that outlives the call; no
        // allocation size, no EA.
        let st = unsafe {
            ZwCreateFile(
                &mut handle,
                access,
                &oa,
                &mut iosb,
                core::ptr::null(),
                0,
                share,
                rvblk_abi::FILE_OPEN,
                rvblk_abi::FILE_NON_DIRECTORY_FILE | rvblk_abi::FILE_SYNCHRONOUS_IO_NONALERT,
                null_mut(),
                0,
            )
        };
        match NonNull::new(handle) {
            Some(h) if st >= 0 => Ok(Self(h)),
            Some(h) => {
                // SAFETY: a handle we were given despite the failure is still ours to close.
                unsafe { crate::nt::close_handle(h.as_ptr()) };
                Err(st)
            }
            None if st >= 0 => Err(STATUS_INVALID_PARAMETER),
            None => Err(st),
        }
    }

    fn query<T: Default>(&self, class: u32, _irql: &Passive) -> Result<T, i32> {
        let mut info = T::default();
        let mut iosb = IoStatusBlock::default();
        // SAFETY: PASSIVE_LEVEL (token); our open handle; `info` is a local of the size passed,
        // and `T` is the plain-data structure of `class` (callers pair them).
        let st = unsafe {
            ZwQueryInformationFile(
                self.0.as_ptr(),
                &mut iosb,
                (&mut info as *mut T).cast(),
                core::mem::size_of::<T>() as u32,
                class,
            )
        };
        if st < 0 {
            return Err(st);
        }
        if iosb.information < core::mem::size_of::<T>() && iosb.information != 0 {
            return Err(STATUS_INFO_LENGTH_MISMATCH);
        }
        Ok(info)
    }

    /// FileStandardInformation (PASSIVE_LEVEL).
    pub fn standard(&self, irql: &Passive) -> Result<FileStandardInformation, i32> {
        self.query(rvblk_abi::FILE_STANDARD_INFORMATION, irql)
    }

    /// FileBasicInformation (PASSIVE_LEVEL).
    pub fn basic(&self, irql: &Passive) -> Result<FileBasicInformation, i32> {
        self.query(rvblk_abi::FILE_BASIC_INFORMATION, irql)
    }

    /// `ZwReadFile` at `offset` into `buf` (PASSIVE_LEVEL): the bytes read (fewer at the end of
    /// the file), or the NTSTATUS (STATUS_END_OF_FILE at or after the end). `buf` must be
    /// resident (pool, a locked SRB buffer, a mapped RAM-disk chunk).
    pub fn read(&self, offset: u64, buf: &mut [u8], _irql: &Passive) -> Result<usize, i32> {
        let len = u32::try_from(buf.len()).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let offset = AlignedI64(i64::try_from(offset).map_err(|_| STATUS_INVALID_PARAMETER)?);
        let mut iosb = IoStatusBlock::default();
        // SAFETY: PASSIVE_LEVEL (token); a synchronous handle, so the call completes before it
        // returns and `buf`, `iosb` and `offset` (borrowed/locals) outlive it.
        let st = unsafe {
            ZwReadFile(
                self.0.as_ptr(),
                null_mut(),
                null_mut(),
                null_mut(),
                &mut iosb,
                buf.as_mut_ptr().cast(),
                len,
                &offset,
                core::ptr::null(),
            )
        };
        if st < 0 {
            return Err(st);
        }
        Ok(iosb.information.min(buf.len()))
    }

    /// `ZwWriteFile` of `buf` at `offset` (PASSIVE_LEVEL): the bytes written, or the NTSTATUS.
    pub fn write(&self, offset: u64, buf: &[u8], _irql: &Passive) -> Result<usize, i32> {
        let len = u32::try_from(buf.len()).map_err(|_| STATUS_INVALID_PARAMETER)?;
        let offset = AlignedI64(i64::try_from(offset).map_err(|_| STATUS_INVALID_PARAMETER)?);
        let mut iosb = IoStatusBlock::default();
        // SAFETY: as in `read`; the buffer is only read.
        let st = unsafe {
            ZwWriteFile(
                self.0.as_ptr(),
                null_mut(),
                null_mut(),
                null_mut(),
                &mut iosb,
                buf.as_ptr().cast(),
                len,
                &offset,
                core::ptr::null(),
            )
        };
        if st < 0 {
            return Err(st);
        }
        Ok(iosb.information.min(buf.len()))
    }

    /// `ZwClose` (PASSIVE_LEVEL).
    pub fn close(self, _irql: &Passive) {
        // SAFETY: our handle, closed exactly once (consumed), at PASSIVE_LEVEL (token).
        unsafe { crate::nt::close_handle(self.0.as_ptr()) };
    }
}

/// One RAM-disk chunk: pages from `MmAllocatePagesForMdlEx`, described by their MDL and mapped
/// into system space. Released with [`RamChunk::free`] (unmapped, pages freed, MDL freed).
pub struct RamChunk {
    mdl: NonNull<Mdl>,
    va: NonNull<u8>,
    len: usize,
}

impl RamChunk {
    /// Allocates `len` bytes (whole pages) of zeroed RAM, anywhere in physical memory, all or
    /// nothing, and maps them cached (≤ APC_LEVEL; the worker runs at PASSIVE). `no_execute`
    /// adds MdlMappingNoExecute (Windows 8+ only). `None` when the machine cannot give it;
    /// nothing is left allocated then.
    pub fn allocate(len: usize, no_execute: bool, _irql: &Passive) -> Option<Self> {
        // SAFETY: PASSIVE_LEVEL (token); any physical address (0 … all ones), no skip, cached,
        // all-or-nothing.
        let mdl = unsafe {
            MmAllocatePagesForMdlEx(
                0,
                -1,
                0,
                len,
                rvblk_abi::MM_CACHED,
                rvblk_abi::MM_ALLOCATE_FULLY_REQUIRED,
            )
        };
        let mdl = NonNull::new(mdl)?;
        // SAFETY: an MDL the kernel just returned; its header is readable (a place computation,
        // nothing read yet).
        let field = unsafe { core::ptr::addr_of!((*mdl.as_ptr()).byte_count) };
        // SAFETY: as above: the header's ByteCount field, initialised by the kernel.
        let got = unsafe { field.read() } as usize;
        if got < len {
            // SAFETY: our MDL with its pages, freed once, then the MDL itself with ExFreePool.
            unsafe { Self::free_mdl(mdl) };
            return None;
        }
        let priority = rvblk_abi::NORMAL_PAGE_PRIORITY
            | if no_execute {
                rvblk_abi::MDL_MAPPING_NO_EXECUTE
            } else {
                0
            };
        // SAFETY: an MDL describing locked pages (MmAllocatePagesForMdlEx's pages are); kernel
        // mode, cached, no address requested, no bug check on failure.
        let va = unsafe {
            MmMapLockedPagesSpecifyCache(
                mdl.as_ptr(),
                0,
                rvblk_abi::MM_CACHED,
                null_mut(),
                0,
                priority,
            )
        };
        let Some(va) = NonNull::new(va.cast::<u8>()) else {
            // SAFETY: as above.
            unsafe { Self::free_mdl(mdl) };
            return None;
        };
        Some(Self { mdl, va, len })
    }

    /// # Safety
    /// `mdl` came from MmAllocatePagesForMdlEx, is not mapped and not used afterwards.
    unsafe fn free_mdl(mdl: NonNull<Mdl>) {
        // SAFETY: per the contract: the pages go back first…
        unsafe { MmFreePagesFromMdl(mdl.as_ptr()) };
        // SAFETY: …then the MDL (pool) itself, not used afterwards.
        unsafe { ExFreePool(mdl.as_ptr().cast()) };
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunk's bytes (resident, mapped) for a fill from the worker: exclusive.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `len` mapped bytes this chunk owns; `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.va.as_ptr(), self.len) }
    }

    /// Copies `dst.len()` bytes at `within` out of the chunk. `within + dst.len() <= len`.
    pub fn copy_out(&self, within: usize, dst: &mut [u8]) {
        assert!(within.checked_add(dst.len()).is_some_and(|e| e <= self.len));
        let src = self.va.as_ptr().wrapping_add(within);
        // SAFETY: inside the mapping (checked above); `dst` is a distinct caller buffer.
        // Requests overlapping the same blocks are ordered above us, as for any disk.
        unsafe { crate::medium::copy_bytes(src, dst.as_mut_ptr(), dst.len()) };
    }

    /// Copies `src` into the chunk at `within`. `within + src.len() <= len`.
    pub fn copy_in(&self, within: usize, src: &[u8]) {
        assert!(within.checked_add(src.len()).is_some_and(|e| e <= self.len));
        let dst = self.va.as_ptr().wrapping_add(within);
        // SAFETY: as in `copy_out`, the other direction.
        unsafe { crate::medium::copy_bytes(src.as_ptr(), dst, src.len()) };
    }

    /// Unmaps the chunk, frees its pages and its MDL (≤ DISPATCH_LEVEL; nothing uses it).
    pub fn free(self, _irql: &impl AtMostDispatch) {
        // SAFETY: the mapping made in `allocate` for this MDL, unmapped once; no request uses
        // it (the caller consumed the chunk).
        unsafe { MmUnmapLockedPages(self.va.as_ptr().cast(), self.mdl.as_ptr()) };
        // SAFETY: unmapped above, not used afterwards.
        unsafe { Self::free_mdl(self.mdl) };
    }
}

// SAFETY: the chunk's pages are locked system memory reachable from any CPU; concurrent copies
// to and from it are what a disk does (overlapping writes are ordered above us).
unsafe impl Send for RamChunk {}
// SAFETY: as above: shared access only copies bytes.
unsafe impl Sync for RamChunk {}
