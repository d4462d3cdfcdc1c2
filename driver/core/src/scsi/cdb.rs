//! Typed CDB decoding: opcodes, flag bytes and the fields each command carries.
//!
//! Field offsets follow SPC-4 §6, SBC-3 §5 and MMC-6 §6. Decoding checks only what a command
//! means on its own (reserved values, unsupported options); whether the LBA range fits the image
//! is decided by the command's handler.

use bitflags::bitflags;

use super::buf::{Be16, Be24, Be32, Be64};
use super::sense::{AdditionalSense, SenseData, SenseKey};

/// Operation codes the targets recognise (SPC-4 annex D.3, MMC-6 table 52).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    TestUnitReady = 0x00,
    RequestSense = 0x03,
    Read6 = 0x08,
    Write6 = 0x0A,
    Inquiry = 0x12,
    ModeSense6 = 0x1A,
    StartStopUnit = 0x1B,
    PreventAllowMediumRemoval = 0x1E,
    ReadCapacity10 = 0x25,
    Read10 = 0x28,
    Write10 = 0x2A,
    Verify10 = 0x2F,
    SynchronizeCache10 = 0x35,
    Unmap = 0x42,
    ReadToc = 0x43,
    GetConfiguration = 0x46,
    GetEventStatusNotification = 0x4A,
    ReadDiscInformation = 0x51,
    ReadTrackInformation = 0x52,
    ModeSense10 = 0x5A,
    Read16 = 0x88,
    Write16 = 0x8A,
    Verify16 = 0x8F,
    SynchronizeCache16 = 0x91,
    ServiceActionIn16 = 0x9E,
    ReportLuns = 0xA0,
    Read12 = 0xA8,
    Write12 = 0xAA,
    Verify12 = 0xAF,
    SetCdSpeed = 0xBB,
    MechanismStatus = 0xBD,
    ReadCd = 0xBE,
}

impl Opcode {
    pub const fn from_u8(b: u8) -> Option<Self> {
        use Opcode::*;
        Some(match b {
            0x00 => TestUnitReady,
            0x03 => RequestSense,
            0x08 => Read6,
            0x0A => Write6,
            0x12 => Inquiry,
            0x1A => ModeSense6,
            0x1B => StartStopUnit,
            0x1E => PreventAllowMediumRemoval,
            0x25 => ReadCapacity10,
            0x28 => Read10,
            0x2A => Write10,
            0x2F => Verify10,
            0x35 => SynchronizeCache10,
            0x42 => Unmap,
            0x43 => ReadToc,
            0x46 => GetConfiguration,
            0x4A => GetEventStatusNotification,
            0x51 => ReadDiscInformation,
            0x52 => ReadTrackInformation,
            0x5A => ModeSense10,
            0x88 => Read16,
            0x8A => Write16,
            0x8F => Verify16,
            0x91 => SynchronizeCache16,
            0x9E => ServiceActionIn16,
            0xA0 => ReportLuns,
            0xA8 => Read12,
            0xAA => Write12,
            0xAF => Verify12,
            0xBB => SetCdSpeed,
            0xBD => MechanismStatus,
            0xBE => ReadCd,
            _ => return None,
        })
    }

    /// CDB length fixed by the opcode's group code (SPC-4 §4.2.5.1, table 8).
    pub const fn cdb_len(self) -> usize {
        use Opcode::*;
        match self {
            TestUnitReady
            | RequestSense
            | Read6
            | Write6
            | Inquiry
            | ModeSense6
            | StartStopUnit
            | PreventAllowMediumRemoval => 6,
            ReadCapacity10
            | Read10
            | Write10
            | Verify10
            | SynchronizeCache10
            | Unmap
            | ReadToc
            | GetConfiguration
            | GetEventStatusNotification
            | ReadDiscInformation
            | ReadTrackInformation
            | ModeSense10 => 10,
            Read16 | Write16 | Verify16 | SynchronizeCache16 | ServiceActionIn16 => 16,
            ReportLuns | Read12 | Write12 | Verify12 | SetCdSpeed | MechanismStatus | ReadCd => 12,
        }
    }

