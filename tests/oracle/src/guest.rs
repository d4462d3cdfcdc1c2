//! The QEMU side (`docs/scsi-oracle.md` §1): a Debian kernel (`linux-image-amd64`, whatever
//! version is installed under /boot) boots under QEMU TCG from a small initramfs — static
//! busybox (`busybox-static`), the kernel's own virtio-scsi and sg modules, the static SG_IO
//! runner (`guest/sgrun.c`, built with `gcc -static`) and one script per device. The init
//! script finds each `/dev/sg*` by its SCSI target id, runs the script against it and writes
//! the answers to the second serial port; the host reads them from a file.

use crate::script::DeviceKind;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole boot and run; the measured run takes about 10-20 s under TCG.
pub const TIMEOUT: Duration = Duration::from_secs(170);

/// Modules the guest needs (dependencies are resolved from `modules.dep`).
const MODULES: [&str; 3] = ["virtio_pci", "virtio_scsi", "sg"];

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod /lib/modules/$m || echo "insmod $m failed"; done
n=0
while [ "$(ls /sys/class/scsi_generic 2>/dev/null | wc -l)" -lt DEVICES ] && [ $n -lt 300 ]; do
  sleep 0.1; n=$((n+1))
done
exec 3>/dev/ttyS1
echo "ORACLE-BEGIN $(uname -r)" >&3
for d in /sys/class/scsi_generic/*; do
  sg=$(basename $d)
  addr=$(basename $(readlink $d/device))
  t=$(echo $addr | cut -d: -f3)
  name=$(cat /scripts/target$t 2>/dev/null)
  [ -n "$name" ] || continue
  echo "D $name $sg $addr" >&3
  /sgrun /dev/$sg /scripts/$name.txt >&3
done
echo ORACLE-END >&3
sync
poweroff -f
"#;

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{:?} failed ({}): {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Orders version strings like `sort -V` (numeric runs compared as numbers).
fn version_key(s: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut num = String::new();
    let mut txt = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !txt.is_empty() {
                out.push((0, std::mem::take(&mut txt)));
            }
            num.push(c);
        } else {
            if !num.is_empty() {
                out.push((num.parse().unwrap_or(0), String::new()));
                num.clear();
            }
            txt.push(c);
        }
    }
    if !num.is_empty() {
        out.push((num.parse().unwrap_or(0), String::new()));
    }
    if !txt.is_empty() {
        out.push((0, txt));
    }
    out
}

/// The installed Debian kernel: the newest `/boot/vmlinuz-VERSION` that has
/// `/lib/modules/VERSION` (`RVBLK_ORACLE_BOOT` overrides /boot for tests).
pub fn find_kernel() -> Result<(PathBuf, PathBuf, String), String> {
    let boot = std::env::var_os("RVBLK_ORACLE_BOOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/boot"));
    let mut found = Vec::new();
    for e in std::fs::read_dir(&boot).map_err(|e| format!("{}: {e}", boot.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(v) = name.strip_prefix("vmlinuz-") {
            let m = Path::new("/lib/modules").join(v);
            if m.join("modules.dep").is_file() {
                found.push((e.path(), m, v.to_string()));
            }
        }
    }
    found.sort_by_key(|(_, _, v)| version_key(v));
    found.pop().ok_or_else(|| {
        format!(
            "no Debian kernel with modules under {}: `apt-get install linux-image-amd64` (.ci/run installs it)",
            boot.display()
        )
    })
}

fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

/// Module files to load, dependencies first, from a `modules.dep` text.
pub fn resolve_modules(dep: &str, wanted: &[&str]) -> Result<Vec<String>, String> {
    let mut deps: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for line in dep.lines() {
        let Some((m, d)) = line.split_once(':') else {
            continue;
        };
        deps.insert(
            module_name(m),
            (
                m.to_string(),
                d.split_whitespace().map(str::to_string).collect(),
            ),
        );
    }
    fn visit(
        name: &str,
        deps: &BTreeMap<String, (String, Vec<String>)>,
        seen: &mut HashSet<String>,
        out: &mut Vec<String>,
    ) -> Result<(), String> {
        if seen.contains(name) {
            return Ok(());
        }
        let (path, d) = deps
            .get(name)
            .ok_or_else(|| format!("module {name} is not in modules.dep (built in?)"))?;
        seen.insert(name.to_string());
        for x in d {
            visit(&module_name(x), deps, seen, out)?;
        }
        out.push(path.clone());
        Ok(())
    }
    let (mut seen, mut out) = (HashSet::new(), Vec::new());
    for w in wanted {
        visit(&w.replace('-', "_"), &deps, &mut seen, &mut out)?;
    }
    Ok(out)
}

/// True for an ELF64 file without a PT_INTERP program header (statically linked).
fn is_static_elf64(b: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |o: usize| {
        b.get(o..o + 2)
            .map(|x| u16::from_le_bytes([x[0], x[1]]) as usize)
    };
    let Some(phoff) = b
        .get(0x20..0x28)
        .map(|x| u64::from_le_bytes(x.try_into().expect("8")) as usize)
    else {
        return false;
    };
    let (Some(size), Some(num)) = (u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    if b.get(..4) != Some(b"\x7fELF") || b.get(4) != Some(&2) {
        return false;
    }
    (0..num).all(|i| {
        b.get(phoff + i * size..phoff + i * size + 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().expect("4")) != PT_INTERP)
    })
}

/// A statically linked busybox (`busybox-static`): the dynamic one cannot run alone.
pub fn find_busybox() -> Result<PathBuf, String> {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        let p = PathBuf::from(p);
        if std::fs::read(&p).is_ok_and(|b| is_static_elf64(&b)) {
            return Ok(p);
        }
    }
    Err("no static busybox: `apt-get install busybox-static` (.ci/run installs it)".into())
}

/// Builds `sgrun` with `gcc -static` into `dir`.
pub fn build_sgrun(dir: &Path) -> Result<PathBuf, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("guest/sgrun.c");
    let out = dir.join("sgrun");
    run(Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(&src))
    .map_err(|e| format!("building the SG_IO runner (needs gcc and libc6-dev): {e}"))?;
    Ok(out)
}

/// What one guest run produced.
pub struct GuestRun {
    pub kernel: String,
    pub qemu_version: String,
    /// Device name → its answer lines.
    pub answers: BTreeMap<String, String>,
    pub seconds: f64,
}

/// Builds the initramfs in `work` with one script per device and boots it.
pub fn run_guest(
    work: &Path,
    scripts: &[(DeviceKind, String)],
    images: &[(DeviceKind, PathBuf)],
) -> Result<GuestRun, String> {
    let qemu = rvblk_e2e::tools::require(rvblk_e2e::tools::QEMU);
    let qemu_version = run(Command::new(&qemu).arg("--version"))?
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let (vmlinuz, moddir, kver) = find_kernel()?;
    let busybox = find_busybox()?;
    let root = work.join("initramfs");
    let _ = std::fs::remove_dir_all(&root);
    for d in ["bin", "proc", "sys", "dev", "scripts", "lib/modules"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::copy(&busybox, root.join("bin/busybox")).map_err(|e| e.to_string())?;
    let sgrun = build_sgrun(work)?;
    std::fs::copy(&sgrun, root.join("sgrun")).map_err(|e| e.to_string())?;
    let dep = std::fs::read_to_string(moddir.join("modules.dep"))
        .map_err(|e| format!("{}: {e}", moddir.display()))?;
    let mut order = String::new();
    for m in resolve_modules(&dep, &MODULES)? {
        let src = moddir.join(&m);
        let name = format!("{}.ko", module_name(&m));
        let bytes = if m.ends_with(".xz") {
            run_bytes(Command::new("xz").arg("-dc").arg(&src))?
        } else if m.ends_with(".zst") {
            run_bytes(Command::new("zstd").arg("-dc").arg(&src))?
        } else {
            std::fs::read(&src).map_err(|e| format!("{}: {e}", src.display()))?
        };
        std::fs::write(root.join("lib/modules").join(&name), bytes).map_err(|e| e.to_string())?;
        let _ = writeln!(order, "{name}");
    }
    std::fs::write(root.join("modules.order"), order).map_err(|e| e.to_string())?;
    for (d, text) in scripts {
        std::fs::write(root.join("scripts").join(format!("{}.txt", d.name())), text)
            .map_err(|e| e.to_string())?;
        std::fs::write(
            root.join("scripts").join(format!("target{}", d.scsi_id())),
            d.name(),
        )
        .map_err(|e| e.to_string())?;
    }
    let init = INIT.replace("DEVICES", &scripts.len().to_string());
    std::fs::write(root.join("init"), init).map_err(|e| e.to_string())?;
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["init", "sgrun", "bin/busybox"] {
            std::fs::set_permissions(root.join(f), std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
        }
    }
    let cpio = work.join("initramfs.cpio");
    make_cpio(&root, &cpio)?;

    let console = work.join("console.log");
    let results = work.join("results.txt");
    let _ = std::fs::remove_file(&results);
    let mut cmd = Command::new(&qemu);
    cmd.args(["-accel", "tcg", "-M", "pc", "-m", "512", "-smp", "1"])
        .args([
            "-display",
            "none",
            "-nic",
            "none",
            "-no-reboot",
            "-nodefaults",
        ])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-serial")
        .arg(format!("file:{}", results.display()))
        .arg("-kernel")
        .arg(&vmlinuz)
        .arg("-initrd")
        .arg(&cpio)
        .args(["-append", "console=ttyS0 loglevel=3 rdinit=/init panic=-1"])
        .args(["-device", "virtio-scsi-pci,id=scsi0"]);
    for (d, _) in scripts {
        let id = d.scsi_id();
        let serial = format!("ORACLE{id}");
        let image = images.iter().find(|(k, _)| k == d).map(|(_, p)| p);
        match (d, image) {
            (DeviceKind::EmptyCd, _) => {
                cmd.arg("-device").arg(format!(
                    "scsi-cd,bus=scsi0.0,scsi-id={id},lun=0,serial={serial}"
                ));
            }
            (_, Some(p)) => {
                let media = if matches!(d, DeviceKind::Cd) {
                    ",media=cdrom"
                } else {
                    ""
                };
                cmd.arg("-drive").arg(format!(
                    "if=none,id=d{id},file={},format=raw,readonly=on{media}",
                    p.display()
                ));
                let dev = match d {
                    DeviceKind::Cd => "scsi-cd".to_string(),
                    DeviceKind::Disk => "scsi-hd".to_string(),
                    _ => "scsi-hd,removable=on".to_string(),
                };
                cmd.arg("-device").arg(format!(
                    "{dev},bus=scsi0.0,scsi-id={id},lun=0,drive=d{id},serial={serial}"
                ));
            }
            (_, None) => return Err(format!("no image for {}", d.name())),
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    eprintln!(
        "oracle: booting {} ({kver}) in {qemu_version}",
        vmlinuz.display()
    );
    let t0 = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if t0.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the guest did not finish within {TIMEOUT:?}; console:\n{}",
                std::fs::read_to_string(&console).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let seconds = t0.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&results).unwrap_or_default();
    if !status.success() || !text.contains("ORACLE-END") {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        return Err(format!(
            "the guest run failed ({status}); QEMU: {err}\nresults:\n{text}\nconsole:\n{}",
            std::fs::read_to_string(&console).unwrap_or_default()
        ));
    }
    let mut answers = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("D ") {
            current = rest.split_whitespace().next().map(str::to_string);
            if let Some(c) = &current {
                answers.insert(c.clone(), String::new());
            }
        } else if let Some(c) = &current {
            if line.starts_with("R ") || line.starts_with("X ") {
                let s = answers.get_mut(c).expect("inserted");
                s.push_str(line);
                s.push('\n');
            }
        }
    }
    Ok(GuestRun {
        kernel: kver,
        qemu_version,
        answers,
        seconds,
    })
}

fn run_bytes(cmd: &mut Command) -> Result<Vec<u8>, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!("{:?} failed ({})", cmd.get_program(), out.status));
    }
    Ok(out.stdout)
}

/// `find . | cpio -o -H newc` (Debian `cpio`) in `root`.
fn make_cpio(root: &Path, out: &Path) -> Result<(), String> {
    let mut list = String::new();
    let mut stack = vec![PathBuf::from(".")];
    while let Some(d) = stack.pop() {
        let _ = writeln!(list, "{}", d.display());
        let full = root.join(&d);
        if full.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(&full)
                .map_err(|e| e.to_string())?
                .filter_map(Result::ok)
                .map(|e| d.join(e.file_name()))
                .collect();
            entries.sort();
            stack.extend(entries.into_iter().rev());
        }
    }
    let file = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut child = Command::new("cpio")
        .args(["-o", "-H", "newc", "--quiet"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(file)
        .spawn()
        .map_err(|e| format!("cannot run cpio (`apt-get install cpio`): {e}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(list.as_bytes())
        .map_err(|e| e.to_string())?;
    let st = child.wait().map_err(|e| e.to_string())?;
    if !st.success() {
        return Err(format!("cpio failed ({st})"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_module_dependencies_in_load_order() {
        let dep = "kernel/drivers/scsi/sg.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko\n\
                   kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko\n\
                   kernel/drivers/scsi/scsi_common.ko:\n\
                   kernel/drivers/scsi/virtio_scsi.ko.xz: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko\n";
        let v = resolve_modules(dep, &["virtio_scsi", "sg"]).unwrap();
        assert_eq!(
            v,
            vec![
                "kernel/drivers/scsi/scsi_common.ko",
                "kernel/drivers/scsi/scsi_mod.ko",
                "kernel/drivers/scsi/virtio_scsi.ko.xz",
                "kernel/drivers/scsi/sg.ko"
            ]
        );
        assert!(resolve_modules(dep, &["nope"]).is_err());
    }

    #[test]
    fn versions_sort_numerically() {
        let mut v = ["6.1.0-9-amd64", "6.1.0-57-amd64", "6.1.0-10-amd64"];
        v.sort_by_key(|s| version_key(s));
        assert_eq!(v.last(), Some(&"6.1.0-57-amd64"));
    }
}
