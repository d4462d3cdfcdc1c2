//! Admission: whether a well-formed request may be served on this adapter, and which target a
//! new LUN gets (`docs/control.md` §5). Pure: the port passes its LUN table and limits.

use super::{ControlError, Origin, Request};
use crate::image::DeviceKind;

/// One LUN of the adapter's table, as far as admission cares. A LUN whose removal is still in
/// progress stays in the list, so its target id is not handed out again before Windows has let
/// go of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LunSummary {
    pub target_id: u8,
    pub origin: Origin,
}

/// What the port can offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Target ids `0..max_targets` exist (PORT_CONFIGURATION_INFORMATION.MaximumNumberOfTargets).
    pub max_targets: u8,
    /// Bytes a new RAM disk may take: what the port measured as available for it.
    pub ram_bytes: u64,
    /// Longest path (UTF-16 units) the port keeps per LUN.
    pub max_path_units: usize,
    /// The work this port can do. A request that passes every other rule but needs a service
    /// the port lacks is refused with [`ControlError::NotAvailable`] (§5 step 6).
    pub services: Services,
}

bitflags::bitflags! {
    /// What a port can serve beyond LIST LUNS, which every port answers from its table.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Services: u8 {
        /// MOUNT FILE: open a file in the PASSIVE_LEVEL worker and serve it.
        const MOUNT_FILE = 0x01;
        /// CREATE RAM DISK: allocate (and fill) memory in the worker.
        const RAM_DISK = 0x02;
        /// REMOVE of a runtime LUN: offline, bus change, release once Windows let go.
        const REMOVE = 0x04;
    }
}

/// What the port is to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    List,
    /// Open the file and create the LUN at `target_id`.
    Mount {
        target_id: u8,
    },
    /// Allocate the RAM disk (and fill it from the source) at `target_id`.
    CreateRamDisk {
        target_id: u8,
    },
    /// Take the LUN at `target_id` offline and report the bus change.
    Remove {
        target_id: u8,
    },
}

/// Decides a parsed request against the current LUNs. Checks run in the order of §5; the first
/// failing one is the answer, and a refused request changes nothing. The service check comes
/// last, so a malformed or impossible request gets its own error even from a port that could
/// not have served it anyway.
pub fn admit(
    request: &Request<'_>,
    luns: &[LunSummary],
    limits: &Limits,
) -> Result<Decision, ControlError> {
    admit_in(request, luns.iter().copied(), limits)
}

/// [`admit`] over any view of the table (the port's LUN entries, without copying them).
pub(crate) fn admit_in(
    request: &Request<'_>,
    luns: impl Iterator<Item = LunSummary> + Clone,
    limits: &Limits,
) -> Result<Decision, ControlError> {
    let decision = decide(request, luns, limits)?;
    let needs = match decision {
        Decision::List => Services::empty(),
        Decision::Mount { .. } => Services::MOUNT_FILE,
        Decision::CreateRamDisk { .. } => Services::RAM_DISK,
        Decision::Remove { .. } => Services::REMOVE,
    };
    if !limits.services.contains(needs) {
        return Err(ControlError::NotAvailable);
    }
    Ok(decision)
}

/// Steps 1–5 of §5.
fn decide(
    request: &Request<'_>,
    mut luns: impl Iterator<Item = LunSummary> + Clone,
    limits: &Limits,
) -> Result<Decision, ControlError> {
    if let Some(path) = request.path() {
        if path.len_units() > limits.max_path_units {
            return Err(ControlError::PathTooLong);
        }
    }
    match *request {
        Request::ListLuns => Ok(Decision::List),
        Request::MountFile { .. } => {
            free_target(luns, limits).map(|t| Decision::Mount { target_id: t })
        }
        Request::CreateRamDisk {
            kind,
            size_bytes,
            source,
            ..
        } => {
            if kind == DeviceKind::CdRom && source.is_none() {
                return Err(ControlError::CdNeedsSource);
            }
            if size_bytes == 0 {
                return Err(ControlError::ZeroSize);
            }
            if !size_bytes.is_multiple_of(u64::from(kind.block_size())) {
                return Err(ControlError::SizeNotBlockMultiple);
            }
            if size_bytes > limits.ram_bytes {
                return Err(ControlError::SizeExceedsMemory);
            }
            free_target(luns, limits).map(|t| Decision::CreateRamDisk { target_id: t })
        }
        Request::Remove { target_id } => {
            let lun = luns
                .find(|l| l.target_id == target_id)
                .ok_or(ControlError::NoSuchTarget)?;
            if lun.origin == Origin::Loader {
                return Err(ControlError::BootImage);
            }
            Ok(Decision::Remove { target_id })
        }
    }
}

/// The lowest target id below `max_targets` that no LUN uses.
fn free_target(
    luns: impl Iterator<Item = LunSummary> + Clone,
    limits: &Limits,
) -> Result<u8, ControlError> {
    (0..limits.max_targets)
        .find(|t| luns.clone().all(|l| l.target_id != *t))
        .ok_or(ControlError::NoFreeTarget)
}
