//! The emulated Windows kernel the driver runs in: the ntoskrnl/hal exports it imports
//! (`kernel`), the StorPort and SCSIPORT port drivers (`storport`, `scsiport`), emulated
//! physical memory (`phys`) and the small kernel stack driver callbacks run on (`stack`, with
//! its per-architecture pieces in `arch`).

pub mod arch;
pub mod kernel;
pub mod phys;
pub mod scsiport;
pub mod stack;
pub mod storport;
