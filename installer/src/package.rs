//! The driver package as `cargo xtask package` lays it out (`rvblk.inf`, `rvblk.cat`,
//! `<arch>/rvblk.sys`) and what rvblk's INF says about the install (docs/installer.md §2).
//! Everything here is checked before the machine is touched, so a bad package changes nothing.

use rvblk_inf::{Inf, InfError};
use std::fmt;
use std::path::{Path, PathBuf};

/// The hardware ID of rvblk's root-enumerated adapter.
pub const HARDWARE_ID: &str = "ROOT\\RVBLK";
/// The service (and driver file stem) rvblk's INF installs.
pub const SERVICE: &str = "rvblk";
pub const INF_NAME: &str = "rvblk.inf";

/// A Windows architecture the package ships a StorPort driver for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    X86,
    Amd64,
    Arm64,
}

impl Arch {
    /// The INF platform decoration (`[Models.NTamd64]`, `[SourceDisksNames.amd64]`).
    pub fn inf_platform(self) -> &'static str {
        match self {
            Arch::X86 => "x86",
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    pub fn pe_machine(self) -> u16 {
        match self {
            Arch::X86 => rvblk_pe::MACHINE_I386,
            Arch::Amd64 => rvblk_pe::MACHINE_AMD64,
            Arch::Arm64 => rvblk_pe::MACHINE_ARM64,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.inf_platform())
    }
}

/// The service the INF's `AddService` line describes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ServiceSpec {
    pub name: String,
    pub service_type: u32,
    pub start_type: u32,
    pub error_control: u32,
    pub group: String,
    /// File name of the driver (`ServiceBinary` = `%12%\rvblk.sys`: system32\drivers).
    pub binary: String,
}

/// What rvblk's INF declares for one architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RvblkInf {
    pub catalog: String,
    /// `DriverVer`'s version part (e.g. `0.1.0.0`).
    pub version: String,
    pub service: ServiceSpec,
    /// The driver's path relative to the INF (`amd64/rvblk.sys`).
    pub driver: PathBuf,
}

fn missing(what: impl Into<String>) -> InfError {
    InfError::new(0, what)
}

fn number(inf: &Inf, section: &str, key: &str) -> Result<u32, InfError> {
    let v = inf
        .get(section, key)
        .ok_or_else(|| missing(format!("[{section}] has no {key}")))?;
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.map_err(|_| missing(format!("[{section}] {key} = {v:?} is not a number")))
}

