//! Who asked (`docs/harness-runtime.md` §1): the IRP the emulated I/O manager puts at a
//! control SRB's OriginalRequest (RequestorMode and Tail.Overlay.Thread at the contract's
//! offsets), the requester's thread and token, and SeCreateClientSecurity, SeTokenIsAdmin,
//! SeImpersonateClientEx and PsRevertToSelf with their verifier checks: a reference on the
//! requester's thread while its context is captured, token references balanced, impersonation
//! reverted before the worker waits, completes an SRB or ends, and no file call made while
//! impersonating a token that is not the current requester's.

use super::config::Requester;
use super::objects::{self, ObjKind};
use super::{Kernel, PASSIVE_LEVEL, STATUS_INVALID_PARAMETER, STATUS_SUCCESS};
use std::cell::Cell;
use std::sync::Mutex;

const P: usize = std::mem::size_of::<usize>();
/// IRP.RequestorMode (u8) and IRP.Tail.Overlay.Thread (RUNTIME.md).
pub const IRP_REQUESTOR_MODE: usize = if P == 8 { 0x40 } else { 0x20 };
pub const IRP_THREAD: usize = if P == 8 { 0x98 } else { 0x50 };
/// SECURITY_CLIENT_CONTEXT: its size and ClientToken's offset.
pub const CLIENT_CONTEXT_SIZE: usize = if P == 8 { 72 } else { 60 };
pub const CLIENT_TOKEN: usize = if P == 8 { 16 } else { 12 };
/// SECURITY_QUALITY_OF_SERVICE.ImpersonationLevel SecurityImpersonation.
pub const SECURITY_IMPERSONATION: u32 = 2;

/// What a token lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Admin,
    Filtered,
    User,
    /// The SYSTEM account (a kernel-mode requester's thread, or no impersonation at all).
    System,
}

impl TokenKind {
    pub fn is_admin(self) -> bool {
        matches!(self, TokenKind::Admin | TokenKind::System)
    }
    pub fn name(self) -> &'static str {
        match self {
            TokenKind::Admin => "admin",
            TokenKind::Filtered => "filtered",
            TokenKind::User => "user",
            TokenKind::System => "SYSTEM",
        }
    }
}

pub(crate) struct RequesterRec {
    pub(crate) who: Requester,
    /// The thread object (0 for `NoThread`/`NoIrp`).
    pub(crate) thread: usize,
    pub(crate) irp: usize,
    pub(crate) in_flight: bool,
    /// The request asks for a read-only mount (a write open is a verifier failure).
    pub(crate) read_only: bool,
}

#[derive(Clone, Copy)]
pub(crate) struct TokenRec {
    pub(crate) kind: TokenKind,
    pub(crate) requester: usize,
    pub(crate) level: u32,
    pub(crate) object: usize,
}

#[derive(Default)]
pub(crate) struct SecState {
    pub(crate) requesters: Mutex<Vec<RequesterRec>>,
    pub(crate) tokens: Mutex<Vec<TokenRec>>,
}

