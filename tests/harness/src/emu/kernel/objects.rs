//! Kernel objects the harness hands the driver for the asynchronous disk path
//! (`docs/harness-disks.md` §2): IRPs, device, file and thread objects and PnP notification
//! entries, each a page of its own that the driver gets a pointer to, with the reference
//! counts the driver takes and drops, and the thread handles PsCreateSystemThread returns.
//!
//! IRPs and notification entries are opaque (no-access pages: the contract forbids reading
//! them); device, file and thread objects are read-only pages with the DISPATCHER_HEADER /
//! object type a driver could look at. Pages are recycled first-in first-out behind a deep
//! free list, so a stale pointer rarely names a live object again.

use super::Kernel;
use crate::checks::guard::{self, PAGE};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// What an object is, as the verifier messages name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ObjKind {
    /// The thread object of a system thread (index into the thread list).
    Thread(usize),
    /// The FILE_OBJECT IoGetDeviceObjectPointer opened on disk i.
    File(usize),
    /// The DEVICE_OBJECT of disk i.
    Device(usize),
    /// The thread of control requester i (`docs/harness-runtime.md` §1).
    Requester(usize),
    /// Access token i (SeCreateClientSecurity's copy of a requester's token).
    Token(usize),
}

impl ObjKind {
    pub(crate) fn describe(&self) -> String {
        match self {
            ObjKind::Thread(i) => format!("thread object of system thread #{i}"),
            ObjKind::File(d) => format!("FILE_OBJECT of disk {d} (from IoGetDeviceObjectPointer)"),
            ObjKind::Device(d) => format!("DEVICE_OBJECT of disk {d}"),
            ObjKind::Requester(i) => format!("thread object of control requester #{i}"),
            ObjKind::Token(i) => format!("access token #{i} (SeCreateClientSecurity)"),
        }
    }
}

pub(crate) struct Obj {
    pub(crate) kind: ObjKind,
    /// References the driver holds (taken by IoGetDeviceObjectPointer,
    /// ObReferenceObjectByHandle, ObfReferenceObject; dropped by ObfDereferenceObject).
    pub(crate) driver_refs: i64,
    /// References the rest of the system holds (the I/O manager on a requester's thread while
    /// its IRP is in flight, an impersonation on its token). File, requester and token objects
    /// go away when both counts reach zero.
    pub(crate) system_refs: i64,
}

/// Free pages kept before one is reused.
const FREE_DEPTH: usize = 256;

#[derive(Default)]
pub(crate) struct Objects {
    pub(crate) table: Mutex<HashMap<usize, Obj>>,
    /// Thread handles (PsCreateSystemThread) → thread object.
    pub(crate) thread_handles: Mutex<HashMap<usize, usize>>,
}

/// Process-wide page pools (pages are never unmapped: a late access by the driver hits a
/// labelled page, never someone else's memory).
static OPAQUE: Mutex<VecDeque<usize>> = Mutex::new(VecDeque::new());
static READABLE: Mutex<VecDeque<usize>> = Mutex::new(VecDeque::new());

fn take(pool: &Mutex<VecDeque<usize>>, opaque: bool) -> usize {
    let mut p = pool.lock().unwrap_or_else(|e| e.into_inner());
    if p.len() > FREE_DEPTH {
        if let Some(a) = p.pop_front() {
            return a;
        }
    }
    drop(p);
    let a = guard::reserve(PAGE) as usize;
    if opaque {
        guard::register_guard(
            a,
            PAGE,
            "an IRP or PnP notification entry (opaque: the driver must not read or write it)",
        );
    }
    a
}

/// A no-access page standing for an opaque object (IRP, notification entry).
pub(crate) fn opaque_page() -> usize {
    take(&OPAQUE, true)
}

/// Returns an opaque page to the pool.
pub(crate) fn release_opaque(a: usize) {
    OPAQUE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push_back(a);
}

/// A read-only page whose first bytes are `header` (the object's type fields).
pub(crate) fn readable_page(header: &[u8]) -> usize {
    let a = take(&READABLE, false);
    guard::protect(a as *mut u8, PAGE, libc::PROT_READ | libc::PROT_WRITE);
    // SAFETY: the page was just made writable and is owned by the pool's taker.
    unsafe { std::ptr::write_bytes(a as *mut u8, 0, PAGE) };
    // SAFETY: as above.
    unsafe { std::ptr::copy_nonoverlapping(header.as_ptr(), a as *mut u8, header.len().min(PAGE)) };
    guard::protect(a as *mut u8, PAGE, libc::PROT_READ);
    a
}

pub(crate) fn release_readable(a: usize) {
    READABLE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push_back(a);
}

/// Object type codes at offset 0 (`docs/harness-disks.md` §2).
pub(crate) const TYPE_THREAD: u8 = 6;
pub(crate) const TYPE_DEVICE: u8 = 3;
pub(crate) const TYPE_FILE: u8 = 5;
/// Not a dispatcher object; the harness's own marker for a token page.
pub(crate) const TYPE_TOKEN: u8 = 0x1C;

/// Objects that go away with their last reference (system threads and devices stay).
fn transient(k: &ObjKind) -> bool {
    matches!(
        k,
        ObjKind::File(_) | ObjKind::Requester(_) | ObjKind::Token(_)
    )
}

