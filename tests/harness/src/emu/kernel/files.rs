//! Files over host files (`docs/harness-runtime.md` §2): ZwCreateFile, ZwQueryInformationFile,
//! ZwReadFile, ZwWriteFile and ZwClose of file handles, on the NT path `\??\Z:\` + a host
//! absolute path. Sharing is NT's (a second opener, or a harness-held lock, gets
//! STATUS_SHARING_VIOLATION); access is checked against the impersonated token when the open
//! asks for it (OBJ_FORCE_ACCESS_CHECK); compressed/sparse/encrypted/read-only attributes come
//! from a harness-side table; a file can "vanish" (its volume went away).

use super::security::{impersonating, TokenKind};
use super::{
    Kernel, PASSIVE_LEVEL, STATUS_INFO_LENGTH_MISMATCH, STATUS_INVALID_HANDLE,
    STATUS_INVALID_INFO_CLASS, STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_INVALID,
    STATUS_OBJECT_NAME_NOT_FOUND, STATUS_SUCCESS,
};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

pub const STATUS_OBJECT_PATH_NOT_FOUND: i32 = 0xC000_003A_u32 as i32;
pub const STATUS_SHARING_VIOLATION: i32 = 0xC000_0043_u32 as i32;
pub const STATUS_ACCESS_DENIED: i32 = 0xC000_0022_u32 as i32;
pub const STATUS_FILE_IS_A_DIRECTORY: i32 = 0xC000_00BA_u32 as i32;
pub const STATUS_END_OF_FILE: i32 = 0xC000_0011_u32 as i32;
pub const STATUS_FILE_INVALID: i32 = 0xC000_0098_u32 as i32;
pub const STATUS_BAD_IMPERSONATION_LEVEL: i32 = 0xC000_00A5_u32 as i32;
pub const STATUS_IO_DEVICE_ERROR: i32 = 0xC000_0185_u32 as i32;

pub const GENERIC_READ: u32 = 0x8000_0000;
pub const GENERIC_WRITE: u32 = 0x4000_0000;
pub const GENERIC_ALL: u32 = 0x1000_0000;
pub const SYNCHRONIZE: u32 = 0x0010_0000;
pub const DELETE: u32 = 0x0001_0000;
pub const FILE_READ_DATA: u32 = 1;
pub const FILE_WRITE_DATA: u32 = 2;
pub const FILE_APPEND_DATA: u32 = 4;
pub const FILE_SHARE_READ: u32 = 1;
pub const FILE_SHARE_WRITE: u32 = 2;
pub const FILE_SHARE_DELETE: u32 = 4;
pub const FILE_OPEN: u32 = 1;
pub const FILE_NO_INTERMEDIATE_BUFFERING: u32 = 0x8;
pub const FILE_SYNCHRONOUS_IO_ALERT: u32 = 0x10;
pub const FILE_SYNCHRONOUS_IO_NONALERT: u32 = 0x20;
pub const FILE_NON_DIRECTORY_FILE: u32 = 0x40;
pub const OBJ_CASE_INSENSITIVE: u32 = 0x40;
pub const OBJ_KERNEL_HANDLE: u32 = 0x200;
pub const OBJ_FORCE_ACCESS_CHECK: u32 = 0x400;
pub const FILE_ATTRIBUTE_READONLY: u32 = 0x1;
pub const FILE_ATTRIBUTE_ARCHIVE: u32 = 0x20;
pub const FILE_ATTRIBUTE_SPARSE_FILE: u32 = 0x200;
pub const FILE_ATTRIBUTE_COMPRESSED: u32 = 0x800;
pub const FILE_ATTRIBUTE_ENCRYPTED: u32 = 0x4000;
pub const FILE_BASIC_INFORMATION: u32 = 4;
pub const FILE_STANDARD_INFORMATION: u32 = 5;

/// The NT prefix of host paths.
pub const NT_PREFIX: &str = "\\??\\Z:";

/// `\??\Z:\` + host path (`/` as `\`), the NT path of a host absolute path.
pub fn nt_path(host: &Path) -> String {
    format!("{NT_PREFIX}{}", host.display()).replace('/', "\\")
}

