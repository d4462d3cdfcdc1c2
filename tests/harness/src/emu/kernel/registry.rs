//! The emulated registry: the keys a driver reads (its service's Parameters, XP's Setup key and
//! SystemStartOptions) behind ZwOpenKey / ZwQueryValueKey / ZwClose, with handle tracking.

use super::{
    Kernel, Personality, SetupPhase, PASSIVE_LEVEL, STATUS_BUFFER_OVERFLOW, STATUS_INVALID_HANDLE,
    STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_INVALID, STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_SUCCESS,
};
use rvblk_abi::status::STATUS_BUFFER_TOO_SMALL;
use std::sync::atomic::Ordering;

const REG_SZ: u32 = 1;
/// KEY_READ: all a driver that only reads its configuration needs.
const KEY_READ: u32 = 0x0002_0019;

/// A registry value of the emulated hive.
#[derive(Clone, Debug)]
pub enum RegValue {
    Dword(u32),
    Sz(String),
}

impl RegValue {
    /// (REG_* type, data bytes as the registry stores them).
    fn encode(&self) -> (u32, Vec<u8>) {
        match self {
            RegValue::Dword(v) => (rvblk_abi::REG_DWORD, v.to_le_bytes().to_vec()),
            RegValue::Sz(s) => (
                REG_SZ,
                s.encode_utf16()
                    .chain(std::iter::once(0))
                    .flat_map(u16::to_le_bytes)
                    .collect(),
            ),
        }
    }
}

impl Kernel {
    /// The values of an emulated registry key (names as given, compared case-insensitively),
    /// or None when the key does not exist.
    pub(super) fn registry_key(&self, path: &str) -> Option<Vec<(&'static str, RegValue)>> {
        let lower = path.trim_end_matches('\\').to_ascii_lowercase();
        let services = "\\registry\\machine\\system\\currentcontrolset\\services\\";
        let service = self.service_name().to_ascii_lowercase();
        if lower == "\\registry\\machine\\system\\setup" {
            return match self.cfg.legacy.setup {
                SetupPhase::TextMode | SetupPhase::MiniNt => None,
                SetupPhase::Installed => Some(vec![("SystemSetupInProgress", RegValue::Dword(0))]),
                SetupPhase::GuiMode => Some(vec![("SystemSetupInProgress", RegValue::Dword(1))]),
            };
        }
        if lower == "\\registry\\machine\\system\\currentcontrolset\\control" {
            return Some(vec![(
                "SystemStartOptions",
                RegValue::Sz(self.cfg.legacy.setup.start_options().into()),
            )]);
        }
        let rest = lower.strip_prefix(services)?;
        if rest == service || rest == format!("{service}\\parameters") {
            return Some(Vec::new());
        }
        if rest == format!("{service}\\parameters\\device") {
            let mut v = vec![
                ("NumberOfRequests", RegValue::Dword(0xff)),
                ("MaximumSGList", RegValue::Dword(0xff)),
            ];
            if let Some(a) = &self.cfg.legacy.argument_string {
                v.push(("DriverParameter", RegValue::Sz(a.clone())));
            }
            return Some(v);
        }
        None
    }

    /// The driver's service name (the key DriverEntry's RegistryPath names).
    pub fn service_name(&self) -> String {
        match (&self.cfg.legacy.service, self.cfg.personality) {
            (Some(s), _) => s.clone(),
            (None, Personality::Xp) => "rvblkxp".into(),
            (None, _) => "rvblk".into(),
        }
    }

