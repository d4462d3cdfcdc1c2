//! Booting MEMDISK in QEMU (TCG) and dumping guest RAM over QMP.

use crate::{memdisk, serial, tools};
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long to wait for the boot program's marker. A TCG boot takes well under a second.
pub const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

/// QEMU machine type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// i440fx (QEMU's default `pc`).
    Pc,
    /// Q35 + ICH9.
    Q35,
}

/// One MEMDISK boot.
#[derive(Clone, Debug)]
pub struct GuestConfig {
    pub machine: Machine,
    pub mem_mib: u64,
    /// The file handed to MEMDISK as initrd (image, or gzip'd image).
    pub initrd: PathBuf,
    /// MEMDISK's command line (`iso raw`, `bigraw`, `ro`, ...).
    pub append: String,
}

/// The QEMU command line that boots `cfg` through MEMDISK: TCG (never KVM), no display, no NIC,
/// no reboot (a guest reset ends QEMU), COM1 into the file `serial`. Shared with `cargo xtask vm`,
/// which adds its own devices.
pub fn memdisk_command(qemu: &Path, memdisk: &Path, cfg: &GuestConfig, serial: &Path) -> Command {
    let mut cmd = Command::new(qemu);
    cmd.args(["-accel", "tcg", "-M"])
        .arg(match cfg.machine {
            Machine::Pc => "pc",
            Machine::Q35 => "q35",
        })
        .arg("-m")
        .arg(cfg.mem_mib.to_string())
        .args(["-display", "none", "-nic", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .arg("-kernel")
        .arg(memdisk)
        .arg("-initrd")
        .arg(&cfg.initrd)
        .arg("-append")
        .arg(&cfg.append);
    cmd
}

/// A running guest. Killed when dropped.
pub struct Guest {
    child: Child,
    serial: PathBuf,
    qmp_path: PathBuf,
    stderr: PathBuf,
}

impl Guest {
    /// Starts `qemu-system-x86_64 -accel tcg ... -kernel memdisk -initrd IMAGE -append OPTIONS`
    /// with its serial port and QMP socket in `dir`.
    pub fn boot(cfg: &GuestConfig, dir: &Path) -> Guest {
        let qemu = tools::require(tools::QEMU);
        let memdisk = tools::require_memdisk();
        let serial = dir.join("serial.log");
        // Unix socket paths are limited to 107 bytes, and CI work trees can be deep: keep the
        // socket in the system temp directory under a unique short name.
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let qmp_path = std::env::temp_dir().join(format!(
            "rvblk-e2e-{}-{}.qmp",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let stderr = dir.join("qemu.stderr");
        let _ = std::fs::remove_file(&serial);
        let _ = std::fs::remove_file(&qmp_path);
        let mut cmd = memdisk_command(&qemu, &memdisk, cfg, &serial);
        cmd.arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp_path.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).expect("create qemu stderr file"));
        let child = cmd.spawn().expect("start qemu-system-x86_64");
        Guest {
            child,
            serial,
            qmp_path,
            stderr,
        }
    }

    /// Waits until the serial log contains the marker; returns the log. Panics on timeout or if
    /// QEMU exits first, with the log and QEMU's stderr.
    pub fn wait_for_marker(&mut self) -> String {
        let t0 = Instant::now();
        loop {
            let log = std::fs::read(&self.serial)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if log.contains(serial::MARKER) {
                return log;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "QEMU exited ({st}) before the boot program's marker.\nserial:\n{log}\nstderr:\n{}",
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            if t0.elapsed() > MARKER_TIMEOUT {
                panic!(
                    "no `{}` on the serial port within {:?} (MEMDISK or the boot program failed).\nserial:\n{log}\nstderr:\n{}",
                    serial::MARKER,
                    MARKER_TIMEOUT,
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Connects to QMP and leaves command mode negotiated.
    pub fn qmp(&mut self) -> Qmp {
        let t0 = Instant::now();
        let stream = loop {
            match UnixStream::connect(&self.qmp_path) {
                Ok(s) => break s,
                Err(e) if t0.elapsed() > Duration::from_secs(10) => {
                    panic!("connect to QMP socket: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .expect("QMP timeout");
        let mut q = Qmp {
            reader: BufReader::new(stream.try_clone().expect("clone QMP stream")),
            writer: stream,
        };
        let greeting = q.read_message();
        assert!(
            greeting.get("QMP").is_some(),
            "unexpected QMP greeting {greeting:?}"
        );
        q.execute("qmp_capabilities", json!({}));
        q
    }

    /// Sends `quit` (best effort) and waits for QEMU to exit.
    pub fn quit(mut self, mut qmp: Qmp) {
        let _ = writeln!(qmp.writer, "{}", json!({ "execute": "quit" }));
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.qmp_path);
    }
}

/// A QMP connection.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    fn read_message(&mut self) -> Value {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read from QMP");
        assert!(n > 0, "QMP connection closed");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad QMP JSON {line:?}: {e}"))
    }

    /// Runs one command (`args` is a JSON object) and returns its `return` value; skips events;
    /// panics on an `error` reply.
    pub fn execute(&mut self, command: &str, args: Value) -> Value {
        writeln!(
            self.writer,
            "{}",
            json!({ "execute": command, "arguments": args })
        )
        .expect("write to QMP");
        loop {
            let m = self.read_message();
            if let Some(r) = m.get("return") {
                return r.clone();
            }
            if let Some(e) = m.get("error") {
                panic!("QMP {command} failed: {e}");
            }
        }
    }

    /// `stop`: freezes the guest so the dump is consistent.
    pub fn stop(&mut self) {
        self.execute("stop", json!({}));
    }

    /// `pmemsave` of physical `[start, start + len)` to `file` (QEMU writes the file).
    pub fn pmemsave(&mut self, start: u64, len: u64, file: &Path) {
        self.execute(
            "pmemsave",
            json!({ "val": start, "size": len, "filename": file.display().to_string() }),
        );
    }
}

/// Dumps guest physical memory `[0, ram)` into `out` with a single pmemsave.
pub fn full_dump(qmp: &mut Qmp, ram: u64, out: &Path) {
    qmp.pmemsave(0, ram, out);
    let len = std::fs::metadata(out).expect("dump written").len();
    assert_eq!(len, ram, "pmemsave wrote {len} bytes, expected {ram}");
}

/// "Smart" dump for big guests: low 1 MiB first; locate MEMDISK's image from it (IVT[0x13] →
/// safe hook → mBFT → MDI, or the mBFT scan when the chain is hidden); then save only that range.
/// Both go into a sparse file `out` of length `file_len` at their physical offsets, so a 6 GiB
/// guest costs about the image size on disk. Returns the ranges saved.
pub fn smart_dump(qmp: &mut Qmp, file_len: u64, out: &Path, scratch: &Path) -> Vec<(u64, u64)> {
    const LOW: u64 = 0x10_0000;
    let low_file = scratch.join("low.bin");
    qmp.pmemsave(0, LOW, &low_file);
    let low = std::fs::read(&low_file).expect("read low-memory dump");
    let _ = std::fs::remove_file(&low_file);
    let md = memdisk::from_chain(&low)
        .or_else(|e| memdisk::scan(&low).into_iter().next().ok_or(e))
        .unwrap_or_else(|e| panic!("smart dump: no MEMDISK in low memory: {e}"));
    let (base, len) = (u64::from(md.diskbuf), md.image_bytes());
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(out)
        .expect("create sparse dump");
    f.set_len(file_len).expect("size sparse dump");
    f.write_all_at(&low, 0).expect("write low memory");
    let piece = scratch.join("image-range.bin");
    qmp.pmemsave(base, len, &piece);
    let data = std::fs::read(&piece).expect("read image range");
    let _ = std::fs::remove_file(&piece);
    assert_eq!(data.len() as u64, len);
    f.write_all_at(&data, base).expect("write image range");
    vec![(0, LOW), (base, len)]
}
