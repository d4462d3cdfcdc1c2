//! What the harness runs, one module per CLI command — `run`, `bench`, `suite` (`compliance`),
//! `faults`, `cdbs` (`oracle`), `torture` — and what they share: the physical-memory setups
//! (`scenario`), the CDB builders that talk to a LUN (`scsi`) and the driver's LUN log lines
//! (`lun_log`).

pub mod bench;
pub mod compliance;
pub mod faults;
pub mod lun_log;
pub mod oracle;
pub mod run;
pub mod scenario;
pub mod scsi;
pub mod torture;
