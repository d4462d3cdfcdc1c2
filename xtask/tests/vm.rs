//! `cargo xtask vm` on the project's own small boot ISOs (the MEMDISK end-to-end images of
//! `tests/e2e`): it boots them from RAM, captures COM1, and exits with the guest's status; it
//! refuses a missing ISO, a missing QEMU and `--uefi` with a clear message.

use rvblk_e2e::images::{self, BootVariant};
use rvblk_e2e::{iso, serial, tools};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn xtask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
}

fn vm(dir: &Path, iso: &Path, extra: &[&str]) -> (Output, String) {
    let log = dir.join("serial.log");
    let out = xtask()
        .arg("vm")
        .arg("--iso")
        .arg(iso)
        .arg("--serial-log")
        .arg(&log)
        .args(["--ram-mib", "64"])
        .args(extra)
        .output()
        .unwrap();
    let text = std::fs::read(&log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    (out, text)
}

/// The e2e ISO whose boot program prints its report and `MARK:HALT` to COM1, then halts.
fn e2e_iso(dir: &Path) -> PathBuf {
    let boot = images::boot_program(BootVariant::Plain, dir);
    let p = dir.join("e2e.iso");
    std::fs::write(&p, images::iso_image(&boot)).unwrap();
    p
}

#[test]
fn boots_the_e2e_iso_from_ram_and_captures_com1() {
    let t = tempfile_dir("boot");
    let iso = e2e_iso(&t);
    let (out, log) = vm(&t, &iso, &["--until", serial::MARKER, "--timeout", "120"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}\nserial:\n{log}");
    // The boot program ran from MEMDISK's RAM copy of the ISO: it reports MEMDISK's hook.
    assert!(log.contains("E2E DL=E0"), "{log}");
    assert!(log.contains("MBFT "), "{log}");
    assert!(log.contains(serial::MARKER), "{log}");
    assert!(err.contains("contains \"MARK:HALT\""), "{err}");
}

#[test]
fn a_guest_that_keeps_running_is_stopped_by_the_timeout() {
    let t = tempfile_dir("timeout");
    let iso = e2e_iso(&t);
    let (out, log) = vm(&t, &iso, &["--timeout", "5"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(err.contains("still running after 5 s"), "{err}");
    assert!(log.contains(serial::MARKER), "{log}");
}

/// A boot sector (same ISO layout) that prints a line and writes `status` to isa-debug-exit.
fn exiting_iso(dir: &Path, status: u8) -> PathBuf {
    let nasm = tools::find(tools::NASM).unwrap();
    let src = dir.join("exit.asm");
    std::fs::write(
        &src,
        format!(
            "bits 16\norg 0x7C00\n\
             jmp 0:start\nstart: xor ax, ax\nmov ds, ax\nmov si, msg\n\
             next: lodsb\ntest al, al\njz done\nmov dx, 0x3F8\nout dx, al\njmp next\n\
             done: mov al, {status}\nout 0xF4, al\nhang: hlt\njmp hang\n\
             msg: db 'VMTEST status {status}', 13, 10, 0\n"
        ),
    )
    .unwrap();
    let bin = dir.join("exit.bin");
    let o = Command::new(nasm)
        .args(["-f", "bin", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let p = dir.join("exit.iso");
    std::fs::write(
        &p,
        iso::build(&std::fs::read(&bin).unwrap(), iso::DATA_LBA + 8),
    )
    .unwrap();
    p
}

#[test]
fn exits_with_the_guests_status() {
    let t = tempfile_dir("status");
    for status in [0u8, 5] {
        let iso = exiting_iso(&t, status);
        let (out, log) = vm(&t, &iso, &["--timeout", "120"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(i32::from(status)), "{err}\n{log}");
        assert!(log.contains(&format!("VMTEST status {status}")), "{log}");
        assert!(
            err.contains(&format!("exited with status {status}")),
            "{err}"
        );
    }
}

#[test]
fn refuses_a_missing_iso_a_missing_qemu_and_uefi() {
    let t = tempfile_dir("refuse");
    let (out, _) = vm(&t, &t.join("nope.iso"), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("nope.iso: the ISO does not exist"), "{err}");

    let iso = t.join("some.iso");
    std::fs::write(&iso, vec![0u8; 64 * 1024]).unwrap();
    let out = xtask()
        .args(["vm", "--iso"])
        .arg(&iso)
        .env("PATH", t.join("empty-path"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("qemu-system-x86_64") && err.contains("apt-get install qemu-system-x86"),
        "{err}"
    );

    let (out, _) = vm(&t, &iso, &["--uefi"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--uefi") && err.contains("MEMDISK"), "{err}");
}

/// A fresh directory under the target dir (no tempfile dependency in xtask).
fn tempfile_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("vm-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
