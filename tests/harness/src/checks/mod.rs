//! Driver-Verifier-style checks that are not a port rule: guarded memory (every buffer the driver
//! gets ends at a no-access page, like special pool) and the crash report a fault inside driver
//! code turns into. The rule checks of the ports themselves (IRQL, SRB completion, leaks) are
//! recorded by `emu::kernel` where the rule is.

pub mod crash;
pub mod guard;
