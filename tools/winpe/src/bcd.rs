//! BCD stores (`\boot\BCD`, `\efi\microsoft\boot\BCD`): registry hives with
//! `Objects\{GUID}\Elements\<type>\Element` (spec `docs/windows-integration.md` §5.5).
//!
//! `on` writes the Boolean element as REG_BINARY `01` (exactly one byte). `off` deletes the
//! element from the object, which is what `bcdedit /deletevalue` does and means "off" (the
//! default); values inherited from other objects (e.g. `{bootloadersettings}`) are not touched.

use crate::error::{Error, ErrorKind, Result};
use crate::store::{RegValue, RegistryHive, REG_BINARY};

pub const BOOTMGR: &str = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}";
pub const ELEM_DEFAULT: &str = "23000003";
pub const ELEM_DESCRIPTION: &str = "12000004";
pub const ELEM_TESTSIGNING: &str = "16000049";
pub const ELEM_NOINTEGRITY: &str = "16000048";
pub const OS_LOADER_TYPE: u32 = 0x1020_0003;
/// The kernel debugger for the OS this loader starts (`bcdedit /debug on`), `docs/tools.md` §BCD.
pub const ELEM_KERNEL_DEBUGGER: &str = "260000a0";
/// Debugger transport (0 = serial), COM port number and baud rate (`bcdedit /dbgsettings serial
/// debugport:N baudrate:B`); library elements, valid on any boot application object.
pub const ELEM_DEBUGGER_TYPE: &str = "15000011";
pub const ELEM_DEBUGGER_PORT: &str = "15000013";
pub const ELEM_DEBUGGER_BAUD: &str = "15000014";

/// What a setting does to its element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementValue {
    /// Boolean element set: REG_BINARY `01`.
    On,
    /// Element deleted (as `bcdedit /deletevalue`).
    Off,
    /// Integer element: REG_BINARY, 8 bytes little endian.
    Integer(u64),
}

/// A BCD setting to change.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub element: &'static str,
    pub name: &'static str,
    pub value: ElementValue,
}

impl Setting {
    pub fn boolean(element: &'static str, name: &'static str, on: bool) -> Setting {
        Setting {
            element,
            name,
            value: if on {
                ElementValue::On
            } else {
                ElementValue::Off
            },
        }
    }
}

/// `--debug`: the kernel debugger over a serial port, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugSetting {
    Serial { port: u8, baud: u32 },
    Off,
}

impl DebugSetting {
    /// The element changes: serial sets all four, off deletes all four.
    pub fn settings(self) -> Vec<Setting> {
        let (on, ty, port, baud) = match self {
            DebugSetting::Serial { port, baud } => (
                ElementValue::On,
                ElementValue::Integer(0),
                ElementValue::Integer(port.into()),
                ElementValue::Integer(baud.into()),
            ),
            DebugSetting::Off => (
                ElementValue::Off,
                ElementValue::Off,
                ElementValue::Off,
                ElementValue::Off,
            ),
        };
        vec![
            Setting {
                element: ELEM_KERNEL_DEBUGGER,
                name: "debug",
                value: on,
            },
            Setting {
                element: ELEM_DEBUGGER_TYPE,
                name: "debugtype",
                value: ty,
            },
            Setting {
                element: ELEM_DEBUGGER_PORT,
                name: "debugport",
                value: port,
            },
            Setting {
                element: ELEM_DEBUGGER_BAUD,
                name: "baudrate",
                value: baud,
            },
        ]
    }
}

impl std::str::FromStr for DebugSetting {
    type Err = String;