    /// Commands whose data buffer carries medium data (reads, writes, VERIFY with BYTCHK, READ
    /// CD). Vista/7 StorPort leaves exactly such buffers unmapped, so a port must fetch their
    /// system address itself (`docs/windows-integration.md` §1.10).
    pub const fn moves_medium_data(self) -> bool {
        use Opcode::*;
        matches!(
            self,
            Read6
                | Read10
                | Read12
                | Read16
                | Write6
                | Write10
                | Write12
                | Write16
                | Verify10
                | Verify12
                | Verify16
                | ReadCd
        )
    }

    /// Commands defined only by MMC-6; a direct-access LUN answers them with INVALID COMMAND
    /// OPERATION CODE.
    pub const fn is_mmc_only(self) -> bool {
        use Opcode::*;
        matches!(
            self,
            ReadToc
                | GetConfiguration
                | GetEventStatusNotification
                | ReadDiscInformation
                | ReadTrackInformation
                | SetCdSpeed
                | MechanismStatus
                | ReadCd
        )
    }
}

bitflags! {
    /// Byte 1 of READ/WRITE(10/12/16) (SBC-3 §5.8, §5.32).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct RwFlags: u8 {
        /// RDPROTECT / WRPROTECT: protection information is not supported.
        const PROTECT = 0xE0;
        const DPO = 0x10;
        const FUA = 0x08;
        const FUA_NV = 0x02;
    }

    /// Byte 1 of VERIFY(10/12/16) (SBC-3 §5.28 as revised by SBC-3 r25: two-bit BYTCHK).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct VerifyFlags: u8 {
        const VRPROTECT = 0xE0;
        const DPO = 0x10;
        /// BYTCHK 01b: compare the data-out buffer against the medium.
        const BYTCHK_COMPARE = 0x02;
        /// BYTCHK 11b: one block of data-out compared against every block (not supported).
        const BYTCHK_SINGLE = 0x04;
    }

    /// Byte 1 of INQUIRY (SPC-4 §6.4.1).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct InquiryFlags: u8 {
        const EVPD = 0x01;
        /// Obsolete CMDDT (SPC-2); must be zero.
        const CMDDT = 0x02;
    }

    /// Byte 1 of REQUEST SENSE (SPC-4 §6.29).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct RequestSenseFlags: u8 {
        /// Descriptor-format sense: only fixed format is produced.
        const DESC = 0x01;
    }

    /// Byte 1 of MODE SENSE(6/10) (SPC-4 §6.11, §6.12).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ModeSenseFlags: u8 {
        const DBD = 0x08;
        /// MODE SENSE(10) only: a long LBA block descriptor may be returned.
        const LLBAA = 0x10;
    }

    /// Byte 1 of GET EVENT STATUS NOTIFICATION (MMC-6 §6.6).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct GesnFlags: u8 {
        const POLLED = 0x01;
    }

    /// Byte 1 of READ TOC/PMA/ATIP (MMC-6 §6.26).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct TocFlags: u8 {
        const MSF = 0x02;
    }

    /// The CONTROL byte that ends every CDB (SAM-5 §5.2).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Control: u8 {
        /// Old-style READ TOC format (SFF-8020i) lives in the vendor bits 7-6.
        const VENDOR = 0xC0;
        const NACA = 0x04;
        const LINK = 0x01;
    }
}

/// Page control field of MODE SENSE (SPC-4 §6.11.1, table 123), bits 7-6 of byte 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageControl {
    Current,
    Changeable,
    Default,
}

/// A block range from a READ/WRITE/VERIFY/SYNCHRONIZE CACHE/READ CD CDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub lba: u64,
    pub blocks: u32,
    /// CDB byte where the transfer length starts, for the sense field pointer.
    pub length_field: u16,
}

/// Decoded MODE SENSE(6) or (10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeSense {
    pub ten: bool,
    pub dbd: bool,
    pub llbaa: bool,
    pub pc: PageControl,
    pub page: u8,
    pub subpage: u8,
    pub alloc: usize,
}

