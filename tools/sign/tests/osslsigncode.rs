//! Signing checked by an independent verifier, Debian's `osslsigncode` (2.9), and by an
//! Authenticode hash implemented separately here (the section-by-section algorithm of the spec).
//!
//! Commands used:
//! * `osslsigncode verify -CAfile ca.pem -in FILE.sys` (embedded signature; `-CAfile` wants PEM)
//! * `osslsigncode verify -CAfile ca.pem -in rvblk.cat` (catalog signature)
//! * `osslsigncode verify -CAfile ca.pem -catalog rvblk.cat -in FILE.sys` (the file's hash is a
//!   member of the signed catalog)

use rvblk_pe::build::PeBuilder;
use rvblk_pe::Pe;
use rvblk_sign::{sign_package, sign_pe, Signer};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::OnceLock;

fn signer() -> &'static Signer {
    static S: OnceLock<Signer> = OnceLock::new();
    // 2048 bits keeps debug-build key generation short; the CLI default is 3072.
    S.get_or_init(|| Signer::generate("CN=rvblk test suite, O=rvblk", 30, 2048).unwrap())
}

fn osslsigncode() -> &'static str {
    let p = "osslsigncode";
    let ok = Command::new(p)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "osslsigncode is not installed: `apt-get install osslsigncode` (CI installs it)"
    );
    p
}

fn ca_pem(dir: &Path) -> PathBuf {
    let p = dir.join("ca.pem");
    std::fs::write(&p, signer().cert_pem()).unwrap();
    p
}

fn verify_pe(ca: &Path, file: &Path) -> (bool, String) {
    let mut c = Command::new(osslsigncode());
    let out = c
        .arg("verify")
        .arg("-CAfile")
        .arg(ca)
        .arg("-in")
        .arg(file)
        .output()
        .expect("run osslsigncode");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

const DRIVER: &str = r#"
#![no_std]
#![no_main]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! { loop {} }
static mut TABLE: [fn(*mut u8); 1] = [f];
fn f(p: *mut u8) { unsafe { core::ptr::write_volatile(p, 7) } }
#[no_mangle]
pub extern "system" fn DriverEntry(a: *mut u8, b: *mut u8) -> i32 {
    unsafe {
        let t = core::ptr::read_volatile(&raw const TABLE);
        (t[0])(b);
        core::ptr::write_volatile(a, *b);
    }
    0
}
"#;

/// A real native-subsystem image linked by rust-lld for `target`.
fn compile(dir: &Path, target: &str) -> Vec<u8> {
    rvblk_pe::build::compile_native_driver(dir, target, DRIVER).unwrap()
}

const TARGETS: [&str; 3] = [
    "x86_64-pc-windows-msvc",
    "i686-pc-windows-msvc",
    "aarch64-pc-windows-msvc",
];

fn u16at(d: &[u8], o: usize) -> usize {
    u16::from_le_bytes([d[o], d[o + 1]]) as usize
}
fn u32at(d: &[u8], o: usize) -> usize {
    u32::from_le_bytes(d[o..o + 4].try_into().unwrap()) as usize
}

/// The Authenticode SHA-256 hash, written from the spec independently of rvblk-sign: headers
/// minus CheckSum and the certificate-table entry, then each section's raw data in file order,
/// then any data after the last section up to the certificate table.
fn spec_pe_hash(d: &[u8]) -> Vec<u8> {
    let pe = u32at(d, 0x3c);
    let nsec = u16at(d, pe + 6);
    let opt_size = u16at(d, pe + 20);
    let opt = pe + 24;
    let magic = u16at(d, opt);
    let ck = opt + 64;
    let dirs = opt + if magic == 0x20b { 112 } else { 96 };
    let sec_entry = dirs + 4 * 8;
    let cert_size = u32at(d, sec_entry + 4);
    let size_of_headers = u32at(d, opt + 60);
    let mut h = Sha256::new();
    h.update(&d[..ck]);
    h.update(&d[ck + 4..sec_entry]);
    h.update(&d[sec_entry + 8..size_of_headers]);
    let st = opt + opt_size;
    let mut secs: Vec<(usize, usize)> = (0..nsec)
        .map(|i| {
            let s = st + i * 40;
            (u32at(d, s + 20), u32at(d, s + 16))
        })
        .filter(|&(_, size)| size != 0)
        .collect();
    secs.sort();
    let mut sum = size_of_headers;
    for (ptr, size) in secs {
        h.update(&d[ptr..ptr + size]);
        sum += size;
    }
    let extra_end = d.len() - cert_size;
    if extra_end > sum {
        h.update(&d[sum..extra_end]);
    }
    h.finalize().to_vec()
}

fn win_certificates(d: &[u8]) -> Vec<(usize, u16, u16)> {
    let pe = Pe::parse(d).unwrap();
    let Some((off, size)) = pe.security_directory() else {
        return vec![];
    };
    let mut out = vec![];
    let mut p = off;
    while p + 8 <= off + size {
        let len = u32at(d, p);
        out.push((len, u16at(d, p + 4) as u16, u16at(d, p + 6) as u16));
        if len == 0 {
            break;
        }
        p += len.div_ceil(8) * 8;
    }
    out
}

#[test]
fn signed_images_verify_with_osslsigncode() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_pem(dir.path());
    for target in TARGETS {
        let img = compile(dir.path(), target);
        let signed = sign_pe(&img, signer()).unwrap();
        let path = dir.path().join(format!("{target}.signed.sys"));
        std::fs::write(&path, &signed).unwrap();
        let (ok, out) = verify_pe(&ca, &path);
        assert!(ok, "{target}: osslsigncode rejected the signature:\n{out}");
        assert!(out.contains("Signature verification: ok"), "{out}");
        // Our digest equals the spec algorithm's.
        let hex = rvblk_sign::hex_upper(&spec_pe_hash(&signed));
        assert!(
            out.contains(&format!("Calculated message digest : {hex}")),
            "{target}: {out}"
        );
        let pe = Pe::parse(&signed).unwrap();
        assert!(pe.checksum_valid(), "{target}: checksum after signing");
        let certs = win_certificates(&signed);
        assert_eq!(certs.len(), 1, "{target}");
        let (len, rev, ty) = certs[0];
        assert_eq!((rev, ty), (0x0200, 0x0002));
        assert_eq!(len % 8, 0);
        let (off, size) = pe.security_directory().unwrap();
        assert_eq!(off % 8, 0);
        assert_eq!(off + size, signed.len());
        // Everything before the certificate table is the original image (plus padding).
        assert_eq!(
            &signed[off - (off - img.len())..off],
            &vec![0u8; off - img.len()][..]
        );
    }
}

