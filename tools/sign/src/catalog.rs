//! Catalog (`.cat`) files: a PKCS#7 SignedData whose content is a Certificate Trust List.
//!
//! Layout written here (the SHA-256 "version 2" catalog as Inf2Cat writes for Windows 8 and
//! later, whose members Windows 10 looks up by their SHA-256 hash):
//!
//! ```text
//! ContentInfo(signedData) { SignedData { ..., content: szOID_CTL (1.3.6.1.4.1.311.10.1)
//!   CertificateTrustList ::= SEQUENCE {
//!     subjectUsage      SEQUENCE { szOID_CATALOG_LIST 1.3.6.1.4.1.311.12.1.1 }
//!     listIdentifier    OCTET STRING (16 bytes, derived from the members: deterministic)
//!     thisUpdate        UTCTime
//!     subjectAlgorithm  { szOID_CATALOG_LIST_MEMBER2 1.3.6.1.4.1.311.12.1.3, NULL }
//!     trustedSubjects   SEQUENCE OF SEQUENCE {
//!       subjectIdentifier OCTET STRING        -- the member's SHA-256 hash
//!       attributes        SET OF Attribute {
//!         CAT_MEMBERINFO2 1.3.6.1.4.1.311.12.2.3   SET { [2] "" }
//!         CAT_NAMEVALUE   1.3.6.1.4.1.311.12.2.1   { BMPString "File",   0x10010001, UTF-16LE name }
//!         CAT_NAMEVALUE   1.3.6.1.4.1.311.12.2.1   { BMPString "OSAttr", 0x10010001, UTF-16LE "2:6.1,..." }
//!         SPC_INDIRECT_DATA 1.3.6.1.4.1.311.2.1.4  SpcIndirectDataContent (PE image data or flat
//!                                                  file "CAB" data, DigestInfo sha256 hash)
//!     } } } }
//! ```
//!
//! Member hashes: for PE files (`.sys`) the Authenticode SHA-256 hash (see
//! [`crate::authenticode`]), so the catalog stays valid for the embedded-signed drivers; for other
//! files (`.inf`) the SHA-256 of the whole file. Members are sorted by identifier. The signed
//! attributes carry no signing time, `thisUpdate` is fixed ([`THIS_UPDATE`]), so the catalog is
//! byte-identical for identical inputs.
//!
//! Windows 7 only understands SHA-1 ("version 1") catalogs; rvblk's Windows 7 path relies on the
//! embedded signatures, not on the catalog.

use crate::asn1::{CatNameValue, CertificateTrustList, TrustedSubject};
use crate::authenticode::{
    attribute, der_error, pe_hash, signed_data, spc_indirect_data_flat, spc_indirect_data_pe,
    HashAlg, OID_SPC_INDIRECT_DATA,
};
use crate::{read, write_atomic, Error, Result, Signer};
use der::asn1::{Any, BmpString, ObjectIdentifier, OctetString, SetOfVec, UtcTime};
use der::{Tag, TagNumber};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// szOID_CTL.
pub const OID_CTL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.10.1");
/// szOID_CATALOG_LIST.
pub const OID_CATALOG_LIST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.1.1");
/// szOID_CATALOG_LIST_MEMBER2 (SHA-256 catalogs).
pub const OID_CATALOG_LIST_MEMBER2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.1.3");
/// CAT_NAMEVALUE_OBJID.
pub const OID_CAT_NAMEVALUE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.2.1");
/// CAT_MEMBERINFO2_OBJID.
pub const OID_CAT_MEMBERINFO2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.12.2.3");
/// Name/value flags: CRYPTCAT_ATTR_AUTHENTICATED | NAMEASCII | DATAASCII.
pub const NAMEVALUE_FLAGS: u32 = 0x1001_0001;
/// OSAttr written for every member: Windows 7, 8, 8.1 and 10/11.
pub const OS_ATTR: &str = "2:6.1,2:6.2,2:6.3,2:10.0";
/// `thisUpdate` of every catalog (2024-01-01T00:00:00Z): fixed for reproducible output.
pub const THIS_UPDATE: u64 = 1_704_067_200;