/// Reads rvblk's INF for `arch`: the model with hardware ID `ROOT\RVBLK`, its `AddService` for
/// `rvblk` and the source of the driver file. Any INF without these is not rvblk's.
pub fn read_inf(text: &str, arch: Arch) -> Result<RvblkInf, InfError> {
    let inf = Inf::parse_strict(text)?;
    let signature = inf
        .get("Version", "Signature")
        .ok_or_else(|| missing("no [Version] section with a Signature"))?;
    if !["$windows nt$", "$chicago$"].contains(&signature.to_ascii_lowercase().as_str()) {
        return Err(missing(format!("unknown INF signature {signature:?}")));
    }
    let catalog = inf
        .get("Version", &format!("CatalogFile.NT{}", arch.inf_platform()))
        .or_else(|| inf.get("Version", "CatalogFile"))
        .filter(|c| !c.is_empty())
        .ok_or_else(|| missing("[Version] names no CatalogFile"))?;
    // DriverVer = date, version
    let version = inf
        .entries_with_key("Version", "DriverVer")
        .next()
        .and_then(|e| e.fields().get(1).map(|v| inf.resolve(v)))
        .ok_or_else(|| missing("[Version] has no DriverVer with a version"))?;

    let platform = format!("NT{}", arch.inf_platform());
    let mut install = None;
    for m in inf.section("Manufacturer").unwrap_or_default() {
        let values = m.fields();
        let Some((models, decorations)) = values.split_first() else {
            continue;
        };
        let decorated = decorations
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&platform))
            .then(|| format!("{models}.{platform}"));
        for section in decorated
            .iter()
            .map(String::as_str)
            .chain([models.as_str()])
        {
            for l in inf.section(section).unwrap_or_default() {
                let values = l.fields();
                if values[1..]
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(HARDWARE_ID))
                {
                    install.get_or_insert_with(|| values[0].clone());
                }
            }
            if install.is_some() {
                break;
            }
        }
    }
    let install =
        install.ok_or_else(|| missing(format!("no model for {HARDWARE_ID} on {platform}")))?;

    let services = format!("{install}.Services");
    let add = inf
        .entries_with_key(&services, "AddService")
        .map(|e| (e.line, e.fields()))
        .find(|(_, values)| values[0].eq_ignore_ascii_case(SERVICE))
        .ok_or_else(|| missing(format!("[{services}] has no AddService for {SERVICE}")))?;
    let section = add
        .1
        .get(2)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| InfError::new(add.0, "AddService names no section"))?;
    let binary_path = inf
        .get(section, "ServiceBinary")
        .ok_or_else(|| missing(format!("[{section}] has no ServiceBinary")))?;
    let binary = binary_path
        .rsplit('\\')
        .next()
        .unwrap_or_default()
        .to_owned();
    let service = ServiceSpec {
        name: SERVICE.into(),
        service_type: number(&inf, section, "ServiceType")?,
        start_type: number(&inf, section, "StartType")?,
        error_control: number(&inf, section, "ErrorControl")?,
        group: inf.get(section, "LoadOrderGroup").unwrap_or_default(),
        binary: binary.clone(),
    };

    // The driver file's source: [SourceDisksFiles(.arch)] gives its disk, and
    // [SourceDisksNames(.arch)] that disk's directory (the fourth field).
    let plat = arch.inf_platform();
    let disk = inf
        .entries_with_key(&format!("SourceDisksFiles.{plat}"), &binary)
        .chain(inf.entries_with_key("SourceDisksFiles", &binary))
        .next()
        .map(|e| e.fields().swap_remove(0))
        .ok_or_else(|| missing(format!("[SourceDisksFiles] does not list {binary}")))?;
    let dir = inf
        .entries_with_key(&format!("SourceDisksNames.{plat}"), &disk)
        .chain(inf.entries_with_key("SourceDisksNames", &disk))
        .next()
        .map(|e| e.fields().get(3).cloned().unwrap_or_default())
        .ok_or_else(|| missing(format!("[SourceDisksNames.{plat}] has no disk {disk}")))?;
    let mut driver = PathBuf::new();
    for part in dir.split('\\').filter(|p| !p.is_empty()) {
        driver.push(part);
    }
    driver.push(&binary);
    Ok(RvblkInf {
        catalog,
        version,
        service,
        driver,
    })
}

/// A cheap first test before parsing: the bytes contain "rvblk" in any case, as ASCII/UTF-8 or
/// as UTF-16LE (the driver store holds hundreds of INFs that are not rvblk's).
pub fn mentions_rvblk(bytes: &[u8]) -> bool {
    let ascii = bytes.windows(5).any(|w| w.eq_ignore_ascii_case(b"rvblk"));
    ascii
        || bytes.windows(10).any(|w| {
            w.iter().skip(1).step_by(2).all(|&b| b == 0)
                && w.iter()
                    .step_by(2)
                    .zip(b"rvblk")
                    .all(|(a, b)| a.eq_ignore_ascii_case(b))
        })
}

/// Whether an INF (e.g. a staged `oem*.inf`) is rvblk's: it installs service `rvblk` on
/// `ROOT\RVBLK` for some architecture.
pub fn is_rvblk_inf(bytes: &[u8]) -> bool {
    let text = rvblk_inf::decode(bytes);
    [Arch::X86, Arch::Amd64, Arch::Arm64]
        .iter()
        .any(|&a| read_inf(&text, a).is_ok())
}

#[derive(Debug)]
pub enum PackageError {
    NoInf(PathBuf),
    Unreadable(PathBuf, std::io::Error),
    BadInf(PathBuf, InfError),
    NoCatalog(PathBuf),
    NoDriver(PathBuf, Arch),
    WrongDriver(PathBuf, String),
}

