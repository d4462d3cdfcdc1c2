//! Command-line entry points, called by the `rvblk` binary with the arguments after the command word.

use crate::{catalog, sign_file, sign_package, Signer, DEFAULT_SUBJECT};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `rvblk sign`: test certificates, embedded Authenticode signatures and catalogs (pure Rust).
#[derive(Debug, Parser)]
#[command(
    name = "rvblk sign",
    about = "Test certificates, embedded Authenticode signatures and catalogs (pure Rust)",
    after_help = "\
Files are replaced atomically (written to a temporary file, then renamed): on an error the
inputs are left untouched.

On Windows, trust the test certificate and enable test signing (Secure Boot off):
    certutil -addstore Root rvblk-test.cer
    certutil -addstore TrustedPublisher rvblk-test.cer
    bcdedit /set testsigning on"
)]
pub struct SignCli {
    #[command(subcommand)]
    pub command: Command,
}

/// The `rvblk sign` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a self-signed code-signing test certificate: DIR/rvblk-test.pfx (key and
    /// certificate) and DIR/rvblk-test.cer (certificate, DER).
    ///
    /// SHA-256, EKU codeSigning, CA:TRUE so that Windows can trust it as its own root.
    Cert {
        /// Directory to write rvblk-test.pfx and rvblk-test.cer into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Subject name (RFC 4514).
        #[arg(long, default_value = DEFAULT_SUBJECT)]
        subject: String,
        /// Validity in days, starting one hour ago.
        #[arg(long, default_value_t = 3650)]
        days: u32,
        /// RSA key size.
        #[arg(long, default_value_t = 3072,
              value_parser = PossibleValuesParser::new(["2048", "3072", "4096"])
                  .map(|s| s.parse::<usize>().expect("listed values are numbers")))]
        bits: usize,
        /// Password that protects the PFX (3DES, HMAC-SHA1 MAC). Empty means no protection,
        /// fine only for a throw-away test key.
        #[arg(long, default_value = "")]
        password: String,
    },
    /// Embed a SHA-256 Authenticode signature in each PE file (.sys), replacing any existing
    /// signature, and recompute the PE checksum. Signing is deterministic.
    File {
        #[command(flatten)]
        key: KeyArgs,
        /// The PE files to sign in place.
        #[arg(value_name = "FILE.sys", required = true)]
        files: Vec<PathBuf>,
    },
    /// Write and sign the catalog named by CatalogFile= in the package's rvblk.inf (default
    /// rvblk.cat), listing every .sys and .inf of the package (SHA-256).
    Catalog {
        #[command(flatten)]
        key: KeyArgs,
        /// The driver package directory.
        #[arg(value_name = "PACKAGE_DIR")]
        dir: PathBuf,
    },
    /// `file` on every .sys of the package, then `catalog`.
    Package {
        #[command(flatten)]
        key: KeyArgs,
        /// The driver package directory.
        #[arg(value_name = "PACKAGE_DIR")]
        dir: PathBuf,
    },
}

/// The signing key and certificate.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// PKCS#12 file with the key and certificate chain (e.g. from `rvblk sign cert`).
    #[arg(long, value_name = "FILE.pfx")]
    pfx: PathBuf,
    /// The PFX's password.
    #[arg(long, default_value = "")]
    password: String,
}

impl KeyArgs {
    fn signer(&self) -> Result<Signer, String> {
        Signer::from_pfx(&self.pfx, &self.password).map_err(|e| e.to_string())
    }
}

/// `rvblk sign ...`.
pub fn sign(args: Vec<OsString>) -> ExitCode {
    let argv = std::iter::once(OsString::from("rvblk sign")).chain(args);
    match SignCli::try_parse_from(argv) {
        Ok(cli) => run(cli.command),
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

/// Runs one parsed subcommand; errors are printed as one line.
pub fn run(command: Command) -> ExitCode {
    match execute(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvblk sign: {e}");
            ExitCode::FAILURE
        }
    }
}

fn package_dir(dir: &Path) -> Result<&Path, String> {
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(format!("{}: not a directory", dir.display()))
    }
}

fn execute(command: Command) -> Result<(), String> {
    match command {
        Command::Cert {
            out,
            subject,
            days,
            bits,
            password,
        } => {
            std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            let signer = Signer::generate(&subject, days, bits).map_err(|e| e.to_string())?;
            let pfx = out.join("rvblk-test.pfx");
            let cer = out.join("rvblk-test.cer");
            signer
                .write_pfx(&pfx, &password)
                .and_then(|_| signer.write_cert_der(&cer))
                .map_err(|e| e.to_string())?;
            println!("wrote {} and {}", pfx.display(), cer.display());
            println!("certificate SHA-1 thumbprint: {}", signer.thumbprint());
        }
        Command::File { key, files } => {
            let signer = key.signer().map_err(|e| format!("file: {e}"))?;
            for f in &files {
                sign_file(f, &signer).map_err(|e| e.to_string())?;
                println!("signed {}", f.display());
            }
        }
        Command::Catalog { key, dir } => {
            let dir = package_dir(&dir).map_err(|e| format!("catalog: {e}"))?;
            let signer = key.signer().map_err(|e| format!("catalog: {e}"))?;
            let p = catalog::sign_catalog(dir, &signer).map_err(|e| e.to_string())?;
            println!("wrote {}", p.display());
        }
        Command::Package { key, dir } => {
            let dir = package_dir(&dir).map_err(|e| format!("package: {e}"))?;
            let signer = key.signer().map_err(|e| format!("package: {e}"))?;
            let p = sign_package(dir, &signer).map_err(|e| e.to_string())?;
            println!("wrote {}", p.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> Result<SignCli, clap::Error> {
        SignCli::try_parse_from(std::iter::once("rvblk sign").chain(v.iter().copied()))
    }

    #[test]
    fn defaults_and_rejections() {
        <SignCli as clap::CommandFactory>::command().debug_assert();
        let SignCli {
            command:
                Command::Cert {
                    subject,
                    days,
                    bits,
                    password,
                    ..
                },
        } = parse(&["cert", "--out", "d"]).unwrap()
        else {
            panic!("not cert")
        };
        assert_eq!(
            (subject.as_str(), days, bits, password.as_str()),
            (DEFAULT_SUBJECT, 3650, 3072, "")
        );
        assert!(parse(&["cert"]).is_err(), "--out is required");
        assert!(parse(&["cert", "--out", "d", "--bits", "1024"]).is_err());
        assert!(parse(&["cert", "--out", "d", "--days", "x"]).is_err());
        assert!(parse(&["file", "--pfx", "k.pfx"]).is_err(), "no FILE");
        assert!(parse(&["catalog", "--pfx", "k.pfx"]).is_err(), "no DIR");
        assert!(parse(&["catalog", "a", "b", "--pfx", "k.pfx"]).is_err());
        assert!(parse(&["package", "dir"]).is_err(), "--pfx is required");
        let help = parse(&["--help"]).unwrap_err().to_string();
        assert!(help.contains("certutil -addstore Root"), "{help}");
    }
}
