//! Atomic output files, the one way the rvblk tools write results ("nothing lost": a reader
//! never sees a half-written file, and on an error the old file is untouched and no temporary
//! file is left behind).
//!
//! A `tempfile::NamedTempFile` is created in the target's directory (so the final rename stays
//! on one file system), filled, synced and persisted over the target. The replacement keeps the
//! replaced file's mode; a new file gets what `fs::write` would give it (0o666 less the umask
//! on Unix), not a temporary file's private 0o600.

use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::path::Path;

/// What failed, with the path it failed on.
#[derive(Debug)]
pub struct Error {
    /// The temporary file, its directory or the target.
    pub path: std::path::PathBuf,
    /// `create`, `write`, `sync` or `replace`.
    pub action: &'static str,
    pub source: io::Error,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: cannot {}: {}",
            self.path.display(),
            self.action,
            self.source
        )
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn err(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error {
        path,
        action,
        source,
    }
}

fn replacement_permissions(path: &Path) -> Option<Permissions> {
    match std::fs::metadata(path) {
        Ok(m) => Some(m.permissions()),
        #[cfg(unix)]
        Err(_) => Some(std::os::unix::fs::PermissionsExt::from_mode(0o666)),
        #[cfg(not(unix))]
        Err(_) => None,
    }
}

/// Replaces `path` atomically with what `fill` writes. `fill` gets the open temporary file and
/// its path (for writers such as hivex that open the path themselves); its error is returned
/// as is, after the temporary file is removed.
pub fn replace_with<E: From<Error>>(
    path: &Path,
    fill: impl FnOnce(&mut File, &Path) -> Result<(), E>,
) -> Result<(), E> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".rvblk-").suffix(".tmp");
    if let Some(p) = replacement_permissions(path) {
        builder.permissions(p);
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(err(dir, "create a file in"))?;
    let tmp_path = tmp.path().to_path_buf();
    fill(tmp.as_file_mut(), &tmp_path)?;
    // Reopened: a writer that used the path wrote through its own descriptor.
    File::open(&tmp_path)
        .and_then(|f| f.sync_all())
        .map_err(err(&tmp_path, "sync"))?;
    tmp.persist(path)
        .map_err(|e| err(path, "replace")(e.error))?;
    Ok(())
}

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    replace_with(path, |f, tmp| f.write_all(bytes).map_err(err(tmp, "write")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn modes_as_fs_write_and_kept_on_replace() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        std::fs::write(dir.path().join("plain"), b"x").unwrap();
        write(&dir.path().join("new"), b"x").unwrap();
        assert_eq!(
            mode(&dir.path().join("new")),
            mode(&dir.path().join("plain"))
        );
        let old = dir.path().join("old");
        std::fs::write(&old, b"1").unwrap();
        std::fs::set_permissions(&old, Permissions::from_mode(0o640)).unwrap();
        write(&old, b"2").unwrap();
        assert_eq!(
            (mode(&old), std::fs::read(&old).unwrap()),
            (0o640, b"2".to_vec())
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    #[test]
    fn a_failing_writer_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        std::fs::write(&target, b"old").unwrap();
        let r: Result<(), Error> = replace_with(&target, |f, tmp| {
            f.write_all(b"half")
                .map_err(err(tmp, "write"))
                .and(Err(err(tmp, "write")(io::Error::other("disk full"))))
        });
        assert!(r.unwrap_err().to_string().contains("disk full"));
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let missing = dir.path().join("no/such/dir/x");
        let e = write(&missing, b"x").unwrap_err();
        assert_eq!(e.action, "create a file in");
    }
}