#[test]
fn odd_length_image_is_padded_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_pem(dir.path());
    let mut b = PeBuilder::new(rvblk_pe::MACHINE_AMD64);
    let t = b.text(&[0x48, 0x31, 0xc0, 0xc3]);
    b.entry = Some((t, 0));
    let mut img = b.build();
    img.extend_from_slice(&[1, 2, 3]); // trailing data, length not a multiple of 8
    rvblk_pe::update_checksum(&mut img).unwrap();
    let signed = sign_pe(&img, signer()).unwrap();
    let path = dir.path().join("odd.sys");
    std::fs::write(&path, &signed).unwrap();
    let (ok, out) = verify_pe(&ca, &path);
    assert!(ok, "{out}");
    assert!(Pe::parse(&signed).unwrap().checksum_valid());
}

#[test]
fn signing_twice_gives_one_identical_signature() {
    let dir = tempfile::tempdir().unwrap();
    let img = compile(dir.path(), "x86_64-pc-windows-msvc");
    let once = sign_pe(&img, signer()).unwrap();
    let twice = sign_pe(&once, signer()).unwrap();
    assert_eq!(win_certificates(&twice).len(), 1);
    assert_eq!(once, twice, "re-signing must replace, deterministically");
    let stripped = rvblk_sign::authenticode::strip_signature(&once).unwrap();
    assert!(Pe::parse(&stripped).unwrap().security_directory().is_none());
    assert!(Pe::parse(&stripped).unwrap().checksum_valid());
    // A different key replaces the signature too.
    let other = Signer::generate("CN=other", 1, 2048).unwrap();
    let resigned = sign_pe(&once, &other).unwrap();
    assert_eq!(win_certificates(&resigned).len(), 1);
    assert_ne!(resigned, once);
    let p7 = rvblk_sign::authenticode::embedded_pkcs7(&resigned)
        .unwrap()
        .unwrap();
    assert!(p7
        .windows(other.cert_der().len())
        .any(|w| w == other.cert_der()));
}

