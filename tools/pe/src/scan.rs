//! Instruction scan: find floating-point and SIMD instructions in a driver's code.
//!
//! Kernel code on x86 may not touch x87/MMX/SSE/AVX state without `KeSaveFloatingPointState`, and
//! rvblk's x86 binaries must also run on CPUs without SSE (Windows XP's minimum). On x64 the kernel
//! saves the SSE (XMM) state around kernel code, so SSE is allowed, but x87, MMX and AVX are not.
//!
//! # Approach
//! Every section with `MEM_EXECUTE` (or `CNT_CODE`) is decoded **linearly** from its start to the
//! end of its initialized data (`min(VirtualSize, SizeOfRawData)`) with iced-x86 in 32- or 64-bit
//! mode. rust-lld puts constants, jump tables and string literals into `.rdata`, and pads between
//! functions with `int3`, so linear sweep sees code only in practice. Bytes that do not decode are
//! counted in [`ScanReport::invalid`] (their offsets are kept in [`ScanReport::invalid_offsets`], up
//! to 64) and the decoder resynchronizes on the next byte; a finding that came out of such a
//! region might be data rather than code, which the offsets let a person check with a
//! disassembler. arm64 images are not scanned ([`ScanReport::scanned`] is `false`).
//!
//! # Classification
//! An instruction is classified, in this order:
//! * [`SimdClass::Avx`]: EVEX/XOP/MVEX encoded, any YMM/ZMM/opmask register operand (including a
//!   VSIB index), or VEX-encoded with an XMM operand, or an AVX-family CPUID feature (AVX, AVX2,
//!   FMA, F16C, AVX-512*, AVX-VNNI, …). VEX-encoded GPR-only instructions (BMI1/2) are not AVX.
//! * [`SimdClass::Sse`]: any XMM operand, or an SSE-family CPUID feature (SSE…SSE4.2, SSSE3,
//!   SSE4a, AES, PCLMULQDQ, SHA; this includes `ldmxcsr`/`stmxcsr`, the fences, `prefetchnta`,
//!   `movnti`, which need an SSE/SSE2 CPU).
//! * [`SimdClass::Mmx`]: an MM register operand, or CPUID MMX/3DNow!.
//! * [`SimdClass::X87`]: an ST register operand, or CPUID FPU/287/387 (x87 control instructions such
//!   as `fninit`, `fnstcw`), or FXSR (`fxsave`/`fxrstor` touch x87/SSE state).

use crate::{Pe, MACHINE_AMD64, MACHINE_I386};
use iced_x86::{
    CpuidFeature, Decoder, DecoderOptions, EncodingKind, Formatter, Instruction, IntelFormatter,
    OpKind, Register,
};
use std::fmt;

/// Class of a floating-point/SIMD instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdClass {
    /// x87 floating point.
    X87,
    /// MMX / 3DNow!.
    Mmx,
    /// SSE family (XMM registers with legacy encoding, MXCSR, SSE-only instructions).
    Sse,
    /// AVX family (VEX/EVEX vector instructions, YMM/ZMM/opmask registers).
    Avx,
}

impl fmt::Display for SimdClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SimdClass::X87 => "x87",
            SimdClass::Mmx => "MMX",
            SimdClass::Sse => "SSE",
            SimdClass::Avx => "AVX",
        })
    }
}

/// One flagged instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Section name.
    pub section: String,
    /// RVA of the instruction.
    pub rva: u32,
    /// File offset of the instruction.
    pub file_offset: usize,
    /// Class.
    pub class: SimdClass,
    /// Intel-syntax disassembly.
    pub text: String,
    /// CPUID features iced reports for it (debug names, e.g. `SSE2`).
    pub cpuid: Vec<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {}+{:#x} (RVA {:#x}, file offset {:#x}): {} [{}]",
            self.class,
            self.section,
            self.rva,
            self.rva,
            self.file_offset,
            self.text,
            self.cpuid.join(",")
        )
    }
}

/// The result of [`instruction_scan`].
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// Whether the image's machine was scanned (false for arm64 and unknown machines).
    pub scanned: bool,
    /// Why it was not scanned.
    pub not_scanned_reason: Option<String>,
    /// Bitness used (32 or 64).
    pub bitness: u32,
    /// Names of the sections decoded.
    pub sections: Vec<String>,
    /// Instructions decoded.
    pub instructions: usize,
    /// Invalid encodings met (data in code, or padding the decoder does not accept).
    pub invalid: usize,
    /// File offsets of the first 64 invalid encodings.
    pub invalid_offsets: Vec<usize>,
    /// Every flagged instruction.
    pub findings: Vec<Finding>,
}

impl ScanReport {
    /// Findings of the given classes.
    pub fn of_class<'s>(&'s self, classes: &'s [SimdClass]) -> impl Iterator<Item = &'s Finding> {
        self.findings
            .iter()
            .filter(move |f| classes.contains(&f.class))
    }

