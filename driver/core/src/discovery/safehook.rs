//! The INT 13h "safe hook" chain (`docs/loaders.md` §2, §9 B, rules 5–8).

use super::memory::{far_to_linear, le32, LOW_END};
use super::{grub4dos, memdisk, Ctx, DiscoveryLog, Event, PhysicalMemory, Seen, MAX_HOPS};

/// `$INT13SF` at hook + 3 (§2.2).
pub(crate) const SIGNATURE: &[u8; 8] = b"$INT13SF";
/// Safe-hook structure size with MEMDISK's +0x1B extension (§2.2).
pub(crate) const HOOK_LEN: usize = 31;
/// Lowest address a hook may occupy: above the IVT and BDA (rule 6, 8).
pub(crate) const MIN_HOOK: u32 = 0x500;

/// Read a safe hook at `lin`: the 31 bytes, if they lie in `[0x500, 0xA0000)` and carry the
/// signature (rule 5, 6).
pub(crate) fn read_hook<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &Ctx<'_, M, L>,
    lin: u32,
) -> Option<[u8; HOOK_LEN]> {
    if lin < MIN_HOOK || u64::from(lin) + HOOK_LEN as u64 > LOW_END {
        return None;
    }
    let hook = ctx.mem.low::<HOOK_LEN>(u64::from(lin))?;
    (&hook[3..11] == SIGNATURE).then_some(hook)
}

/// Vendor ID at +0x0B (8 bytes).
pub(crate) fn vendor(hook: &[u8; HOOK_LEN]) -> [u8; 8] {
    let mut v = [0u8; 8];
    v.copy_from_slice(&hook[0x0B..0x13]);
    v
}

/// Walk the chain from IVT[0x13] (§2.4). Every hook is dispatched on its vendor; the walk
/// continues through all of them (chained loaders, observed §5).
#[inline(never)] // one step per frame: see `discover_with`
pub(crate) fn walk<M: PhysicalMemory + ?Sized, L: DiscoveryLog + ?Sized>(
    ctx: &mut Ctx<'_, M, L>,
    seen: &mut Seen,
) {
    let Some(mut vector) = ctx.mem.low_u32(0x4C) else {
        return;
    };
    let mut visited = arrayvec::ArrayVec::<u32, MAX_HOPS>::new();
    loop {
        let seg = vector >> 16;
        let lin = far_to_linear(vector);
        // Rule 8: a vector into ROM/video (seg ≥ 0xA000) or into the IVT/BDA ends the walk
        // silently; rule 6: the 31-byte structure must fit in [0x500, 0xA0000).
        if seg >= 0xA000 || lin < MIN_HOOK || u64::from(lin) + HOOK_LEN as u64 > LOW_END {
            ctx.log(Event::ChainEnd { vector });
            return;
        }
        // Rule 7: loop protection (also covers prev == current).
        if visited.contains(&lin) {
            ctx.log(Event::ChainLoop { hook: lin });
            return;
        }
        let Some(hook) = read_hook(ctx, lin) else {
            // End of the safe part of the chain (an unsafe hook, or MEMDISK's IRET stub).
            ctx.log(Event::ChainEnd { vector });
            return;
        };
        if visited.try_push(lin).is_err() {
            ctx.log(Event::ChainTooLong);
            return;
        }
        let vendor = vendor(&hook);
        // Rule 5: the vendor must be 8 printable ASCII bytes.
        if !vendor.iter().all(|b| (0x20..0x7F).contains(b)) {
            ctx.log(Event::BadVendor { hook: lin });
            return;
        }
        ctx.log(Event::HookFound { hook: lin, vendor });
        // Rule 6: warn when the hook lies in "free" conventional memory below the BDA top.
        if ctx.bda_top != 0 && lin < ctx.bda_top & !0x3FF {
            ctx.log(Event::HookInFreeMemory {
                hook: lin,
                bda_top: ctx.bda_top,
            });
        }
        match &vendor {
            b"GRUB4DOS" => grub4dos::from_hook(ctx, vector, lin, seen),
            b"MEMDISK " => memdisk::from_hook(ctx, lin, &hook, seen),
            _ => ctx.log(Event::UnknownVendor { hook: lin, vendor }),
        }
        vector = le32(&hook, 0x13);
    }
}
