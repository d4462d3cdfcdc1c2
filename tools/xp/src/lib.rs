//! Windows XP/2003 integration for the legacy SCSIPORT flavour `rvblkxp.sys` (x86, and x64 for
//! XP x64 / Server 2003 x64): the F6 `txtsetup.oem`, the GUI-mode/installed INF, the 1.44 MB F6
//! floppy images, `txtsetup.sif`/`dosnet.inf` slipstreaming and a GRUB4DOS `menu.lst` generator.
//!
//! The packager calls [`write_xp_package`]; the `rvblk xp ...` subcommands live in [`cli`].

pub mod cli;
pub mod floppy;
pub mod iso;
pub mod menu;
pub mod slipstream;
pub mod templates;

mod error;
mod package;

pub use error::XpError;
pub use package::write_xp_package;

/// Service name of the default flavour: RAM CDs always, RAM hard-disk images not while setup runs.
pub const SERVICE: &str = "rvblkxp";
/// Service name of the "disks on" flavour: same binary, RAM hard-disk images exposed in setup too.
pub const SERVICE_DISKS: &str = "rvblkxpd";
/// The driver file, as named in `txtsetup.oem`, `txtsetup.sif` and the INF.
pub const DRIVER_FILE: &str = "rvblkxp.sys";
/// The INF for GUI-mode setup and the installed system.
pub const INF_FILE: &str = "rvblkxp.inf";
/// The catalog named by `CatalogFile=` in the INF (made and signed by the signing tool, optional).
pub const CATALOG_FILE: &str = "rvblkxp.cat";
/// The tag file named in `txtsetup.oem` `[Disks]`.
pub const TAG_FILE: &str = "RVBLKXP.TAG";

/// A processor architecture `rvblkxp.sys` is built for. Each has its own directory in the driver
/// package, its own `txtsetup.oem` and its own F6 floppy image; the INF serves both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XpArch {
    /// 32-bit XP and Server 2003: setup source `i386`.
    X86,
    /// XP x64 and Server 2003 x64 (NT 5.2): setup source `amd64`.
    Amd64,
}

impl XpArch {
    /// Every architecture, x86 first.
    pub const ALL: [XpArch; 2] = [XpArch::X86, XpArch::Amd64];

    /// The driver's directory, relative to the package directory: `xp` (x86, where it always
    /// was) or `xp/amd64` (the INF convention's platform name).
    pub fn package_dir(self) -> &'static str {
        match self {
            XpArch::X86 => "xp",
            XpArch::Amd64 => "xp/amd64",
        }
    }

    /// `rvblkxp.sys` relative to the package directory.
    pub fn driver_path(self) -> std::path::PathBuf {
        std::path::Path::new(self.package_dir()).join(DRIVER_FILE)
    }

    /// File name of this architecture's F6 floppy image in the package directory.
    pub fn f6_image_name(self) -> &'static str {
        match self {
            XpArch::X86 => F6_IMAGE_NAME,
            XpArch::Amd64 => "rvblk-f6-amd64.img",
        }
    }

    /// How users and setup texts name it ("x86", "x64").
    pub fn label(self) -> &'static str {
        match self {
            XpArch::X86 => "x86",
            XpArch::Amd64 => "x64",
        }
    }

    /// The setup source directory of this architecture on an XP/2003 CD (`i386`, `amd64`).
    pub fn setup_dir(self) -> &'static str {
        match self {
            XpArch::X86 => "i386",
            XpArch::Amd64 => "amd64",
        }
    }

    /// The PE `Machine` of a driver for this architecture.
    pub fn pe_machine(self) -> u16 {
        match self {
            XpArch::X86 => rvblk_pe::MACHINE_I386,
            XpArch::Amd64 => rvblk_pe::MACHINE_AMD64,
        }
    }
}

/// File name of the x86 F6 floppy image in the package directory.
pub const F6_IMAGE_NAME: &str = "rvblk-f6.img";
