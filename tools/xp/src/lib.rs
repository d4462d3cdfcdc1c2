//! Windows XP/2003 integration for the legacy SCSIPORT flavour `rvblkxp.sys`:
//! the F6 `txtsetup.oem`, the GUI-mode/installed INF, the 1.44 MB F6 floppy image,
//! `txtsetup.sif`/`dosnet.inf` slipstreaming and a GRUB4DOS `menu.lst` generator.
//!
//! The packager calls [`write_xp_package`]; the `rvblk xp ...` subcommands live in [`cli`].

pub mod cli;
pub mod floppy;
pub mod menu;
pub mod slipstream;
pub mod templates;

mod error;
mod package;

pub use error::XpError;
pub use package::{write_xp_package, F6_IMAGE_NAME};

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