#[test]
fn tampering_one_byte_breaks_verification() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_pem(dir.path());
    for target in ["x86_64-pc-windows-msvc", "i686-pc-windows-msvc"] {
        let img = compile(dir.path(), target);
        let signed = sign_pe(&img, signer()).unwrap();
        let pe = Pe::parse(&signed).unwrap();
        let text = pe.sections.iter().find(|s| s.name == ".text").unwrap();
        let mut bad = signed.clone();
        bad[text.pointer_to_raw_data as usize + 1] ^= 0x01;
        let path = dir.path().join(format!("{target}.bad.sys"));
        std::fs::write(&path, &bad).unwrap();
        let (ok, out) = verify_pe(&ca, &path);
        assert!(!ok, "{target}: tampered image verified:\n{out}");
        // And the untampered one from the same run still verifies.
        std::fs::write(&path, &signed).unwrap();
        assert!(verify_pe(&ca, &path).0);
    }
}

#[test]
fn wrong_ca_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let img = compile(dir.path(), "x86_64-pc-windows-msvc");
    let path = dir.path().join("a.sys");
    std::fs::write(&path, sign_pe(&img, signer()).unwrap()).unwrap();
    let other = Signer::generate("CN=unrelated", 1, 2048).unwrap();
    let ca = dir.path().join("other.pem");
    std::fs::write(&ca, other.cert_pem()).unwrap();
    assert!(!verify_pe(&ca, &path).0);
}

// ---- catalogs ----

/// Minimal DER walker for the test's own reading of the catalog.
fn tlv(d: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = d[0];
    let (len, hdr) = if d[1] < 0x80 {
        (d[1] as usize, 2)
    } else {
        let k = (d[1] & 0x7f) as usize;
        (
            d[2..2 + k]
                .iter()
                .fold(0usize, |a, &b| (a << 8) | b as usize),
            2 + k,
        )
    };
    (tag, &d[hdr..hdr + len], &d[hdr + len..])
}

fn children(mut d: &[u8]) -> Vec<(u8, &[u8])> {
    let mut v = vec![];
    while !d.is_empty() {
        let (t, c, rest) = tlv(d);
        v.push((t, c));
        d = rest;
    }
    v
}

