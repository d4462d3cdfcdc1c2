//! MMC-6 commands of the CD/DVD-ROM target: the image is a finalized single-session disc with
//! one mode 1 data track starting at LBA 0 and the lead-out at the image end.

use crate::image::MemoryImage;

use super::buf::{Be16, Be32, Response};
use super::cdb::{TocFormat, TrackAddress};
use super::sense::SenseData;

/// Profiles (MMC-6 §5.3.1, table 90).
pub const PROFILE_CD_ROM: u16 = 0x0008;
pub const PROFILE_DVD_ROM: u16 = 0x0010;
/// Images above this size cannot be a CD (a 99-minute CD holds about 870 MiB): DVD-ROM profile.
pub const CD_MAX_BYTES: u64 = 900 * 1024 * 1024;

/// Feature codes (MMC-6 §5.3, table 91).
pub const FEATURE_PROFILE_LIST: u16 = 0x0000;
pub const FEATURE_CORE: u16 = 0x0001;
pub const FEATURE_MORPHING: u16 = 0x0002;
pub const FEATURE_REMOVABLE_MEDIUM: u16 = 0x0003;
pub const FEATURE_RANDOM_READABLE: u16 = 0x0010;
pub const FEATURE_CD_READ: u16 = 0x001E;
pub const FEATURE_DVD_READ: u16 = 0x001F;

/// Feature descriptor byte 2 (MMC-6 §5.2.2, table 85): VERSION in bits 5-2, PERSISTENT, CURRENT.
const CURRENT: u8 = 0x01;
const PERSISTENT: u8 = 0x02;
const VERSION_1: u8 = 0x04;
const VERSION_2: u8 = 0x08;

/// Q sub-channel ADR 1 (position) | CONTROL 4 (data track, copy prohibited) (MMC-6 table 480).
const ADR_CONTROL_DATA: u8 = 0x14;
const LEAD_OUT: u8 = 0xAA;
/// Full TOC POINT values (MMC-6 §6.26.3.4, table 485).
const POINT_FIRST_TRACK: u8 = 0xA0;
const POINT_LAST_TRACK: u8 = 0xA1;
const POINT_LEAD_OUT: u8 = 0xA2;
/// Core feature: physical interface standard "SCSI family" (MMC-6 table 95).
const INTERFACE_SCSI: u32 = 0x0000_0001;
/// Removable medium feature byte 4: tray loader (001b), eject, lock (MMC-6 table 99).
const TRAY_EJECT_LOCK: u8 = 0x29;
/// Random readable BLOCKING: 1 sector per ECC block on CD, 16 on DVD (MMC-6 §5.3.6).
const BLOCKING_CD: u16 = 1;
const BLOCKING_DVD: u16 = 16;
/// READ DISC INFORMATION byte 2: last session complete (11b) | disc complete (10b).
const DISC_COMPLETE: u8 = 0x0E;
/// "Not applicable" start addresses of a finalized disc (MMC-6 §6.22.3.1.1).
const NO_ADDRESS: u32 = 0xFFFF_FFFF;
/// READ TRACK INFORMATION byte 5: track mode 4 (data, uninterrupted); byte 6: data mode 1.
const TRACK_MODE_DATA: u8 = 0x04;
const DATA_MODE_1: u8 = 0x01;
/// Event class 4, media (MMC-6 §6.6.2).
const EVENT_CLASS_MEDIA: u8 = 0x04;
const EVENT_CLASS_MEDIA_BIT: u8 = 0x10;
/// NEA: none of the requested classes is supported (MMC-6 table 166).
const NO_EVENT_AVAILABLE: u8 = 0x80;
/// Media status byte: MEDIA PRESENT, door closed (MMC-6 table 178).
const MEDIA_PRESENT: u8 = 0x02;

/// CD frames per second and the 2-second pre-gap in front of LBA 0 (MMC-6 §6.26.3.1.2, Red Book).
const FRAMES_PER_SECOND: u64 = 75;
const SECONDS_PER_MINUTE: u64 = 60;
const PREGAP_FRAMES: u64 = 150;

fn blocks_u32(image: &MemoryImage) -> u32 {
    u32::try_from(image.blocks()).unwrap_or(u32::MAX)
}

/// The current profile: DVD-ROM when the image is too big for a CD.
pub fn current_profile(image: &MemoryImage) -> u16 {
    if image.length > CD_MAX_BYTES {
        PROFILE_DVD_ROM
    } else {
        PROFILE_CD_ROM
    }
}

