//! Command-line entry points, called by the `rvblk` binary with the arguments after the command word.

use crate::{catalog, sign_file, sign_package, Signer, DEFAULT_SUBJECT};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
rvblk sign — test certificates, embedded Authenticode signatures and catalogs (pure Rust)

USAGE:
    rvblk sign cert --out DIR [--subject \"CN=...\"] [--days N] [--bits 2048|3072] [--password P]
    rvblk sign file --pfx FILE.pfx [--password P] FILE.sys...
    rvblk sign catalog --pfx FILE.pfx [--password P] PACKAGE_DIR
    rvblk sign package --pfx FILE.pfx [--password P] PACKAGE_DIR

COMMANDS:
    cert      Create a self-signed code-signing test certificate: DIR/rvblk-test.pfx (key and
              certificate) and DIR/rvblk-test.cer (certificate, DER). RSA-3072 by default,
              SHA-256, EKU codeSigning, CA:TRUE so Windows can trust it as its own root.
              Default subject: \"CN=rvblk test signing (not trusted)\"; default validity 3650 days.
    file      Embed a SHA-256 Authenticode signature in each PE file (.sys), replacing any
              existing signature, and recompute the PE checksum. Signing is deterministic.
    catalog   Write and sign the catalog named by CatalogFile= in the package's rvblk.inf
              (default rvblk.cat), listing every .sys and .inf of the package (SHA-256).
    package   `file` on every .sys of the package, then `catalog`.

OPTIONS:
    --password P   PFX password. Default: empty. The PFX protects the key with 3DES and an
                   HMAC-SHA1 MAC under this password; an empty password gives no protection,
                   which is fine only for a throw-away test key.
    -h, --help     Show this text.

Files are replaced atomically (written to a temporary file, then renamed): on an error the
inputs are left untouched.

On Windows, trust the test certificate and enable test signing (Secure Boot off):
    certutil -addstore Root rvblk-test.cer
    certutil -addstore TrustedPublisher rvblk-test.cer
    bcdedit /set testsigning on
";

#[derive(Default)]
struct Opts {
    out: Option<PathBuf>,
    subject: Option<String>,
    days: Option<u32>,
    bits: Option<usize>,
    pfx: Option<PathBuf>,
    password: String,
    positional: Vec<PathBuf>,
    help: bool,
}

fn parse(args: &[OsString]) -> Result<Opts, String> {
    let mut o = Opts::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        let mut value = |name: &str| -> Result<OsString, String> {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match s.as_ref() {
            "-h" | "--help" => o.help = true,
            "--out" => o.out = Some(value("--out")?.into()),
            "--subject" => o.subject = Some(value("--subject")?.to_string_lossy().into_owned()),
            "--days" => {
                let v = value("--days")?;
                o.days = Some(
                    v.to_string_lossy()
                        .parse()
                        .map_err(|_| format!("--days: not a number: {v:?}"))?,
                )
            }
            "--bits" => {
                let v = value("--bits")?;
                let bits: usize = v
                    .to_string_lossy()
                    .parse()
                    .map_err(|_| format!("--bits: not a number: {v:?}"))?;
                if bits != 2048 && bits != 3072 && bits != 4096 {
                    return Err("--bits must be 2048, 3072 or 4096".into());
                }
                o.bits = Some(bits);
            }
            "--pfx" => o.pfx = Some(value("--pfx")?.into()),
            "--password" => o.password = value("--password")?.to_string_lossy().into_owned(),
            _ if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown option {s}")),
            _ => o.positional.push(a.into()),
        }
    }
    Ok(o)
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("rvblk sign: {msg}");
    ExitCode::FAILURE
}

fn load_signer(o: &Opts) -> Result<Signer, String> {
    let pfx = o.pfx.as_ref().ok_or("--pfx is required")?;
    Signer::from_pfx(pfx, &o.password).map_err(|e| e.to_string())
}

fn one_dir(o: &Opts) -> Result<&Path, String> {
    match o.positional.as_slice() {
        [d] if d.is_dir() => Ok(d),
        [d] => Err(format!("{}: not a directory", d.display())),
        [] => Err("PACKAGE_DIR is required".into()),
        _ => Err("exactly one PACKAGE_DIR expected".into()),
    }
}

/// `rvblk sign ...`.
pub fn sign(args: Vec<OsString>) -> ExitCode {
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let cmd = cmd.to_string_lossy();
    if matches!(cmd.as_ref(), "-h" | "--help" | "help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let o = match parse(rest) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rvblk sign {cmd}: {e} (see rvblk sign --help)");
            return ExitCode::from(2);
        }
    };
    if o.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match cmd.as_ref() {
        "cert" => {
            let Some(out) = &o.out else {
                return fail("cert: --out DIR is required");
            };
            if !o.positional.is_empty() {
                return fail("cert: unexpected arguments");
            }
            if let Err(e) = std::fs::create_dir_all(out) {
                return fail(format!("{}: {e}", out.display()));
            }
            let subject = o.subject.as_deref().unwrap_or(DEFAULT_SUBJECT);
            let signer =
                match Signer::generate(subject, o.days.unwrap_or(3650), o.bits.unwrap_or(3072)) {
                    Ok(s) => s,
                    Err(e) => return fail(e),
                };
            let pfx = out.join("rvblk-test.pfx");
            let cer = out.join("rvblk-test.cer");
            if let Err(e) = signer
                .write_pfx(&pfx, &o.password)
                .and_then(|_| signer.write_cert_der(&cer))
            {
                return fail(e);
            }
            println!("wrote {} and {}", pfx.display(), cer.display());
            println!("certificate SHA-1 thumbprint: {}", signer.thumbprint());
            ExitCode::SUCCESS
        }
        "file" => {
            let signer = match load_signer(&o) {
                Ok(s) => s,
                Err(e) => return fail(format!("file: {e}")),
            };
            if o.positional.is_empty() {
                return fail("file: no FILE.sys given");
            }
            for f in &o.positional {
                if let Err(e) = sign_file(f, &signer) {
                    return fail(e);
                }
                println!("signed {}", f.display());
            }
            ExitCode::SUCCESS
        }
        "catalog" | "package" => {
            let dir = match one_dir(&o) {
                Ok(d) => d,
                Err(e) => return fail(format!("{cmd}: {e}")),
            };
            let signer = match load_signer(&o) {
                Ok(s) => s,
                Err(e) => return fail(format!("{cmd}: {e}")),
            };
            let r = if cmd == "package" {
                sign_package(dir, &signer)
            } else {
                catalog::sign_catalog(dir, &signer)
            };
            match r {
                Ok(p) => {
                    println!("wrote {}", p.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        other => {
            eprintln!("rvblk sign: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
