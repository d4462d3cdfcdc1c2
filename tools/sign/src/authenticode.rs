//! Embedded Authenticode signatures for PE images, and the PKCS#7 SignedData builder shared with
//! catalogs.
//!
//! # The Authenticode PE hash
//! The image is hashed from offset 0 to the end of the file (or to the start of the certificate
//! table, when the image is signed), skipping the 4-byte `CheckSum` field and the 8-byte
//! certificate-table (security) data-directory entry. Before a signature is appended the image is
//! zero-padded to a multiple of 8 bytes; the padding lies before the certificate table and is
//! hashed. For images whose sections are contiguous and in file order (what linkers write) this
//! equals the section-by-section algorithm of the Authenticode specification.
//!
//! # The signature
//! `ContentInfo(signedData)` → `SignedData` v1 with one SHA-256 digest algorithm, the content
//! `SpcIndirectDataContent { SpcAttributeTypeAndOptionalValue(SPC_PE_IMAGE_DATA,
//! SpcPeImageData { flags '', file <<<Obsolete>>> }), DigestInfo(sha256, hash) }` (PKCS#7 v1.5
//! style: the content is the SEQUENCE itself, not an OCTET STRING), the signer's certificates,
//! and one `SignerInfo` v1 (issuer and serial, SHA-256, rsaEncryption) whose authenticated
//! attributes are contentType, messageDigest (SHA-256 of the content's *value* octets, without
//! the SEQUENCE tag and length, as Authenticode defines), SpcSpOpusInfo (empty) and
//! SpcStatementType (individual code signing). No signing time is added, so the output is
//! deterministic.
//!
//! The result goes into a `WIN_CERTIFICATE` (revision 0x0200, type PKCS_SIGNED_DATA 0x0002, length
//! rounded up to 8) appended to the image; the security directory points at it (a file offset)
//! and the PE checksum is recomputed.

use crate::asn1::{
    DigestInfo, SpcAttributeTypeAndOptionalValue, SpcIndirectDataContent, SpcLink, SpcPeImageData,
    SpcSpOpusInfo, SpcStatementType,
};
use crate::{Error, Result, Signer};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, BitString, ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode, SliceReader};
use rvblk_pe::{dir, Pe};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;

const fn oid(dotted: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(dotted)
}

/// `1.2.840.113549.1.7.2` signedData.
pub const OID_SIGNED_DATA: ObjectIdentifier = oid("1.2.840.113549.1.7.2");
/// `1.2.840.113549.1.9.3` contentType (signed attribute).
pub const OID_CONTENT_TYPE: ObjectIdentifier = oid("1.2.840.113549.1.9.3");
/// `1.2.840.113549.1.9.4` messageDigest (signed attribute).
pub const OID_MESSAGE_DIGEST: ObjectIdentifier = oid("1.2.840.113549.1.9.4");
/// `1.3.6.1.4.1.311.2.1.4` SPC_INDIRECT_DATA_OBJID.
pub const OID_SPC_INDIRECT_DATA: ObjectIdentifier = oid("1.3.6.1.4.1.311.2.1.4");
/// `1.3.6.1.4.1.311.2.1.15` SPC_PE_IMAGE_DATAOBJ.
pub const OID_SPC_PE_IMAGE_DATA: ObjectIdentifier = oid("1.3.6.1.4.1.311.2.1.15");
/// `1.3.6.1.4.1.311.2.1.25` SPC_CAB_DATA_OBJID (used for flat files in catalogs).
pub const OID_SPC_CAB_DATA: ObjectIdentifier = oid("1.3.6.1.4.1.311.2.1.25");
/// `1.3.6.1.4.1.311.2.1.12` SPC_SP_OPUS_INFO_OBJID.
pub const OID_SPC_SP_OPUS_INFO: ObjectIdentifier = oid("1.3.6.1.4.1.311.2.1.12");
/// `1.3.6.1.4.1.311.2.1.11` SPC_STATEMENT_TYPE_OBJID.
pub const OID_SPC_STATEMENT_TYPE: ObjectIdentifier = oid("1.3.6.1.4.1.311.2.1.11");
/// `1.3.6.1.4.1.311.2.1.21` SPC_INDIVIDUAL_SP_KEY_PURPOSE_OBJID.
pub const OID_SPC_INDIVIDUAL: ObjectIdentifier = oid("1.3.6.1.4.1.311.2.1.21");
/// `2.16.840.1.101.3.4.2.1` SHA-256.
pub const OID_SHA256: ObjectIdentifier = oid("2.16.840.1.101.3.4.2.1");
/// `1.3.14.3.2.26` SHA-1.
pub const OID_SHA1: ObjectIdentifier = oid("1.3.14.3.2.26");
/// `1.2.840.113549.1.1.1` rsaEncryption.
pub const OID_RSA: ObjectIdentifier = oid("1.2.840.113549.1.1.1");