/// M, S, F of an LBA; minutes past 255 saturate at FF:3B:4A (MMC-6 §6.26.3.1.2).
pub fn lba_to_msf(lba: u64) -> [u8; 3] {
    let frames = lba.saturating_add(PREGAP_FRAMES);
    let per_minute = FRAMES_PER_SECOND * SECONDS_PER_MINUTE;
    match u8::try_from(frames / per_minute) {
        Ok(m) => [
            m,
            (frames / FRAMES_PER_SECOND % SECONDS_PER_MINUTE) as u8,
            (frames % FRAMES_PER_SECOND) as u8,
        ],
        Err(_) => [0xFF, 59, 74],
    }
}

/// A TOC address field: LBA or 00h M S F.
fn address(lba: u64, msf: bool) -> [u8; 4] {
    if msf {
        let [m, s, f] = lba_to_msf(lba);
        [0, m, s, f]
    } else {
        Be32::new(u32::try_from(lba).unwrap_or(u32::MAX)).0
    }
}

/// READ TOC/PMA/ATIP (MMC-6 §6.26).
pub(super) fn read_toc(
    image: &MemoryImage,
    msf: bool,
    format: TocFormat,
    track: u8,
) -> Result<Response, SenseData> {
    let lead_out = image.blocks();
    let mut r = Response::new();
    // TOC DATA LENGTH (filled in below), first and last track / session number.
    r.be16(0).u8(1).u8(1);
    match format {
        TocFormat::Toc => {
            let with_track1 = match track {
                0 | 1 => true,
                LEAD_OUT => false,
                _ => return Err(SenseData::invalid_field(6, Some(7))),
            };
            if with_track1 {
                r.u8(0)
                    .u8(ADR_CONTROL_DATA)
                    .u8(1)
                    .u8(0)
                    .push(&address(0, msf));
            }
            r.u8(0)
                .u8(ADR_CONTROL_DATA)
                .u8(LEAD_OUT)
                .u8(0)
                .push(&address(lead_out, msf));
        }
        TocFormat::SessionInfo => {
            // First track of the last session and its start address (MMC-6 §6.26.3.3).
            r.u8(0)
                .u8(ADR_CONTROL_DATA)
                .u8(1)
                .u8(0)
                .push(&address(0, msf));
        }
        TocFormat::FullToc => {
            // Raw Q descriptors of session 1 (MMC-6 §6.26.3.4): always MSF.
            let [m, s, f] = lba_to_msf(lead_out);
            let [m1, s1, f1] = lba_to_msf(0);
            let points: [(u8, [u8; 3]); 4] = [
                (POINT_FIRST_TRACK, [1, 0x00, 0]), // first track 1, disc type CD-DA/CD-ROM
                (POINT_LAST_TRACK, [1, 0, 0]),
                (POINT_LEAD_OUT, [m, s, f]),
                (1, [m1, s1, f1]),
            ];
            for (point, p) in points {
                r.u8(1)
                    .u8(ADR_CONTROL_DATA)
                    .u8(0)
                    .u8(point)
                    .zeros(4) // MIN, SEC, FRAME, ZERO
                    .push(&p);
            }
        }
    }
    let len = (r.len() - 2) as u16;
    r.set_be16(0, len);
    Ok(r)
}

/// One feature descriptor: code, byte 2 flags and up to 8 bytes of feature data.
struct Feature {
    code: u16,
    flags: u8,
    data: [u8; 8],
    len: u8,
}

impl Feature {
    const fn new(code: u16, flags: u8, data: [u8; 8], len: u8) -> Self {
        Self {
            code,
            flags,
            data,
            len,
        }
    }
}

fn features(image: &MemoryImage) -> [Feature; 7] {
    let dvd = current_profile(image) == PROFILE_DVD_ROM;
    let current_if = |yes: bool| if yes { CURRENT } else { 0 };
    let [d0, d1] = Be16::new(PROFILE_DVD_ROM).0;
    let [c0, c1] = Be16::new(PROFILE_CD_ROM).0;
    let [i0, i1, i2, i3] = Be32::new(INTERFACE_SCSI).0;
    let [b0, b1, b2, b3] = Be32::new(image.block_size()).0;
    let [k0, k1] = Be16::new(if dvd { BLOCKING_DVD } else { BLOCKING_CD }).0;
    [
        // Highest profile number first (MMC-6 §5.3.1).
        Feature::new(
            FEATURE_PROFILE_LIST,
            PERSISTENT | CURRENT,
            [d0, d1, current_if(dvd), 0, c0, c1, current_if(!dvd), 0],
            8,
        ),
        Feature::new(
            FEATURE_CORE,
            VERSION_2 | PERSISTENT | CURRENT,
            [i0, i1, i2, i3, 0, 0, 0, 0],
            8,
        ),
        // ASYNC = 0: GET EVENT STATUS NOTIFICATION is polled only.
        Feature::new(
            FEATURE_MORPHING,
            VERSION_1 | PERSISTENT | CURRENT,
            [0; 8],
            4,
        ),
        Feature::new(
            FEATURE_REMOVABLE_MEDIUM,
            PERSISTENT | CURRENT,
            [TRAY_EJECT_LOCK, 0, 0, 0, 0, 0, 0, 0],
            4,
        ),
        Feature::new(
            FEATURE_RANDOM_READABLE,
            CURRENT,
            [b0, b1, b2, b3, k0, k1, 0, 0],
            8,
        ),
        Feature::new(FEATURE_CD_READ, VERSION_2 | current_if(!dvd), [0; 8], 4),
        Feature::new(FEATURE_DVD_READ, VERSION_1 | current_if(dvd), [0; 8], 4),
    ]
}