    /// Findings that the driver's rules forbid for this machine: on x86 every class, on x64
    /// x87/MMX/AVX (SSE is allowed).
    pub fn forbidden(&self, machine: u16) -> Vec<&Finding> {
        let classes: &[SimdClass] = match machine {
            MACHINE_AMD64 => &[SimdClass::X87, SimdClass::Mmx, SimdClass::Avx],
            _ => &[
                SimdClass::X87,
                SimdClass::Mmx,
                SimdClass::Sse,
                SimdClass::Avx,
            ],
        };
        self.of_class(classes).collect()
    }
}

/// Classify one decoded instruction (see the module docs).
pub fn classify(instr: &Instruction) -> Option<SimdClass> {
    let mut xmm = false;
    let mut wide = false;
    let mut mm = false;
    let mut st = false;
    let mut note = |r: Register| {
        if r.is_ymm() || r.is_zmm() || r.is_k() {
            wide = true;
        } else if r.is_xmm() {
            xmm = true;
        } else if r.is_mm() {
            mm = true;
        } else if r.is_st() {
            st = true;
        }
    };
    for i in 0..instr.op_count() {
        match instr.op_kind(i) {
            OpKind::Register => note(instr.op_register(i)),
            OpKind::Memory => {
                note(instr.memory_base());
                note(instr.memory_index());
            }
            _ => {}
        }
    }
    if instr.op_mask() != Register::None {
        wide = true;
    }
    let cpuid = instr.cpuid_features();
    let has = |set: &[CpuidFeature]| cpuid.iter().any(|c| set.contains(c));
    let encoding = instr.encoding();
    if matches!(
        encoding,
        EncodingKind::EVEX | EncodingKind::XOP | EncodingKind::MVEX
    ) || wide
        || (encoding == EncodingKind::VEX && xmm)
        || has(AVX_FEATURES)
    {
        return Some(SimdClass::Avx);
    }
    if xmm || has(SSE_FEATURES) {
        return Some(SimdClass::Sse);
    }
    if mm || has(MMX_FEATURES) || encoding == EncodingKind::D3NOW {
        return Some(SimdClass::Mmx);
    }
    if st || has(X87_FEATURES) {
        return Some(SimdClass::X87);
    }
    None
}

const AVX_FEATURES: &[CpuidFeature] = &[
    CpuidFeature::AVX,
    CpuidFeature::AVX2,
    CpuidFeature::FMA,
    CpuidFeature::FMA4,
    CpuidFeature::F16C,
    CpuidFeature::XOP,
    CpuidFeature::AVX512F,
    CpuidFeature::AVX512BW,
    CpuidFeature::AVX512CD,
    CpuidFeature::AVX512DQ,
    CpuidFeature::AVX512ER,
    CpuidFeature::AVX512PF,
    CpuidFeature::AVX512VL,
    CpuidFeature::AVX512_4FMAPS,
    CpuidFeature::AVX512_4VNNIW,
    CpuidFeature::AVX512_BF16,
    CpuidFeature::AVX512_BITALG,
    CpuidFeature::AVX512_IFMA,
    CpuidFeature::AVX512_VBMI,
    CpuidFeature::AVX512_VBMI2,
    CpuidFeature::AVX512_VNNI,
    CpuidFeature::AVX512_VP2INTERSECT,
    CpuidFeature::AVX512_VPOPCNTDQ,
    CpuidFeature::AVX512_FP16,
    CpuidFeature::AVX_VNNI,
    CpuidFeature::AVX_IFMA,
    CpuidFeature::AVX_NE_CONVERT,
    CpuidFeature::AVX_VNNI_INT8,
    CpuidFeature::AVX_VNNI_INT16,
    CpuidFeature::VAES,
    CpuidFeature::VPCLMULQDQ,
    CpuidFeature::KNC,
];

const SSE_FEATURES: &[CpuidFeature] = &[
    CpuidFeature::SSE,
    CpuidFeature::SSE2,
    CpuidFeature::SSE3,
    CpuidFeature::SSSE3,
    CpuidFeature::SSE4_1,
    CpuidFeature::SSE4_2,
    CpuidFeature::SSE4A,
    CpuidFeature::AES,
    CpuidFeature::PCLMULQDQ,
    CpuidFeature::SHA,
];

const MMX_FEATURES: &[CpuidFeature] = &[
    CpuidFeature::MMX,
    CpuidFeature::D3NOW,
    CpuidFeature::D3NOWEXT,
    CpuidFeature::CYRIX_D3NOW,
];

const X87_FEATURES: &[CpuidFeature] = &[
    CpuidFeature::FPU,
    CpuidFeature::FPU287,
    CpuidFeature::FPU287XL_ONLY,
    CpuidFeature::FPU387,
    CpuidFeature::FPU387SL_ONLY,
    CpuidFeature::CYRIX_FPU,
    CpuidFeature::FXSR,
];