/// `WIN_CERT_REVISION_2_0`.
pub const WIN_CERT_REVISION_2_0: u16 = 0x0200;
/// `WIN_CERT_TYPE_PKCS_SIGNED_DATA`.
pub const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;

/// A DER encoding error (of data this crate built itself).
pub(crate) fn der_error(e: der::Error) -> Error {
    Error::Crypto(format!("DER encoding: {e}"))
}

/// `value` as an ANY (its DER encoding).
pub(crate) fn any(value: &impl Encode) -> Result<Any> {
    Any::from_der(&value.to_der().map_err(der_error)?).map_err(der_error)
}

/// `AlgorithmIdentifier { oid, NULL }`, as Windows writes digest and RSA algorithms.
fn algorithm(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: Some(Any::null()),
    }
}

/// Digest algorithm of a PE hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-1 (legacy catalogs, Windows 7-era tools).
    Sha1,
    /// SHA-256.
    Sha256,
}

impl HashAlg {
    /// `AlgorithmIdentifier { oid, NULL }`.
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        algorithm(match self {
            HashAlg::Sha1 => OID_SHA1,
            HashAlg::Sha256 => OID_SHA256,
        })
    }

    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            HashAlg::Sha1 => {
                let mut h = sha1::Sha1::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
            HashAlg::Sha256 => {
                let mut h = Sha256::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
        }
    }
}

/// Offsets that the Authenticode hash skips.
struct Layout {
    checksum: usize,
    security_entry: usize,
    /// Start of the certificate table, or the file length when unsigned.
    end: usize,
    /// Existing certificate table (offset, size).
    cert_table: Option<(usize, usize)>,
}

fn layout(data: &[u8]) -> Result<Layout> {
    let pe = Pe::parse(data).map_err(|e| Error::Pe(e.to_string()))?;
    let security_entry = pe.directory_entry_offset(dir::SECURITY).ok_or_else(|| {
        Error::Pe("the optional header has no certificate-table directory entry".into())
    })?;
    let cert_table = pe.security_directory();
    let sections_end = pe
        .sections
        .iter()
        .map(|s| s.pointer_to_raw_data as usize + s.size_of_raw_data as usize)
        .max()
        .unwrap_or(0)
        .max(pe.size_of_headers as usize);
    if sections_end > data.len() {
        return Err(Error::Pe(format!(
            "truncated image: sections end at {sections_end:#x}, the file at {:#x}",
            data.len()
        )));
    }
    let end = match cert_table {
        Some((off, size)) => {
            if off < sections_end || off.checked_add(size) != Some(data.len()) {
                return Err(Error::Pe(format!(
                    "the certificate table ({off:#x}+{size:#x}) is not at the end of the file \
                     ({:#x}); refusing to re-sign",
                    data.len()
                )));
            }
            off
        }
        None => data.len(),
    };
    Ok(Layout {
        checksum: pe.checksum_offset,
        security_entry,
        end,
        cert_table,
    })
}