    /// `off`, `serial`, `serial:PORT` or `serial:PORT,BAUD` (defaults COM1, 115200).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(DebugSetting::Off);
        }
        let usage = || {
            format!(
                "{s:?}: use serial, serial:PORT or serial:PORT,BAUD (e.g. serial:1,115200), or off"
            )
        };
        let rest = match s.split_once(':') {
            Some((t, r)) if t.eq_ignore_ascii_case("serial") => Some(r),
            None if s.eq_ignore_ascii_case("serial") => None,
            _ => return Err(usage()),
        };
        let (port, baud) = match rest {
            None => (1, 115_200),
            Some(r) => {
                let (p, b) = r.split_once(',').unwrap_or((r, "115200"));
                let port: u8 = p.trim().parse().map_err(|_| usage())?;
                let baud: u32 = b.trim().parse().map_err(|_| usage())?;
                (port, baud)
            }
        };
        if port == 0 {
            return Err(format!("{s:?}: COM port numbers start at 1"));
        }
        const BAUDS: [u32; 5] = [9600, 19_200, 38_400, 57_600, 115_200];
        if !BAUDS.contains(&baud) {
            return Err(format!(
                "{s:?}: baud rate {baud} is not one the serial debugger takes ({BAUDS:?})"
            ));
        }
        Ok(DebugSetting::Serial { port, baud })
    }
}

/// Whether the hive looks like a BCD store (has `Objects`).
pub fn is_bcd<H: RegistryHive>(h: &H) -> Result<bool> {
    Ok(h.child(h.root(), "Objects")?.is_some())
}

/// The GUID of the default OS loader (`{bootmgr}` element 23000003).
pub fn default_loader<H: RegistryHive>(h: &H) -> Result<String> {
    let objects = h
        .child(h.root(), "Objects")?
        .ok_or_else(|| Error::new(ErrorKind::BadBcd, "not a BCD store: no Objects key"))?;
    let bm = h.child(objects, BOOTMGR)?.ok_or_else(|| {
        Error::new(
            ErrorKind::BadBcd,
            format!("BCD store has no {{bootmgr}} object ({BOOTMGR})"),
        )
    })?;
    let guid = h
        .open_path(&format!("Objects\\{BOOTMGR}\\Elements\\{ELEM_DEFAULT}"))?
        .map(|n| h.value(n, "Element"))
        .transpose()?
        .flatten()
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::BadBcd,
                "BCD store: {bootmgr} has no default entry (element 23000003)",
            )
        })?;
    let _ = bm;
    if h.child(objects, &guid)?.is_none() {
        return Err(Error::new(
            ErrorKind::BadBcd,
            format!("BCD store: the default entry {guid} named by {{bootmgr}} does not exist"),
        ));
    }
    Ok(guid)
}

/// The GUIDs of all objects whose `Description\Type` is an OS loader (0x10200003).
pub fn os_loaders<H: RegistryHive>(h: &H) -> Result<Vec<String>> {
    let Some(objects) = h.child(h.root(), "Objects")? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (name, node) in h.children(objects)? {
        if let Some(d) = h.child(node, "Description")? {
            if h.value(d, "Type")?.and_then(|v| v.as_dword()) == Some(OS_LOADER_TYPE) {
                out.push(name);
            }
        }
    }
    Ok(out)
}

/// The integer value of `element` on object `guid` (`None` = not set on that object).
pub fn get_integer<H: RegistryHive>(h: &H, guid: &str, element: &str) -> Result<Option<u64>> {
    let Some(n) = h.open_path(&format!("Objects\\{guid}\\Elements\\{element}"))? else {
        return Ok(None);
    };
    Ok(h.value(n, "Element")?.map(|v| {
        let mut b = [0u8; 8];
        let k = v.data.len().min(8);
        b[..k].copy_from_slice(&v.data[..k]);
        u64::from_le_bytes(b)
    }))
}

/// The Boolean value of `element` on object `guid` (`None` = not set on that object).
pub fn get_bool<H: RegistryHive>(h: &H, guid: &str, element: &str) -> Result<Option<bool>> {
    let Some(n) = h.open_path(&format!("Objects\\{guid}\\Elements\\{element}"))? else {
        return Ok(None);
    };
    Ok(h.value(n, "Element")?
        .map(|v| v.data.iter().any(|&b| b != 0)))
}

/// A loader's description (element 12000004), if any.
pub fn description<H: RegistryHive>(h: &H, guid: &str) -> Result<Option<String>> {
    let Some(n) = h.open_path(&format!("Objects\\{guid}\\Elements\\{ELEM_DESCRIPTION}"))? else {
        return Ok(None);
    };
    Ok(h.value(n, "Element")?.and_then(|v| v.as_str()))
}

