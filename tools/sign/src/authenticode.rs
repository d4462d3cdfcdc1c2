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

use crate::der::{content_of, ctx, ctx_prim, null, octets, oid, seq, set_of, tlv, uint};
use crate::{Error, Result, Signer};
use rvblk_pe::{dir, Pe};
use sha2::{Digest, Sha256};

/// `1.2.840.113549.1.7.2` signedData.
pub const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
/// `1.3.6.1.4.1.311.2.1.4` SPC_INDIRECT_DATA_OBJID.
pub const OID_SPC_INDIRECT_DATA: &str = "1.3.6.1.4.1.311.2.1.4";
/// `1.3.6.1.4.1.311.2.1.15` SPC_PE_IMAGE_DATAOBJ.
pub const OID_SPC_PE_IMAGE_DATA: &str = "1.3.6.1.4.1.311.2.1.15";
/// `1.3.6.1.4.1.311.2.1.25` SPC_CAB_DATA_OBJID (used for flat files in catalogs).
pub const OID_SPC_CAB_DATA: &str = "1.3.6.1.4.1.311.2.1.25";
/// `1.3.6.1.4.1.311.2.1.12` SPC_SP_OPUS_INFO_OBJID.
pub const OID_SPC_SP_OPUS_INFO: &str = "1.3.6.1.4.1.311.2.1.12";
/// `1.3.6.1.4.1.311.2.1.11` SPC_STATEMENT_TYPE_OBJID.
pub const OID_SPC_STATEMENT_TYPE: &str = "1.3.6.1.4.1.311.2.1.11";
/// `1.3.6.1.4.1.311.2.1.21` SPC_INDIVIDUAL_SP_KEY_PURPOSE_OBJID.
pub const OID_SPC_INDIVIDUAL: &str = "1.3.6.1.4.1.311.2.1.21";
/// `2.16.840.1.101.3.4.2.1` SHA-256.
pub const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
/// `1.3.14.3.2.26` SHA-1.
pub const OID_SHA1: &str = "1.3.14.3.2.26";
/// `1.2.840.113549.1.1.1` rsaEncryption.
pub const OID_RSA: &str = "1.2.840.113549.1.1.1";

/// `WIN_CERT_REVISION_2_0`.
pub const WIN_CERT_REVISION_2_0: u16 = 0x0200;
/// `WIN_CERT_TYPE_PKCS_SIGNED_DATA`.
pub const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;

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
    pub fn algorithm_identifier(self) -> Vec<u8> {
        let o = match self {
            HashAlg::Sha1 => OID_SHA1,
            HashAlg::Sha256 => OID_SHA256,
        };
        seq(&[&oid(o), &null()])
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

/// `SpcIndirectDataContent` for a PE image hash.
pub fn spc_indirect_data_pe(alg: HashAlg, hash: &[u8]) -> Vec<u8> {
    let obsolete: Vec<u8> = "<<<Obsolete>>>"
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    let pe_image_data = seq(&[
        &tlv(0x03, &[0x00]),
        &ctx(0, &ctx(2, &ctx_prim(0, &obsolete))),
    ]);
    let value = seq(&[&oid(OID_SPC_PE_IMAGE_DATA), &pe_image_data]);
    let digest_info = seq(&[&alg.algorithm_identifier(), &octets(hash)]);
    seq(&[&value, &digest_info])
}

/// `SpcIndirectDataContent` for a flat file (INF) hash, as catalogs carry it.
pub fn spc_indirect_data_flat(alg: HashAlg, hash: &[u8]) -> Vec<u8> {
    let value = seq(&[&oid(OID_SPC_CAB_DATA), &ctx(2, &ctx_prim(0, &[]))]);
    let digest_info = seq(&[&alg.algorithm_identifier(), &octets(hash)]);
    seq(&[&value, &digest_info])
}

fn attribute(type_oid: &str, value: &[u8]) -> Vec<u8> {
    seq(&[&oid(type_oid), &set_of(&[value])])
}

/// A PKCS#7 `ContentInfo(signedData)` over `content` (a complete DER TLV) of type
/// `content_type`, signed by `signer` with RSA/SHA-256. The messageDigest attribute is the
/// SHA-256 of the content's value octets (Authenticode/catalog convention).
pub fn signed_data(
    content_type: &str,
    content: &[u8],
    signer: &Signer,
    authenticode: bool,
) -> Result<Vec<u8>> {
    let sha256 = HashAlg::Sha256.algorithm_identifier();
    let message_digest = Sha256::digest(content_of(content));
    let mut attrs = vec![
        attribute("1.2.840.113549.1.9.3", &oid(content_type)),
        attribute("1.2.840.113549.1.9.4", &octets(&message_digest)),
        attribute(OID_SPC_SP_OPUS_INFO, &seq(&[])),
    ];
    if authenticode {
        attrs.push(attribute(
            OID_SPC_STATEMENT_TYPE,
            &seq(&[&oid(OID_SPC_INDIVIDUAL)]),
        ));
    }
    let attr_refs: Vec<&[u8]> = attrs.iter().map(|a| a.as_slice()).collect();
    let signed_attrs = set_of(&attr_refs);
    let signature = signer.sign_sha256(&signed_attrs)?;
    let (issuer, serial) = signer.issuer_and_serial()?;
    let signer_info = seq(&[
        &uint(1),
        &seq(&[&issuer, &serial]),
        &sha256,
        &ctx(0, crate::der::content_of(&signed_attrs)),
        &seq(&[&oid(OID_RSA), &null()]),
        &octets(&signature),
    ]);
    let certs: Vec<u8> = signer
        .certificates()
        .flat_map(|c| c.iter().copied())
        .collect();
    let sd = seq(&[
        &uint(1),
        &set_of(&[&sha256]),
        &seq(&[&oid(content_type), &ctx(0, content)]),
        &ctx(0, &certs),
        &set_of(&[&signer_info]),
    ]);
    Ok(seq(&[&oid(OID_SIGNED_DATA), &ctx(0, &sd)]))
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
        &spc_indirect_data_pe(HashAlg::Sha256, &hash),
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
    let (_, hdr, content) =
        crate::der::read_tlv(body).ok_or_else(|| Error::Pe("bad PKCS#7 blob".into()))?;
    Ok(Some(body[..hdr + content.len()].to_vec()))
}
