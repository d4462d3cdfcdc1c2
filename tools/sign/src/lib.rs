//! Authenticode signing of rvblk's drivers and catalogs, in pure Rust.
//!
//! * [`Signer`]: an RSA key and its code-signing certificate: [`Signer::generate_test`] makes a
//!   self-signed test certificate (its own root), [`Signer::from_pfx`] loads a PKCS#12 file.
//! * [`sign_pe`] / [`sign_file`]: embed an Authenticode signature (SHA-256) in a PE image, replacing
//!   any existing one, and recompute the PE checksum.
//! * [`catalog::sign_catalog`]: write and sign the package's `.cat`.
//! * [`sign_package`]: all `.sys` files of a package directory, then its catalog.
//!
//! The CMS structures come from the `cms` crate, the Microsoft ones inside them are `der` types
//! ([`asn1`]), certificates are `x509-cert`, PEM is `der`'s.
//!
//! Signatures are deterministic: no signing-time attribute is added and RSA PKCS#1 v1.5 is
//! deterministic, so signing the same input twice gives byte-identical output.

use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

pub mod asn1;
pub mod authenticode;
pub mod catalog;
pub mod cli;

pub use authenticode::{pe_hash, sign_pe, HashAlg};

/// Errors of this crate. `Display` is one line, suitable for the CLI.
#[derive(Debug)]
pub enum Error {
    /// Reading or writing a file.
    Io(PathBuf, std::io::Error),
    /// The input is not a PE image the signer can handle.
    Pe(String),
    /// Certificate, key or PKCS#12 problem.
    Crypto(String),
    /// Anything else (bad arguments, package layout).
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Error::Pe(m) | Error::Crypto(m) | Error::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

fn crypto<E: fmt::Display>(what: &str) -> impl FnOnce(E) -> Error + '_ {
    move |e| Error::Crypto(format!("{what}: {e}"))
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io(path.to_path_buf(), e))
}

/// Write `data` to `path` atomically (`rvblk-outfile`): on an error `path` is untouched.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    rvblk_outfile::write(path, data).map_err(|e| Error::Io(e.path, e.source))
}

/// The default subject of test certificates.
pub const DEFAULT_SUBJECT: &str = "CN=rvblk test signing (not trusted)";

/// A signing key with its certificate chain (leaf first).
#[derive(Clone)]
pub struct Signer {
    key: RsaPrivateKey,
    cert_der: Vec<u8>,
    extra_certs: Vec<Vec<u8>>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("cert_der_len", &self.cert_der.len())
            .field("extra_certs", &self.extra_certs.len())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Generate an RSA-3072 key and a self-signed SHA-256 code-signing certificate for `subject`
    /// (an RFC 4514 name such as `CN=rvblk test`), valid from one hour ago for 10 years.
    /// The certificate has basicConstraints CA:TRUE (so it can be imported as its own test root),
    /// keyUsage digitalSignature+keyCertSign, EKU codeSigning and a subject key identifier.
    pub fn generate_test(subject: &str) -> Result<Signer> {
        Self::generate(subject, 3650, 3072)
    }