/// (file name, member hash) of every catalog member.
fn catalog_members(cat: &[u8]) -> Vec<(String, Vec<u8>)> {
    let ci = children(tlv(cat).1);
    let sd = children(tlv(ci[1].1).1); // [0] → SignedData
    let content_info = children(sd[2].1);
    let ctl = children(tlv(content_info[1].1).1); // [0] → CTL
    let subjects = ctl.iter().find(|(t, c)| {
        *t == 0x30 && !c.is_empty() && c[0] == 0x30 && {
            // trustedSubjects: a SEQUENCE OF SEQUENCE { OCTET STRING, SET }
            let first = children(c);
            first.iter().all(|(t, _)| *t == 0x30)
                && children(first[0].1).first().map(|x| x.0) == Some(0x04)
        }
    });
    let subjects = subjects.expect("trustedSubjects").1;
    let mut out = vec![];
    for (_, entry) in children(subjects) {
        let e = children(entry);
        let hash = e[0].1.to_vec();
        let mut name = None;
        for (_, attr) in children(e[1].1) {
            let a = children(attr);
            // 1.3.6.1.4.1.311.12.2.1 CAT_NAMEVALUE
            if a[0].1 == [0x2b, 6, 1, 4, 1, 0x82, 0x37, 0x0c, 2, 1] {
                let nv = children(children(a[1].1)[0].1);
                let tag: Vec<u16> = nv[0]
                    .1
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                if String::from_utf16(&tag).unwrap() == "File" {
                    let v: Vec<u16> = nv[2]
                        .1
                        .chunks(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .take_while(|&u| u != 0)
                        .collect();
                    name = Some(String::from_utf16(&v).unwrap());
                }
            }
        }
        out.push((name.expect("File attribute"), hash));
    }
    out.sort();
    out
}

fn make_package(dir: &Path) -> PathBuf {
    let pkg = dir.join("package");
    for (arch, target) in [
        ("amd64", "x86_64-pc-windows-msvc"),
        ("x86", "i686-pc-windows-msvc"),
        ("arm64", "aarch64-pc-windows-msvc"),
    ] {
        std::fs::create_dir_all(pkg.join(arch)).unwrap();
        let img = compile(dir, target);
        std::fs::write(pkg.join(arch).join("rvblk.sys"), img).unwrap();
    }
    std::fs::write(
        pkg.join("rvblk.inf"),
        "[Version]\r\nSignature=\"$WINDOWS NT$\"\r\nClass=SCSIAdapter\r\nCatalogFile=rvblk.cat ; the catalog\r\n",
    )
    .unwrap();
    pkg
}

#[test]
fn package_catalog_lists_the_right_hashes_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_pem(dir.path());
    let pkg = make_package(dir.path());
    let cat = sign_package(&pkg, signer()).unwrap();
    assert_eq!(cat, pkg.join("rvblk.cat"));
    let cat_bytes = std::fs::read(&cat).unwrap();

    // Catalog signature.
    let out = Command::new(osslsigncode())
        .args(["verify", "-CAfile"])
        .arg(&ca)
        .arg("-in")
        .arg(&cat)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "catalog: {text}");
    assert!(text.contains("Signature verification: ok"), "{text}");

    // Every .sys: embedded signature and catalog membership.
    for arch in ["amd64", "x86", "arm64"] {
        verify_signed_member(&ca, &cat, &pkg.join(arch).join("rvblk.sys"));
    }
    // A file that is not in the package is not in the catalog.
    let stranger = dir.path().join("stranger.sys");
    let mut b = PeBuilder::new(rvblk_pe::MACHINE_AMD64);
    b.text(&[0xc3]);
    std::fs::write(&stranger, sign_pe(&b.build(), signer()).unwrap()).unwrap();
    let o = Command::new(osslsigncode())
        .args(["verify", "-CAfile"])
        .arg(&ca)
        .arg("-catalog")
        .arg(&cat)
        .arg("-in")
        .arg(&stranger)
        .output()
        .unwrap();
    assert!(!o.status.success(), "a stranger passed the catalog check");

    // The members, recomputed independently: spec Authenticode hash for PE files, SHA-256 of
    // the file for the INF; exactly these and nothing else.
    let mut expected: Vec<(String, Vec<u8>)> = vec![];
    for arch in ["amd64", "x86", "arm64"] {
        let d = std::fs::read(pkg.join(arch).join("rvblk.sys")).unwrap();
        expected.push(("rvblk.sys".into(), spec_pe_hash(&d)));
    }
    expected.push((
        "rvblk.inf".into(),
        Sha256::digest(std::fs::read(pkg.join("rvblk.inf")).unwrap()).to_vec(),
    ));
    expected.sort();
    assert_eq!(catalog_members(&cat_bytes), expected);

    // Deterministic: signing the package again changes nothing.
    let before: Vec<Vec<u8>> = ["amd64", "x86", "arm64"]
        .iter()
        .map(|a| std::fs::read(pkg.join(a).join("rvblk.sys")).unwrap())
        .collect();
    sign_package(&pkg, signer()).unwrap();
    assert_eq!(std::fs::read(&cat).unwrap(), cat_bytes);
    for (a, b) in ["amd64", "x86", "arm64"].iter().zip(before) {
        assert_eq!(std::fs::read(pkg.join(a).join("rvblk.sys")).unwrap(), b);
    }

    // Changing the INF changes its member.
    std::fs::write(
        pkg.join("rvblk.inf"),
        "[Version]\r\nCatalogFile=other.cat\r\n",
    )
    .unwrap();
    let other = rvblk_sign::catalog::sign_catalog(&pkg, signer()).unwrap();
    assert_eq!(other, pkg.join("other.cat"));
    let members = catalog_members(&std::fs::read(&other).unwrap());
    assert!(members.iter().any(|(n, h)| n == "rvblk.inf"
        && *h == Sha256::digest(std::fs::read(pkg.join("rvblk.inf")).unwrap()).to_vec()));
}

// ---- certificate, PFX and CLI ----

