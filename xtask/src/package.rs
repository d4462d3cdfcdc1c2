//! `cargo xtask package`: the driver package in `target/package/`.
//!
//! Layout: `rvblk.inf`, `rvblk.cat`, `rvblk-test.cer`, `{x86,amd64,arm64}/rvblk.sys`,
//! `xp/{rvblkxp.sys,rvblkxp.inf,txtsetup.oem,…}` (x86), `xp/amd64/{…}` (x64), `rvblk-f6.img`,
//! `rvblk-f6-amd64.img`, `README.txt`, `LICENSE.txt`.
//! Deliberately broken self-test builds for the harness go to `target/selftest/<fault>/`.

use crate::build::{self, Arch, AMD64, STORPORT_ARCHES, X86};
use crate::cmd::{self, Result};
use rvblk_xp::XpArch;
use std::fs;
use std::path::{Path, PathBuf};

/// Faults the harness's verifier must catch (`tests/harness`), built as separate binaries.
pub const SELFTEST_FAULTS: [&str; 2] = ["double-complete", "overread"];

struct Options {
    pfx: Option<PathBuf>,
    password: String,
    out: PathBuf,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        pfx: None,
        password: String::new(),
        out: cmd::target_dir().join("package"),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--pfx" => o.pfx = Some(PathBuf::from(value()?)),
            "--password" => o.password = value()?,
            "--out" => o.out = PathBuf::from(value()?),
            _ => {
                return Err(format!(
                    "package: unknown option {a:?} (see cargo xtask help)"
                ))
            }
        }
    }
    if o.pfx.is_none() {
        if let Some(p) = std::env::var_os("RVBLK_PFX") {
            o.pfx = Some(PathBuf::from(p));
            o.password = std::env::var("RVBLK_PFX_PASSWORD").unwrap_or_default();
        }
    }
    Ok(o)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    fs::copy(from, to)
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The test certificate: the user's PFX, or one generated once per target directory and reused.
fn signer(o: &Options) -> Result<rvblk_sign::Signer> {
    if let Some(pfx) = &o.pfx {
        return rvblk_sign::Signer::from_pfx(pfx, &o.password)
            .map_err(|e| format!("{}: {e}", pfx.display()));
    }
    let cached = cmd::target_dir()
        .join("package-cert")
        .join("rvblk-test.pfx");
    if cached.is_file() {
        return rvblk_sign::Signer::from_pfx(&cached, "")
            .map_err(|e| format!("{}: {e}", cached.display()));
    }
    eprintln!("xtask: generating a test code-signing certificate (once per target directory)");
    let s =
        rvblk_sign::Signer::generate_test("CN=rvblk test signing (not trusted outside test mode)")
            .map_err(|e| format!("cannot generate the test certificate: {e}"))?;
    fs::create_dir_all(cached.parent().unwrap()).map_err(|e| e.to_string())?;
    s.write_pfx(&cached, "")
        .map_err(|e| format!("{}: {e}", cached.display()))?;
    Ok(s)
}

pub fn run(args: &[String]) -> Result<PathBuf> {
    let o = parse(args)?;
    build::ensure_toolchains()?;
    let pkg = &o.out;
    if pkg.exists() {
        fs::remove_dir_all(pkg).map_err(|e| format!("cannot clear {}: {e}", pkg.display()))?;
    }
    fs::create_dir_all(pkg).map_err(|e| format!("cannot create {}: {e}", pkg.display()))?;

    for arch in STORPORT_ARCHES {
        let sys = build::kernel_binary("rvblk-storport", "rvblk", arch, &[])?;
        copy(&sys, &pkg.join(arch.dir).join("rvblk.sys"))?;
    }
    for (arch, xp_arch) in [(X86, XpArch::X86), (AMD64, XpArch::Amd64)] {
        let sys = build::kernel_binary("rvblk-scsiport", "rvblkxp", arch, &[])?;
        copy(&sys, &pkg.join(xp_arch.driver_path()))?;
    }

    let root = cmd::root();
    copy(&root.join("inf").join("rvblk.inf"), &pkg.join("rvblk.inf"))?;
    write(&pkg.join("README.txt"), PACKAGE_README)?;
    copy(&root.join("LICENSE"), &pkg.join("LICENSE.txt"))?;

    // XP files first (so the catalog covers both rvblkxp.inf copies), sign, then rebuild the F6
    // floppies so they carry the signed drivers. Both XP writes are deterministic.
    rvblk_xp::write_xp_package(pkg).map_err(|e| format!("XP files: {e}"))?;
    let signer = signer(&o)?;
    rvblk_sign::sign_package(pkg, &signer).map_err(|e| format!("signing: {e}"))?;
    signer
        .write_cert_der(&pkg.join("rvblk-test.cer"))
        .map_err(|e| format!("certificate: {e}"))?;
    rvblk_xp::write_xp_package(pkg).map_err(|e| format!("XP files: {e}"))?;

    selftest_builds()?;
    eprintln!("xtask: package written to {}", pkg.display());
    Ok(pkg.clone())
}

/// Broken variants the harness must reject (x64 and x86), in `target/selftest/<fault>/<arch>/`.
fn selftest_builds() -> Result<()> {
    let out = cmd::target_dir().join("selftest");
    for fault in SELFTEST_FAULTS {
        let feature = format!("selftest-{fault}");
        for arch in [AMD64, X86] {
            let arch: Arch = arch;
            let sys = build::kernel_binary("rvblk-storport", "rvblk", arch, &[&feature])?;
            copy(&sys, &out.join(fault).join(arch.dir).join("rvblk.sys"))?;
        }
    }
    Ok(())
}

const PACKAGE_README: &str = "\
rvblk — RAM disk and RAM CD-ROM driver for images loaded by GRUB4DOS, grub4efi and MEMDISK
==========================================================================================

rvblk.inf, rvblk.cat          Vista SP1 .. Windows 11 (StorPort virtual miniport), root device ROOT\\RVBLK
x86/, amd64/, arm64/          rvblk.sys for each architecture (test-signed)
xp/                           Windows XP/2003 x86 text-mode and GUI-mode setup (SCSIPORT driver,
                              txtsetup.oem, rvblkxp.inf for x86 and x64)
xp/amd64/                     the same for Windows XP x64 / Server 2003 x64
rvblk-f6.img                  1.44 MB F6 floppy for XP/2003 x86 setup (map it as (fd0) in GRUB4DOS)
rvblk-f6-amd64.img            1.44 MB F6 floppy for XP x64 / Server 2003 x64 setup
rvblk-test.cer                the test certificate the drivers and the catalog are signed with

64-bit Windows loads only signed kernel drivers. This package is signed with a test certificate:
enable test signing (bcdedit /set testsigning on; Secure Boot must be off) or re-sign the
package with your own certificate. See the project README for installation, slipstreaming into
WinPE/Setup media (rvblk winpe prepare) and XP/2003, x86 or x64 (rvblk xp slipstream).
";