/// The host path an NT path names, or the status ZwCreateFile answers.
pub fn host_path(nt: &str) -> Result<PathBuf, i32> {
    let p = nt.len().min(NT_PREFIX.len());
    if !nt[..p].eq_ignore_ascii_case(NT_PREFIX) || !nt[p..].starts_with('\\') {
        return Err(STATUS_OBJECT_PATH_NOT_FOUND);
    }
    let rest = &nt[p + 1..];
    if rest.is_empty() {
        return Err(STATUS_OBJECT_NAME_INVALID);
    }
    let mut host = PathBuf::from("/");
    for c in rest.split('\\') {
        // NT names have no empty, `.` or `..` components (the file system refuses them).
        if c.is_empty() || c == "." || c == ".." || c.contains('/') {
            return Err(STATUS_OBJECT_NAME_INVALID);
        }
        host.push(c);
    }
    Ok(host)
}

/// Parses a `--file-attr` value: compressed, sparse, encrypted, readonly (comma-separated).
pub fn parse_attributes(s: &str) -> Result<u32, String> {
    let mut a = 0;
    for w in s.split(',') {
        a |= match w {
            "compressed" => FILE_ATTRIBUTE_COMPRESSED,
            "sparse" => FILE_ATTRIBUTE_SPARSE_FILE,
            "encrypted" => FILE_ATTRIBUTE_ENCRYPTED,
            "readonly" => FILE_ATTRIBUTE_READONLY,
            _ => {
                return Err(format!(
                    "file attribute {w:?} (compressed, sparse, encrypted or readonly)"
                ))
            }
        };
    }
    Ok(a)
}

type FileKey = (u64, u64);

#[derive(Clone, Copy)]
struct Open {
    read: bool,
    write: bool,
    delete: bool,
    share: u32,
}

struct FileHandle {
    nt: String,
    /// Shared with the calls using it, so none needs the handle table's lock during I/O.
    file: std::sync::Arc<File>,
    key: FileKey,
    open: Open,
    no_buffering: bool,
}

#[derive(Default)]
pub(crate) struct FileState {
    handles: Mutex<HashMap<usize, FileHandle>>,
    /// Harness-side facts about host files, by (dev, ino).
    attrs: Mutex<HashMap<FileKey, u32>>,
    locked: Mutex<HashSet<FileKey>>,
    denied: Mutex<HashSet<FileKey>>,
    vanished: Mutex<HashSet<FileKey>>,
    /// Test hook: ZwReadFile calls of at least this many bytes wait while it is set
    /// ([`Kernel::hold_file_reads`]); and how many wait right now.
    hold: Mutex<(Option<u32>, u32)>,
    held: std::sync::Condvar,
    /// ZwReadFile calls on any handle, ever.
    reads: std::sync::atomic::AtomicU64,
    /// Of those, the ones made inside a miniport callback (HwStartIo's inline file reads).
    inline_reads: std::sync::atomic::AtomicU64,
}

fn key_of(m: &std::fs::Metadata) -> FileKey {
    (m.dev(), m.ino())
}

fn conflicts(a: Open, b: Open) -> bool {
    (a.read && b.share & FILE_SHARE_READ == 0)
        || (a.write && b.share & FILE_SHARE_WRITE == 0)
        || (a.delete && b.share & FILE_SHARE_DELETE == 0)
        || (b.read && a.share & FILE_SHARE_READ == 0)
        || (b.write && a.share & FILE_SHARE_WRITE == 0)
        || (b.delete && a.share & FILE_SHARE_DELETE == 0)
}

fn open_of(access: u32, share: u32) -> Open {
    Open {
        read: access & (GENERIC_READ | GENERIC_ALL | FILE_READ_DATA) != 0,
        write: access & (GENERIC_WRITE | GENERIC_ALL | FILE_WRITE_DATA | FILE_APPEND_DATA) != 0,
        delete: access & (DELETE | GENERIC_ALL) != 0,
        share,
    }
}

/// 100 ns units since 1601 of a Unix time.
fn nt_time(secs: i64, nsec: i64) -> i64 {
    (secs + 11_644_473_600) * 10_000_000 + nsec / 100
}