    /// Like [`Signer::generate_test`] with a validity of `days` and an RSA key of `bits` bits.
    pub fn generate(subject: &str, days: u32, bits: usize) -> Result<Signer> {
        use std::str::FromStr;
        use std::time::{Duration, SystemTime};
        use x509_cert::builder::{Builder, CertificateBuilder, Profile};
        use x509_cert::ext::pkix::{
            BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
        };
        use x509_cert::name::Name;
        use x509_cert::serial_number::SerialNumber;
        use x509_cert::spki::SubjectPublicKeyInfoOwned;
        use x509_cert::time::{Time, Validity};

        let mut rng = rand::thread_rng();
        let key = RsaPrivateKey::new(&mut rng, bits).map_err(crypto("RSA key generation"))?;
        let name = Name::from_str(&normalize_dn(subject))
            .map_err(|e| Error::Other(format!("bad subject {subject:?}: {e}")))?;
        let pub_der = key
            .to_public_key()
            .to_public_key_der()
            .map_err(crypto("public key"))?;
        let spki = SubjectPublicKeyInfoOwned::try_from(pub_der.as_bytes())
            .map_err(crypto("public key"))?;
        let now = SystemTime::now();
        let not_before = now - Duration::from_secs(3600);
        let not_after = now + Duration::from_secs(u64::from(days) * 86400);
        let validity = Validity {
            not_before: Time::try_from(not_before).map_err(crypto("validity"))?,
            not_after: Time::try_from(not_after).map_err(crypto("validity"))?,
        };
        let mut serial = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rng, &mut serial);
        serial[0] &= 0x7f;
        serial[0] |= 0x01;
        let serial = SerialNumber::new(&serial).map_err(crypto("serial"))?;
        let signing_key = SigningKey::<Sha256>::new(key.clone());
        let mut builder = CertificateBuilder::new(
            Profile::Manual { issuer: None },
            serial,
            validity,
            name,
            spki.clone(),
            &signing_key,
        )
        .map_err(crypto("certificate"))?;
        let ski = sha1::Sha1::digest(spki.subject_public_key.raw_bytes());
        builder
            .add_extension(&BasicConstraints {
                ca: true,
                path_len_constraint: None,
            })
            .and_then(|_| {
                builder.add_extension(&KeyUsage(
                    KeyUsages::DigitalSignature | KeyUsages::KeyCertSign,
                ))
            })
            .and_then(|_| builder.add_extension(&ExtendedKeyUsage(vec![const_oid_code_signing()])))
            .and_then(|_| {
                builder.add_extension(&SubjectKeyIdentifier(
                    der::asn1::OctetString::new(ski.to_vec()).expect("20 bytes"),
                ))
            })
            .map_err(crypto("certificate extension"))?;
        let cert = builder
            .build::<rsa::pkcs1v15::Signature>()
            .map_err(crypto("certificate signing"))?;
        let cert_der = der::Encode::to_der(&cert).map_err(crypto("certificate encoding"))?;
        Ok(Signer {
            key,
            cert_der,
            extra_certs: Vec::new(),
        })
    }

    /// Load the first private key and its certificate chain from a PKCS#12 (PFX) file.
    pub fn from_pfx(path: &Path, password: &str) -> Result<Signer> {
        let data = read(path)?;
        Self::from_pfx_bytes(&data, password)
            .map_err(|e| Error::Crypto(format!("{}: {e}", path.display())))
    }

    /// Load from PKCS#12 bytes.
    pub fn from_pfx_bytes(data: &[u8], password: &str) -> Result<Signer> {
        let ks = p12_keystore::KeyStore::from_pkcs12(data, password)
            .map_err(crypto("cannot read the PFX (wrong password?)"))?;
        let (_, chain) = ks
            .private_key_chain()
            .ok_or_else(|| Error::Crypto("the PFX holds no private key".into()))?;
        let key = RsaPrivateKey::from_pkcs8_der(chain.key())
            .map_err(crypto("the PFX key is not an RSA key"))?;
        let mut certs = chain.chain().iter().map(|c| c.as_der().to_vec());
        let cert_der = certs
            .next()
            .ok_or_else(|| Error::Crypto("the PFX holds no certificate".into()))?;
        Ok(Signer {
            key,
            cert_der,
            extra_certs: certs.collect(),
        })
    }

    /// Serialize as PKCS#12: key and certificate, encrypted with `password` using
    /// pbeWithSHAAnd3-KeyTripleDES-CBC and an HMAC-SHA1 MAC (readable by Windows 7 and later and
    /// by OpenSSL 3 without the legacy provider). An empty password is allowed.
    pub fn to_pfx(&self, password: &str) -> Result<Vec<u8>> {
        use p12_keystore::{
            Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm,
            PrivateKeyChain,
        };
        let key = self.key.to_pkcs8_der().map_err(crypto("key encoding"))?;
        let mut chain = vec![Certificate::from_der(&self.cert_der).map_err(crypto("certificate"))?];
        for c in &self.extra_certs {
            chain.push(Certificate::from_der(c).map_err(crypto("certificate"))?);
        }
        let local_key_id = sha1::Sha1::digest(&self.cert_der);
        let mut ks = KeyStore::new();
        ks.add_entry(
            "rvblk-test",
            KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
                key.as_bytes(),
                local_key_id,
                chain,
            )),
        );
        ks.writer(password)
            .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .mac_algorithm(MacAlgorithm::HmacSha1)
            .write()
            .map_err(crypto("PFX encoding"))
    }

    /// Write the PFX to `path` (see [`Signer::to_pfx`]).
    pub fn write_pfx(&self, path: &Path, password: &str) -> Result<()> {
        write_atomic(path, &self.to_pfx(password)?)
    }

    /// Write the certificate, DER encoded (a `.cer` Windows imports).
    pub fn write_cert_der(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.cert_der)
    }

    /// The certificate, DER encoded.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The certificate as PEM (`-----BEGIN CERTIFICATE-----`), e.g. for `osslsigncode -CAfile`.
    pub fn cert_pem(&self) -> String {
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &self.cert_der)
            .expect("a certificate's DER fits in PEM")
    }

    /// SHA-1 thumbprint of the certificate (what `certutil` and signtool show), upper-case hex.
    pub fn thumbprint(&self) -> String {
        hex_upper(&sha1::Sha1::digest(&self.cert_der))
    }

    /// Certificates to embed in a signature: the leaf, then the rest of the chain.
    pub(crate) fn certificates(&self) -> Result<Vec<x509_cert::Certificate>> {
        use der::Decode;
        std::iter::once(&self.cert_der)
            .chain(&self.extra_certs)
            .map(|c| x509_cert::Certificate::from_der(c).map_err(crypto("certificate")))
            .collect()
    }

    /// RSA PKCS#1 v1.5 signature with SHA-256 over `data`.
    pub(crate) fn sign_sha256(&self, data: &[u8]) -> Result<Vec<u8>> {
        use signature::{SignatureEncoding, Signer as _};
        let sk = SigningKey::<Sha256>::new(self.key.clone());
        let sig: rsa::pkcs1v15::Signature = sk.try_sign(data).map_err(crypto("RSA signing"))?;
        Ok(sig.to_vec())
    }
}

