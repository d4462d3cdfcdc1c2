//! End-to-end tests with a real loader: syslinux MEMDISK (Debian `syslinux-common`) booted in
//! QEMU (TCG) places a real ISO/HDD/floppy image in guest RAM; the guest RAM is dumped over QMP;
//! then the core's discovery (directly) and the real `rvblk.sys` binaries (through the harness
//! CLI, x64 and x86) must find exactly that image and serve it byte for byte.
//!
//! * [`images`], [`iso`], [`pattern`]: deterministic test images whose boot program
//!   (`boot/boot.asm`) prints a marker and the E820 map to COM1 and halts.
//! * [`qemu`]: boot, wait for the marker, `stop` + `pmemsave` (full, or "smart" sparse for big
//!   guests).
//! * [`serial`]: the boot program's output; OS RAM ranges from the E820 map.
//! * [`memdisk`]: a small independent reader of MEMDISK's structures (smart dump, sanity checks).
//! * [`harness`]: runs `rvblk-harness run ... --json` and checks its report.
//! * [`case`]: the case table and the boot-and-dump driver used by `tests/memdisk.rs`.
//!
//! Requirements (Debian packages): `qemu-system-x86`, `syslinux-common`, `nasm`, `gzip`.

pub mod case;
pub mod harness;
pub mod images;
pub mod iso;
pub mod memdisk;
pub mod pattern;
pub mod qemu;
pub mod serial;
pub mod tools;
