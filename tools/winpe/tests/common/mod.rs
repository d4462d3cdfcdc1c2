//! Test fixtures built with the independent tools (`hivexsh`, `wimlib-imagex`) and checks that
//! read results back with them (never with rvblk-winpe's own readers).

#![allow(dead_code)]

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const CLASS: &str = "{4D36E97B-E325-11CE-BFC1-08002BE10318}";
pub const BOOTMGR: &str = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}";
pub const LOADER1: &str = "{7619dcc9-fafe-11d9-b411-000476eba25f}";
pub const LOADER2: &str = "{11111111-2222-3333-4444-555555555555}";
pub const X86_SYS: &[u8] = b"MZ fake x86 rvblk.sys \x01\x02\x03";
pub const AMD64_SYS: &[u8] = b"MZ fake amd64 rvblk.sys \x04\x05\x06\x07";
pub const INF: &str = "[Version]\r\nSignature=\"$WINDOWS NT$\"\r\nClass=SCSIAdapter\r\n\
ClassGUID={4D36E97B-E325-11CE-BFC1-08002BE10318}\r\nProvider=%Prov%\r\nDriverVer=03/07/2025,0.1.2.3\r\n\
CatalogFile=rvblk.cat\r\n\r\n[Manufacturer]\r\n%Mfg%=Models,NTx86,NTamd64,NTarm64\r\n\r\n\
[Models.NTx86]\r\n%Desc%=rvblk_Install,ROOT\\RVBLK\r\n[Models.NTamd64]\r\n%Desc%=rvblk_Install,ROOT\\RVBLK\r\n\
[Models.NTarm64]\r\n%Desc%=rvblk_Install,ROOT\\RVBLK\r\n\r\n[rvblk_Install]\r\nCopyFiles=Drv\r\n\r\n\
[Strings]\r\nProv=\"rvblk project\"\r\nMfg=\"rvblk\"\r\nDesc=\"rvblk RAM disk SCSI adapter\"\r\n";

