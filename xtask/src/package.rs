//! `cargo xtask package`: the driver package in `target/package/`.
//!
//! Layout: `rvblk.inf`, `rvblk.cat`, `rvblk-test.cer`, `{x86,amd64,arm64}/rvblk.sys`,
//! `xp/{rvblkxp.sys,rvblkxp.inf,txtsetup.oem,…}` (x86), `xp/amd64/{…}` (x64), `rvblk-f6.img`,
//! `rvblk-f6-amd64.img`, `installer/{amd64,x86}/rvblk-install.exe`, `README.txt`, `LICENSE.txt`.
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

    // After signing: the catalog covers the driver package only; the installer is not part of
    // what Windows installs.
    for (dir, exe) in installer_builds()? {
        copy(
            &exe,
            &pkg.join("installer").join(dir).join("rvblk-install.exe"),
        )?;
    }

    selftest_builds()?;
    eprintln!("xtask: package written to {}", pkg.display());
    Ok(pkg.clone())
}

/// `rvblk-install.exe` for x64 and x86: the `*-win7-windows-gnu` targets (nightly, build-std),
/// linked by Debian's mingw-w64 gcc. The win7 targets' standard library uses only APIs that
/// Windows 7 and Wine 8 have (the default windows-gnu targets import bcryptprimitives.dll's
/// ProcessPrng, which neither has). No arm64 build: there is no aarch64 mingw-w64 toolchain in
/// Debian, and the msvc targets need Microsoft's CRT libraries (docs/installer.md §7).
fn installer_builds() -> Result<Vec<(&'static str, PathBuf)>> {
    const BUILDS: [(&str, &str, &str); 2] = [
        ("amd64", "x86_64-win7-windows-gnu", "x86_64-w64-mingw32-gcc"),
        ("x86", "i686-win7-windows-gnu", "i686-w64-mingw32-gcc"),
    ];
    let target_dir = cmd::target_dir().join("installer");
    let mut out = Vec::new();
    for (dir, target, linker) in BUILDS {
        if which(linker).is_none() {
            return Err(format!(
                "the installer's {dir} build needs {linker} (apt-get install gcc-mingw-w64-x86-64 \
                 gcc-mingw-w64-i686)"
            ));
        }
        let env_target = target.to_ascii_uppercase().replace('-', "_");
        let mut c = std::process::Command::new("cargo");
        c.current_dir(cmd::root())
            .env_remove("RUSTFLAGS")
            .env("CARGO_TARGET_DIR", &target_dir)
            .env(format!("CARGO_TARGET_{env_target}_LINKER"), linker)
            // No debug info in the shipped program (the workspace's release profile keeps it).
            .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
            .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
            .args([
                "+nightly",
                "build",
                "--release",
                "--package",
                "rvblk-install",
                "--target",
                target,
                "-Z",
                "build-std=std,panic_abort",
            ]);
        cmd::run(&mut c)?;
        let exe = target_dir
            .join(target)
            .join("release")
            .join("rvblk-install.exe");
        if !exe.is_file() {
            return Err(format!("the build did not produce {}", exe.display()));
        }
        out.push((dir, exe));
    }
    Ok(out)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
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
installer/amd64/, installer/x86/
                              rvblk-install.exe: install, remove and inspect rvblk on a running
                              Windows 7 or later (run as Administrator; see rvblk-install --help)

64-bit Windows loads only signed kernel drivers. This package is signed with a test certificate:
enable test signing (bcdedit /set testsigning on; Secure Boot must be off) or re-sign the
package with your own certificate. See the project README for installation, slipstreaming into
WinPE/Setup media (rvblk winpe prepare) and XP/2003, x86 or x64 (rvblk xp slipstream).
";
