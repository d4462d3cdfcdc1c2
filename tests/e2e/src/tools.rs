//! External programs the end-to-end tests need, with the Debian package that ships each.

use std::path::{Path, PathBuf};

/// A program or file the tests need and where it comes from.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    pub name: &'static str,
    pub debian_package: &'static str,
}

pub const QEMU: Tool = Tool {
    name: "qemu-system-x86_64",
    debian_package: "qemu-system-x86",
};
pub const NASM: Tool = Tool {
    name: "nasm",
    debian_package: "nasm",
};
pub const GZIP: Tool = Tool {
    name: "gzip",
    debian_package: "gzip",
};

/// Debian's MEMDISK (`syslinux-common`). `RVBLK_MEMDISK` overrides the path.
pub const MEMDISK_PATH: &str = "/usr/lib/syslinux/memdisk";

/// Finds `tool` on `PATH`; the error names the Debian package to install.
pub fn find(tool: Tool) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(tool.name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "`{}` is not installed: `apt-get install {}` (.ci/run installs it)",
        tool.name, tool.debian_package
    ))
}

/// Finds `tool` on `PATH`, or panics with a message naming the Debian package to install.
pub fn require(tool: Tool) -> PathBuf {
    find(tool).unwrap_or_else(|e| panic!("end-to-end test needs {e}"))
}

/// Path of MEMDISK (`RVBLK_MEMDISK` or Debian's); the error names `syslinux-common`.
pub fn find_memdisk() -> Result<PathBuf, String> {
    let p = std::env::var_os("RVBLK_MEMDISK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(MEMDISK_PATH));
    if !Path::new(&p).is_file() {
        return Err(format!(
            "MEMDISK is not at {}: `apt-get install syslinux-common` (.ci/run installs it), \
             or set RVBLK_MEMDISK",
            p.display()
        ));
    }
    Ok(p)
}

/// Path of MEMDISK, or a panic naming `syslinux-common`.
pub fn require_memdisk() -> PathBuf {
    find_memdisk().unwrap_or_else(|e| panic!("end-to-end test needs {e}"))
}