/// The objects a `bcd` command changes: the default loader, or with `all` every OS loader.
pub fn targets<H: RegistryHive>(h: &H, all: bool) -> Result<Vec<String>> {
    if !all {
        return Ok(vec![default_loader(h)?]);
    }
    let mut v = os_loaders(h)?;
    if let Ok(d) = default_loader(h) {
        if !v.iter().any(|g| g.eq_ignore_ascii_case(&d)) {
            v.push(d);
        }
    }
    if v.is_empty() {
        return Err(Error::new(
            ErrorKind::BadBcd,
            "BCD store has no OS loader objects (Type 0x10200003)",
        ));
    }
    Ok(v)
}

/// Applies `settings` to `targets`; returns the change lines (empty = nothing to do).
pub fn apply<H: RegistryHive>(
    h: &mut H,
    targets: &[String],
    settings: &[Setting],
) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    for guid in targets {
        let obj = h.open_path(&format!("Objects\\{guid}"))?.ok_or_else(|| {
            Error::new(
                ErrorKind::BadBcd,
                format!("BCD store: object {guid} does not exist"),
            )
        })?;
        for s in settings {
            let elements = h.child(obj, "Elements")?;
            let el = match elements {
                Some(e) => h.child(e, s.element)?,
                None => None,
            };
            let cur = match el {
                Some(n) => h.value(n, "Element")?,
                None => None,
            };
            let want = match s.value {
                ElementValue::On => Some(RegValue {
                    ty: REG_BINARY,
                    data: vec![1],
                }),
                ElementValue::Integer(v) => Some(RegValue {
                    ty: REG_BINARY,
                    data: v.to_le_bytes().to_vec(),
                }),
                ElementValue::Off => None,
            };
            if let Some(want) = want {
                if cur.as_ref() == Some(&want) {
                    continue;
                }
                let elements = match elements {
                    Some(e) => e,
                    None => h.add_child(obj, "Elements")?,
                };
                let el = match el {
                    Some(n) => n,
                    None => h.add_child(elements, s.element)?,
                };
                h.set_value(el, "Element", &want)?;
                let shown = match s.value {
                    ElementValue::Integer(v) => v.to_string(),
                    _ => "on".into(),
                };
                changes.push(format!("{guid}: {} ({}) = {shown}", s.name, s.element));
            } else if let Some(n) = el {
                h.delete_key(n)?;
                changes.push(format!("{guid}: {} ({}) removed (off)", s.name, s.element));
            }
        }
    }
    Ok(changes)
}

/// Opens the BCD store at `path`, applies `settings` to the default loader (or every OS loader
/// with `all`) and writes it back safely (temp file + rename) only if something changed.
/// Returns the change lines.
pub fn edit_store(path: &std::path::Path, settings: &[Setting], all: bool) -> Result<Vec<String>> {
    let mut h = crate::hive::Hive::open(path, true)?;
    let targets = store_targets(&h, path, all)?;
    let changes = apply(&mut h, &targets, settings)?;
    if !changes.is_empty() {
        crate::error::ensure_writable(path)?;
        crate::hive::commit_in_place(&mut h)?;
    }
    Ok(changes)
}

/// Checks that `path` is a BCD store with a resolvable target set, without changing it.
pub fn check_store(path: &std::path::Path, all: bool) -> Result<Vec<String>> {
    let h = crate::hive::Hive::open(path, false)?;
    store_targets(&h, path, all)
}

/// The loader objects `all` selects in the hive opened from `path`, which must be a BCD store;
/// errors name `path`.
fn store_targets(h: &crate::hive::Hive, path: &std::path::Path, all: bool) -> Result<Vec<String>> {
    if !is_bcd(h)? {
        return Err(Error::new(
            ErrorKind::BadBcd,
            format!(
                "{}: registry hive is not a BCD store (no Objects key)",
                path.display()
            ),
        ));
    }
    targets(h, all).map_err(|e| Error::new(e.kind, format!("{}: {}", path.display(), e.msg)))
}