#[test]
fn cli_cert_then_sign_and_errors_leave_inputs_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    let args = |v: &[&str]| {
        v.iter()
            .map(|s| s.into())
            .collect::<Vec<std::ffi::OsString>>()
    };
    let code = rvblk_sign::cli::sign(args(&[
        "cert",
        "--out",
        out.to_str().unwrap(),
        "--bits",
        "2048",
        "--days",
        "10",
        "--subject",
        "CN=cli test",
        "--password",
        "s3cret",
    ]));
    assert_eq!(code, ExitCode::SUCCESS);
    let pfx = out.join("rvblk-test.pfx");
    let cer = out.join("rvblk-test.cer");
    let loaded = Signer::from_pfx(&pfx, "s3cret").unwrap();
    assert_eq!(loaded.cert_der(), std::fs::read(&cer).unwrap());
    assert!(Signer::from_pfx(&pfx, "wrong").is_err());

    // The certificate as Windows needs it (checked with openssl's parser when available).
    if let Ok(o) = Command::new("openssl")
        .args(["x509", "-inform", "der", "-noout", "-text", "-in"])
        .arg(&cer)
        .output()
    {
        let t = String::from_utf8_lossy(&o.stdout);
        assert!(t.contains("Code Signing"), "{t}");
        assert!(t.contains("CA:TRUE"), "{t}");
        assert!(t.contains("Digital Signature"), "{t}");
        assert!(t.contains("sha256WithRSAEncryption"), "{t}");
        assert!(
            t.contains("CN = cli test") || t.contains("CN=cli test"),
            "{t}"
        );
    }

    // Sign a file through the CLI and verify it with the exported certificate.
    let img = compile(dir.path(), "x86_64-pc-windows-msvc");
    let sys = dir.path().join("drv.sys");
    std::fs::write(&sys, &img).unwrap();
    let sign_file = |password: &str, file: &Path| {
        rvblk_sign::cli::sign(args(&[
            "file",
            "--pfx",
            pfx.to_str().unwrap(),
            "--password",
            password,
            file.to_str().unwrap(),
        ]))
    };
    assert_eq!(sign_file("s3cret", &sys), ExitCode::SUCCESS);
    let ca = dir.path().join("cli.pem");
    std::fs::write(&ca, loaded.cert_pem()).unwrap();
    let (ok, text) = verify_pe(&ca, &sys);
    assert!(ok, "{text}");

    // Errors: non-zero exit, inputs untouched.
    let signed = std::fs::read(&sys).unwrap();
    assert_ne!(sign_file("nope", &sys), ExitCode::SUCCESS);
    assert_eq!(std::fs::read(&sys).unwrap(), signed);
    let junk = dir.path().join("junk.sys");
    std::fs::write(&junk, b"MZ not really").unwrap();
    assert_ne!(sign_file("s3cret", &junk), ExitCode::SUCCESS);
    assert_eq!(std::fs::read(&junk).unwrap(), b"MZ not really");
    assert_ne!(rvblk_sign::cli::sign(args(&["bogus"])), ExitCode::SUCCESS);
    assert_ne!(rvblk_sign::cli::sign(args(&["file"])), ExitCode::SUCCESS);
    assert_ne!(
        rvblk_sign::cli::sign(args(&["catalog", "--pfx", pfx.to_str().unwrap()])),
        ExitCode::SUCCESS
    );
    assert_eq!(rvblk_sign::cli::sign(args(&["--help"])), ExitCode::SUCCESS);
    // No temporary files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn pfx_with_empty_password_roundtrips_and_openssl_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let pfx = dir.path().join("k.pfx");
    signer().write_pfx(&pfx, "").unwrap();
    let back = Signer::from_pfx(&pfx, "").unwrap();
    assert_eq!(back.cert_der(), signer().cert_der());
    // osslsigncode (OpenSSL) can sign with our PFX too: the PFX format is standard.
    let img = PeBuilder::new(rvblk_pe::MACHINE_AMD64).build();
    let inp = dir.path().join("in.sys");
    let outp = dir.path().join("out.sys");
    std::fs::write(&inp, img).unwrap();
    let o = Command::new(osslsigncode())
        .args(["sign", "-pkcs12"])
        .arg(&pfx)
        .args(["-pass", "", "-h", "sha256", "-in"])
        .arg(&inp)
        .arg("-out")
        .arg(&outp)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "osslsigncode could not use our PFX: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
#[ignore = "needs the driver package: run by cargo xtask test"]
fn real_package_signs_and_verifies() {
    let src =
        PathBuf::from(std::env::var_os("RVBLK_PACKAGE_DIR").expect(
            "RVBLK_PACKAGE_DIR is not set: point it at the driver package (target/package)",
        ));
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("package");
    copy_dir(&src, &pkg);
    let ca = ca_pem(dir.path());
    let cat = sign_package(&pkg, signer()).unwrap();
    let mut sys = vec![];
    rvblk_sign::catalog::collect_files(&pkg, &mut sys).unwrap();
    sys.retain(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("sys")));
    assert!(!sys.is_empty());
    for s in &sys {
        verify_signed_member(&ca, &cat, s);
    }
}

/// `sys` carries a valid embedded signature and checksum, and its hash is a member of `cat`.
fn verify_signed_member(ca: &Path, cat: &Path, sys: &Path) {
    let (ok, out) = verify_pe(ca, sys);
    assert!(ok, "{}: {out}", sys.display());
    assert!(Pe::parse(&std::fs::read(sys).unwrap())
        .unwrap()
        .checksum_valid());
    let o = Command::new(osslsigncode())
        .args(["verify", "-CAfile"])
        .arg(ca)
        .arg("-catalog")
        .arg(cat)
        .arg("-in")
        .arg(sys)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{} not in {}: {}",
        sys.display(),
        cat.display(),
        String::from_utf8_lossy(&o.stdout)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