/// Decode `code` (loaded at `ip`) with the given bitness and classify every instruction.
/// `section`/`rva`/`file_offset` describe where `code` starts.
pub fn scan_bytes(
    code: &[u8],
    bitness: u32,
    section: &str,
    rva: u32,
    file_offset: usize,
    report: &mut ScanReport,
) {
    let mut decoder = Decoder::with_ip(bitness, code, rva as u64, DecoderOptions::NONE);
    let mut formatter = IntelFormatter::new();
    let mut instr = Instruction::default();
    while decoder.can_decode() {
        let pos = decoder.position();
        decoder.decode_out(&mut instr);
        if instr.is_invalid() {
            report.invalid += 1;
            if report.invalid_offsets.len() < 64 {
                report.invalid_offsets.push(file_offset + pos);
            }
            // Resynchronize on the next byte rather than trusting the decoder's skip length.
            decoder
                .set_position(pos + 1)
                .expect("position inside the buffer");
            decoder.set_ip(rva as u64 + pos as u64 + 1);
            continue;
        }
        report.instructions += 1;
        if let Some(class) = classify(&instr) {
            let mut text = String::new();
            formatter.format(&instr, &mut text);
            report.findings.push(Finding {
                section: section.to_string(),
                rva: rva + pos as u32,
                file_offset: file_offset + pos,
                class,
                text,
                cpuid: instr
                    .cpuid_features()
                    .iter()
                    .map(|c| format!("{c:?}"))
                    .collect(),
            });
        }
    }
}

/// Disassemble every executable section of `pe` and report x87/MMX/SSE/AVX instructions.
pub fn instruction_scan(pe: &Pe<'_>) -> ScanReport {
    let bitness = match pe.machine {
        MACHINE_I386 => 32,
        MACHINE_AMD64 => 64,
        m => {
            return ScanReport {
                scanned: false,
                not_scanned_reason: Some(format!(
                    "not scanned: machine {m:#06x} ({}) is not x86",
                    pe.machine_name()
                )),
                ..ScanReport::default()
            }
        }
    };
    let mut report = ScanReport {
        scanned: true,
        bitness,
        ..ScanReport::default()
    };
    let data = pe.data();
    for s in &pe.sections {
        if !(s.is_executable() || s.contains_code()) {
            continue;
        }
        let start = s.pointer_to_raw_data as usize;
        let end = (start + s.file_data_len() as usize).min(data.len());
        if start >= end {
            continue;
        }
        report.sections.push(s.name.clone());
        scan_bytes(
            &data[start..end],
            bitness,
            &s.name,
            s.virtual_address,
            start,
            &mut report,
        );
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(code: &[u8], bitness: u32) -> Vec<SimdClass> {
        let mut r = ScanReport::default();
        scan_bytes(code, bitness, ".text", 0x1000, 0x400, &mut r);
        r.findings.iter().map(|f| f.class).collect()
    }

    #[test]
    fn classify_samples() {
        use SimdClass::*;
        // fld dword [eax]
        assert_eq!(classes(&[0xd9, 0x00], 32), vec![X87]);
        // fninit
        assert_eq!(classes(&[0xdb, 0xe3], 32), vec![X87]);
        // movups xmm0, [eax]
        assert_eq!(classes(&[0x0f, 0x10, 0x00], 32), vec![Sse]);
        // paddq mm0, mm1 (MMX form of an SSE2 instruction: MM register → MMX)
        assert_eq!(classes(&[0x0f, 0xd4, 0xc1], 32), vec![Mmx]);
        // paddq xmm0, xmm1
        assert_eq!(classes(&[0x66, 0x0f, 0xd4, 0xc1], 64), vec![Sse]);
        // emms
        assert_eq!(classes(&[0x0f, 0x77], 32), vec![Mmx]);
        // vmovups ymm0, [rax]
        assert_eq!(classes(&[0xc5, 0xfc, 0x10, 0x00], 64), vec![Avx]);
        // vmovups xmm0, [rax] (VEX.128)
        assert_eq!(classes(&[0xc5, 0xf8, 0x10, 0x00], 64), vec![Avx]);
        // andn eax, ebx, ecx (BMI1, VEX but GPR only) → nothing
        assert!(classes(&[0xc4, 0xe2, 0x60, 0xf2, 0xc1], 64).is_empty());
        // lfence (SSE2 CPU required)
        assert_eq!(classes(&[0x0f, 0xae, 0xe8], 32), vec![Sse]);
        // mov eax, [ebx]; ret
        assert!(classes(&[0x8b, 0x03, 0xc3], 32).is_empty());
    }

    #[test]
    fn invalid_bytes_resync() {
        let mut r = ScanReport::default();
        // 0x0f 0x0b is ud2 (valid); 0xff 0xff is invalid in 64-bit mode, then nop, ret
        scan_bytes(&[0xff, 0xff, 0x90, 0xc3], 64, ".text", 0, 0, &mut r);
        assert!(r.invalid >= 1);
        assert!(r.instructions >= 2);
    }
}
