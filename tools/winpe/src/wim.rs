//! [`Wim`]: a WIM file opened with wimlib, implementing [`WimStore`].
//!
//! Changes are applied with `wimlib_update_image` and written with `wimlib_overwrite` without
//! `WIMLIB_WRITE_FLAG_REBUILD`: wimlib appends the new blobs, metadata and tables to the end of
//! the file and only then rewrites the header, so unchanged resources are not rewritten and an
//! interrupted write leaves the previous WIM valid.

use crate::error::{Error, ErrorKind, Result};
use crate::ffi::wimlib as ffi;
use crate::store::{FileOp, ImageInfo, WimStore};
use std::ffi::{c_int, c_void, CStr, CString};
use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Once;

static INIT: Once = Once::new();

fn global_init() {
    INIT.call_once(|| {
        // SAFETY: called once before any other wimlib call in this process (guarded by `Once`).
        // Case-insensitive lookups make "/Windows/System32/config/SYSTEM" match any spelling,
        // as Windows does.
        unsafe { ffi::wimlib_global_init(ffi::WIMLIB_INIT_FLAG_DEFAULT_CASE_INSENSITIVE) };
    });
}

fn error_string(code: c_int) -> String {
    // SAFETY: wimlib_get_error_string returns a static NUL-terminated string (or NULL).
    let p = unsafe { ffi::wimlib_get_error_string(code) };
    if p.is_null() {
        return format!("wimlib error {code}");
    }
    // SAFETY: non-NULL static string per the wimlib API.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Progress reporting on stderr, driven by wimlib's progress callback.
struct Progress {
    label: String,
    last: i64,
    tty: bool,
    active: bool,
}

/// Only show progress for transfers at least this large.
const PROGRESS_MIN_BYTES: u64 = 8 << 20;

impl Progress {
    fn report(&mut self, what: &str, done: u64, total: u64) {
        if total < PROGRESS_MIN_BYTES {
            return;
        }
        let pct = (done.saturating_mul(100) / total.max(1)) as i64;
        let step = if self.tty { 1 } else { 25 };
        if pct / step == self.last / step && pct != 100 {
            return;
        }
        if pct == self.last {
            return;
        }
        self.last = pct;
        self.active = self.tty;
        let line = format!(
            "rvblk: {} {}: {:3}% ({} / {} MiB)",
            what,
            self.label,
            pct,
            done >> 20,
            total >> 20
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r{line}");
            if pct == 100 {
                let _ = writeln!(err);
                self.active = false;
                self.last = -1;
            }
        } else {
            let _ = writeln!(err, "{line}");
            if pct == 100 {
                self.last = -1;
            }
        }
        let _ = err.flush();
    }
}

unsafe extern "C" fn progress_cb(msg: c_int, info: *mut c_void, ctx: *mut c_void) -> c_int {
    if info.is_null() || ctx.is_null() {
        return ffi::WIMLIB_PROGRESS_STATUS_CONTINUE;
    }
    // SAFETY: `ctx` is the `Box<Progress>` pointer registered by `Wim::open`, alive as long as
    // the WIMStruct; wimlib calls back on the calling thread, so there is no aliasing.
    let p = unsafe { &mut *ctx.cast::<Progress>() };
    match msg {
        ffi::WIMLIB_PROGRESS_MSG_WRITE_STREAMS => {
            // SAFETY: for this message `info` points to `union wimlib_progress_info` whose
            // active member is `write_streams`, of which we read the leading u64 fields.
            let ws = unsafe { &*info.cast::<ffi::wimlib_progress_info_write_streams>() };
            p.report("writing", ws.completed_bytes, ws.total_bytes);
        }
        ffi::WIMLIB_PROGRESS_MSG_CALC_INTEGRITY | ffi::WIMLIB_PROGRESS_MSG_VERIFY_INTEGRITY => {
            // SAFETY: for these messages the active member is `integrity`, whose first two
            // fields are the u64 totals we read.
            let it = unsafe { &*info.cast::<ffi::wimlib_progress_info_integrity>() };
            let what = if msg == ffi::WIMLIB_PROGRESS_MSG_CALC_INTEGRITY {
                "updating integrity table of"
            } else {
                "verifying"
            };
            p.report(what, it.completed_bytes, it.total_bytes);
        }
        _ => {}
    }
    ffi::WIMLIB_PROGRESS_STATUS_CONTINUE
}

unsafe extern "C" fn list_cb(
    dentry: *const ffi::wimlib_dir_entry_prefix,
    ctx: *mut c_void,
) -> c_int {
    // SAFETY: `ctx` is the `&mut Vec<String>` passed by `list_dir` for the duration of the call.
    let out = unsafe { &mut *ctx.cast::<Vec<String>>() };
    // SAFETY: wimlib passes a valid `struct wimlib_dir_entry`, whose first member is `filename`
    // (NULL only for an image root).
    let name = unsafe { (*dentry).filename };
    if !name.is_null() {
        // SAFETY: non-NULL NUL-terminated string owned by wimlib for the callback's duration.
        out.push(
            unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned(),
        );
    }
    0
}

unsafe extern "C" fn noop_cb(_d: *const ffi::wimlib_dir_entry_prefix, _ctx: *mut c_void) -> c_int {
    0
}

/// An open WIM file. Freed on drop; queued changes are discarded unless [`WimStore::commit`] ran.
pub struct Wim {
    wim: *mut ffi::WIMStruct,
    path: PathBuf,
    writable: bool,
    dirty: bool,
    scratch: tempfile::TempDir,
    scratch_n: u32,
    // Boxed so its address stays fixed while wimlib holds it as the progress context.
    _progress: Box<Progress>,
}

fn c_str(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(ErrorKind::Usage, format!("path contains NUL: {s:?}")))
}