impl Kernel {
    pub(crate) fn new_object(&self, kind: ObjKind, driver_refs: i64) -> usize {
        self.new_object_held(kind, driver_refs, 0)
    }

    /// An object with `system_refs` references held by the emulated system.
    pub(crate) fn new_object_held(
        &self,
        kind: ObjKind,
        driver_refs: i64,
        system_refs: i64,
    ) -> usize {
        let ty = match kind {
            ObjKind::Thread(_) | ObjKind::Requester(_) => TYPE_THREAD,
            ObjKind::File(_) => TYPE_FILE,
            ObjKind::Device(_) => TYPE_DEVICE,
            ObjKind::Token(_) => TYPE_TOKEN,
        };
        let a = match kind {
            // A disk's device object does direct I/O (`docs/harness-disks.md` §3), unless the
            // machine says its disks are buffered.
            ObjKind::Device(_) => {
                let at = core::mem::offset_of!(rvblk_abi::DeviceObjectHead, flags);
                let flags = if self.cfg.machine.disk_buffered_io {
                    rvblk_abi::DO_BUFFERED_IO
                } else {
                    rvblk_abi::DO_DIRECT_IO
                };
                let mut head = vec![0u8; at + 4];
                head[0] = ty;
                head[at..].copy_from_slice(&flags.to_le_bytes());
                readable_page(&head)
            }
            _ => readable_page(&[ty]),
        };
        self.objects
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                a,
                Obj {
                    kind,
                    driver_refs,
                    system_refs,
                },
            );
        a
    }

    /// (driver references, system references) on a live object.
    pub(crate) fn object_refs(&self, a: usize) -> Option<(i64, i64)> {
        self.objects
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&a)
            .map(|o| (o.driver_refs, o.system_refs))
    }

    /// The system takes (`delta` 1) or drops (-1) a reference; the object goes away when
    /// nobody holds one any more.
    pub(crate) fn system_reference(&self, a: usize, delta: i64) {
        let mut t = self.objects.table.lock().unwrap_or_else(|e| e.into_inner());
        let gone = match t.get_mut(&a) {
            Some(o) => {
                o.system_refs += delta;
                o.system_refs <= 0 && o.driver_refs <= 0 && transient(&o.kind)
            }
            None => false,
        };
        if gone {
            t.remove(&a);
            drop(t);
            release_readable(a);
        }
    }

    pub(crate) fn object_kind(&self, a: usize) -> Option<ObjKind> {
        self.objects
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&a)
            .map(|o| o.kind.clone())
    }

    /// ObfReferenceObject / ObReferenceObjectByHandle: one more driver reference.
    pub(crate) fn reference(&self, api: &str, a: usize) -> bool {
        let mut t = self.objects.table.lock().unwrap_or_else(|e| e.into_inner());
        match t.get_mut(&a) {
            Some(o) => {
                o.driver_refs += 1;
                true
            }
            None => {
                drop(t);
                self.fail(format!(
                    "{api}({a:#x}): not an object the kernel gave the driver [bug check 0x18 REFERENCE_BY_POINTER]"
                ));
                false
            }
        }
    }

    /// ObfDereferenceObject: one driver reference less; a file object with none left is closed.
    pub(crate) fn dereference(&self, a: usize) -> isize {
        let mut t = self.objects.table.lock().unwrap_or_else(|e| e.into_inner());
        let Some(o) = t.get_mut(&a) else {
            drop(t);
            self.fail(format!(
                "ObfDereferenceObject({a:#x}): not a live object the kernel gave the driver (dereferenced after its last reference?) [bug check 0x18 REFERENCE_BY_POINTER]"
            ));
            return 0;
        };
        o.driver_refs -= 1;
        let left = o.driver_refs;
        if left < 0 {
            let what = o.kind.describe();
            o.driver_refs = 0;
            drop(t);
            let hint = if what.starts_with("DEVICE_OBJECT") {
                " (IoGetDeviceObjectPointer's reference is on the file object, not the device object)"
            } else {
                ""
            };
            self.fail(format!(
                "ObfDereferenceObject({a:#x}): {what} dereferenced more often than the driver referenced it{hint} [bug check 0x18 REFERENCE_BY_POINTER]"
            ));
            return 0;
        }
        if left == 0 && o.system_refs <= 0 && transient(&o.kind) {
            t.remove(&a);
            drop(t);
            release_readable(a);
        }
        left as isize
    }

    /// Objects the driver still holds references on, as verifier lines.
    pub(crate) fn reference_leaks(&self) -> Vec<String> {
        let t = self.objects.table.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<String> = t
            .iter()
            .filter(|(_, o)| o.driver_refs > 0)
            .map(|(a, o)| {
                format!(
                    "object reference balance: {} at {a:#x} still has {} reference(s) from the driver (ObfDereferenceObject missing)",
                    o.kind.describe(),
                    o.driver_refs
                )
            })
            .collect();
        drop(t);
        let h = self
            .objects
            .thread_handles
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        v.extend(h.keys().map(|h| {
            format!("thread handle leaked: {h:#x} (PsCreateSystemThread) never passed to ZwClose")
        }));
        v.sort();
        v
    }

    /// Forgets every object (session end); pages go back to the pools.
    pub(crate) fn drop_objects(&self) {
        let mut t = self.objects.table.lock().unwrap_or_else(|e| e.into_inner());
        for (a, _) in t.drain() {
            release_readable(a);
        }
        self.objects
            .thread_handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