/// GET CONFIGURATION (MMC-6 §6.5): RT 00b all features from STARTING FEATURE NUMBER, 01b the
/// current ones from there, 10b exactly that feature.
pub(super) fn get_configuration(image: &MemoryImage, rt: u8, start: u16) -> Response {
    let mut r = Response::new();
    r.be32(0).zeros(2).be16(current_profile(image));
    for f in features(image) {
        let wanted = match rt {
            0 => f.code >= start,
            1 => f.code >= start && f.flags & CURRENT != 0,
            _ => f.code == start,
        };
        if wanted {
            r.be16(f.code)
                .u8(f.flags)
                .u8(f.len)
                .push(&f.data[..usize::from(f.len)]);
        }
    }
    let len = (r.len() - 4) as u32;
    r.set_be32(0, len);
    r
}

/// READ DISC INFORMATION, standard disc information (MMC-6 §6.22.3.1): 34 bytes.
pub(super) fn read_disc_information() -> Response {
    let mut r = Response::new();
    r.be16(32)
        .u8(DISC_COMPLETE)
        .u8(1) // first track on disc
        .u8(1) // number of sessions (LSB)
        .u8(1) // first track in last session (LSB)
        .u8(1) // last track in last session (LSB)
        .u8(0) // DID_V, DBC_V, URU, DAC_V, BG format
        .u8(0x00) // disc type: CD-DA or CD-ROM
        .zeros(3) // MSBs of sessions / tracks
        .zeros(4) // disc identification
        .be32(NO_ADDRESS) // last session lead-in start
        .be32(NO_ADDRESS) // last possible lead-out start
        .zeros(8) // disc bar code
        .u8(0) // disc application code
        .u8(0); // number of OPC tables
    r
}

/// READ TRACK INFORMATION (MMC-6 §6.31): 48 bytes about track 1.
pub(super) fn read_track_information(
    image: &MemoryImage,
    address: TrackAddress,
) -> Result<Response, SenseData> {
    match address {
        TrackAddress::Lba(lba) if u64::from(lba) < image.blocks() => {}
        TrackAddress::Lba(_) => return Err(SenseData::lba_out_of_range()),
        TrackAddress::Track(1) | TrackAddress::Session(1) => {}
        TrackAddress::Track(_) | TrackAddress::Session(_) => {
            return Err(SenseData::invalid_field(2, Some(7)))
        }
    }
    let blocks = blocks_u32(image);
    let mut r = Response::new();
    r.be16(46)
        .u8(1) // track number (LSB)
        .u8(1) // session number (LSB)
        .u8(0)
        .u8(TRACK_MODE_DATA)
        .u8(DATA_MODE_1)
        .u8(0) // LRA_V, NWA_V
        .be32(0) // track start address
        .be32(0) // next writable address
        .be32(0) // free blocks
        .be32(0) // fixed packet size
        .be32(blocks) // track size
        .be32(blocks.saturating_sub(1)) // last recorded address
        .zeros(16); // MSBs, read compatibility LBA, layer jump addresses
    Ok(r)
}

/// GET EVENT STATUS NOTIFICATION, polled (MMC-6 §6.6): only the media class is supported and it
/// always says "media present, no change" — a RAM disc never leaves.
pub(super) fn get_event_status(classes: u8) -> Response {
    let mut r = Response::new();
    if classes & EVENT_CLASS_MEDIA_BIT != 0 {
        r.be16(6)
            .u8(EVENT_CLASS_MEDIA)
            .u8(EVENT_CLASS_MEDIA_BIT)
            .u8(0) // event code: NoChg
            .u8(MEDIA_PRESENT)
            .u8(0) // start slot
            .u8(0); // end slot
    } else {
        r.be16(2).u8(NO_EVENT_AVAILABLE).u8(EVENT_CLASS_MEDIA_BIT);
    }
    r
}

/// MECHANISM STATUS (MMC-6 §6.11): an idle, closed, non-changer mechanism; 8-byte header.
pub(super) fn mechanism_status() -> Response {
    let mut r = Response::new();
    r.u8(0).u8(0).zeros(3).u8(0).be16(0);
    r
}