/// Trim blanks around the RDNs of an RFC 4514 name ("CN=a, O=b" → "CN=a,O=b"); escaped commas
/// stay.
fn normalize_dn(dn: &str) -> String {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in dn.chars() {
        if escaped {
            parts.last_mut().expect("non-empty").push(c);
            escaped = false;
        } else if c == '\\' {
            parts.last_mut().expect("non-empty").push(c);
            escaped = true;
        } else if c == ',' || c == '+' {
            let last = parts.last_mut().expect("non-empty");
            *last = last.trim().to_string();
            last.push(c);
            parts.push(String::new());
        } else {
            parts.last_mut().expect("non-empty").push(c);
        }
    }
    parts
        .iter()
        .map(|p| p.trim_start())
        .collect::<String>()
        .trim()
        .to_string()
}

fn const_oid_code_signing() -> der::asn1::ObjectIdentifier {
    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3")
}

/// Upper-case hex.
pub fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Sign one PE file in place (atomically): embedded Authenticode SHA-256, checksum updated.
pub fn sign_file(path: &Path, signer: &Signer) -> Result<()> {
    let data = read(path)?;
    let signed = sign_pe(&data, signer).map_err(|e| match e {
        Error::Pe(m) => Error::Pe(format!("{}: {m}", path.display())),
        other => other,
    })?;
    write_atomic(path, &signed)
}

/// Sign every `.sys` under `package_dir` (embedded signatures), then write and sign the catalog
/// named by the package INF's `CatalogFile=` (see [`catalog::sign_catalog`]). Returns the path of
/// the catalog.
pub fn sign_package(package_dir: &Path, signer: &Signer) -> Result<PathBuf> {
    let mut files = Vec::new();
    catalog::collect_files(package_dir, &mut files)?;
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e.eq_ignore_ascii_case("sys")))
    {
        sign_file(f, signer)?;
    }
    catalog::sign_catalog(package_dir, signer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_normalization() {
        assert_eq!(normalize_dn(" CN=a b , O=c"), "CN=a b,O=c");
        assert_eq!(normalize_dn("CN=a\\, b,O=c"), "CN=a\\, b,O=c");
    }
}
