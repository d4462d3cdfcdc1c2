//! [`ScsiTarget`]: one LUN serving one [`MemoryImage`]; decodes the CDB and dispatches.

use crate::image::{DeviceKind, DiskBackedImage, LoaderSource, MemoryImage};

use super::buf::Response;
use super::cdb::{Command, Opcode};
use super::inquiry::{self, Identity};
use super::sense::SenseData;
use super::{allows, block, mmc, mode, DataDirection, Medium, Outcome};

/// REPORT LUNS SELECT REPORT 01h: well-known LUNs only, of which there are none (SPC-4 §6.27).
const SELECT_WELL_KNOWN_ONLY: u8 = 0x01;

/// A SCSI target for one RAM image. Immutable after construction, hence `Sync`: the port calls
/// [`ScsiTarget::execute`] from many CPUs at once without locks (docs/windows-integration.md §1.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScsiTarget {
    image: MemoryImage,
    id: Identity,
    /// Blocks per unmap unit when the LUN is thin provisioned (accepts UNMAP); 0 otherwise.
    unmap_granularity: u32,
}

impl ScsiTarget {
    pub fn new(image: MemoryImage) -> Self {
        Self {
            image,
            id: Identity::of(&image),
            unmap_granularity: 0,
        }
    }

    /// A target for a disk-backed image (`docs/driver.md` "Disk-backed images"): the same
    /// command set, with the image's bytes reached through a [`Medium`] that reads the backing
    /// disk. The target's [`MemoryImage`] has no physical address (0) and only carries kind,
    /// length and write policy; its `source` is not reported anywhere for such a target.
    pub fn for_disk_backed(image: &DiskBackedImage) -> Self {
        let shape = MemoryImage {
            kind: image.kind,
            phys_base: 0,
            length: image.length,
            write_policy: image.write_policy,
            source: LoaderSource::Grub4Dos,
            table_address: image.table_address,
            slot: image.slot,
            bios_drive: image.emulated_drive,
        };
        Self {
            image: shape,
            id: Identity::of_disk_backed(image),
            unmap_granularity: 0,
        }
    }

    /// A target for a LUN created at run time through the control interface (a mounted file or
    /// a RAM disk, `docs/control.md` §10): kind, length and write policy only (no physical
    /// address, like [`ScsiTarget::for_disk_backed`]); `serial_seed` makes its serial number
    /// differ from every other LUN the adapter has served (target id and a creation count).
    pub fn for_runtime(kind: DeviceKind, length: u64, read_only: bool, serial_seed: u64) -> Self {
        let shape = MemoryImage {
            kind,
            phys_base: 0,
            length,
            write_policy: if read_only || kind == DeviceKind::CdRom {
                crate::image::WritePolicy::ReadOnly
            } else {
                crate::image::WritePolicy::ReadWrite
            },
            source: LoaderSource::Grub4Dos,
            table_address: 0,
            slot: 0,
            bios_drive: 0xFF,
        };
        Self {
            image: shape,
            id: Identity::of_runtime(kind, length, serial_seed),
            unmap_granularity: 0,
        }
    }

    /// The same target, thin provisioned: it accepts UNMAP and says so (Logical Block
    /// Provisioning VPD page, READ CAPACITY(16) LBPME, Block Limits with the unmap limits and
    /// `granularity_blocks` as the optimal unmap granularity; `docs/control.md` §10.2). Only a
    /// writable disk is: a CD, a floppy or a read-only LUN stays as it was.
    pub fn with_unmap(mut self, granularity_blocks: u32) -> Self {
        if self.image.kind == DeviceKind::Disk && !self.image.is_read_only() {
            self.unmap_granularity = granularity_blocks.max(1);
        }
        self
    }

    /// Whether the LUN accepts UNMAP.
    pub fn thin(&self) -> bool {
        self.unmap_granularity != 0
    }

    pub fn image(&self) -> &MemoryImage {
        &self.image
    }

    /// Stable identity reported in VPD 80h/83h; the port may reuse `serial` for
    /// STORAGE_DEVICE_DESCRIPTOR-style queries.
    pub fn identity(&self) -> &Identity {
        &self.id
    }

    /// Commands this LUN's device type implements: MMC-only ones only on a CD-ROM. WRITE opcodes
    /// are recognised everywhere so that a CD answers DATA PROTECT rather than "unknown command".
    fn supports(&self, op: Opcode) -> bool {
        match op {
            Opcode::Unmap => self.thin(),
            _ => self.image.kind == DeviceKind::CdRom || !op.is_mmc_only(),
        }
    }