impl Kernel {
    fn files_key(&self, host: &Path) -> Result<FileKey, String> {
        std::fs::metadata(host)
            .map(|m| key_of(&m))
            .map_err(|e| format!("{}: {e}", host.display()))
    }

    /// Gives host file `host` these FILE_ATTRIBUTE_* bits (compressed, sparse, encrypted,
    /// read-only) in FileBasicInformation.
    pub fn set_file_attributes(&self, host: &Path, attrs: u32) -> Result<(), String> {
        let k = self.files_key(host)?;
        self.files
            .attrs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(k, attrs);
        Ok(())
    }

    /// Another opener (the harness) holds `host` open for read and write, sharing nothing.
    pub fn lock_file(&self, host: &Path, locked: bool) -> Result<(), String> {
        let k = self.files_key(host)?;
        let mut l = self.files.locked.lock().unwrap_or_else(|e| e.into_inner());
        if locked {
            l.insert(k);
        } else {
            l.remove(&k);
        }
        Ok(())
    }

    /// `host`'s ACL denies every user (the SYSTEM account excepted).
    pub fn deny_file(&self, host: &Path) -> Result<(), String> {
        let k = self.files_key(host)?;
        self.files
            .denied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(k);
        Ok(())
    }

    /// The volume of `host` went away: every I/O on its handles fails with
    /// STATUS_FILE_INVALID from now on.
    pub fn vanish_file(&self, host: &Path) -> Result<(), String> {
        let k = self.files_key(host)?;
        self.files
            .vanished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(k);
        Ok(())
    }

    /// Test hook: from now on every ZwReadFile of at least `min_len` bytes waits (on the
    /// driver's thread) until it is called with `None`, which lets them all go.
    pub fn hold_file_reads(&self, min_len: Option<u32>) {
        let mut h = self.files.hold.lock().unwrap_or_else(|e| e.into_inner());
        h.0 = min_len;
        self.files.held.notify_all();
    }

    /// ZwReadFile calls waiting in [`Kernel::hold_file_reads`] right now.
    pub fn held_file_reads(&self) -> u32 {
        self.files.hold.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    /// ZwReadFile calls so far (every handle).
    pub fn file_read_calls(&self) -> u64 {
        self.files.reads.load(Ordering::SeqCst)
    }

    /// ZwReadFile calls so far made inside a miniport callback (HwStartIo at PASSIVE_LEVEL).
    pub fn inline_file_read_calls(&self) -> u64 {
        self.files.inline_reads.load(Ordering::SeqCst)
    }

    fn wait_if_held(&self, len: u32) {
        let mut h = self.files.hold.lock().unwrap_or_else(|e| e.into_inner());
        if h.0.is_none_or(|min| len < min) {
            return;
        }
        h.1 += 1;
        while h.0.is_some_and(|min| len >= min) {
            h = self.files.held.wait(h).unwrap_or_else(|e| e.into_inner());
        }
        h.1 -= 1;
    }

    /// Handles the driver holds on `host`.
    pub fn open_file_handles(&self, host: &Path) -> usize {
        let Ok(k) = self.files_key(host) else {
            return 0;
        };
        self.files
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|h| h.key == k)
            .count()
    }

    /// What another program's open of `host` with `access`/`share` would get now
    /// (STATUS_SUCCESS or STATUS_SHARING_VIOLATION): the "locked against deletion" check.
    pub fn other_open(&self, host: &Path, access: u32, share: u32) -> i32 {
        let Ok(k) = self.files_key(host) else {
            return STATUS_OBJECT_NAME_NOT_FOUND;
        };
        self.sharing(k, open_of(access, share))
    }