impl fmt::Display for PackageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackageError::NoInf(dir) => write!(
                f,
                "no rvblk driver package in {}: {INF_NAME} is not there. Give the package's \
                 directory with --package DIR (the one holding rvblk.inf, rvblk.cat and \
                 amd64\\rvblk.sys)",
                dir.display()
            ),
            PackageError::Unreadable(p, e) => write!(f, "cannot read {}: {e}", p.display()),
            PackageError::BadInf(p, e) => write!(
                f,
                "{} is not a usable rvblk INF ({e}); use the INF from the rvblk package as built",
                p.display()
            ),
            PackageError::NoCatalog(p) => write!(
                f,
                "the package has no catalog {} (the INF's CatalogFile): Windows installs a \
                 driver package only with its signed catalog. Use the complete package, or \
                 re-sign it (rvblk sign catalog)",
                p.display()
            ),
            PackageError::NoDriver(p, arch) => write!(
                f,
                "the package has no driver for {arch} Windows: {} is missing",
                p.display()
            ),
            PackageError::WrongDriver(p, why) => write!(f, "{}: {why}", p.display()),
        }
    }
}

impl std::error::Error for PackageError {}

/// A package that passed every check.
#[derive(Debug)]
pub struct Package {
    pub dir: PathBuf,
    pub inf_path: PathBuf,
    pub inf_bytes: Vec<u8>,
    pub inf: RvblkInf,
    pub catalog_path: PathBuf,
    pub driver_path: PathBuf,
    pub driver_bytes: Vec<u8>,
}

fn read(path: &Path) -> Result<Vec<u8>, PackageError> {
    std::fs::read(path).map_err(|e| PackageError::Unreadable(path.to_owned(), e))
}

impl Package {
    pub fn open(dir: &Path, arch: Arch) -> Result<Package, PackageError> {
        let inf_path = dir.join(INF_NAME);
        if !inf_path.is_file() {
            return Err(PackageError::NoInf(dir.to_owned()));
        }
        let inf_bytes = read(&inf_path)?;
        let inf = read_inf(&rvblk_inf::decode(&inf_bytes), arch)
            .map_err(|e| PackageError::BadInf(inf_path.clone(), e))?;
        let catalog_path = dir.join(&inf.catalog);
        if !catalog_path.is_file() {
            return Err(PackageError::NoCatalog(catalog_path));
        }
        let driver_path = dir.join(&inf.driver);
        if !driver_path.is_file() {
            return Err(PackageError::NoDriver(driver_path, arch));
        }
        let driver_bytes = read(&driver_path)?;
        let pe = rvblk_pe::Pe::parse(&driver_bytes).map_err(|e| {
            PackageError::WrongDriver(driver_path.clone(), format!("not a driver image ({e})"))
        })?;
        if pe.machine != arch.pe_machine() {
            return Err(PackageError::WrongDriver(
                driver_path,
                format!("built for {}, not for {arch}", pe.machine_name()),
            ));
        }
        Ok(Package {
            dir: dir.to_owned(),
            inf_path,
            inf_bytes,
            inf,
            catalog_path,
            driver_path,
            driver_bytes,
        })
    }
}