/// READ TOC/PMA/ATIP format (MMC-6 §6.26.2, table 477).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TocFormat {
    Toc,
    SessionInfo,
    FullToc,
}

/// READ TRACK INFORMATION address/number type (MMC-6 §6.31.2.2, table 557).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackAddress {
    Lba(u32),
    Track(u32),
    Session(u32),
}

/// One decoded command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    TestUnitReady,
    RequestSense {
        alloc: usize,
    },
    Inquiry {
        evpd: bool,
        page: u8,
        alloc: usize,
    },
    ModeSense(ModeSense),
    StartStopUnit,
    PreventAllowMediumRemoval,
    ReadCapacity10,
    ReadCapacity16 {
        alloc: usize,
    },
    /// UNMAP (SBC-3 §5.28): `param_len` bytes of parameter list follow (data-out).
    Unmap {
        param_len: usize,
    },
    Read(Transfer),
    Write(Transfer),
    Verify {
        range: Transfer,
        compare: bool,
    },
    SynchronizeCache(Transfer),
    ReportLuns {
        select: u8,
        alloc: usize,
    },
    ReadToc {
        msf: bool,
        format: TocFormat,
        track: u8,
        alloc: usize,
    },
    GetConfiguration {
        rt: u8,
        start: u16,
        alloc: usize,
    },
    GetEventStatusNotification {
        classes: u8,
        alloc: usize,
    },
    ReadDiscInformation {
        alloc: usize,
    },
    ReadTrackInformation {
        address: TrackAddress,
        alloc: usize,
    },
    MechanismStatus {
        alloc: usize,
    },
    SetCdSpeed,
    /// READ CD with only user data selected (`user_data`) or no field at all.
    ReadCd {
        range: Transfer,
        user_data: bool,
    },
}

/// SERVICE ACTION IN(16) service action READ CAPACITY(16) (SBC-3 §5.16).
const SA_READ_CAPACITY_16: u8 = 0x10;
const SERVICE_ACTION_MASK: u8 = 0x1F;
/// READ(6) carries a 21-bit LBA in bytes 1-3 (SBC-3 §5.7).
const READ6_LBA_MASK: u32 = 0x1F_FFFF;
/// SELECT REPORT values 00h-02h (SPC-4 §6.27, table 206).
const REPORT_LUNS_SELECT_MAX: u8 = 0x02;
/// SPC-4 §6.27: REPORT LUNS with an allocation length below 16 is an error.
const REPORT_LUNS_MIN_ALLOC: u32 = 16;
/// READ CD byte 1 bits 4-2, expected sector type (MMC-6 §6.19, table 343), left in place.
const READ_CD_SECTOR_TYPE: u8 = 0x1C;
const SECTOR_ANY: u8 = 0x00;
const SECTOR_CDDA: u8 = 0x04;
const SECTOR_MODE1: u8 = 0x08;
const SECTOR_MODE2_FORM2: u8 = 0x14;
/// READ CD byte 9: user data only (MMC-6 table 346).
const READ_CD_USER_DATA: u8 = 0x10;
const READ_CD_SUBCHANNEL: u8 = 0x07;

/// Bounds-safe view of CDB bytes: a byte that is not there reads as zero. [`Command::decode`]
/// checks the length first, so that never happens for a decoded field.
struct View<'a>(&'a [u8]);

impl View<'_> {
    fn array<const N: usize>(&self, at: usize) -> [u8; N] {
        self.0
            .get(at..)
            .and_then(|s| s.first_chunk::<N>())
            .copied()
            .unwrap_or([0; N])
    }

    fn u8(&self, at: usize) -> u8 {
        self.0.get(at).copied().unwrap_or(0)
    }

    fn be16(&self, at: usize) -> u16 {
        Be16(self.array(at)).get()
    }

    fn be24(&self, at: usize) -> u32 {
        Be24(self.array(at)).get()
    }

    fn be32(&self, at: usize) -> u32 {
        Be32(self.array(at)).get()
    }

    fn be64(&self, at: usize) -> u64 {
        Be64(self.array(at)).get()
    }
}