    fn sharing(&self, k: FileKey, want: Open) -> i32 {
        if self
            .files
            .locked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&k)
        {
            return STATUS_SHARING_VIOLATION;
        }
        let h = self.files.handles.lock().unwrap_or_else(|e| e.into_inner());
        if h.values().any(|x| x.key == k && conflicts(x.open, want)) {
            return STATUS_SHARING_VIOLATION;
        }
        STATUS_SUCCESS
    }

    fn attributes(&self, k: FileKey, m: &std::fs::Metadata) -> u32 {
        let table = self
            .files
            .attrs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&k)
            .copied()
            .unwrap_or(0);
        let ro = if m.mode() & 0o222 == 0 {
            FILE_ATTRIBUTE_READONLY
        } else {
            0
        };
        FILE_ATTRIBUTE_ARCHIVE | table | ro
    }

    fn write_iosb(iosb: *mut usize, status: i32, info: usize) {
        if iosb.is_null() {
            return;
        }
        // SAFETY: IO_STATUS_BLOCK in driver memory: Status (pointer-sized) @0, Information @P.
        unsafe { iosb.write_unaligned(status as u32 as usize) };
        let info_p = iosb.wrapping_add(1);
        // SAFETY: as above.
        unsafe { info_p.write_unaligned(info) };
    }

    /// Verifier checks common to every file call: PASSIVE_LEVEL, and the impersonated token
    /// belongs to the request being served. Returns the effective token.
    fn file_call(&self, api: &str) -> TokenKind {
        self.check_irql(api, PASSIVE_LEVEL);
        if super::irql() == PASSIVE_LEVEL && super::apcs_disabled() {
            self.fail(format!(
                "{api} with special kernel APCs disabled: a synchronous file call needs them for its completion (a hang on Windows)"
            ));
        }
        self.impersonation(api)
            .map_or(TokenKind::System, |t| t.kind)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create_file(
        &self,
        out: *mut usize,
        access: u32,
        oa: *const rvblk_abi::ObjectAttributes,
        iosb: *mut usize,
        alloc: usize,
        attrs: u32,
        share: u32,
        disposition: u32,
        options: u32,
        ea: usize,
        ea_len: u32,
    ) -> i32 {
        let api = "ZwCreateFile";
        self.check_irql(api, PASSIVE_LEVEL);
        let imp = self.impersonation(api);
        if out.is_null() || oa.is_null() || iosb.is_null() {
            self.fail(format!(
                "{api} with a NULL FileHandle, ObjectAttributes or IoStatusBlock"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: non-null OBJECT_ATTRIBUTES from the driver.
        let a = unsafe { oa.read_unaligned() };
        if a.length as usize != std::mem::size_of::<rvblk_abi::ObjectAttributes>() {
            self.fail(format!(
                "{api}: OBJECT_ATTRIBUTES.Length {} (expected {})",
                a.length,
                std::mem::size_of::<rvblk_abi::ObjectAttributes>()
            ));
            return STATUS_INVALID_PARAMETER;
        }
        let Some(name) = self.unicode(a.object_name, "ZwCreateFile ObjectName") else {
            return STATUS_OBJECT_NAME_INVALID;
        };
        let what = format!("{api}({name})");
        if !a.root_directory.is_null() {
            self.log_line(format!(
                "[harness] {what} relative to a root directory handle is not emulated"
            ));
            return STATUS_OBJECT_PATH_NOT_FOUND;
        }
        if a.attributes & OBJ_KERNEL_HANDLE == 0 {
            self.fail(format!(
                "{what} without OBJ_KERNEL_HANDLE: the handle would belong to the current process, not the kernel"
            ));
        }
        if a.attributes & OBJ_CASE_INSENSITIVE == 0 {
            self.log_line(format!(
                "[harness] {what} without OBJ_CASE_INSENSITIVE (Win32 names are case-insensitive)"
            ));
        }
        let forced = a.attributes & OBJ_FORCE_ACCESS_CHECK != 0;
        match (&imp, self.user_request_in_flight()) {
            (None, Some((i, who))) => self.fail(format!(
                "{what} while control requester #{i} ({}, UserMode) is being served, without impersonating it: the file would be opened with the driver's rights (docs/control.md §6.3)",
                who.name()
            )),
            (Some(_), _) if !forced => self.fail(format!(
                "{what} while impersonating, without OBJ_FORCE_ACCESS_CHECK: a kernel-mode open skips the requester's access check"
            )),
            _ => {}
        }
        let want = open_of(access, share);
        if share & FILE_SHARE_DELETE != 0 {
            self.fail(format!(
                "{what} with FILE_SHARE_DELETE (share {share:#x}): a mounted file must stay locked against deletion and renaming"
            ));
        }
        if want.write && self.read_only_request_in_flight() {
            self.fail(format!(
                "{what} opened for write (access {access:#x}) for a read-only mount"
            ));
        }
        if disposition != FILE_OPEN {
            self.fail(format!(
                "{what}: CreateDisposition {disposition} (a mount opens an existing file: FILE_OPEN 1)"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        if alloc != 0 || attrs != 0 || ea != 0 || ea_len != 0 {
            self.log_line(format!(
                "[harness] {what}: AllocationSize/FileAttributes/EaBuffer ignored for FILE_OPEN"
            ));
        }
        let sync = options & (FILE_SYNCHRONOUS_IO_NONALERT | FILE_SYNCHRONOUS_IO_ALERT) != 0;
        if !sync {
            self.fail(format!(
                "{what} without FILE_SYNCHRONOUS_IO_NONALERT: ZwReadFile could return STATUS_PENDING on this handle"
            ));
        } else if access & SYNCHRONIZE == 0 {
            // The I/O manager refuses synchronous I/O on a handle that cannot be waited on.
            return STATUS_INVALID_PARAMETER;
        }
        let host = match host_path(&name) {
            Ok(h) => h,
            Err(st) => {
                Self::write_iosb(iosb, st, 0);
                return st;
            }
        };
        let st = self.open_host(
            &host,
            access,
            want,
            options,
            forced,
            imp.map(|t| (t.kind, t.level)),
        );
        let (st, handle) = match st {
            Ok(h) => (STATUS_SUCCESS, h),
            Err(st) => (st, None),
        };
        Self::write_iosb(iosb, st, usize::from(st == STATUS_SUCCESS));
        if let Some(h) = handle {
            let n = self.next_handle.fetch_add(1, Ordering::Relaxed);
            let hv = (usize::MAX << (usize::BITS - 1)) | (n << 2);
            self.files
                .handles
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(hv, FileHandle { nt: name, ..h });
            // SAFETY: non-null HANDLE out-pointer from the driver.
            unsafe { out.write_unaligned(hv) };
        }
        st
    }

    fn open_host(
        &self,
        host: &Path,
        access: u32,
        want: Open,
        options: u32,
        forced: bool,
        token: Option<(TokenKind, u32)>,
    ) -> Result<Option<FileHandle>, i32> {
        if token.is_some_and(|(_, level)| level < super::security::SECURITY_IMPERSONATION) {
            return Err(STATUS_BAD_IMPERSONATION_LEVEL);
        }
        let m = match std::fs::metadata(host) {
            Ok(m) => m,
            Err(_) => {
                let parent_ok = host.parent().is_some_and(|p| p.is_dir());
                return Err(if parent_ok {
                    STATUS_OBJECT_NAME_NOT_FOUND
                } else {
                    STATUS_OBJECT_PATH_NOT_FOUND
                });
            }
        };
        let k = key_of(&m);
        if self
            .files
            .vanished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&k)
        {
            return Err(STATUS_OBJECT_PATH_NOT_FOUND);
        }
        if m.is_dir() {
            if options & FILE_NON_DIRECTORY_FILE != 0 {
                return Err(STATUS_FILE_IS_A_DIRECTORY);
            }
            self.fail(format!(
                "ZwCreateFile({}) without FILE_NON_DIRECTORY_FILE opened a directory",
                host.display()
            ));
            return Err(STATUS_INVALID_PARAMETER);
        }
        if !m.is_file() {
            return Err(STATUS_ACCESS_DENIED);
        }
        // The file system enforces the read-only attribute for everyone.
        if want.write && self.attributes(k, &m) & FILE_ATTRIBUTE_READONLY != 0 {
            return Err(STATUS_ACCESS_DENIED);
        }
        if forced {
            let who = token.map_or(TokenKind::System, |t| t.0);
            let denied = self
                .files
                .denied
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&k);
            if who != TokenKind::System && denied {
                return Err(STATUS_ACCESS_DENIED);
            }
            // A standard user (or a non-elevated administrator) is "others" to the host file.
            if matches!(who, TokenKind::User | TokenKind::Filtered)
                && ((want.read && m.mode() & 0o004 == 0) || (want.write && m.mode() & 0o002 == 0))
            {
                return Err(STATUS_ACCESS_DENIED);
            }
        }
        let st = self.sharing(k, want);
        if st != STATUS_SUCCESS {
            return Err(st);
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(want.write)
            .open(host)
            .map_err(|_| STATUS_ACCESS_DENIED)?;
        let _ = access;
        Ok(Some(FileHandle {
            nt: String::new(),
            file: std::sync::Arc::new(file),
            key: k,
            open: want,
            no_buffering: options & FILE_NO_INTERMEDIATE_BUFFERING != 0,
        }))
    }

    /// ZwClose of a file handle; false when `h` is not one.
    pub(crate) fn close_file_handle(&self, h: usize) -> bool {
        self.files
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&h)
            .is_some()
    }

    /// (file, key, readable, writable, no-buffering) of an open handle.
    fn handle(
        &self,
        api: &str,
        h: usize,
    ) -> Result<(std::sync::Arc<File>, FileKey, Open, bool), i32> {
        let t = self.files.handles.lock().unwrap_or_else(|e| e.into_inner());
        match t.get(&h) {
            Some(f) => Ok((f.file.clone(), f.key, f.open, f.no_buffering)),
            None => {
                drop(t);
                self.fail(format!(
                    "{api}({h:#x}): not an open file handle [bug check 0x93 INVALID_KERNEL_HANDLE]"
                ));
                Err(STATUS_INVALID_HANDLE)
            }
        }
    }

    fn vanished(&self, k: FileKey) -> bool {
        self.files
            .vanished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&k)
    }

    pub(crate) fn query_information_file(
        &self,
        h: usize,
        iosb: *mut usize,
        buf: *mut u8,
        len: u32,
        class: u32,
    ) -> i32 {
        let api = "ZwQueryInformationFile";
        self.file_call(api);
        let (f, k, _, _) = match self.handle(api, h) {
            Ok(x) => x,
            Err(st) => return st,
        };
        if iosb.is_null() || buf.is_null() {
            self.fail(format!(
                "{api} with a NULL IoStatusBlock or FileInformation"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        if self.vanished(k) {
            Self::write_iosb(iosb, STATUS_FILE_INVALID, 0);
            return STATUS_FILE_INVALID;
        }
        let Ok(m) = f.metadata() else {
            return STATUS_IO_DEVICE_ERROR;
        };
        let mut out = Vec::new();
        match class {
            FILE_STANDARD_INFORMATION => {
                out.resize(24, 0);
                let alloc = m.size().next_multiple_of(4096);
                out[0..8].copy_from_slice(&alloc.to_le_bytes());
                out[8..16].copy_from_slice(&m.size().to_le_bytes());
                out[16..20].copy_from_slice(&(m.nlink() as u32).to_le_bytes());
            }
            FILE_BASIC_INFORMATION => {
                out.resize(40, 0);
                let t = [
                    nt_time(m.ctime(), m.ctime_nsec()),
                    nt_time(m.atime(), m.atime_nsec()),
                    nt_time(m.mtime(), m.mtime_nsec()),
                    nt_time(m.ctime(), m.ctime_nsec()),
                ];
                for (i, v) in t.iter().enumerate() {
                    out[8 * i..8 * i + 8].copy_from_slice(&v.to_le_bytes());
                }
                out[32..36].copy_from_slice(&self.attributes(k, &m).to_le_bytes());
            }
            _ => {
                self.log_line(format!(
                    "[harness] {api}: information class {class} not emulated"
                ));
                return STATUS_INVALID_INFO_CLASS;
            }
        }
        if (len as usize) < out.len() {
            return STATUS_INFO_LENGTH_MISMATCH;
        }
        // SAFETY: `len` >= out.len() writable bytes at `buf` (the caller's buffer).
        unsafe { std::ptr::copy_nonoverlapping(out.as_ptr(), buf, out.len()) };
        Self::write_iosb(iosb, STATUS_SUCCESS, out.len());
        STATUS_SUCCESS
    }

    /// ZwReadFile / ZwWriteFile on a synchronous handle.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn read_write_file(
        &self,
        write: bool,
        h: usize,
        event: usize,
        apc: usize,
        iosb: *mut usize,
        buf: *mut u8,
        len: u32,
        offset: *const i64,
        key: usize,
    ) -> i32 {
        let api = if write { "ZwWriteFile" } else { "ZwReadFile" };
        self.file_call(api);
        let (f, k, open, no_buffering) = match self.handle(api, h) {
            Ok(x) => x,
            Err(st) => return st,
        };
        if event != 0 || apc != 0 || key != 0 {
            self.log_line(format!(
                "[harness] {api}: Event/ApcRoutine/Key given; the contract passes NULL on a synchronous handle"
            ));
        }
        if iosb.is_null() || (buf.is_null() && len > 0) {
            self.fail(format!("{api} with a NULL IoStatusBlock or Buffer"));
            return STATUS_INVALID_PARAMETER;
        }
        if offset.is_null() {
            self.fail(format!(
                "{api} without a ByteOffset: the handle's position is shared by every request of the LUN"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: a non-null PLARGE_INTEGER from the driver.
        let off = unsafe { offset.read_unaligned() };
        if off < 0 {
            return STATUS_INVALID_PARAMETER;
        }
        let off = off as u64;
        if no_buffering && (!off.is_multiple_of(512) || !(len as u64).is_multiple_of(512)) {
            // Non-cached I/O must be sector-aligned (the file system refuses it otherwise).
            return STATUS_INVALID_PARAMETER;
        }
        if (write && !open.write) || (!write && !open.read) {
            Self::write_iosb(iosb, STATUS_ACCESS_DENIED, 0);
            return STATUS_ACCESS_DENIED;
        }
        if self.vanished(k) {
            Self::write_iosb(iosb, STATUS_FILE_INVALID, 0);
            return STATUS_FILE_INVALID;
        }
        if !write {
            self.files.reads.fetch_add(1, Ordering::SeqCst);
            if super::irql::IN_MINIPORT.with(|c| c.get()) {
                self.files.inline_reads.fetch_add(1, Ordering::SeqCst);
            }
            self.wait_if_held(len);
        }
        let (st, n) = if write {
            let size = f.metadata().map(|m| m.size()).unwrap_or(0);
            if off + u64::from(len) > size {
                self.fail(format!(
                    "{api}({h:#x}) of {len} bytes at {off:#x} grows the file past its end ({size:#x}): a LUN must stay inside its image"
                ));
            }
            // SAFETY: `len` readable bytes at `buf` (the caller's buffer).
            let b = unsafe { std::slice::from_raw_parts(buf, len as usize) };
            match f.write_all_at(b, off) {
                Ok(()) => (STATUS_SUCCESS, len as usize),
                Err(_) => (STATUS_IO_DEVICE_ERROR, 0),
            }
        } else {
            // Up to `len` bytes, fewer at the end of the file (no fstat per call: the host's
            // read says where the end is).
            // SAFETY: `len` writable bytes at `buf`.
            let b = unsafe { std::slice::from_raw_parts_mut(buf, len as usize) };
            let mut n = 0;
            let r = loop {
                if n == b.len() {
                    break Ok(());
                }
                match f.read_at(&mut b[n..], off + n as u64) {
                    Ok(0) => break Ok(()),
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            match r {
                Ok(()) if n == 0 && len > 0 => (STATUS_END_OF_FILE, 0),
                Ok(()) => (STATUS_SUCCESS, n),
                Err(_) => (STATUS_IO_DEVICE_ERROR, 0),
            }
        };
        Self::write_iosb(iosb, st, n);
        st
    }

    /// File handles still open, as verifier lines.
    pub(crate) fn file_handle_leaks(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .files
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(h, f)| {
                format!(
                    "file handle leaked: {h:#x} ({}) never passed to ZwClose",
                    f.nt
                )
            })
            .collect();
        v.sort();
        v
    }

    /// Forgets every file handle (after reporting them).
    pub(crate) fn drop_files(&self) {
        self.files
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Whether the calling thread impersonates (for the wait check).
    pub(crate) fn thread_impersonates(&self) -> bool {
        impersonating()
    }
}
