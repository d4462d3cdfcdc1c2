use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the XP tooling. Messages are meant for the user as they are.
#[derive(Debug)]
pub enum XpError {
    /// An I/O operation on `path` failed.
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// A required input file is missing.
    Missing { path: PathBuf, hint: String },
    /// A file is not what we expected; we refuse to touch it.
    Unrecognised { path: PathBuf, reason: String },
    /// The request is not supported (e.g. an amd64 setup tree).
    Unsupported(String),
    /// Building the FAT image failed.
    Floppy(String),
    /// Reading or writing an ISO image (through xorriso) failed.
    Iso(String),
}

impl XpError {
    pub(crate) fn io(path: &Path, action: &'static str, source: io::Error) -> Self {
        XpError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    pub(crate) fn unrecognised(path: &Path, reason: impl Into<String>) -> Self {
        XpError::Unrecognised {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for XpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XpError::Io {
                path,
                action,
                source,
            } => {
                write!(f, "cannot {action} {}: {source}", path.display())
            }
            XpError::Missing { path, hint } => write!(f, "{} not found: {hint}", path.display()),
            XpError::Unrecognised { path, reason } => {
                write!(f, "{}: {reason}; refusing to change it", path.display())
            }
            XpError::Unsupported(msg) => write!(f, "{msg}"),
            XpError::Floppy(msg) => write!(f, "cannot build the F6 floppy image: {msg}"),
            XpError::Iso(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for XpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            XpError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