/// One catalog member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// File name (no directory), as the `File` attribute.
    pub name: String,
    /// Path relative to the package directory.
    pub relative: PathBuf,
    /// SHA-256 hash (Authenticode PE hash, or flat file hash).
    pub hash: Vec<u8>,
    /// Whether `hash` is an Authenticode PE hash.
    pub is_pe: bool,
}

impl Member {
    /// Upper-case hex of the hash (the member's tag as Windows tools print it).
    pub fn tag(&self) -> String {
        crate::hex_upper(&self.hash)
    }
}

/// Every `.sys` and `.inf` under `dir`, recursively, sorted (catalogs are skipped).
pub fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Io(dir.to_path_buf(), e))?;
    let mut paths: Vec<PathBuf> = entries
        .map(|e| {
            e.map(|e| e.path())
                .map_err(|e| Error::Io(dir.to_path_buf(), e))
        })
        .collect::<Result<_>>()?;
    paths.sort();
    for p in paths {
        if p.is_dir() {
            collect_files(&p, out)?;
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("sys") || e.eq_ignore_ascii_case("inf"))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// Hash one file for the catalog.
pub fn member_for(package_dir: &Path, path: &Path) -> Result<Member> {
    let data = read(path)?;
    let is_pe = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("sys"));
    let hash = if is_pe {
        pe_hash(&data, HashAlg::Sha256)
            .map_err(|e| Error::Pe(format!("{}: {e}", path.display())))?
    } else {
        Sha256::digest(&data).to_vec()
    };
    Ok(Member {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        relative: path.strip_prefix(package_dir).unwrap_or(path).to_path_buf(),
        hash,
        is_pe,
    })
}

/// The members of a package: every `.sys` and `.inf`, sorted by hash.
pub fn package_members(package_dir: &Path) -> Result<Vec<Member>> {
    let mut files = Vec::new();
    collect_files(package_dir, &mut files)?;
    let mut members = files
        .iter()
        .map(|f| member_for(package_dir, f))
        .collect::<Result<Vec<_>>>()?;
    members.sort_by(|a, b| a.hash.cmp(&b.hash));
    members.dedup_by(|a, b| a.hash == b.hash);
    Ok(members)
}