/// The Authenticode hash of a PE image (signed or not).
pub fn pe_hash(data: &[u8], alg: HashAlg) -> Result<Vec<u8>> {
    let l = layout(data)?;
    Ok(alg.digest(&[
        &data[..l.checksum],
        &data[l.checksum + 4..l.security_entry],
        &data[l.security_entry + 8..l.end],
    ]))
}

fn spc_indirect_data(
    value_type: ObjectIdentifier,
    value: &impl Encode,
    alg: HashAlg,
    hash: &[u8],
) -> Result<SpcIndirectDataContent> {
    Ok(SpcIndirectDataContent {
        data: SpcAttributeTypeAndOptionalValue {
            value_type,
            value: any(value)?,
        },
        message_digest: DigestInfo {
            digest_algorithm: alg.algorithm_identifier(),
            digest: OctetString::new(hash).map_err(der_error)?,
        },
    })
}

/// `SpcIndirectDataContent` for a PE image hash.
pub fn spc_indirect_data_pe(alg: HashAlg, hash: &[u8]) -> Result<SpcIndirectDataContent> {
    let pe_image_data = SpcPeImageData {
        flags: BitString::new(0, Vec::new()).map_err(der_error)?,
        file: Some(SpcLink::file("<<<Obsolete>>>").map_err(der_error)?),
    };
    spc_indirect_data(OID_SPC_PE_IMAGE_DATA, &pe_image_data, alg, hash)
}

/// `SpcIndirectDataContent` for a flat file (INF) hash, as catalogs carry it: the value is
/// an empty `file` link.
pub fn spc_indirect_data_flat(alg: HashAlg, hash: &[u8]) -> Result<SpcIndirectDataContent> {
    let link = SpcLink::file("").map_err(der_error)?;
    spc_indirect_data(OID_SPC_CAB_DATA, &link, alg, hash)
}

/// An attribute with one value.
pub(crate) fn attribute(oid: ObjectIdentifier, value: &impl Encode) -> Result<Attribute> {
    let value = any(value)?;
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).map_err(der_error)?,
    })
}

/// A PKCS#7 `ContentInfo(signedData)` over `content` of type `content_type`, signed by
/// `signer` with RSA/SHA-256, DER encoded. The content is carried PKCS#7 v1.5 style (the
/// structure itself, not wrapped in an OCTET STRING) and the messageDigest attribute is the
/// SHA-256 of its value octets (without tag and length), as Authenticode and catalogs define.
pub fn signed_data(
    content_type: ObjectIdentifier,
    content: &impl Encode,
    signer: &Signer,
    authenticode: bool,
) -> Result<Vec<u8>> {
    let content = any(content)?;
    let message_digest =
        OctetString::new(Sha256::digest(content.value()).to_vec()).map_err(der_error)?;
    let mut attrs = vec![
        attribute(OID_CONTENT_TYPE, &content_type)?,
        attribute(OID_MESSAGE_DIGEST, &message_digest)?,
        attribute(OID_SPC_SP_OPUS_INFO, &SpcSpOpusInfo::default())?,
    ];
    if authenticode {
        let individual: SpcStatementType = vec![OID_SPC_INDIVIDUAL];
        attrs.push(attribute(OID_SPC_STATEMENT_TYPE, &individual)?);
    }
    let signed_attrs = SetOfVec::try_from(attrs).map_err(der_error)?;
    // The signature covers the attributes encoded as a SET OF (tag 0x31), not as the
    // `[0] IMPLICIT` field they are stored in (RFC 5652 §5.4).
    let signature = signer.sign_sha256(&signed_attrs.to_der().map_err(der_error)?)?;
    let certs = signer.certificates()?;
    let leaf = &certs[0].tbs_certificate;
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: leaf.issuer.clone(),
            serial_number: leaf.serial_number.clone(),
        }),
        digest_alg: HashAlg::Sha256.algorithm_identifier(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: algorithm(OID_RSA),
        signature: OctetString::new(signature).map_err(der_error)?,
        unsigned_attrs: None,
    };
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![HashAlg::Sha256.algorithm_identifier()])
            .map_err(der_error)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: content_type,
            econtent: Some(content),
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(
                certs
                    .into_iter()
                    .map(CertificateChoices::Certificate)
                    .collect::<Vec<_>>(),
            )
            .map_err(der_error)?,
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info]).map_err(der_error)?),
    };
    ContentInfo {
        content_type: OID_SIGNED_DATA,
        content: any(&sd)?,
    }
    .to_der()
    .map_err(der_error)
}

