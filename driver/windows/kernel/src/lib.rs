//! Kernel-side glue shared by `rvblk.sys` (StorPort) and `rvblkxp.sys` (SCSIPORT);
//! `docs/driver.md` describes the layering.
//!
//! `unsafe` lives only in the kernel-wrapper modules and the shared trampolines, each stating the
//! contract of what it wraps:
//!
//! * [`nt`] — the ntoskrnl/HAL imports; wrappers with an IRQL rule take an `rvblk_irql` token;
//!   the panic handler and `_fltused`.
//! * [`ntio`] — the asynchronous disk path's kernel objects: spin-locked data, events, the
//!   worker thread, disk-interface notifications, opened disks and their IRPs, UEFI variables.
//! * [`ntmount`] — the runtime mounts' kernel objects: the requester's thread and security
//!   context, impersonation, files opened by path, RAM-disk chunks (MDLs).
//! * [`physmem`] — pool objects, the low-memory snapshot, OS RAM ranges, the NFIT.
//! * [`medium`] — image mappings and byte access for the I/O path.
//! * [`srb`] — a safe view of one live SRB and its buffers.
//! * [`extension`] — the port's device extension as a [`port::DeviceState`], and the
//!   HwFindAdapter and HwAdapterControl arguments both ports receive, as typed values.
//! * [`trampolines`] — the adapter callbacks both ports share (HwInitialize, HwResetBus,
//!   HwAdapterControl), generic over [`trampolines::AdapterCallbacks`], and HwStartIo's common
//!   part.
//!
//! The rest is safe Rust called from the ports' trampolines:
//!
//! * [`port`] — ConfigInfo per port flavour, HwFindAdapter/HwAdapterControl/free logic.
//! * [`discovery`] — PASSIVE_LEVEL (HwFindAdapter): runs the core's discovery.
//! * [`backed`] — disk-backed images: the worker thread, its queue, disk arrival/removal,
//!   identification and the I/O through the extent list (`docs/driver.md` "Disk-backed images").
//! * [`adapter`] — the LUN table, exposure (core policy) and rule 29 (core integrity).
//! * [`io`] — HwStartIo's logic (≤ DISPATCH_LEVEL, many CPUs at once).
//! * [`control`] — HwStartIo's SRB_FUNCTION_IO_CONTROL: the control interface (SCSIPORT).
//! * [`runtime`] — runtime LUNs (mounted files, RAM disks) and the control interface's worker
//!   side (StorPort, `docs/control.md` §10).
//! * [`fastio`] — the disk-backed fast path: asynchronous IRPs from HwStartIo (StorPort).
//! * [`readahead`] — read-ahead buffers of file LUNs and of disk-backed LUNs no write reaches.
//! * [`log`] — `DbgPrint` lines with the `rvblk:` prefix.
#![no_std]
// Enforced: only the modules marked `allow(unsafe_code)` below may contain unsafe code.
#![deny(unsafe_code)]

pub mod adapter;
pub mod backed;
pub mod control;
pub mod discovery;
#[allow(unsafe_code)]
pub mod extension;
#[allow(unsafe_code)]
pub mod fastio;
pub mod io;
pub mod log;
#[allow(unsafe_code)]
pub mod medium;
#[allow(unsafe_code)]
pub mod nt;
#[allow(unsafe_code)]
pub mod ntio;
#[allow(unsafe_code)]
pub mod ntmount;
#[allow(unsafe_code)]
pub mod physmem;
pub mod port;
#[allow(unsafe_code)]
pub mod readahead;
pub mod runtime;
#[allow(unsafe_code)]
pub mod srb;
#[allow(unsafe_code)]
pub mod trampolines;
