//! rvblk core: everything that can be decided without Windows.
//!
//! * [`image`] — what a discovered image is: in RAM ([`image::MemoryImage`]) or on a disk
//!   ([`image::DiskBackedImage`]).
//! * [`discovery`] — finding images left by GRUB4DOS, grub4efi, MEMDISK and UEFI NFIT RAM disks in
//!   physical memory (`docs/loaders.md` §9, validated per §10), GRUB4DOS direct maps and
//!   Ventoy's hand-off that leave the image on a disk (`docs/loaders.md` §3.9,
//!   `docs/ventoy.md`), and which disk holds such an image (§3.11).
//! * [`backed`] — serving a disk-backed image: the LUN's exposure states, extent planning with
//!   sector alignment, disk I/O failures as sense data (`docs/driver.md` "Disk-backed images").
//! * [`scsi`] — the SCSI targets (SBC-3 disk, MMC-6 CD-ROM, removable floppy) that serve them.
//! * [`srb`] — how a target's outcome becomes an SRB completion (status bytes, sense, lengths),
//!   and which SRBs need their data buffer at all.
//! * [`integrity`] — rule 29: an image must be unchanged at its first I/O.
//! * [`readahead`] — read-ahead for file-backed runtime LUNs: streams, hits, fills and their
//!   invalidation by writes (`docs/control.md` §10.4).
//! * [`policy`] — which images the XP flavour exposes (setup phase, service, `disks=`).
//! * [`log`] — the driver's log lines that tools read back (one definition for both sides).
//! * [`control`] — the control protocol (list, mount a file, create a RAM disk, remove) sent
//!   through `IOCTL_SCSI_MINIPORT`, and the decisions on it (`docs/control.md`).
//!
//! The crate is `no_std`, allocation-free and has no `unsafe`: the port crates (StorPort,
//! SCSIPORT) translate kernel structures into calls here and fence all `unsafe` themselves.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod backed;
pub mod control;
pub mod discovery;
pub mod fastio;
pub mod image;
pub mod integrity;
pub mod log;
pub mod policy;
pub mod readahead;
pub mod scsi;
pub mod srb;