thread_local! {
    /// Token index + 1 this host thread impersonates (0: none).
    static IMPERSONATING: Cell<usize> = const { Cell::new(0) };
    /// Requester index + 1 whose context this thread captured last (the request it serves).
    static SERVING: Cell<usize> = const { Cell::new(0) };
    /// The current impersonation was already reported as not reverted (one failure each).
    static REPORTED: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling host thread impersonates a token.
pub fn impersonating() -> bool {
    IMPERSONATING.with(|c| c.get()) != 0
}

impl Kernel {
    fn sec_requesters(&self) -> std::sync::MutexGuard<'_, Vec<RequesterRec>> {
        self.sec
            .requesters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn sec_tokens(&self) -> std::sync::MutexGuard<'_, Vec<TokenRec>> {
        self.sec.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The IRP a control SRB carries at OriginalRequest for `who` (0 for `NoIrp`): a
    /// read-only page with IO_TYPE_IRP, RequestorMode and Thread set and everything else 0xCC.
    /// The requester's thread object lives while the IRP is in flight and as long as the
    /// driver holds references on it. `read_only`: the request is a read-only mount.
    pub fn requester_irp(&self, who: Requester, read_only: bool) -> usize {
        if who == Requester::NoIrp {
            return 0;
        }
        let idx = self.sec_requesters().len();
        let thread = if who == Requester::NoThread {
            0
        } else {
            self.new_object_held(ObjKind::Requester(idx), 0, 1)
        };
        // Everything but the contract's fields is poison (0xCC), so a driver that reads other
        // IRP fields gets no plausible value (the page cannot be no-access around them).
        let mut h = vec![0xCCu8; crate::checks::guard::PAGE];
        h[0] = 6; // IO_TYPE_IRP
        h[1] = 0;
        h[2..4].copy_from_slice(&(if P == 8 { 0x118u16 } else { 0x70 }).to_le_bytes());
        h[IRP_REQUESTOR_MODE] = u8::from(who.user_mode());
        h[IRP_THREAD..IRP_THREAD + P].copy_from_slice(&thread.to_le_bytes()[..P]);
        let irp = objects::readable_page(&h);
        self.sec_requesters().push(RequesterRec {
            who,
            thread,
            irp,
            in_flight: true,
            read_only,
        });
        irp
    }

    /// The control SRB carrying `irp` completed: the I/O manager lets go of the IRP and of its
    /// reference on the thread.
    pub fn requester_done(&self, irp: usize) {
        if irp == 0 {
            return;
        }
        let thread = {
            let mut r = self.sec_requesters();
            match r.iter_mut().find(|x| x.irp == irp && x.in_flight) {
                Some(x) => {
                    x.in_flight = false;
                    x.thread
                }
                None => return,
            }
        };
        objects::release_readable(irp);
        if thread != 0 {
            self.system_reference(thread, -1);
        }
    }

    /// References the driver still holds on the requester of `irp` and on the tokens captured
    /// from it: (thread references, token references).
    pub fn requester_refs(&self, irp: usize) -> (i64, i64) {
        let Some((idx, thread)) = self
            .sec_requesters()
            .iter()
            .enumerate()
            .find(|(_, r)| r.irp == irp)
            .map(|(i, r)| (i, r.thread))
        else {
            return (0, 0);
        };
        let t = if thread == 0 {
            0
        } else {
            self.object_refs(thread).map_or(0, |r| r.0)
        };
        let tokens: Vec<usize> = self
            .sec_tokens()
            .iter()
            .filter(|t| t.requester == idx)
            .map(|t| t.object)
            .collect();
        let k = tokens
            .iter()
            .map(|&o| self.object_refs(o).map_or(0, |r| r.0))
            .sum();
        (t, k)
    }

    /// The IRP of the last requester made (for the reference check after a request).
    pub fn last_requester_irp(&self) -> Option<usize> {
        self.sec_requesters()
            .last()
            .map(|r| r.irp)
            .filter(|&i| i != 0)
    }

    /// A user-mode requester whose request is in flight, if any (a file opened without
    /// impersonating while one is would be opened with the driver's rights).
    pub(crate) fn user_request_in_flight(&self) -> Option<(usize, Requester)> {
        self.sec_requesters()
            .iter()
            .enumerate()
            .find(|(_, r)| r.in_flight && r.who.user_mode())
            .map(|(i, r)| (i, r.who))
    }

    /// Whether an in-flight request asks for a read-only mount.
    pub(crate) fn read_only_request_in_flight(&self) -> bool {
        self.sec_requesters()
            .iter()
            .any(|r| r.in_flight && r.read_only)
    }

    /// The token this host thread impersonates, after checking that it belongs to the request
    /// the thread serves (`api` names the call for the message).
    pub(crate) fn impersonation(&self, api: &str) -> Option<TokenRec> {
        let t = IMPERSONATING.with(|c| c.get());
        if t == 0 {
            return None;
        }
        let tok = self.sec_tokens().get(t - 1).copied()?;
        let serving = SERVING.with(|c| c.get());
        if serving != tok.requester + 1 {
            self.fail(format!(
                "{api} while impersonating the token of control requester #{}, but the request being served is requester #{}'s: a PsRevertToSelf is missing",
                tok.requester,
                serving.saturating_sub(1)
            ));
        }
        Some(tok)
    }

    /// Verifier: this thread must not impersonate at `when` (the worker back at its loop, an
    /// SRB completion, a thread ending).
    pub(crate) fn check_not_impersonating(&self, when: &str) {
        let t = IMPERSONATING.with(|c| c.get());
        if t != 0 && !REPORTED.with(|c| c.replace(true)) {
            let who = self
                .sec_tokens()
                .get(t - 1)
                .map_or(usize::MAX, |x| x.requester);
            self.fail(format!(
                "{when} while still impersonating control requester #{who}'s token: PsRevertToSelf must come first (docs/control.md §6.3)"
            ));
        }
    }

    /// Forgets this host thread's impersonation (a thread that ended).
    pub(crate) fn forget_impersonation(&self) {
        let t = IMPERSONATING.with(|c| c.replace(0));
        if t != 0 {
            if let Some(o) = self.sec_tokens().get(t - 1).map(|x| x.object) {
                self.system_reference(o, -1);
            }
        }
        SERVING.with(|c| c.set(0));
    }

    pub(crate) fn create_client_security(
        &self,
        thread: usize,
        qos: *const u8,
        remote: u8,
        ctx: *mut u8,
    ) -> i32 {
        let api = "SeCreateClientSecurity";
        self.check_irql(api, PASSIVE_LEVEL);
        self.check_not_impersonating(&format!("{api} (the next request starts)"));
        let idx = match self.object_kind(thread) {
            Some(ObjKind::Requester(i)) => i,
            Some(k) => {
                self.fail(format!(
                    "{api}({thread:#x}): the {} is not a requester's thread",
                    k.describe()
                ));
                return STATUS_INVALID_PARAMETER;
            }
            None => {
                self.fail(format!(
                    "{api}({thread:#x}): not a live thread object (the requester's thread was dereferenced, or never referenced) [bug check 0x18]"
                ));
                return STATUS_INVALID_PARAMETER;
            }
        };
        if self.object_refs(thread).is_some_and(|(d, _)| d <= 0) {
            self.fail(format!(
                "{api} on control requester #{idx}'s thread without a reference of the driver's own (ObfReferenceObject in HwStartIo): the requester may exit meanwhile"
            ));
        }
        if qos.is_null() || ctx.is_null() {
            self.fail(format!(
                "{api} with a NULL QualityOfService or ClientContext"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: SECURITY_QUALITY_OF_SERVICE is 12 bytes of driver memory.
        let q = unsafe { std::slice::from_raw_parts(qos, 12) }.to_vec();
        let len = u32::from_le_bytes(q[0..4].try_into().expect("4 bytes"));
        let level = u32::from_le_bytes(q[4..8].try_into().expect("4 bytes"));
        if len != 12 {
            self.fail(format!(
                "{api}: SECURITY_QUALITY_OF_SERVICE.Length {len} (12 expected)"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        if level != SECURITY_IMPERSONATION || q[8] != 0 || q[9] != 0 || remote != 0 {
            self.log_line(format!(
                "[harness] {api}: ImpersonationLevel {level}, tracking {}, EffectiveOnly {}, remote {remote} (the contract: 2, static 0, 0, FALSE)",
                q[8], q[9]
            ));
        }
        let who = self.sec_requesters()[idx].who;
        let kind = match who {
            Requester::Admin => TokenKind::Admin,
            Requester::Filtered => TokenKind::Filtered,
            Requester::User => TokenKind::User,
            _ => TokenKind::System,
        };
        let ti = self.sec_tokens().len();
        // Static tracking: a copy of the client's token, referenced once for the context.
        let object = self.new_object_held(ObjKind::Token(ti), 1, 0);
        self.sec_tokens().push(TokenRec {
            kind,
            requester: idx,
            level,
            object,
        });
        let mut c = [0u8; CLIENT_CONTEXT_SIZE];
        c[..12].copy_from_slice(&q);
        c[CLIENT_TOKEN..CLIENT_TOKEN + P].copy_from_slice(&object.to_le_bytes()[..P]);
        c[CLIENT_TOKEN + P + 2] = remote;
        // SAFETY: the driver owns CLIENT_CONTEXT_SIZE bytes at `ctx` (the contract).
        unsafe { std::ptr::copy_nonoverlapping(c.as_ptr(), ctx, c.len()) };
        SERVING.with(|s| s.set(idx + 1));
        STATUS_SUCCESS
    }

    fn token_of(&self, api: &str, token: usize) -> Option<TokenRec> {
        match self.object_kind(token) {
            Some(ObjKind::Token(i)) => self.sec_tokens().get(i).copied(),
            other => {
                self.fail(format!(
                    "{api}({token:#x}): not a live access token ({}) [bug check 0x18]",
                    other.map_or("no object".to_string(), |k| k.describe())
                ));
                None
            }
        }
    }

    pub(crate) fn token_is_admin(&self, token: usize) -> u8 {
        self.check_irql("SeTokenIsAdmin", PASSIVE_LEVEL);
        self.token_of("SeTokenIsAdmin", token)
            .map_or(0, |t| u8::from(t.kind.is_admin()))
    }

    pub(crate) fn impersonate_client(&self, ctx: *const u8, server: usize) -> i32 {
        let api = "SeImpersonateClientEx";
        self.check_irql(api, PASSIVE_LEVEL);
        if ctx.is_null() {
            self.fail(format!("{api} with a NULL ClientContext"));
            return STATUS_INVALID_PARAMETER;
        }
        if server != 0 {
            self.log_line(format!(
                "[harness] {api} with ServerThread {server:#x}: the contract impersonates on the calling thread (NULL)"
            ));
        }
        let at = ctx.wrapping_add(CLIENT_TOKEN) as *const usize;
        // SAFETY: ClientToken inside the driver's SECURITY_CLIENT_CONTEXT.
        let token = unsafe { at.read_unaligned() };
        let Some(t) = self.token_of(api, token) else {
            return STATUS_INVALID_PARAMETER;
        };
        // The newest record of this object: a token's object address is reused once an older
        // token was freed, and the older record stays in the table.
        let ti = self
            .sec_tokens()
            .iter()
            .rposition(|x| x.object == t.object)
            .expect("a known token");
        // The impersonation holds its own reference, as PsImpersonateClient does.
        self.system_reference(t.object, 1);
        let old = IMPERSONATING.with(|c| c.replace(ti + 1));
        REPORTED.with(|c| c.set(false));
        if old != 0 {
            if let Some(o) = self.sec_tokens().get(old - 1).map(|x| x.object) {
                self.system_reference(o, -1);
            }
        }
        STATUS_SUCCESS
    }

    pub(crate) fn revert_to_self(&self) {
        self.check_irql("PsRevertToSelf", PASSIVE_LEVEL);
        REPORTED.with(|c| c.set(false));
        let t = IMPERSONATING.with(|c| c.replace(0));
        if t != 0 {
            if let Some(o) = self.sec_tokens().get(t - 1).map(|x| x.object) {
                self.system_reference(o, -1);
            }
        }
    }
}
