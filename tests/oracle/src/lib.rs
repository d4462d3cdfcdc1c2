//! The SCSI oracle (`docs/scsi-oracle.md`): one list of CDBs ([`script`]) is sent to QEMU's
//! `scsi-cd`/`scsi-hd` devices through Linux's SCSI generic driver in a Debian kernel booted
//! under QEMU ([`guest`], with the static SG_IO runner in `guest/sgrun.c`) and to the real
//! rvblk binaries in the harness (`rvblk-harness cdbs`); the answers ([`answer`]) are compared
//! field by field ([`compare`]), and every difference must be listed, with its reason, in the
//! one table of `docs/scsi-oracle.md` ([`table`]).

pub mod answer;
pub mod compare;
pub mod guest;
pub mod images;
pub mod script;
pub mod table;