    /// Executes one CDB. See the module CONTRACT in [`super`].
    pub fn execute(
        &self,
        cdb: &[u8],
        data: &mut [u8],
        dir: DataDirection,
        medium: &impl Medium,
    ) -> Outcome {
        let op = match cdb.first().copied().and_then(Opcode::from_u8) {
            Some(op) if self.supports(op) => op,
            _ => return Outcome::check_condition(SenseData::invalid_opcode()),
        };
        let cmd = match Command::decode(op, cdb) {
            Ok(cmd) => cmd,
            Err(sense) => return Outcome::check_condition(sense),
        };
        let image = &self.image;
        match cmd {
            // Hot path first.
            Command::Read(t) => block::read(image, &t, data, dir, medium),
            Command::Write(t) => block::write(image, &t, data, dir, medium),

            // A RAM medium is always ready and cannot really leave: START STOP UNIT (including
            // eject), PREVENT ALLOW MEDIUM REMOVAL and SET CD SPEED succeed without effect.
            Command::TestUnitReady
            | Command::StartStopUnit
            | Command::PreventAllowMediumRemoval
            | Command::SetCdSpeed => Outcome::good(0),

            Command::RequestSense { alloc } => {
                respond(data, dir, &SenseData::no_sense().to_bytes(), alloc)
            }
            Command::Inquiry { evpd, page, alloc } => {
                let r = if evpd {
                    inquiry::vpd(image.kind, &self.id, page, self.unmap_granularity)
                } else {
                    Ok(inquiry::standard(image.kind))
                };
                respond_with(data, dir, r, alloc)
            }
            Command::ModeSense(ms) => {
                respond_with(data, dir, mode::mode_sense(image, &ms), ms.alloc)
            }
            Command::ReadCapacity10 => {
                let r = block::read_capacity10(image);
                respond(data, dir, r.as_slice(), r.len())
            }
            Command::ReadCapacity16 { alloc } => respond(
                data,
                dir,
                block::read_capacity16(image, self.thin()).as_slice(),
                alloc,
            ),
            Command::Verify { range, compare } => {
                block::verify(image, &range, compare, data, dir, medium)
            }
            Command::SynchronizeCache(t) => block::synchronize_cache(image, &t),
            Command::Unmap { param_len } => block::unmap(image, param_len, data, dir, medium),
            Command::ReportLuns { select, alloc } => {
                respond(data, dir, report_luns(select).as_slice(), alloc)
            }
            Command::ReadToc {
                msf,
                format,
                track,
                alloc,
            } => respond_with(data, dir, mmc::read_toc(image, msf, format, track), alloc),
            Command::GetConfiguration { rt, start, alloc } => respond(
                data,
                dir,
                mmc::get_configuration(image, rt, start).as_slice(),
                alloc,
            ),
            Command::GetEventStatusNotification { classes, alloc } => {
                respond(data, dir, mmc::get_event_status(classes).as_slice(), alloc)
            }
            Command::ReadDiscInformation { alloc } => {
                respond(data, dir, mmc::read_disc_information().as_slice(), alloc)
            }
            Command::ReadTrackInformation { address, alloc } => respond_with(
                data,
                dir,
                mmc::read_track_information(image, address),
                alloc,
            ),
            Command::MechanismStatus { alloc } => {
                respond(data, dir, mmc::mechanism_status().as_slice(), alloc)
            }
            Command::ReadCd { range, user_data } => {
                if user_data {
                    block::read(image, &range, data, dir, medium)
                } else {
                    // No field selected: nothing moves, but the range must still exist.
                    block::verify(image, &range, false, data, dir, medium)
                }
            }
        }
    }
}

/// REPORT LUNS parameter data (SPC-4 §6.27.2): this target has exactly LUN 0. A port that puts
/// several images behind one target id must answer REPORT LUNS itself.
fn report_luns(select: u8) -> Response {
    let mut r = Response::new();
    if select == SELECT_WELL_KNOWN_ONLY {
        r.be32(0).zeros(4);
    } else {
        r.be32(8).zeros(4).zeros(8);
    }
    r
}

fn respond_with(
    data: &mut [u8],
    dir: DataDirection,
    r: Result<Response, SenseData>,
    alloc: usize,
) -> Outcome {
    match r {
        Ok(r) => respond(data, dir, r.as_slice(), alloc),
        Err(sense) => Outcome::check_condition(sense),
    }
}

/// Returns parameter data: truncated to the ALLOCATION LENGTH (SPC-4 §4.2.5.6) and to the SRB
/// buffer, the real count reported. A short buffer only truncates here, because the data is
/// complete up to where it stops (unlike medium transfers, which must fit whole).
fn respond(data: &mut [u8], dir: DataDirection, response: &[u8], alloc: usize) -> Outcome {
    let n = response.len().min(alloc);
    if n == 0 {
        return Outcome::good(0);
    }
    if !allows(dir, DataDirection::In) {
        return Outcome::check_condition(SenseData::invalid_request());
    }
    let n = n.min(data.len());
    data[..n].copy_from_slice(&response[..n]);
    Outcome::good(n)
}