    pub(super) fn open_key(
        &self,
        out: *mut usize,
        access: u32,
        oa: *const rvblk_abi::ObjectAttributes,
    ) -> i32 {
        self.check_irql("ZwOpenKey", PASSIVE_LEVEL);
        if out.is_null() || oa.is_null() {
            self.fail("ZwOpenKey with a NULL KeyHandle or ObjectAttributes");
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: non-null OBJECT_ATTRIBUTES from the driver.
        let a = unsafe { oa.read_unaligned() };
        if a.length as usize != std::mem::size_of::<rvblk_abi::ObjectAttributes>() {
            self.fail(format!(
                "ZwOpenKey: OBJECT_ATTRIBUTES.Length {} (expected {})",
                a.length,
                std::mem::size_of::<rvblk_abi::ObjectAttributes>()
            ));
            return STATUS_INVALID_PARAMETER;
        }
        let Some(name) = self.unicode(a.object_name, "ZwOpenKey ObjectName") else {
            return STATUS_OBJECT_NAME_INVALID;
        };
        if !a.root_directory.is_null() {
            self.log_line(format!(
                "[harness] ZwOpenKey relative to a root handle is not emulated ({name})"
            ));
            return STATUS_OBJECT_NAME_NOT_FOUND;
        }
        if a.attributes & rvblk_abi::OBJ_KERNEL_HANDLE == 0 {
            self.log_line(format!(
                "[harness] ZwOpenKey({name}) without OBJ_KERNEL_HANDLE: the handle is reachable from the current process"
            ));
        }
        if access & !KEY_READ != 0 {
            self.fail(format!(
                "ZwOpenKey({name}) asks for access {access:#x}: more than KEY_READ for a key the driver only reads"
            ));
        }
        if self.registry_key(&name).is_none() {
            return STATUS_OBJECT_NAME_NOT_FOUND;
        }
        // Kernel handles have the top bit set.
        let n = self.next_handle.fetch_add(1, Ordering::Relaxed);
        let h = (usize::MAX << (usize::BITS - 1)) | (n << 2);
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(h, name);
        // SAFETY: non-null HANDLE out-pointer from the driver.
        unsafe { out.write_unaligned(h) };
        STATUS_SUCCESS
    }

    pub(super) fn query_value_key(
        &self,
        h: usize,
        name: *const rvblk_abi::UnicodeString,
        class: u32,
        info: *mut u8,
        len: u32,
        ret: *mut u32,
    ) -> i32 {
        self.check_irql("ZwQueryValueKey", PASSIVE_LEVEL);
        let key = self
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&h)
            .cloned();
        let Some(key) = key else {
            self.fail(format!(
                "ZwQueryValueKey with handle {h:#x}, which is not an open key [bug check 0x93]"
            ));
            return STATUS_INVALID_HANDLE;
        };
        if ret.is_null() {
            self.fail("ZwQueryValueKey with a NULL ResultLength (it is not optional)");
            return STATUS_INVALID_PARAMETER;
        }
        let Some(value) = self.unicode(name, "ZwQueryValueKey ValueName") else {
            return STATUS_OBJECT_NAME_INVALID;
        };
        if class != rvblk_abi::KEY_VALUE_PARTIAL_INFORMATION {
            self.log_line(format!(
                "[harness] ZwQueryValueKey information class {class} not emulated"
            ));
            return STATUS_INVALID_PARAMETER;
        }
        let values = self.registry_key(&key).unwrap_or_default();
        let Some((_, v)) = values.iter().find(|(n, _)| n.eq_ignore_ascii_case(&value)) else {
            return STATUS_OBJECT_NAME_NOT_FOUND;
        };
        let (ty, data) = v.encode();
        let need = 12 + data.len() as u32;
        // SAFETY: non-null ULONG out-pointer.
        unsafe { ret.write_unaligned(need) };
        if info.is_null() || len < 12 {
            return STATUS_BUFFER_TOO_SMALL;
        }
        // SAFETY: the caller passes `len` writable bytes at `info`.
        let out = unsafe { std::slice::from_raw_parts_mut(info, len as usize) };
        out[0..4].copy_from_slice(&0u32.to_le_bytes());
        out[4..8].copy_from_slice(&ty.to_le_bytes());
        out[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        if len < need {
            return STATUS_BUFFER_OVERFLOW;
        }
        out[12..need as usize].copy_from_slice(&data);
        STATUS_SUCCESS
    }

    pub(super) fn close(&self, h: usize) -> i32 {
        self.check_irql("ZwClose", PASSIVE_LEVEL);
        // While impersonating, the token must be the current request's (`docs/harness-runtime.md` §4).
        let _ = self.impersonation("ZwClose");
        if self.close_thread_handle(h) || self.close_file_handle(h) {
            return STATUS_SUCCESS;
        }
        if self
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&h)
            .is_none()
        {
            self.fail(format!(
                "ZwClose({h:#x}): not an open handle (double close?) [bug check 0x93 INVALID_KERNEL_HANDLE]"
            ));
            return STATUS_INVALID_HANDLE;
        }
        STATUS_SUCCESS
    }

    /// Reads a driver-supplied UNICODE_STRING, failing on malformed ones.
    pub(super) fn unicode(&self, p: *const rvblk_abi::UnicodeString, what: &str) -> Option<String> {
        if p.is_null() {
            self.fail(format!("{what}: NULL UNICODE_STRING"));
            return None;
        }
        // SAFETY: non-null UNICODE_STRING from the driver.
        let u = unsafe { p.read_unaligned() };
        if u.length % 2 != 0 || u.length > u.maximum_length || u.buffer.is_null() {
            self.fail(format!(
                "{what}: malformed UNICODE_STRING (Length {}, MaximumLength {}, Buffer {:p})",
                u.length, u.maximum_length, u.buffer
            ));
            return None;
        }
        // SAFETY: `Length` bytes of UTF-16 at `Buffer` (UNICODE_STRING contract).
        let units = unsafe { std::slice::from_raw_parts(u.buffer, usize::from(u.length) / 2) };
        Some(String::from_utf16_lossy(units))
    }
}

#[cfg(test)]
mod registry_tests {
    use super::super::{KernelConfig, LegacyConfig};
    use super::*;
    use crate::emu::phys::PhysMem;
    use rvblk_abi::{ObjectAttributes, UnicodeString, OBJ_KERNEL_HANDLE};
    use std::sync::Arc;

