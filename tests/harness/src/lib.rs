//! Runs the real rvblk .sys binaries under an emulated StorPort/SCSIPORT kernel
