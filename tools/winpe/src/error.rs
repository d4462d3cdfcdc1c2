//! One error type whose `Display` is the one-line message the CLI prints.

use std::fmt;
use std::path::Path;

/// What went wrong, so callers (and tests) can tell failures apart without parsing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file is not a WIM (bad magic, truncated, corrupt header or tables).
    NotAWim,
    /// The requested image index does not exist.
    BadIndex,
    /// A registry hive is corrupt, or not the kind of hive expected.
    BadHive,
    /// A SYSTEM hive has no usable `\Select` key or control set.
    NoSelect,
    /// The target file or medium cannot be written.
    ReadOnly,
    /// The driver package has no binary for the image's architecture, or is incomplete.
    Package,
    /// The image's architecture could not be determined or is unsupported.
    Arch,
    /// A BCD store without `{bootmgr}`, a default entry or OS loaders.
    BadBcd,
    /// Any other I/O or library failure.
    Io,
    /// Bad combination of arguments.
    Usage,
}

/// An error with a one-line, user-facing message.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub msg: String,
}

impl Error {
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Error {
            kind,
            msg: msg.into(),
        }
    }

    /// An I/O error on `path`, classified (read-only media become [`ErrorKind::ReadOnly`]).
    pub fn io(path: &Path, what: &str, e: &std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                ErrorKind::ReadOnly
            }
            _ => ErrorKind::Io,
        };
        Error::new(kind, format!("{}: {what}: {e}", path.display()))
    }
}

impl From<rvblk_outfile::Error> for Error {
    fn from(e: rvblk_outfile::Error) -> Self {
        Error::io(&e.path, e.action, &e.source)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Fails with [`ErrorKind::ReadOnly`] unless `path` can be modified in place: its permission bits
/// allow writing (honoured even for root, like a read-only attribute) and it opens for writing
/// (catches read-only file systems such as a mounted ISO).
pub fn ensure_writable(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "cannot read", &e))?;
    if meta.permissions().readonly() {
        return Err(Error::new(
            ErrorKind::ReadOnly,
            format!(
                "{}: file is read-only; copy the media to a writable place first",
                path.display()
            ),
        ));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| {
            let mut err = Error::io(path, "cannot open for writing", &e);
            if err.kind == ErrorKind::ReadOnly {
                err.msg
                    .push_str(" (read-only media? copy the files to a writable place first)");
            }
            err
        })?;
    Ok(())
}
