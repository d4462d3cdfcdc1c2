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

/// A Boolean BCD setting to change.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub element: &'static str,
    pub name: &'static str,
    pub on: bool,
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
    let on = RegValue {
        ty: REG_BINARY,
        data: vec![1],
    };
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
            if s.on {
                if cur.as_ref() == Some(&on) {
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
                h.set_value(el, "Element", &on)?;
                changes.push(format!("{guid}: {} ({}) = on", s.name, s.element));
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
    if !is_bcd(&h)? {
        return Err(Error::new(
            ErrorKind::BadBcd,
            format!(
                "{}: registry hive is not a BCD store (no Objects key)",
                path.display()
            ),
        ));
    }
    let targets = targets(&h, all)
        .map_err(|e| Error::new(e.kind, format!("{}: {}", path.display(), e.msg)))?;
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
    if !is_bcd(&h)? {
        return Err(Error::new(
            ErrorKind::BadBcd,
            format!(
                "{}: registry hive is not a BCD store (no Objects key)",
                path.display()
            ),
        ));
    }
    targets(&h, all).map_err(|e| Error::new(e.kind, format!("{}: {}", path.display(), e.msg)))
}