    fn kernel(setup: SetupPhase) -> Arc<Kernel> {
        Kernel::new(
            KernelConfig {
                personality: Personality::Xp,
                os_ram: vec![],
                nfit: None,
                verbose: false,
                legacy: LegacyConfig {
                    setup,
                    ..LegacyConfig::default()
                },
                machine: Default::default(),
            },
            Arc::new(PhysMem::from_segments(1 << 20, &[]).unwrap()),
        )
    }

    fn unicode(units: &[u16]) -> UnicodeString {
        UnicodeString {
            length: (units.len() * 2) as u16,
            maximum_length: (units.len() * 2) as u16,
            buffer: units.as_ptr(),
        }
    }

    /// ZwOpenKey + ZwQueryValueKey(SystemSetupInProgress) as the driver does; returns the
    /// handle (left open) and the DWORD, if any.
    fn read_setup_value(k: &Kernel) -> (Option<usize>, Option<u32>) {
        let key: Vec<u16> = "\\Registry\\Machine\\System\\Setup"
            .encode_utf16()
            .collect();
        let value: Vec<u16> = "SystemSetupInProgress".encode_utf16().collect();
        let name = unicode(&key);
        let oa = ObjectAttributes {
            length: std::mem::size_of::<ObjectAttributes>() as u32,
            root_directory: std::ptr::null_mut(),
            object_name: &name,
            attributes: OBJ_KERNEL_HANDLE,
            security_descriptor: std::ptr::null_mut(),
            security_quality_of_service: std::ptr::null_mut(),
        };
        let mut h = 0usize;
        if k.open_key(&mut h, rvblk_abi::KEY_QUERY_VALUE, &oa) != STATUS_SUCCESS {
            return (None, None);
        }
        let mut info = [0u32; 4];
        let mut got = 0u32;
        let st = k.query_value_key(
            h,
            &unicode(&value),
            rvblk_abi::KEY_VALUE_PARTIAL_INFORMATION,
            info.as_mut_ptr().cast(),
            16,
            &mut got,
        );
        assert_eq!(got, 16);
        (Some(h), (st == STATUS_SUCCESS).then_some(info[3]))
    }

    /// The emulated registry of each phase is what the core's decision
    /// (`rvblk_core::policy::SetupPhase::detect`) reads as that phase.
    #[test]
    fn every_emulated_phase_is_detected_as_itself() {
        use rvblk_core::policy::SetupPhase as Detected;
        for (phase, want) in [
            (SetupPhase::Installed, Detected::Installed),
            (SetupPhase::GuiMode, Detected::GuiMode),
            (SetupPhase::TextMode, Detected::TextMode),
            (SetupPhase::MiniNt, Detected::MiniNt),
        ] {
            let k = kernel(phase);
            let (h, in_progress) = read_setup_value(&k);
            if let Some(h) = h {
                assert_eq!(k.close(h), STATUS_SUCCESS);
            }
            let control = k
                .registry_key("\\Registry\\Machine\\System\\CurrentControlSet\\Control")
                .expect("the Control key exists in every phase");
            let options: Vec<u16> = control
                .iter()
                .find_map(|(n, v)| match v {
                    RegValue::Sz(s) if n.eq_ignore_ascii_case("SystemStartOptions") => {
                        Some(s.encode_utf16().collect())
                    }
                    _ => None,
                })
                .expect("SystemStartOptions is a REG_SZ");
            assert_eq!(
                Detected::detect(in_progress, Some(&options)),
                want,
                "{phase:?}"
            );
        }
    }

    #[test]
    fn setup_phases_read_as_the_driver_expects() {
        for (phase, want) in [
            (SetupPhase::Installed, Some(0)),
            (SetupPhase::GuiMode, Some(1)),
            (SetupPhase::MiniNt, None),
            (SetupPhase::TextMode, None),
        ] {
            let k = kernel(phase);
            let (h, v) = read_setup_value(&k);
            assert_eq!(v, want, "{phase:?}");
            if let Some(h) = h {
                assert_eq!(k.close(h), STATUS_SUCCESS);
            }
            assert!(k.leaks().is_empty() && k.failures().is_empty(), "{phase:?}");
        }
    }

    #[test]
    fn open_handles_are_leaks_and_double_close_is_caught() {
        let k = kernel(SetupPhase::Installed);
        let (h, _) = read_setup_value(&k);
        let h = h.expect("the key exists on an installed system");
        assert_eq!(k.handle_leaks().len(), 1, "{:?}", k.handle_leaks());
        assert_eq!(k.close(h), STATUS_SUCCESS);
        assert!(k.handle_leaks().is_empty());
        assert_eq!(k.close(h), STATUS_INVALID_HANDLE);
        assert!(
            k.failures().iter().any(|f| f.contains("double close")),
            "{:?}",
            k.failures()
        );
    }
}