/// Remove an existing embedded signature: truncate at the certificate table and clear the
/// security directory entry. Returns the image unchanged if unsigned.
pub fn strip_signature(data: &[u8]) -> Result<Vec<u8>> {
    let l = layout(data)?;
    let mut out = data[..l.end].to_vec();
    out[l.security_entry..l.security_entry + 8].fill(0);
    if l.cert_table.is_some() {
        rvblk_pe::update_checksum(&mut out).map_err(|e| Error::Pe(e.to_string()))?;
    }
    Ok(out)
}

/// Sign a PE image: returns a copy with an embedded Authenticode SHA-256 signature (replacing any
/// existing one) and a recomputed checksum.
pub fn sign_pe(data: &[u8], signer: &Signer) -> Result<Vec<u8>> {
    let l = layout(data)?;
    let mut out = data[..l.end].to_vec();
    out[l.security_entry..l.security_entry + 8].fill(0);
    out.resize(out.len().div_ceil(8) * 8, 0);
    let hash = pe_hash(&out, HashAlg::Sha256)?;
    let p7 = signed_data(
        OID_SPC_INDIRECT_DATA,
        &spc_indirect_data_pe(HashAlg::Sha256, &hash)?,
        signer,
        true,
    )?;
    let total = (8 + p7.len()).div_ceil(8) * 8;
    let offset = out.len();
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&WIN_CERT_REVISION_2_0.to_le_bytes());
    out.extend_from_slice(&WIN_CERT_TYPE_PKCS_SIGNED_DATA.to_le_bytes());
    out.extend_from_slice(&p7);
    out.resize(offset + total, 0);
    let se = l.security_entry;
    out[se..se + 4].copy_from_slice(&(offset as u32).to_le_bytes());
    out[se + 4..se + 8].copy_from_slice(&(total as u32).to_le_bytes());
    rvblk_pe::update_checksum(&mut out).map_err(|e| Error::Pe(e.to_string()))?;
    Ok(out)
}

/// The PKCS#7 blob of the first `WIN_CERTIFICATE` of a signed image.
pub fn embedded_pkcs7(data: &[u8]) -> Result<Option<Vec<u8>>> {
    let l = layout(data)?;
    let Some((off, size)) = l.cert_table else {
        return Ok(None);
    };
    if size < 8 {
        return Err(Error::Pe("certificate table too small".into()));
    }
    let len = u32::from_le_bytes(data[off..off + 4].try_into().expect("4 bytes")) as usize;
    let body = &data[off + 8..off + len.min(size)];
    // The blob is padded to 8 bytes: its own length is what one ContentInfo decodes from.
    let mut reader =
        SliceReader::new(body).map_err(|e| Error::Pe(format!("bad PKCS#7 blob: {e}")))?;
    ContentInfo::decode(&mut reader).map_err(|e| Error::Pe(format!("bad PKCS#7 blob: {e}")))?;
    let end = usize::try_from(der::Reader::position(&reader))
        .map_err(|e| Error::Pe(format!("bad PKCS#7 blob: {e}")))?;
    Ok(Some(body[..end].to_vec()))
}
