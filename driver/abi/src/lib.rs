//! StorPort/SCSIPORT/ntoskrnl ABI structures and constants used by rvblk, with layout tests