fn rw(v: &View<'_>, lba: u64, blocks: u32, length_field: u16) -> Result<Transfer, SenseData> {
    if RwFlags::from_bits_retain(v.u8(1)).intersects(RwFlags::PROTECT) {
        return Err(SenseData::invalid_field(1, Some(7)));
    }
    Ok(Transfer {
        lba,
        blocks,
        length_field,
    })
}

fn verify(v: &View<'_>, lba: u64, blocks: u32, length_field: u16) -> Result<Command, SenseData> {
    let flags = VerifyFlags::from_bits_retain(v.u8(1));
    if flags.intersects(VerifyFlags::VRPROTECT) {
        return Err(SenseData::invalid_field(1, Some(7)));
    }
    if flags.contains(VerifyFlags::BYTCHK_SINGLE) {
        return Err(SenseData::invalid_field(1, Some(2)));
    }
    Ok(Command::Verify {
        range: Transfer {
            lba,
            blocks,
            length_field,
        },
        compare: flags.contains(VerifyFlags::BYTCHK_COMPARE),
    })
}

fn mode_sense(v: &View<'_>, ten: bool) -> Result<Command, SenseData> {
    let flags = ModeSenseFlags::from_bits_retain(v.u8(1));
    let pc = match v.u8(2) & 0xC0 {
        0x00 => PageControl::Current,
        0x40 => PageControl::Changeable,
        0x80 => PageControl::Default,
        // Saved values (11b): SPC-4 §6.11.1 wants SAVING PARAMETERS NOT SUPPORTED.
        _ => {
            return Err(SenseData::new(
                SenseKey::IllegalRequest,
                AdditionalSense::SAVING_PARAMETERS_NOT_SUPPORTED,
            ))
        }
    };
    Ok(Command::ModeSense(ModeSense {
        ten,
        dbd: flags.contains(ModeSenseFlags::DBD),
        llbaa: ten && flags.contains(ModeSenseFlags::LLBAA),
        pc,
        page: v.u8(2) & 0x3F,
        subpage: v.u8(3),
        alloc: if ten {
            usize::from(v.be16(7))
        } else {
            usize::from(v.u8(4))
        },
    }))
}