pub fn tool_available(name: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a command, panicking with its output on failure; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `hivexsh` on `hive` (`-w`: writable) with `script` on its stdin.
fn hivexsh(hive: &Path, write: bool, script: &str) -> std::process::Output {
    let mut cmd = Command::new("hivexsh");
    if write {
        cmd.arg("-w");
    }
    let mut child = cmd
        .arg(hive)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hivexsh");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The output lines of a read-only `hivexsh` command run in `key`, or `None` if the key does
/// not exist.
fn hivexsh_in(hive: &Path, key: &str, command: &str) -> Option<Vec<String>> {
    let out = hivexsh(hive, false, &format!("cd {key}\n{command}\n"));
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || err.contains("not found") {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

/// Feeds `script` to `hivexsh -w hive` (a script ending in `commit` writes the hive).
pub fn hivexsh_write(hive: &Path, script: &str) {
    let out = hivexsh(hive, true, script);
    assert!(
        out.status.success(),
        "hivexsh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `hivexsh` `lsval` of a key: the value lines, sorted, or `None` if the key does not exist.
pub fn lsval(hive: &Path, key: &str) -> Option<Vec<String>> {
    let mut v = hivexsh_in(hive, key, "lsval")?;
    v.sort();
    Some(v)
}

/// `hivexsh` `ls` of a key (subkey names).
pub fn ls(hive: &Path, key: &str) -> Option<Vec<String>> {
    hivexsh_in(hive, key, "ls")
}

/// The whole hive as `hivexml` XML with timestamps and file offsets stripped (content only).
pub fn hive_content(hive: &Path) -> String {
    let xml = run(Command::new("hivexml").arg(hive));
    let mut s = String::new();
    let mut rest = xml.as_str();
    // drop <mtime>..</mtime> and <byte_runs>..</byte_runs>
    loop {
        let a = rest.find("<mtime>");
        let b = rest.find("<byte_runs>");
        let (start, end_tag) = match (a, b) {
            (Some(a), Some(b)) if a < b => (a, "</mtime>"),
            (Some(a), None) => (a, "</mtime>"),
            (_, Some(b)) => (b, "</byte_runs>"),
            (None, None) => break,
        };
        s.push_str(&rest[..start]);
        let end = rest[start..].find(end_tag).unwrap() + start + end_tag.len();
        rest = &rest[end..];
    }
    s.push_str(rest);
    s
}

/// An empty hive (root key only), from the library's generator: hivex cannot create hives.
pub fn empty_hive(path: &Path) {
    rvblk_winpe::hive::write_empty_hive(path).unwrap();
}

/// A WinPE-like SYSTEM hive: Select (Current=Default=1), ControlSet001 with Services (one
/// unrelated service), Control\Class\{SCSIAdapter}\0000 (another driver), ServiceGroupOrder with
/// "SCSI miniport", Enum\Root. With `vista`, also Control\CriticalDeviceDatabase.
pub fn system_hive(path: &Path, vista: bool) {
    empty_hive(path);
    let cddb = if vista {
        "cd \\ControlSet001\\Control\nadd CriticalDeviceDatabase\ncd CriticalDeviceDatabase\nadd pci#ven_8086\ncd pci#ven_8086\nsetval 1\nService\nstring:iaStor\n"
    } else {
        ""
    };
    let script = format!(
        "add Select\ncd Select\nsetval 4\nCurrent\ndword:1\nDefault\ndword:1\nFailed\ndword:0\nLastKnownGood\ndword:1\n\
cd \\\nadd ControlSet001\ncd ControlSet001\nadd Services\nadd Control\nadd Enum\n\
cd Services\nadd disk\ncd disk\nsetval 2\nStart\ndword:0\nType\ndword:1\n\
cd \\ControlSet001\\Enum\nadd Root\ncd Root\nadd LEGACY_DISK\n\
cd \\ControlSet001\\Control\nadd Class\nadd ServiceGroupOrder\n\
cd ServiceGroupOrder\nsetval 1\nList\nhex:7:{}\n\
cd \\ControlSet001\\Control\\Class\nadd {CLASS}\ncd {CLASS}\nsetval 1\nClass\nstring:SCSIAdapter\nadd 0000\ncd 0000\nsetval 2\nMatchingDeviceId\nstring:pci\\ven_8086\nDriverDesc\nstring:Intel\n\
{cddb}commit\n",
        multi_hex(&["System Reserved", "Boot Bus Extender", "SCSI miniport", "Filter"])
    );
    hivexsh_write(path, &script);
}

/// A hive with a ControlSet001 but no Select key.
pub fn hive_without_select(path: &Path) {
    empty_hive(path);
    hivexsh_write(
        path,
        "add ControlSet001\ncd ControlSet001\nadd Services\ncommit\n",
    );
}

/// A BCD store: {bootmgr} (default = LOADER1), two OS loaders, one memdiag-like application.
/// With `bootmgr` false, no {bootmgr} object.
pub fn bcd_store(path: &Path, bootmgr: bool) {
    empty_hive(path);
    let bm = if bootmgr {
        format!(
            "cd \\Objects\nadd {BOOTMGR}\ncd {BOOTMGR}\nadd Description\ncd Description\nsetval 1\nType\ndword:0x10100002\n\
cd ..\nadd Elements\ncd Elements\nadd 23000003\ncd 23000003\nsetval 1\nElement\nstring:{LOADER1}\n\
cd ..\nadd 25000004\ncd 25000004\nsetval 1\nElement\nhex:3:1e,00,00,00,00,00,00,00\n"
        )
    } else {
        String::new()
    };
    let script = format!(
        "add Description\ncd Description\nsetval 1\nKeyName\nstring:BCD00000000\ncd \\\nadd Objects\n{bm}\
cd \\Objects\nadd {LOADER1}\ncd {LOADER1}\nadd Description\ncd Description\nsetval 1\nType\ndword:0x10200003\n\
cd ..\nadd Elements\ncd Elements\nadd 12000004\ncd 12000004\nsetval 1\nElement\nstring:Windows Setup\n\
cd ..\nadd 26000022\ncd 26000022\nsetval 1\nElement\nhex:3:01\n\
cd \\Objects\nadd {LOADER2}\ncd {LOADER2}\nadd Description\ncd Description\nsetval 1\nType\ndword:0x10200003\n\
cd ..\nadd Elements\ncd Elements\nadd 12000004\ncd 12000004\nsetval 1\nElement\nstring:Second\n\
cd \\Objects\nadd {{b2721d73-1db4-4c62-bf78-c548a880142d}}\ncd {{b2721d73-1db4-4c62-bf78-c548a880142d}}\nadd Description\ncd Description\nsetval 1\nType\ndword:0x10200005\n\
commit\n"
    );
    hivexsh_write(path, &script);
}

/// REG_MULTI_SZ bytes as hivexsh `hex:7:` notation.
pub fn multi_hex(items: &[&str]) -> String {
    let mut b: Vec<u8> = Vec::new();
    for s in items {
        for u in s.encode_utf16() {
            b.extend_from_slice(&u.to_le_bytes());
        }
        b.extend_from_slice(&[0, 0]);
    }
    b.extend_from_slice(&[0, 0]);
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A minimal PE header with the given COFF machine.
pub fn pe(machine: u16) -> Vec<u8> {
    let mut d = vec![0u8; 0x200];
    d[..2].copy_from_slice(b"MZ");
    d[0x3c] = 0x80;
    d[0x80..0x84].copy_from_slice(b"PE\0\0");
    d[0x84..0x86].copy_from_slice(&machine.to_le_bytes());
    d
}

/// A WinPE-like tree: SYSTEM hive, ntoskrnl.exe for `machine`, a few other files.
pub fn winpe_tree(root: &Path, machine: u16, vista: bool) {
    let sys32 = root.join("Windows/System32");
    std::fs::create_dir_all(sys32.join("config")).unwrap();
    std::fs::create_dir_all(sys32.join("drivers")).unwrap();
    system_hive(&sys32.join("config/SYSTEM"), vista);
    std::fs::write(sys32.join("ntoskrnl.exe"), pe(machine)).unwrap();
    std::fs::write(sys32.join("drivers/disk.sys"), b"disk driver").unwrap();
    std::fs::write(sys32.join("winpeshl.ini"), b"[LaunchApps]\r\n").unwrap();
    std::fs::create_dir_all(root.join("sources")).unwrap();
    std::fs::write(root.join("sources/setup.exe"), b"setup").unwrap();
}

pub const X86: u16 = 0x14c;
pub const AMD64: u16 = 0x8664;
pub const ARM64: u16 = 0xaa64;

/// Captures a one-image WIM of a WinPE-like tree.
pub fn one_image_wim(dir: &Path, name: &str, machine: u16, vista: bool) -> PathBuf {
    let tree = dir.join(format!("{name}-tree"));
    winpe_tree(&tree, machine, vista);
    let wim = dir.join(format!("{name}.wim"));
    run(Command::new("wimlib-imagex")
        .arg("capture")
        .arg(&tree)
        .arg(&wim)
        .arg("Microsoft Windows PE")
        .arg("--compress=LZX"));
    wim
}

/// A Setup-like boot.wim: image 1 "Microsoft Windows PE", image 2 "Microsoft Windows Setup"
/// (bootable), both for `machine`.
pub fn setup_wim(dir: &Path, path: &Path, machine: u16) {
    let t1 = dir.join("setup-tree1");
    let t2 = dir.join("setup-tree2");
    winpe_tree(&t1, machine, false);
    winpe_tree(&t2, machine, false);
    std::fs::write(t2.join("sources/setup.exe"), b"the real setup").unwrap();
    run(Command::new("wimlib-imagex")
        .arg("capture")
        .arg(&t1)
        .arg(path)
        .arg("Microsoft Windows PE")
        .arg("--compress=LZX"));
    run(Command::new("wimlib-imagex")
        .arg("append")
        .arg(&t2)
        .arg(path)
        .arg("Microsoft Windows Setup")
        .arg("--boot"));
}

/// A fake driver package: x86 and amd64 binaries (distinct bytes), the INF; no arm64.
pub fn package(dir: &Path) -> PathBuf {
    let p = dir.join("package");
    std::fs::create_dir_all(p.join("x86")).unwrap();
    std::fs::create_dir_all(p.join("amd64")).unwrap();
    std::fs::write(p.join("x86/rvblk.sys"), X86_SYS).unwrap();
    std::fs::write(p.join("amd64/rvblk.sys"), AMD64_SYS).unwrap();
    std::fs::write(p.join("rvblk.inf"), INF).unwrap();
    p
}

/// The rvblk.sys that image `image` of `wim` holds in System32\drivers, extracted into `dest`.
pub fn driver_in(wim: &Path, image: u32, dest: &Path) -> Option<Vec<u8>> {
    extract(wim, image, "/Windows/System32/drivers/rvblk.sys", dest)
}

/// Extracts one file of an image with wimlib-imagex; `None` if it does not exist.
pub fn extract(wim: &Path, image: u32, path: &str, dest: &Path) -> Option<Vec<u8>> {
    let _ = std::fs::remove_dir_all(dest);
    std::fs::create_dir_all(dest).unwrap();
    let out = Command::new("wimlib-imagex")
        .arg("extract")
        .arg(wim)
        .arg(image.to_string())
        .arg(path)
        .arg(format!("--dest-dir={}", dest.display()))
        .arg("--no-acls")
        .arg("--no-attributes")
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let name = path.rsplit('/').next().unwrap();
    std::fs::read(dest.join(name)).ok()
}

/// Extracts an image's SYSTEM hive to `dest/SYSTEM` and returns its path.
pub fn extract_hive(wim: &Path, image: u32, dest: &Path) -> PathBuf {
    extract(wim, image, "/Windows/System32/config/SYSTEM", dest).expect("SYSTEM hive in image");
    dest.join("SYSTEM")
}

/// `wimlib-imagex dir --detailed`: (path, SHA-1 of the unnamed stream or "-") per entry.
pub fn wim_listing(wim: &Path, image: u32) -> Vec<(String, String)> {
    let out = run(Command::new("wimlib-imagex")
        .arg("dir")
        .arg(wim)
        .arg(image.to_string())
        .arg("--detailed"));
    let mut v: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        if let Some(p) = line.strip_prefix("Full Path           = \"") {
            v.push((p.trim_end_matches('"').to_string(), "-".into()));
        } else if let Some(h) = line.trim().strip_prefix("Hash              = ") {
            if let Some(last) = v.last_mut() {
                last.1 = h.to_string();
            }
        }
    }
    v
}

/// The plain path list of an image.
pub fn wim_paths(wim: &Path, image: u32) -> Vec<String> {
    run(Command::new("wimlib-imagex")
        .arg("dir")
        .arg(wim)
        .arg(image.to_string()))
    .lines()
    .map(str::to_string)
    .collect()
}

pub fn args(v: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    v.iter().map(|a| a.as_ref().to_os_string()).collect()
}

pub fn sha(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Builds (if needed) and returns the `rvblk` binary next to this test's target directory.
pub fn rvblk_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?.to_path_buf(); // target/<profile>
    let target_dir = profile_dir.parent()?.to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "-p", "rvblk"])
        .env("CARGO_TARGET_DIR", &target_dir);
    if profile_dir.file_name()? == "release" {
        cmd.arg("--release");
    }
    let status = cmd.current_dir(env!("CARGO_MANIFEST_DIR")).status().ok()?;
    if !status.success() {
        eprintln!("note: building the rvblk binary failed; end-to-end binary tests skipped");
        return None;
    }
    let bin = profile_dir.join("rvblk");
    bin.is_file().then_some(bin)
}

/// The two El Torito boot records of a Windows Setup ISO (BIOS etfsboot.com, UEFI efisys.bin),
/// as mkisofs-style options.
const EL_TORITO_ARGS: [&str; 9] = [
    "-b",
    "boot/etfsboot.com",
    "-no-emul-boot",
    "-boot-load-size",
    "8",
    "-eltorito-alt-boot",
    "-e",
    "efi/microsoft/boot/efisys.bin",
    "-no-emul-boot",
];

/// A small bootable ISO like Windows Setup media, built with xorriso (independent of rvblk):
/// volume label `label`, El Torito BIOS image `boot/etfsboot.com` (no emulation, 8 sectors) and
/// UEFI image `efi/microsoft/boot/efisys.bin`, `sources/boot.wim` = `wim`, the two BCD stores
/// (`bcd_store`) and a few other files. Boot images hold random-looking but fixed bytes.
pub fn bootable_iso(dir: &Path, wim: &Path, label: &str) -> PathBuf {
    let tree = dir.join(format!("{label}-tree"));
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(tree.join("boot")).unwrap();
    std::fs::create_dir_all(tree.join("efi/microsoft/boot")).unwrap();
    std::fs::create_dir_all(tree.join("sources")).unwrap();
    let bytes = |n: usize, seed: u32| -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect()
    };
    std::fs::write(tree.join("boot/etfsboot.com"), bytes(4096, 1)).unwrap();
    std::fs::write(
        tree.join("efi/microsoft/boot/efisys.bin"),
        bytes(64 * 1024, 2),
    )
    .unwrap();
    std::fs::copy(wim, tree.join("sources/boot.wim")).unwrap();
    bcd_store(&tree.join("boot/bcd"), true);
    bcd_store(&tree.join("efi/microsoft/boot/bcd"), true);
    std::fs::write(tree.join("setup.exe"), b"MZ setup").unwrap();
    std::fs::write(tree.join("sources/install.wim"), bytes(100_000, 3)).unwrap();
    let iso = dir.join(format!("{label}.iso"));
    run(Command::new("xorriso")
        .args([
            "-as",
            "mkisofs",
            "-iso-level",
            "3",
            "-V",
            label,
            "-J",
            "-joliet-long",
        ])
        .args(EL_TORITO_ARGS)
        .arg("-o")
        .arg(&iso)
        .arg(&tree));
    iso
}

/// `xorriso -report_el_torito plain`: (platform, load sectors, LBA, path) per boot image.
pub fn el_torito(iso: &Path) -> Vec<(String, u64, u64, String)> {
    let out = Command::new("xorriso")
        .arg("-indev")
        .arg(iso)
        .args(["-report_el_torito", "plain"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let mut v: Vec<(String, u64, u64, String)> = Vec::new();
    for l in text.lines() {
        if let Some(r) = l.strip_prefix("El Torito boot img :") {
            let f: Vec<&str> = r.split_whitespace().collect();
            v.push((
                f[1].into(),
                f[6].parse().unwrap(),
                f[7].parse().unwrap(),
                String::new(),
            ));
        } else if let Some(r) = l.strip_prefix("El Torito img path :") {
            let (n, p) = r.trim().split_once(' ').unwrap();
            v[n.parse::<usize>().unwrap() - 1].3 = p.trim().to_string();
        }
    }
    v
}

/// The bytes the firmware loads for each boot image (load sectors x 512 at LBA x 2048).
pub fn boot_image_bytes(iso: &Path) -> Vec<(String, Vec<u8>)> {
    let data = std::fs::read(iso).unwrap();
    el_torito(iso)
        .into_iter()
        .map(|(p, n, lba, _)| {
            let a = (lba * 2048) as usize;
            (p, data[a..a + (n * 512) as usize].to_vec())
        })
        .collect()
}

/// The volume id as `xorriso -pvd_info` reports it.
pub fn volume_id(iso: &Path) -> String {
    let out = Command::new("xorriso")
        .arg("-indev")
        .arg(iso)
        .arg("-pvd_info")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("Volume Id    :"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Copies one file out of an ISO with xorriso.
pub fn iso_extract(iso: &Path, path: &str, dest: &Path) {
    let _ = std::fs::remove_file(dest);
    run(Command::new("xorriso")
        .arg("-indev")
        .arg(iso)
        .args(["-osirrox", "on", "-extract", path])
        .arg(dest));
}

/// Like [`bootable_iso`], but the files are in UDF only: the ISO 9660 tree shows just
/// `README.TXT`, as on Windows 10/11 media (built with genisoimage, hiding the rest from ISO 9660).
pub fn udf_only_iso(dir: &Path, wim: &Path, label: &str) -> PathBuf {
    let iso = bootable_iso(dir, wim, label);
    let tree = dir.join(format!("{label}-tree"));
    std::fs::write(
        tree.join("README.TXT"),
        b"This disc contains a UDF file system.",
    )
    .unwrap();
    let udf = dir.join(format!("{label}-udf.iso"));
    let mut cmd = Command::new("genisoimage");
    cmd.args(["-quiet", "-udf", "-V", label])
        .args(EL_TORITO_ARGS)
        .args(["-boot-load-size", "128"]);
    for hidden in ["boot", "efi", "sources", "setup.exe", "boot.catalog"] {
        cmd.args(["-hide", hidden]);
    }
    run(cmd.arg("-o").arg(&udf).arg(&tree));
    std::fs::remove_file(iso).unwrap();
    udf
}
