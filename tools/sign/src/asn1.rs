//! The Microsoft ASN.1 structures of Authenticode and catalogs, as `der` types. CMS itself
//! (`ContentInfo`, `SignedData`, `SignerInfo`) comes from the `cms` crate; these are the
//! contents Microsoft puts inside it, which no RustCrypto crate models. Field names follow the
//! Authenticode specification ("Windows Authenticode Portable Executable Signature Format").

use der::asn1::{Any, BitString, BmpString, ObjectIdentifier, OctetString, SetOfVec, UtcTime};
use der::{Choice, Sequence, ValueOrd};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;

/// `SpcString ::= CHOICE { unicode [0] IMPLICIT BMPSTRING, ascii [1] IMPLICIT IA5STRING }`
/// (only the form Windows writes).
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub enum SpcString {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Unicode(BmpString),
}

/// `SpcLink ::= CHOICE { url [0] IMPLICIT IA5STRING, moniker [1] IMPLICIT
/// SpcSerializedObject, file [2] EXPLICIT SpcString }` (only `file` is used).
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub enum SpcLink {
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    File(SpcString),
}

impl SpcLink {
    /// `file` with a Unicode string.
    pub fn file(s: &str) -> der::Result<SpcLink> {
        Ok(SpcLink::File(SpcString::Unicode(BmpString::from_utf8(s)?)))
    }
}

/// `SpcPeImageData ::= SEQUENCE { flags SpcPeImageFlags DEFAULT { includeResources },
/// file [0] EXPLICIT SpcLink OPTIONAL }`. Signtool writes empty flags and the file link
/// `<<<Obsolete>>>`; so does rvblk.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SpcPeImageData {
    pub flags: BitString,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub file: Option<SpcLink>,
}

/// `SpcAttributeTypeAndOptionalValue ::= SEQUENCE { type ObjectID, value [0] EXPLICIT ANY
/// OPTIONAL }` — in practice the value follows the type without a tag.
#[derive(Clone, Debug, Eq, PartialEq, Sequence, ValueOrd)]
pub struct SpcAttributeTypeAndOptionalValue {
    pub value_type: ObjectIdentifier,
    pub value: Any,
}

/// `DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTETSTRING }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence, ValueOrd)]
pub struct DigestInfo {
    pub digest_algorithm: AlgorithmIdentifierOwned,
    pub digest: OctetString,
}

/// `SpcIndirectDataContent ::= SEQUENCE { data SpcAttributeTypeAndOptionalValue,
/// messageDigest DigestInfo }`: what an Authenticode signature (and each catalog member)
/// says about the signed file.
#[derive(Clone, Debug, Eq, PartialEq, Sequence, ValueOrd)]
pub struct SpcIndirectDataContent {
    pub data: SpcAttributeTypeAndOptionalValue,
    pub message_digest: DigestInfo,
}

/// `SpcStatementType ::= SEQUENCE OF OBJECT IDENTIFIER`.
pub type SpcStatementType = Vec<ObjectIdentifier>;

/// `SpcSpOpusInfo ::= SEQUENCE { programName [0] EXPLICIT SpcString OPTIONAL, moreInfo [1]
/// EXPLICIT SpcLink OPTIONAL }`.
#[derive(Clone, Debug, Default, Eq, PartialEq, Sequence)]
pub struct SpcSpOpusInfo {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub program_name: Option<SpcString>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub more_info: Option<SpcLink>,
}

/// A catalog member's name/value attribute (`CAT_NAMEVALUE`): `SEQUENCE { tag BMPString,
/// flags INTEGER, value OCTET STRING (UTF-16LE, NUL-terminated) }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CatNameValue {
    pub tag: BmpString,
    pub flags: u32,
    pub value: OctetString,
}

/// A catalog member: `SEQUENCE { subjectIdentifier OCTET STRING, attributes SET OF
/// Attribute }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TrustedSubject {
    pub subject_identifier: OctetString,
    pub attributes: SetOfVec<Attribute>,
}

/// The catalog's signed content, a Certificate Trust List (`szOID_CTL`):
/// `SEQUENCE { subjectUsage SEQUENCE OF OID, listIdentifier OCTET STRING, thisUpdate
/// UTCTime, subjectAlgorithm AlgorithmIdentifier, trustedSubjects SEQUENCE OF
/// TrustedSubject }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertificateTrustList {
    pub subject_usage: Vec<ObjectIdentifier>,
    pub list_identifier: OctetString,
    pub this_update: UtcTime,
    pub subject_algorithm: AlgorithmIdentifierOwned,
    pub trusted_subjects: Vec<TrustedSubject>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    #[test]
    fn spc_pe_image_data_is_what_signtool_writes() {
        let d = SpcPeImageData {
            flags: BitString::new(0, Vec::new()).unwrap(),
            file: Some(SpcLink::file("<<<Obsolete>>>").unwrap()),
        }
        .to_der()
        .unwrap();
        // SEQUENCE { BIT STRING '', [0] { [2] { [0] "<<<Obsolete>>>" (BMPString) } } }
        let mut want = vec![
            0x30, 0x25, 0x03, 0x01, 0x00, 0xa0, 0x20, 0xa2, 0x1e, 0x80, 0x1c,
        ];
        want.extend("<<<Obsolete>>>".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(d, want);
    }

    #[test]
    fn name_value_and_empty_opus_info() {
        let nv = CatNameValue {
            tag: BmpString::from_utf8("File").unwrap(),
            flags: 0x1001_0001,
            value: OctetString::new(vec![b'a', 0, 0, 0]).unwrap(),
        }
        .to_der()
        .unwrap();
        assert_eq!(
            nv,
            [
                0x30, 0x16, 0x1e, 0x08, 0, b'F', 0, b'i', 0, b'l', 0, b'e', 0x02, 0x04, 0x10, 0x01,
                0x00, 0x01, 0x04, 0x04, b'a', 0, 0, 0
            ]
        );
        assert_eq!(SpcSpOpusInfo::default().to_der().unwrap(), [0x30, 0x00]);
    }
}
