//! One request from bytes to completion, for the port's HwStartIo (`docs/control.md` §4, §5):
//! parse, admit against the LUN table, answer what can be answered at once. The port only
//! hands over the buffer and its table and completes the SRB as told.

use super::admit::admit_in;
use super::{parse, reply_error, reply_luns, Completion, Decision, Limits, LunInfo, LunSummary};

/// What the port does with the SRB after [`serve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// The reply (or the refusal) is in the buffer: complete the SRB with this.
    Done(Completion),
    /// Admitted work for the PASSIVE_LEVEL worker; only a port whose [`Limits::services`] offer
    /// it gets this. `timeout` is the requester's `SRB_IO_CONTROL.Timeout` in seconds.
    Admitted { decision: Decision, timeout: u32 },
}

impl LunInfo<'_> {
    /// What admission needs to know of this LUN.
    pub const fn summary(&self) -> LunSummary {
        LunSummary {
            target_id: self.target_id,
            origin: self.origin,
        }
    }
}

/// Serves the SRB_FUNCTION_IO_CONTROL whose `DataBuffer[..DataTransferLength]` is `buf`, with the
/// adapter's LUNs (every LUN in the table, in target order) and limits. LIST LUNS is answered
/// here; every refusal is written here (§4); admitted work is handed back.
pub fn serve(buf: &mut [u8], luns: &[LunInfo<'_>], limits: &Limits) -> Served {
    let (decision, timeout) = match parse(buf) {
        Ok(parsed) => (
            admit_in(&parsed.request, luns.iter().map(LunInfo::summary), limits),
            parsed.timeout,
        ),
        Err(e) => return Served::Done(reply_error(buf, e)),
    };
    match decision {
        Ok(Decision::List) => Served::Done(reply_luns(buf, luns)),
        Ok(decision) => Served::Admitted { decision, timeout },
        Err(e) => Served::Done(reply_error(buf, e)),
    }
}
