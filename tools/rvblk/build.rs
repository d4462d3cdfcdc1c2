//! Embeds the driver package (the signed files `cargo xtask package` writes) in the `rvblk`
//! binary, so that every command works from any directory without `--package`
//! (`docs/tools.md` §Embedded package).
//!
//! Where the package comes from: `RVBLK_PACKAGE_DIR` if set (it must then hold `rvblk.inf`),
//! else `<target dir>/package` (`CARGO_TARGET_DIR`, or `target/` of the workspace). When neither
//! exists the binary is built without one and says so when a command needs it; `cargo xtask
//! package` rebuilds `rvblk` afterwards so the release binary carries the fresh package.

use std::path::{Path, PathBuf};

fn files(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, base, out);
        } else if p.is_file() {
            out.push(p.strip_prefix(base).unwrap().to_path_buf());
        }
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=RVBLK_PACKAGE_DIR");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    // A relative RVBLK_PACKAGE_DIR is taken from the workspace root (build scripts run in their
    // package's directory, not where cargo was started).
    let explicit = std::env::var_os("RVBLK_PACKAGE_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                manifest.join("../..").join(p)
            }
        });
    let dir = explicit.clone().unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|t| {
                if t.is_absolute() {
                    t
                } else {
                    manifest.join("../..").join(t)
                }
            })
            .unwrap_or_else(|| manifest.join("../../target"))
            .join("package")
    });
    let present = dir.join("rvblk.inf").is_file();
    let dir = if present {
        dir.canonicalize().unwrap()
    } else {
        dir
    };
    if explicit.is_some() && !present {
        panic!(
            "RVBLK_PACKAGE_DIR={}: no rvblk.inf there (not a driver package from `cargo xtask package`)",
            dir.display()
        );
    }
    // Re-run when the package appears or changes (a missing path counts as changed).
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut list = Vec::new();
    if present {
        files(&dir, &dir, &mut list);
    }
    let mut code =
        String::from("/// The embedded package files: (path relative to the package, bytes).\n");
    code.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for rel in &list {
        let abs = dir.join(rel);
        println!("cargo:rerun-if-changed={}", abs.display());
        let rel = rel.to_string_lossy().replace('\\', "/");
        code.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?})),\n",
            abs.canonicalize().unwrap().display().to_string()
        ));
    }
    code.push_str("];\n");
    code.push_str(&format!(
        "/// Where the build took it from.\npub const SOURCE: &str = {:?};\n",
        dir.display().to_string()
    ));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("embedded_package.rs");
    std::fs::write(out, code).unwrap();
}