/// Where to look for the package when `--package` is not given: the installer ships in
/// `<package>/installer/<arch>/`, so two levels up from the program; else the current directory.
pub fn default_dir(exe: Option<&Path>, cwd: &Path) -> PathBuf {
    exe.and_then(Path::parent)
        .and_then(Path::parent)
        .and_then(Path::parent)
        .filter(|d| d.join(INF_NAME).is_file())
        .map(Path::to_owned)
        .unwrap_or_else(|| cwd.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: &str = include_str!("../../inf/rvblk.inf");

    fn driver(machine: u16) -> Vec<u8> {
        let mut b = rvblk_pe::build::PeBuilder::new(machine);
        b.text(&[0xC3]);
        b.build()
    }

    /// A package directory like `cargo xtask package` makes, for x64.
    fn package() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("rvblk.inf"), INF).unwrap();
        std::fs::write(d.path().join("rvblk.cat"), b"catalog").unwrap();
        std::fs::create_dir(d.path().join("amd64")).unwrap();
        std::fs::write(
            d.path().join("amd64/rvblk.sys"),
            driver(rvblk_pe::MACHINE_AMD64),
        )
        .unwrap();
        d
    }

    #[test]
    fn reads_the_projects_inf_for_every_architecture() {
        for (arch, dir) in [
            (Arch::X86, "x86"),
            (Arch::Amd64, "amd64"),
            (Arch::Arm64, "arm64"),
        ] {
            let i = read_inf(INF, arch).unwrap();
            assert_eq!(i.catalog, "rvblk.cat");
            assert_eq!(i.driver, Path::new(dir).join("rvblk.sys"));
            assert_eq!(
                i.service,
                ServiceSpec {
                    name: "rvblk".into(),
                    service_type: 1,
                    start_type: 0,
                    error_control: 1,
                    group: "SCSI miniport".into(),
                    binary: "rvblk.sys".into(),
                }
            );
            assert!(i.version.split('.').count() == 4, "{}", i.version);
        }
        assert!(is_rvblk_inf(INF.as_bytes()));
        assert!(mentions_rvblk(INF.as_bytes()));
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(INF.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert!(mentions_rvblk(&utf16) && is_rvblk_inf(&utf16));
    }

    /// The `Security` value an INF's `[<install>.HW]` AddReg sections give the device.
    fn device_security(inf: &Inf, arch: Arch) -> Option<String> {
        let models = format!("rvblk.NT{}", arch.inf_platform());
        let install = inf
            .section(&models)?
            .into_iter()
            .map(|e| e.fields())
            .find(|f| f[1..].iter().any(|h| h.eq_ignore_ascii_case(HARDWARE_ID)))?
            .swap_remove(0);
        let add_reg = inf.get(&format!("{install}.HW"), "AddReg")?;
        rvblk_inf::fields(&add_reg).iter().find_map(|section| {
            inf.section(section)?.into_iter().find_map(|e| {
                let f = e.fields();
                (f.len() == 5
                    && f[0].eq_ignore_ascii_case("HKR")
                    && f[1].is_empty()
                    && f[2].eq_ignore_ascii_case("Security"))
                .then(|| f[4].clone())
            })
        })
    }

    #[test]
    fn only_system_and_administrators_may_open_the_adapter() {
        // docs/control.md §6.1: control requests need a handle to the adapter, so its device
        // objects carry this protected descriptor on every architecture.
        let inf = Inf::parse_strict(INF).unwrap();
        for arch in [Arch::X86, Arch::Amd64, Arch::Arm64] {
            assert_eq!(
                device_security(&inf, arch).as_deref(),
                Some("D:P(A;;GA;;;SY)(A;;GA;;;BA)"),
                "{arch}"
            );
        }
        // The check sees a missing or different descriptor.
        let open = INF.replace(";;;BA)\"", ";;;BA)(A;;GA;;;WD)\"");
        assert_ne!(open, INF);
        let open = Inf::parse_strict(&open).unwrap();
        assert_ne!(
            device_security(&open, Arch::Amd64).as_deref(),
            Some("D:P(A;;GA;;;SY)(A;;GA;;;BA)")
        );
        let none = Inf::parse_strict(&INF.replace("[rvblk_Install.HW]", "[unused]")).unwrap();
        assert_eq!(device_security(&none, Arch::Amd64), None);
    }

    #[test]
    fn foreign_infs_are_not_rvblks() {
        let other = INF.replace("ROOT\\RVBLK", "ROOT\\OTHER");
        assert!(!is_rvblk_inf(other.as_bytes()));
        let other = INF.replace("AddService = rvblk,", "AddService = other,");
        let e = read_inf(&other, Arch::Amd64).unwrap_err();
        assert!(e.to_string().contains("no AddService for rvblk"), "{e}");
        assert!(!mentions_rvblk(b"[Version]\nSignature=$Windows NT$\n"));
    }

    #[test]
    fn corrupt_or_foreign_infs_are_refused_with_the_reason() {
        let e = read_inf(&INF.replace("$WINDOWS NT$", "$Win95$"), Arch::Amd64).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.to_string().contains("unknown INF signature"), "{e}");
        let e = read_inf("[Strings]\nA = b\n", Arch::Amd64).unwrap_err();
        assert!(e.to_string().contains("no [Version]"), "{e}");
        // A malformed line is named by its number in the file.
        let at = INF
            .lines()
            .position(|l| l.starts_with("CatalogFile"))
            .unwrap();
        let corrupt = INF.replacen("CatalogFile = ", "CatalogFile = \"", 1);
        let e = read_inf(&corrupt, Arch::Amd64).unwrap_err();
        assert_eq!(e.line, at + 1, "{e}");
        assert!(e.to_string().contains("not closed"), "{e}");
        let e = read_inf(
            &INF.replace(
                "AddService = rvblk, 0x00000002, rvblk_Service",
                "AddService = rvblk, 2",
            ),
            Arch::Amd64,
        )
        .unwrap_err();
        let add = INF
            .lines()
            .position(|l| l.starts_with("AddService"))
            .unwrap();
        assert_eq!(
            e.to_string(),
            format!("line {}: AddService names no section", add + 1)
        );
    }

    #[test]
    fn a_complete_package_opens() {
        let d = package();
        let p = Package::open(d.path(), Arch::Amd64).unwrap();
        assert_eq!(p.driver_path, d.path().join("amd64/rvblk.sys"));
        assert_eq!(p.inf_bytes, INF.as_bytes());
    }

    #[test]
    fn bad_packages_are_refused_with_the_reason() {
        let none = tempfile::tempdir().unwrap();
        let e = Package::open(none.path(), Arch::Amd64).unwrap_err();
        assert!(matches!(e, PackageError::NoInf(_)) && e.to_string().contains("--package DIR"));

        let d = package();
        std::fs::remove_file(d.path().join("rvblk.cat")).unwrap();
        let e = Package::open(d.path(), Arch::Amd64).unwrap_err();
        assert!(matches!(e, PackageError::NoCatalog(_)), "{e}");
        assert!(e.to_string().contains("signed catalog"), "{e}");

        let d = package();
        let e = Package::open(d.path(), Arch::X86).unwrap_err();
        assert!(matches!(e, PackageError::NoDriver(_, Arch::X86)), "{e}");

        let d = package();
        std::fs::write(
            d.path().join("amd64/rvblk.sys"),
            driver(rvblk_pe::MACHINE_I386),
        )
        .unwrap();
        let e = Package::open(d.path(), Arch::Amd64).unwrap_err();
        assert!(e.to_string().contains("not for amd64"), "{e}");
        std::fs::write(d.path().join("amd64/rvblk.sys"), b"MZ garbage").unwrap();
        let e = Package::open(d.path(), Arch::Amd64).unwrap_err();
        assert!(e.to_string().contains("not a driver image"), "{e}");

        let d = package();
        let cut = INF.find("[rvblk_Service]").unwrap();
        std::fs::write(
            d.path().join("rvblk.inf"),
            format!("{}[rvblk_Serv", &INF[..cut]),
        )
        .unwrap();
        let e = Package::open(d.path(), Arch::Amd64).unwrap_err();
        assert!(matches!(e, PackageError::BadInf(..)), "{e}");
        assert!(e.to_string().contains("closing ']'"), "{e}");
    }

    #[test]
    fn default_directory_is_the_package_the_program_ships_in() {
        let d = package();
        let exe = d.path().join("installer/amd64/rvblk-install.exe");
        let cwd = Path::new("/somewhere");
        assert_eq!(default_dir(Some(&exe), cwd), d.path());
        assert_eq!(default_dir(Some(Path::new("/x/y/z.exe")), cwd), cwd);
        assert_eq!(default_dir(None, cwd), cwd);
    }
}