fn c_path(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| {
        Error::new(
            ErrorKind::Usage,
            format!("path contains NUL: {}", p.display()),
        )
    })
}

impl Wim {
    /// Opens `path`. With `writable`, the file must be a writable, non-split, non-read-only WIM.
    pub fn open(path: &Path, writable: bool) -> Result<Wim> {
        global_init();
        // Check the magic ourselves for a clear message on non-WIM input.
        {
            use std::io::Read;
            let mut f =
                std::fs::File::open(path).map_err(|e| Error::io(path, "cannot open", &e))?;
            let mut magic = [0u8; 8];
            if f.read_exact(&mut magic).is_err() || &magic != b"MSWIM\0\0\0" {
                return Err(Error::new(
                    ErrorKind::NotAWim,
                    format!("{}: not a WIM file (no MSWIM signature)", path.display()),
                ));
            }
        }
        if writable {
            crate::error::ensure_writable(path)?;
        }
        let c = c_path(path)?;
        let mut progress = Box::new(Progress {
            label: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            last: -1,
            tty: std::io::stderr().is_terminal(),
            active: false,
        });
        let mut wim: *mut ffi::WIMStruct = std::ptr::null_mut();
        let mut flags = ffi::WIMLIB_OPEN_FLAG_ERROR_IF_SPLIT;
        if writable {
            flags |= ffi::WIMLIB_OPEN_FLAG_WRITE_ACCESS;
        }
        // SAFETY: `c` is a valid path; `wim` receives a WIMStruct we own; the progress context is
        // a boxed `Progress` that outlives the WIMStruct (both dropped together in `Drop`).
        let r = unsafe {
            ffi::wimlib_open_wim_with_progress(
                c.as_ptr(),
                flags,
                &mut wim,
                Some(progress_cb),
                (&mut *progress as *mut Progress).cast::<c_void>(),
            )
        };
        if r != 0 {
            return Err(open_error(path, r));
        }
        let scratch = tempfile::Builder::new()
            .prefix("rvblk-winpe-")
            .tempdir()
            .map_err(|e| Error::io(Path::new("temporary directory"), "cannot create", &e))?;
        Ok(Wim {
            wim,
            path: path.to_path_buf(),
            writable,
            dirty: false,
            scratch,
            scratch_n: 0,
            _progress: progress,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A fresh empty directory inside this WIM's scratch space (removed on drop).
    pub fn scratch_dir(&mut self) -> Result<PathBuf> {
        self.scratch_n += 1;
        let d = self.scratch.path().join(format!("s{}", self.scratch_n));
        std::fs::create_dir(&d).map_err(|e| Error::io(&d, "cannot create", &e))?;
        Ok(d)
    }

    fn info(&self) -> Result<ffi::wimlib_wim_info> {
        let mut info = ffi::wimlib_wim_info::default();
        // SAFETY: `self.wim` is open; `info` is a correctly laid out, writable struct.
        let r = unsafe { ffi::wimlib_get_wim_info(self.wim, &mut info) };
        if r != 0 {
            return Err(self.err(r, "reading WIM information"));
        }
        Ok(info)
    }

    fn err(&self, code: c_int, what: &str) -> Error {
        let kind = match code {
            ffi::WIMLIB_ERR_WIM_IS_READONLY => ErrorKind::ReadOnly,
            ffi::WIMLIB_ERR_INVALID_IMAGE => ErrorKind::BadIndex,
            ffi::WIMLIB_ERR_READ
            | ffi::WIMLIB_ERR_UNEXPECTED_END_OF_FILE
            | 19..=21 // invalid integrity table / lookup table entry / metadata resource
            | 28 // invalid resource hash
            | 2 // decompression
            | 55 // resource not found
            => ErrorKind::NotAWim,
            _ => ErrorKind::Io,
        };
        let hint = if kind == ErrorKind::NotAWim {
            " (corrupt or truncated WIM)"
        } else {
            ""
        };
        Error::new(
            kind,
            format!(
                "{}: {what}: {}{hint}",
                self.path.display(),
                error_string(code)
            ),
        )
    }

    fn check_index(&self, image: u32) -> Result<()> {
        let n = self.info()?.image_count;
        if image == 0 || image > n {
            return Err(Error::new(
                ErrorKind::BadIndex,
                format!(
                    "{}: no image {image} (the WIM has {n} image{})",
                    self.path.display(),
                    if n == 1 { "" } else { "s" }
                ),
            ));
        }
        Ok(())
    }

    fn iterate(
        &mut self,
        image: u32,
        wim_path: &str,
        children: Option<&mut Vec<String>>,
    ) -> Result<bool> {
        self.check_index(image)?;
        let c = c_str(wim_path)?;
        let (flags, cb, ctx): (c_int, ffi::wimlib_iterate_dir_tree_callback_t, *mut c_void) =
            match children {
                Some(v) => (
                    ffi::WIMLIB_ITERATE_DIR_TREE_FLAG_CHILDREN,
                    Some(list_cb),
                    (v as *mut Vec<String>).cast::<c_void>(),
                ),
                None => (0, Some(noop_cb), std::ptr::null_mut()),
            };
        // SAFETY: open WIMStruct, valid image index and path; the callback matches the declared
        // type and `ctx` (if any) points to a Vec alive for the whole call.
        let r = unsafe {
            ffi::wimlib_iterate_dir_tree(self.wim, image as c_int, c.as_ptr(), flags, cb, ctx)
        };
        match r {
            0 => Ok(true),
            ffi::WIMLIB_ERR_PATH_DOES_NOT_EXIST => Ok(false),
            _ => Err(self.err(r, &format!("reading {wim_path} in image {image}"))),
        }
    }
}

fn open_error(path: &Path, code: c_int) -> Error {
    let kind = match code {
        ffi::WIMLIB_ERR_WIM_IS_READONLY => ErrorKind::ReadOnly,
        ffi::WIMLIB_ERR_OPEN => ErrorKind::Io,
        _ => ErrorKind::NotAWim,
    };
    let msg = match code {
        ffi::WIMLIB_ERR_WIM_IS_READONLY => format!(
            "{}: WIM cannot be modified (read-only file or media, marked read-only, or split)",
            path.display()
        ),
        ffi::WIMLIB_ERR_IS_SPLIT_WIM => {
            format!("{}: split WIMs (.swm) are not supported", path.display())
        }
        ffi::WIMLIB_ERR_WIM_IS_ENCRYPTED => {
            format!("{}: encrypted WIMs are not supported", path.display())
        }
        _ => format!(
            "{}: not a valid WIM file (truncated or corrupt?): {}",
            path.display(),
            error_string(code)
        ),
    };
    Error::new(kind, msg)
}

impl Drop for Wim {
    fn drop(&mut self) {
        // SAFETY: `self.wim` came from wimlib_open_wim_with_progress and is freed once, here.
        unsafe { ffi::wimlib_free(self.wim) };
    }
}

impl WimStore for Wim {
    fn images(&self) -> Result<Vec<ImageInfo>> {
        let info = self.info()?;
        let prop = c_str("WINDOWS/ARCH")?;
        let build_prop = c_str("WINDOWS/VERSION/BUILD")?;
        let mut out = Vec::new();
        for i in 1..=info.image_count {
            // SAFETY: open WIMStruct, valid index; returns a string owned by the WIMStruct (or
            // NULL), copied before any further wimlib call.
            let name = unsafe { ffi::wimlib_get_image_name(self.wim, i as c_int) };
            let name = if name.is_null() {
                String::new()
            } else {
                // SAFETY: non-NULL NUL-terminated string owned by the WIMStruct.
                unsafe { CStr::from_ptr(name) }
                    .to_string_lossy()
                    .into_owned()
            };
            // SAFETY: as above; `prop` is NUL-terminated.
            let arch =
                unsafe { ffi::wimlib_get_image_property(self.wim, i as c_int, prop.as_ptr()) };
            let arch_property = if arch.is_null() {
                None
            } else {
                // SAFETY: non-NULL NUL-terminated string owned by the WIMStruct.
                unsafe { CStr::from_ptr(arch) }
                    .to_str()
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
            };
            // SAFETY: as above; `build_prop` is NUL-terminated.
            let build = unsafe {
                ffi::wimlib_get_image_property(self.wim, i as c_int, build_prop.as_ptr())
            };
            let build = if build.is_null() {
                None
            } else {
                // SAFETY: non-NULL NUL-terminated string owned by the WIMStruct.
                unsafe { CStr::from_ptr(build) }
                    .to_str()
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
            };
            out.push(ImageInfo {
                index: i,
                name,
                arch_property,
                build,
                bootable: info.boot_index == i,
            });
        }
        Ok(out)
    }

    fn read_file(&mut self, image: u32, wim_path: &str) -> Result<Option<Vec<u8>>> {
        self.check_index(image)?;
        let dir = self.scratch_dir()?;
        let target = c_path(&dir)?;
        let p = c_str(wim_path)?;
        let paths = [p.as_ptr()];
        // SAFETY: open WIMStruct, valid index; `target` and the one-element path array are valid
        // NUL-terminated strings alive for the call.
        let r = unsafe {
            ffi::wimlib_extract_paths(
                self.wim,
                image as c_int,
                target.as_ptr(),
                paths.as_ptr(),
                1,
                ffi::WIMLIB_EXTRACT_FLAG_NO_PRESERVE_DIR_STRUCTURE,
            )
        };
        if r == ffi::WIMLIB_ERR_PATH_DOES_NOT_EXIST {
            return Ok(None);
        }
        if r != 0 {
            return Err(self.err(r, &format!("extracting {wim_path} from image {image}")));
        }
        // The extracted file carries the image's own spelling of the name: take the only entry.
        let entry = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, "cannot list", &e))?
            .next()
            .and_then(|e| e.ok())
            .map(|e| e.path());
        let Some(file) = entry else { return Ok(None) };
        if !file.is_file() {
            return Ok(None);
        }
        let data = std::fs::read(&file).map_err(|e| Error::io(&file, "cannot read", &e))?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(Some(data))
    }

    fn exists(&mut self, image: u32, wim_path: &str) -> Result<bool> {
        self.iterate(image, wim_path, None)
    }

    fn list_dir(&mut self, image: u32, wim_path: &str) -> Result<Vec<String>> {
        let mut v = Vec::new();
        self.iterate(image, wim_path, Some(&mut v))?;
        Ok(v)
    }

    fn update(&mut self, image: u32, ops: &[FileOp]) -> Result<()> {
        if !self.writable {
            return Err(Error::new(ErrorKind::Usage, "WIM opened read-only"));
        }
        self.check_index(image)?;
        if ops.is_empty() {
            return Ok(());
        }
        let mut strings: Vec<CString> = Vec::new();
        let mut cmds: Vec<ffi::wimlib_update_command> = Vec::new();
        for op in ops {
            match op {
                FileOp::Put { wim_path, source } => {
                    let src = c_path(source)?;
                    let dst = c_str(wim_path)?;
                    cmds.push(ffi::wimlib_update_command {
                        op: ffi::WIMLIB_UPDATE_OP_ADD,
                        u: ffi::wimlib_update_command_u {
                            add: ffi::wimlib_add_command {
                                fs_source_path: src.as_ptr().cast_mut(),
                                wim_target_path: dst.as_ptr().cast_mut(),
                                config_file: std::ptr::null_mut(),
                                add_flags: 0,
                            },
                        },
                    });
                    strings.push(src);
                    strings.push(dst);
                }
                FileOp::Delete { wim_path } => {
                    let p = c_str(wim_path)?;
                    cmds.push(ffi::wimlib_update_command {
                        op: ffi::WIMLIB_UPDATE_OP_DELETE,
                        u: ffi::wimlib_update_command_u {
                            delete_: ffi::wimlib_delete_command {
                                wim_path: p.as_ptr().cast_mut(),
                                delete_flags: ffi::WIMLIB_DELETE_FLAG_RECURSIVE,
                            },
                        },
                    });
                    strings.push(p);
                }
            }
        }
        // SAFETY: `cmds` holds `cmds.len()` initialised commands whose string pointers borrow
        // `strings` (moving a CString does not move its heap buffer), alive for the call; wimlib
        // copies what it keeps. Source files stay on disk (in `scratch` or the package) until
        // after `commit`.
        let r = unsafe {
            ffi::wimlib_update_image(self.wim, image as c_int, cmds.as_ptr(), cmds.len(), 0)
        };
        drop(strings);
        if r != 0 {
            return Err(self.err(r, &format!("updating image {image}")));
        }
        self.dirty = true;
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        // Re-check right before writing: the medium may have turned read-only meanwhile.
        crate::error::ensure_writable(&self.path)?;
        // SAFETY: open, writable WIMStruct. Flags 0: in-place append (no REBUILD), keep the
        // integrity table if the WIM has one; 0 threads = wimlib's default.
        let r = unsafe { ffi::wimlib_overwrite(self.wim, 0, 0) };
        if self._progress.active {
            eprintln!();
        }
        if r != 0 {
            return Err(self.err(r, "writing the WIM"));
        }
        self.dirty = false;
        Ok(())
    }
}