impl Command {
    /// Decodes `cdb` (whose first byte is `op`). A CDB shorter than the opcode's group length is
    /// answered with INVALID COMMAND OPERATION CODE: the bytes received are not a command.
    /// Longer CDBs are accepted (ports pad to 12 or 16 bytes).
    pub fn decode(op: Opcode, cdb: &[u8]) -> Result<Self, SenseData> {
        let len = op.cdb_len();
        if cdb.len() < len {
            return Err(SenseData::invalid_opcode());
        }
        let v = View(cdb);
        let control = Control::from_bits_retain(v.u8(len - 1));
        if control.contains(Control::NACA) {
            // SAM-5 §5.9.2: NACA is not supported (no ACA), so NACA = 1 is an invalid field.
            return Err(SenseData::invalid_field(len as u16 - 1, Some(2)));
        }
        use Opcode as O;
        Ok(match op {
            O::TestUnitReady => Command::TestUnitReady,
            O::RequestSense => {
                if RequestSenseFlags::from_bits_retain(v.u8(1)).contains(RequestSenseFlags::DESC) {
                    return Err(SenseData::invalid_field(1, Some(0)));
                }
                Command::RequestSense {
                    alloc: usize::from(v.u8(4)),
                }
            }
            O::Inquiry => {
                let flags = InquiryFlags::from_bits_retain(v.u8(1));
                if flags.contains(InquiryFlags::CMDDT) {
                    return Err(SenseData::invalid_field(1, Some(1)));
                }
                let evpd = flags.contains(InquiryFlags::EVPD);
                let page = v.u8(2);
                // SPC-4 §6.4.1: EVPD = 0 with a non-zero PAGE CODE is an invalid field.
                if !evpd && page != 0 {
                    return Err(SenseData::invalid_field(2, Some(7)));
                }
                Command::Inquiry {
                    evpd,
                    page,
                    alloc: usize::from(v.be16(3)),
                }
            }
            O::ModeSense6 => mode_sense(&v, false)?,
            O::ModeSense10 => mode_sense(&v, true)?,
            O::StartStopUnit => Command::StartStopUnit,
            O::Unmap => {
                // ANCHOR (byte 1 bit 0) asks for anchored blocks, which this target has not.
                if v.u8(1) & 0x01 != 0 {
                    return Err(SenseData::invalid_field(1, Some(0)));
                }
                Command::Unmap {
                    param_len: usize::from(v.be16(7)),
                }
            }
            O::PreventAllowMediumRemoval => Command::PreventAllowMediumRemoval,
            O::ReadCapacity10 => {
                // SBC-3 §5.15: with PMI = 0 the LOGICAL BLOCK ADDRESS field must be zero.
                let pmi = v.u8(8) & 0x01 != 0;
                if !pmi && v.be32(2) != 0 {
                    return Err(SenseData::invalid_field(2, Some(7)));
                }
                Command::ReadCapacity10
            }
            O::ServiceActionIn16 => {
                if v.u8(1) & SERVICE_ACTION_MASK != SA_READ_CAPACITY_16 {
                    return Err(SenseData::invalid_field(1, Some(4)));
                }
                let pmi = v.u8(14) & 0x01 != 0;
                if !pmi && v.be64(2) != 0 {
                    return Err(SenseData::invalid_field(2, Some(7)));
                }
                Command::ReadCapacity16 {
                    alloc: v.be32(10) as usize,
                }
            }
            O::Read6 | O::Write6 => {
                // SBC-3 §5.7/§5.33: TRANSFER LENGTH 0 means 256 blocks.
                let blocks = match v.u8(4) {
                    0 => 256,
                    n => u32::from(n),
                };
                let t = Transfer {
                    lba: u64::from(v.be24(1) & READ6_LBA_MASK),
                    blocks,
                    length_field: 4,
                };
                if op == O::Read6 {
                    Command::Read(t)
                } else {
                    Command::Write(t)
                }
            }
            O::Read10 => Command::Read(rw(&v, u64::from(v.be32(2)), u32::from(v.be16(7)), 7)?),
            O::Write10 => Command::Write(rw(&v, u64::from(v.be32(2)), u32::from(v.be16(7)), 7)?),
            O::Read12 => Command::Read(rw(&v, u64::from(v.be32(2)), v.be32(6), 6)?),
            O::Write12 => Command::Write(rw(&v, u64::from(v.be32(2)), v.be32(6), 6)?),
            O::Read16 => Command::Read(rw(&v, v.be64(2), v.be32(10), 10)?),
            O::Write16 => Command::Write(rw(&v, v.be64(2), v.be32(10), 10)?),
            O::Verify10 => verify(&v, u64::from(v.be32(2)), u32::from(v.be16(7)), 7)?,
            O::Verify12 => verify(&v, u64::from(v.be32(2)), v.be32(6), 6)?,
            O::Verify16 => verify(&v, v.be64(2), v.be32(10), 10)?,
            O::SynchronizeCache10 => Command::SynchronizeCache(Transfer {
                lba: u64::from(v.be32(2)),
                blocks: u32::from(v.be16(7)),
                length_field: 7,
            }),
            O::SynchronizeCache16 => Command::SynchronizeCache(Transfer {
                lba: v.be64(2),
                blocks: v.be32(10),
                length_field: 10,
            }),
            O::ReportLuns => {
                let select = v.u8(2);
                if select > REPORT_LUNS_SELECT_MAX {
                    return Err(SenseData::invalid_field(2, Some(7)));
                }
                let alloc = v.be32(6);
                if alloc < REPORT_LUNS_MIN_ALLOC {
                    return Err(SenseData::invalid_field(6, Some(7)));
                }
                Command::ReportLuns {
                    select,
                    alloc: alloc as usize,
                }
            }
            O::ReadToc => {
                let format = match (v.u8(2) & 0x0F, control & Control::VENDOR) {
                    // SFF-8020i drives took the format from CONTROL bits 7-6; MMC-6 §6.26.2.2
                    // keeps that encoding valid when the FORMAT field is zero.
                    (0, c) if c.bits() == 0x40 => TocFormat::SessionInfo,
                    (0, c) if c.bits() == 0x80 => TocFormat::FullToc,
                    (0, _) => TocFormat::Toc,
                    (1, _) => TocFormat::SessionInfo,
                    (2, _) => TocFormat::FullToc,
                    _ => return Err(SenseData::invalid_field(2, Some(3))),
                };
                Command::ReadToc {
                    msf: TocFlags::from_bits_retain(v.u8(1)).contains(TocFlags::MSF),
                    format,
                    track: v.u8(6),
                    alloc: usize::from(v.be16(7)),
                }
            }
            O::GetConfiguration => {
                let rt = v.u8(1) & 0x03;
                if rt == 0x03 {
                    return Err(SenseData::invalid_field(1, Some(1)));
                }
                Command::GetConfiguration {
                    rt,
                    start: v.be16(2),
                    alloc: usize::from(v.be16(7)),
                }
            }
            O::GetEventStatusNotification => {
                // MMC-6 §6.6.1: asynchronous notification is not supported, only polling.
                if !GesnFlags::from_bits_retain(v.u8(1)).contains(GesnFlags::POLLED) {
                    return Err(SenseData::invalid_field(1, Some(0)));
                }
                Command::GetEventStatusNotification {
                    classes: v.u8(4),
                    alloc: usize::from(v.be16(7)),
                }
            }
            O::ReadDiscInformation => {
                // MMC-6 §6.22: DATA TYPE 000b (standard disc information) only.
                if v.u8(1) & 0x07 != 0 {
                    return Err(SenseData::invalid_field(1, Some(2)));
                }
                Command::ReadDiscInformation {
                    alloc: usize::from(v.be16(7)),
                }
            }
            O::ReadTrackInformation => {
                let value = v.be32(2);
                let address = match v.u8(1) & 0x03 {
                    0 => TrackAddress::Lba(value),
                    1 => TrackAddress::Track(value),
                    2 => TrackAddress::Session(value),
                    _ => return Err(SenseData::invalid_field(1, Some(1))),
                };
                Command::ReadTrackInformation {
                    address,
                    alloc: usize::from(v.be16(7)),
                }
            }
            O::MechanismStatus => Command::MechanismStatus {
                alloc: usize::from(v.be16(8)),
            },
            O::SetCdSpeed => Command::SetCdSpeed,
            O::ReadCd => {
                match v.u8(1) & READ_CD_SECTOR_TYPE {
                    SECTOR_ANY | SECTOR_MODE1 => {}
                    SECTOR_CDDA..=SECTOR_MODE2_FORM2 => {
                        // The one track is a mode 1 data track (MMC-6 §6.19.2.2).
                        return Err(SenseData::new(
                            SenseKey::IllegalRequest,
                            AdditionalSense::ILLEGAL_MODE_FOR_THIS_TRACK,
                        ));
                    }
                    _ => return Err(SenseData::invalid_field(1, Some(4))),
                }
                let user_data = match v.u8(9) {
                    0 => false,
                    READ_CD_USER_DATA => true,
                    // Headers, sync, EDC/ECC and C2 would need synthesised raw sectors.
                    _ => return Err(SenseData::invalid_field(9, Some(7))),
                };
                if v.u8(10) & READ_CD_SUBCHANNEL != 0 {
                    return Err(SenseData::invalid_field(10, Some(2)));
                }
                Command::ReadCd {
                    range: Transfer {
                        lba: u64::from(v.be32(2)),
                        blocks: v.be24(6),
                        length_field: 6,
                    },
                    user_data,
                }
            }
        })
    }
}