/// UTF-16LE bytes with a terminating NUL (Windows `WCHAR*`, as catalogs store values).
fn utf16le_nul(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn name_value(name: &str, value: &str) -> Result<x509_cert::attr::Attribute> {
    let nv = CatNameValue {
        tag: BmpString::from_utf8(name).map_err(der_error)?,
        flags: NAMEVALUE_FLAGS,
        value: OctetString::new(utf16le_nul(value)).map_err(der_error)?,
    };
    attribute(OID_CAT_NAMEVALUE, &nv)
}

/// The CTL (the catalog's signed content) for `members`.
pub fn ctl(members: &[Member]) -> Result<CertificateTrustList> {
    let mut subjects = Vec::new();
    let mut list_id = Sha256::new();
    for m in members {
        list_id.update(&m.hash);
        let spc = if m.is_pe {
            spc_indirect_data_pe(HashAlg::Sha256, &m.hash)?
        } else {
            spc_indirect_data_flat(HashAlg::Sha256, &m.hash)?
        };
        // CAT_MEMBERINFO2's value as Inf2Cat writes it: an empty `[2]` primitive.
        let member_info = Any::new(
            Tag::ContextSpecific {
                constructed: false,
                number: TagNumber::N2,
            },
            Vec::new(),
        )
        .map_err(der_error)?;
        let attributes = vec![
            attribute(OID_CAT_MEMBERINFO2, &member_info)?,
            name_value("File", &m.name)?,
            name_value("OSAttr", OS_ATTR)?,
            attribute(OID_SPC_INDIRECT_DATA, &spc)?,
        ];
        subjects.push(TrustedSubject {
            subject_identifier: OctetString::new(m.hash.clone()).map_err(der_error)?,
            attributes: SetOfVec::try_from(attributes).map_err(der_error)?,
        });
    }
    let list_id = list_id.finalize();
    Ok(CertificateTrustList {
        subject_usage: vec![OID_CATALOG_LIST],
        list_identifier: OctetString::new(&list_id[..16]).map_err(der_error)?,
        this_update: UtcTime::from_unix_duration(Duration::from_secs(THIS_UPDATE))
            .map_err(der_error)?,
        subject_algorithm: AlgorithmIdentifierOwned {
            oid: OID_CATALOG_LIST_MEMBER2,
            parameters: Some(Any::null()),
        },
        trusted_subjects: subjects,
    })
}

/// Build and sign a catalog over `members`.
pub fn build_catalog(members: &[Member], signer: &Signer) -> Result<Vec<u8>> {
    signed_data(OID_CTL, &ctl(members)?, signer, false)
}

/// The catalog file name the package's INF names with `CatalogFile=` in `[Version]`
/// (undecorated entry first, then a decorated `CatalogFile.NT...` one), or `rvblk.cat`. The
/// INF is `rvblk.inf` in the package directory, else the first `*.inf` there (read by
/// `rvblk-inf`: UTF-16LE with BOM, UTF-8 or ANSI).
pub fn catalog_name(package_dir: &Path) -> Result<String> {
    let mut inf = package_dir.join("rvblk.inf");
    if !inf.exists() {
        let mut infs: Vec<PathBuf> = std::fs::read_dir(package_dir)
            .map_err(|e| Error::Io(package_dir.to_path_buf(), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e.eq_ignore_ascii_case("inf"))
            })
            .collect();
        infs.sort();
        match infs.into_iter().next() {
            Some(p) => inf = p,
            None => return Ok("rvblk.cat".into()),
        }
    }
    let inf = rvblk_inf::Inf::from_bytes(&read(&inf)?);
    let usable = |v: String| (!v.is_empty() && !v.contains(['/', '\\'])).then_some(v);
    let entries = inf.section("Version").unwrap_or_default();
    let undecorated = entries
        .iter()
        .filter(|e| e.key.eq_ignore_ascii_case("CatalogFile"))
        .find_map(|e| usable(inf.resolve(&e.value)));
    let decorated = || {
        entries
            .iter()
            .filter(|e| e.key.to_ascii_lowercase().starts_with("catalogfile."))
            .find_map(|e| usable(inf.resolve(&e.value)))
    };
    Ok(undecorated
        .or_else(decorated)
        .unwrap_or_else(|| "rvblk.cat".into()))
}

/// Write and sign the catalog of `package_dir` (named by [`catalog_name`], placed in the package
/// directory) over every `.sys` and `.inf` of the package. Returns its path.
pub fn sign_catalog(package_dir: &Path, signer: &Signer) -> Result<PathBuf> {
    let name = catalog_name(package_dir)?;
    let members = package_members(package_dir)?;
    if members.is_empty() {
        return Err(Error::Other(format!(
            "{}: no .sys or .inf files to put in a catalog",
            package_dir.display()
        )));
    }
    let cat = build_catalog(&members, signer)?;
    let path = package_dir.join(name);
    write_atomic(&path, &cat)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_for(inf: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rvblk.inf"), inf).unwrap();
        catalog_name(dir.path()).unwrap()
    }

    #[test]
    fn catalog_name_comes_from_version() {
        assert_eq!(
            name_for(b"[Version]\r\nCatalogFile.NTamd64=b.cat\r\nCatalogFile = \"a.cat\" ; x\r\n"),
            "a.cat"
        );
        assert_eq!(
            name_for(b"[Version]\nCatalogFile.NTx86=%Cat%\n[Strings]\nCat=s.cat\n"),
            "s.cat"
        );
        assert_eq!(
            name_for(b"[Other]\nCatalogFile=o.cat\n"),
            "rvblk.cat",
            "only [Version]"
        );
        assert_eq!(
            name_for(b"[Version]\nCatalogFile=..\\up.cat\n"),
            "rvblk.cat",
            "no paths"
        );
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(
                "[Version]\r\nCatalogFile=u.cat\r\n"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        assert_eq!(name_for(&utf16), "u.cat");
    }
}
