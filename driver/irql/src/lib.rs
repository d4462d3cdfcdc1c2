//! IRQL as types (`docs/driver.md` "Execution contexts").
//!
//! Windows documents, for every kernel routine, the highest IRQL it may be called at, and for
//! every miniport callback, the IRQL it runs at. rvblk turns both into types: the port
//! trampolines hand each callback a token for its IRQL ([`Passive`] in HwFindAdapter and
//! HwFreeAdapterResources, [`Dispatch`] in HwStartIo and HwInitialize), and each kernel wrapper
//! with an IRQL rule takes the token it needs. A PASSIVE_LEVEL-only routine therefore cannot be
//! called from the I/O path; it does not compile:
//!
//! ```compile_fail
//! use rvblk_irql::{Dispatch, Passive};
//! // A wrapper of a routine documented for PASSIVE_LEVEL only (e.g. MmGetPhysicalMemoryRanges).
//! fn passive_only(_: &Passive) {}
//! // What HwStartIo receives.
//! fn start_io(irql: &Dispatch) {
//!     passive_only(irql); // error: expected `&Passive`, found `&Dispatch`
//! }
//! ```
//!
//! while anything allowed up to DISPATCH_LEVEL takes either token:
//!
//! ```
//! use rvblk_irql::{AtMostDispatch, Dispatch, Passive};
//! fn map_io_space(_: &impl AtMostDispatch) {}
//! fn find_adapter(irql: &Passive) { map_io_space(irql) }
//! fn start_io(irql: &Dispatch) { map_io_space(irql) }
//! ```
//!
//! Tokens cannot be made in safe code: only the code that knows the IRQL (a trampoline called
//! by the port, a spin lock that raised it) creates one, with `unsafe` and a stated reason. They
//! are neither `Send` nor `Sync`, so they stay on the thread (and IRQL) they describe.
#![no_std]

use core::marker::PhantomData;

/// The caller runs at PASSIVE_LEVEL.
pub struct Passive {
    _here: PhantomData<*const ()>,
}

/// The caller runs at an IRQL ≤ DISPATCH_LEVEL, not known to be lower.
pub struct Dispatch {
    _here: PhantomData<*const ()>,
}

impl Passive {
    /// # Safety
    /// The current thread runs at PASSIVE_LEVEL, and the token is dropped before anything
    /// raises the IRQL (it must not outlive the callback or scope it was made for).
    pub const unsafe fn new_unchecked() -> Self {
        Self { _here: PhantomData }
    }
}

impl Dispatch {
    /// # Safety
    /// The current thread runs at an IRQL ≤ DISPATCH_LEVEL for as long as the token lives.
    pub const unsafe fn new_unchecked() -> Self {
        Self { _here: PhantomData }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Passive {}
    impl Sealed for super::Dispatch {}
}

/// Proof of an IRQL ≤ DISPATCH_LEVEL: both tokens give it.
pub trait AtMostDispatch: sealed::Sealed {}
impl AtMostDispatch for Passive {}
impl AtMostDispatch for Dispatch {}
