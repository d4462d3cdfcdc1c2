//! Which images to expose, decided from the XP flavour's configuration (`inf/xp/README.md`,
//! `docs/peers.md` §6: XP setup installs onto the lowest-numbered disk, so RAM hard-disk images are
//! hidden during setup unless the user asks for them).
//!
//! Inputs: the HwFindAdapter `ArgumentString` (SCSIPORT passes the `Parameters\Device`
//! `DriverParameter` value), the service name (from DriverEntry's registry path), and whether
//! setup is running.

/// What `disks=` said, if anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisksOption {
    On,
    Off,
    Unset,
}

/// Parses `name=value` tokens separated by `;`, `,`, space or tab; names and values are
/// case-insensitive, unknown or malformed tokens are ignored, the last `disks=` wins. The string
/// ends at the first NUL (it comes from a C string) or at the end of the slice.
pub fn parse_disks_option(argument: &[u8]) -> DisksOption {
    let end = argument
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(argument.len());
    let mut result = DisksOption::Unset;
    for token in argument[..end].split(|&b| matches!(b, b';' | b',' | b' ' | b'\t')) {
        let Some(eq) = token.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (name, value) = (&token[..eq], &token[eq + 1..]);
        if !name.eq_ignore_ascii_case(b"disks") {
            continue;
        }
        if value.eq_ignore_ascii_case(b"on") {
            result = DisksOption::On;
        } else if value.eq_ignore_ascii_case(b"off") {
            result = DisksOption::Off;
        }
    }
    result
}

/// The service that always exposes disk images (`txtsetup.oem` entry "RAM CD + RAM disks").
pub const DISKS_SERVICE: &str = "rvblkxpd";

/// Whether hard-disk images are exposed.
pub fn expose_disks(option: DisksOption, service_name: &[u16], setup_in_progress: bool) -> bool {
    match option {
        DisksOption::On => true,
        DisksOption::Off => false,
        DisksOption::Unset => is_service(service_name, DISKS_SERVICE) || !setup_in_progress,
    }
}

/// Case-insensitive ASCII comparison of a UTF-16 service name with `name`.
fn is_service(service_name: &[u16], name: &str) -> bool {
    service_name.len() == name.len()
        && service_name
            .iter()
            .zip(name.bytes())
            .all(|(&w, b)| u8::try_from(w).is_ok_and(|c| c.eq_ignore_ascii_case(&b)))
}

/// The last component of a registry path such as
/// `\Registry\Machine\System\CurrentControlSet\Services\rvblkxpd`.
pub fn service_name_of(registry_path: &[u16]) -> &[u16] {
    match registry_path.iter().rposition(|&w| w == u16::from(b'\\')) {
        Some(i) => &registry_path[i + 1..],
        None => registry_path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn w(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn parses_the_documented_syntax() {
        assert_eq!(parse_disks_option(b""), DisksOption::Unset);
        assert_eq!(parse_disks_option(b"disks=on"), DisksOption::On);
        assert_eq!(parse_disks_option(b"DISKS=Off"), DisksOption::Off);
        assert_eq!(parse_disks_option(b"foo=1; disks=on,bar"), DisksOption::On);
        assert_eq!(
            parse_disks_option(b"disks=on disks=off"),
            DisksOption::Off,
            "last one wins"
        );
        assert_eq!(
            parse_disks_option(b"disks=maybe"),
            DisksOption::Unset,
            "malformed values are ignored"
        );
        assert_eq!(
            parse_disks_option(b"disks=on\0disks=off"),
            DisksOption::On,
            "stops at NUL"
        );
        assert_eq!(parse_disks_option(b"=on;disks;disks="), DisksOption::Unset);
    }

    #[test]
    fn service_and_setup_decide_when_unset() {
        let path = w("\\Registry\\Machine\\System\\CurrentControlSet\\Services\\RvBlkXpd");
        assert_eq!(service_name_of(&path), w("RvBlkXpd").as_slice());
        assert!(expose_disks(
            DisksOption::Unset,
            service_name_of(&path),
            true
        ));
        assert!(
            !expose_disks(DisksOption::Unset, &w("rvblkxp"), true),
            "default service hides disks in setup"
        );
        assert!(
            expose_disks(DisksOption::Unset, &w("rvblkxp"), false),
            "and shows them afterwards"
        );
        assert!(
            !expose_disks(DisksOption::Off, &w("rvblkxpd"), false),
            "an explicit option wins"
        );
        assert!(expose_disks(DisksOption::On, &w("rvblkxp"), true));
        assert_eq!(service_name_of(&w("noslash")), w("noslash").as_slice());
    }
}
