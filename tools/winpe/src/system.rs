//! The SYSTEM hive part of an injection (spec `docs/windows-integration.md` §5.3): service key, root
//! devnode with `ConfigFlags` = 0, class driver key and (Vista/7) CriticalDeviceDatabase entry,
//! for each control set `\Select` says will boot. Works on any [`RegistryHive`].
//!
//! What inject created is recorded in the service key (values [`MARK_KEYS`], [`MARK_FILES`]) so
//! that `--remove` deletes exactly that and nothing that existed before.

use crate::error::{Error, ErrorKind, Result};
use crate::package::{Arch, InfInfo, HARDWARE_ID, INF_NAME, SERVICE, SYS_NAME};
use crate::store::{RegValue, RegistryHive};

/// SCSIAdapter setup class GUID, as PnP writes it into devnodes (lower case) ...
pub const CLASS_GUID: &str = "{4d36e97b-e325-11ce-bfc1-08002be10318}";
/// ... and as the `Control\Class` key name (upper case).
pub const CLASS_KEY: &str = "{4D36E97B-E325-11CE-BFC1-08002BE10318}";
pub const CLASS_NAME: &str = "SCSIAdapter";
/// Enum\Root device name and CDDB key.
pub const DEVICE: &str = "RVBLK";
pub const CDDB_KEY: &str = "root#rvblk";
pub const MATCHING_ID: &str = "root\\rvblk";
pub const IMAGE_PATH: &str = "\\SystemRoot\\System32\\drivers\\rvblk.sys";
pub const GROUP: &str = "SCSI miniport";
/// `STORAGE_BUS_TYPE` reported by the adapter: Scsi.
pub const BUS_TYPE: u32 = 1;
/// Marker: REG_MULTI_SZ of the keys (hive-relative) inject created.
pub const MARK_KEYS: &str = "RvblkInjectedKeys";
/// Marker: REG_MULTI_SZ of the image paths (files, directories) inject created.
pub const MARK_FILES: &str = "RvblkInjectedFiles";

/// Image paths rvblk puts into an image.
pub const WIM_SYS_PATH: &str = "/Windows/System32/drivers/rvblk.sys";
pub const WIM_INF_PATH: &str = "/Windows/INF/rvblk.inf";
pub const WIM_SYSTEM_HIVE: &str = "/Windows/System32/config/SYSTEM";
pub const WIM_KERNEL: &str = "/Windows/System32/ntoskrnl.exe";

/// `Select\Current` and `Select\Default` resolved to control set key names, deduplicated.
pub fn boot_control_sets<H: RegistryHive>(h: &H) -> Result<Vec<String>> {
    let select = h.child(h.root(), "Select")?.ok_or_else(|| {
        Error::new(
            ErrorKind::NoSelect,
            "SYSTEM hive has no \\Select key (not a Windows SYSTEM hive?)",
        )
    })?;
    let current = h
        .value(select, "Current")?
        .and_then(|v| v.as_dword())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NoSelect,
                "SYSTEM hive: \\Select has no REG_DWORD Current value",
            )
        })?;
    let mut sets = vec![current];
    if let Some(d) = h.value(select, "Default")?.and_then(|v| v.as_dword()) {
        if d != current {
            sets.push(d);
        }
    }
    let mut out = Vec::new();
    for (i, n) in sets.into_iter().enumerate() {
        let name = format!("ControlSet{n:03}");
        if h.child(h.root(), &name)?.is_none() {
            if i == 0 {
                return Err(Error::new(
                    ErrorKind::NoSelect,
                    format!("SYSTEM hive: \\Select\\Current = {n} but {name} does not exist"),
                ));
            }
            continue; // a Default pointing nowhere cannot boot; ignore it
        }
        out.push(name);
    }
    Ok(out)
}

struct Writer<'a, H: RegistryHive> {
    h: &'a mut H,
    changes: Vec<String>,
    created: Vec<String>,
}

impl<H: RegistryHive> Writer<'_, H> {
    /// Opens `path`, creating missing components; records the top-most created key.
    fn ensure_key(&mut self, path: &str) -> Result<H::Node> {
        let mut node = self.h.root();
        let mut so_far = String::new();
        let mut recorded = false;
        for part in path.split('\\') {
            if !so_far.is_empty() {
                so_far.push('\\');
            }
            so_far.push_str(part);
            node = match self.h.child(node, part)? {
                Some(n) => n,
                None => {
                    let n = self.h.add_child(node, part)?;
                    if !recorded {
                        self.created.push(so_far.clone());
                        self.changes.push(format!("created key {path}"));
                        recorded = true;
                    }
                    n
                }
            };
        }
        Ok(node)
    }

    fn ensure_values(&mut self, path: &str, values: &[(&str, RegValue)]) -> Result<()> {
        let node = self.ensure_key(path)?;
        let mut set = Vec::new();
        for (name, v) in values {
            let cur = self.h.value(node, name)?;
            if cur.as_ref().is_some_and(|c| c.same_as(v)) {
                continue;
            }
            self.h.set_value(node, name, v)?;
            set.push(*name);
        }
        if !set.is_empty() && !self.created.iter().any(|c| path.starts_with(c.as_str())) {
            self.changes
                .push(format!("updated {path}: {}", set.join(", ")));
        }
        Ok(())
    }
}

/// The index (`NNNN`) of rvblk's class driver key in `cs`: the one the devnode already points at,
/// else one whose MatchingDeviceId is `root\rvblk`, else the lowest free index.
fn class_index<H: RegistryHive>(h: &H, cs: &str) -> Result<String> {
    let class_path = format!("{cs}\\Control\\Class\\{CLASS_KEY}");
    let class = h.open_path(&class_path)?;
    if let Some(dev) = h.open_path(&format!("{cs}\\Enum\\Root\\{DEVICE}\\0000"))? {
        if let Some(d) = h.value(dev, "Driver")?.and_then(|v| v.as_str()) {
            if let Some((g, idx)) = d.split_once('\\') {
                if g.eq_ignore_ascii_case(CLASS_GUID) {
                    if let Some(c) = class {
                        if h.child(c, idx)?.is_some() {
                            return Ok(idx.to_string());
                        }
                    }
                }
            }
        }
    }
    let Some(class) = class else {
        return Ok("0000".into());
    };
    let kids = h.children(class)?;
    for (name, node) in &kids {
        if let Some(m) = h.value(*node, "MatchingDeviceId")?.and_then(|v| v.as_str()) {
            if m.eq_ignore_ascii_case(MATCHING_ID) {
                return Ok(name.clone());
            }
        }
    }
    let used: Vec<u32> = kids
        .iter()
        .filter(|(n, _)| n.len() == 4)
        .filter_map(|(n, _)| n.parse().ok())
        .collect();
    let free = (0..10_000).find(|i| !used.contains(i)).unwrap_or(9999);
    Ok(format!("{free:04}"))
}

/// What [`inject`] did to a hive.
#[derive(Debug, Default)]
pub struct HiveReport {
    /// Human-readable change lines (empty = nothing changed).
    pub changes: Vec<String>,
    pub warnings: Vec<String>,
    pub control_sets: Vec<String>,
    /// Whether the hive must be written back (changes, or only the inject record grew).
    pub modified: bool,
}

fn read_multi<H: RegistryHive>(h: &H, node: H::Node, name: &str) -> Result<Vec<String>> {
    Ok(h.value(node, name)?
        .and_then(|v| v.as_multi())
        .unwrap_or_default())
}

/// Writes rvblk's registry entries for `arch` into every boot control set. `new_files` are image
/// paths the caller is about to create (recorded for `--remove`).
pub fn inject<H: RegistryHive>(
    h: &mut H,
    inf: &InfInfo,
    arch: Arch,
    new_files: &[String],
) -> Result<HiveReport> {
    let sets = boot_control_sets(h)?;
    let mut report = HiveReport {
        control_sets: sets.clone(),
        ..Default::default()
    };
    for cs in &sets {
        if let Some(list) = h.open_path(&format!("{cs}\\Control\\ServiceGroupOrder"))? {
            let groups = read_multi(h, list, "List")?;
            if !groups.iter().any(|g| g.eq_ignore_ascii_case(GROUP)) {
                report.warnings.push(format!(
                    "{cs}\\Control\\ServiceGroupOrder\\List has no \"{GROUP}\" group; the driver still loads, after the listed groups"
                ));
            }
        }
        let idx = class_index(h, cs)?;
        let cddb = h
            .open_path(&format!("{cs}\\Control\\CriticalDeviceDatabase"))?
            .is_some();
        let mut w = Writer {
            h: &mut *h,
            changes: Vec::new(),
            created: Vec::new(),
        };
        let svc = format!("{cs}\\Services\\{SERVICE}");
        w.ensure_values(
            &svc,
            &[
                ("Type", RegValue::dword(1)),
                ("Start", RegValue::dword(0)),
                ("ErrorControl", RegValue::dword(1)),
                ("ImagePath", RegValue::expand_sz(IMAGE_PATH)),
                ("Group", RegValue::sz(GROUP)),
                ("DisplayName", RegValue::sz(&inf.device_desc)),
            ],
        )?;
        w.ensure_values(
            &format!("{svc}\\Parameters"),
            &[("BusType", RegValue::dword(BUS_TYPE))],
        )?;
        let driver = format!("{CLASS_GUID}\\{idx}");
        w.ensure_values(
            &format!("{cs}\\Enum\\Root\\{DEVICE}\\0000"),
            &[
                ("HardwareID", RegValue::multi_sz(&[HARDWARE_ID])),
                ("Service", RegValue::sz(SERVICE)),
                ("ClassGUID", RegValue::sz(CLASS_GUID)),
                ("Class", RegValue::sz(CLASS_NAME)),
                ("ConfigFlags", RegValue::dword(0)),
                ("DeviceDesc", RegValue::sz(&inf.device_desc)),
                ("Driver", RegValue::sz(&driver)),
                ("Mfg", RegValue::sz(&inf.manufacturer)),
            ],
        )?;
        w.ensure_values(
            &format!("{cs}\\Control\\Class\\{CLASS_KEY}\\{idx}"),
            &[
                ("DriverDesc", RegValue::sz(&inf.device_desc)),
                ("ProviderName", RegValue::sz(&inf.provider)),
                ("DriverVersion", RegValue::sz(&inf.version)),
                ("DriverDate", RegValue::sz(&inf.driver_date())),
                ("DriverDateData", RegValue::binary(&inf.driver_date_data())),
                ("InfPath", RegValue::sz(INF_NAME)),
                ("InfSection", RegValue::sz(&inf.section_for(arch))),
                ("MatchingDeviceId", RegValue::sz(MATCHING_ID)),
            ],
        )?;
        if cddb {
            w.ensure_values(
                &format!("{cs}\\Control\\CriticalDeviceDatabase\\{CDDB_KEY}"),
                &[
                    ("Service", RegValue::sz(SERVICE)),
                    ("ClassGUID", RegValue::sz(CLASS_GUID)),
                ],
            )?;
        }
        let Writer {
            changes, created, ..
        } = w;
        report.modified |= !changes.is_empty();
        report.changes.extend(changes);
        // Record what we created (merged with earlier records) in the service key.
        let node = h.open_path(&svc)?.expect("service key was just ensured");
        let mut keys = read_multi(h, node, MARK_KEYS)?;
        let mut files = read_multi(h, node, MARK_FILES)?;
        let (k0, f0) = (keys.clone(), files.clone());
        for c in created {
            if !keys.iter().any(|k| k.eq_ignore_ascii_case(&c)) {
                keys.push(c);
            }
        }
        for f in new_files {
            if !files.iter().any(|k| k.eq_ignore_ascii_case(f)) {
                files.push(f.clone());
            }
        }
        if keys != k0 {
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            h.set_value(node, MARK_KEYS, &RegValue::multi_sz(&refs))?;
            report.modified = true;
        }
        if files != f0 {
            let refs: Vec<&str> = files.iter().map(String::as_str).collect();
            h.set_value(node, MARK_FILES, &RegValue::multi_sz(&refs))?;
            report.modified = true;
        }
    }
    Ok(report)
}

/// What [`remove`] did, plus the image paths the caller should delete.
#[derive(Debug, Default)]
pub struct RemoveReport {
    pub changes: Vec<String>,
    pub warnings: Vec<String>,
    /// Image paths (files first, then directories) inject had created.
    pub files: Vec<String>,
    /// Whether an inject record was found (else the removal matched rvblk's own values).
    pub recorded: bool,
}

fn delete_path<H: RegistryHive>(h: &mut H, path: &str, changes: &mut Vec<String>) -> Result<()> {
    if let Some(n) = h.open_path(path)? {
        if n == h.root() {
            return Ok(());
        }
        h.delete_key(n)?;
        changes.push(format!("deleted key {path}"));
    }
    Ok(())
}

/// Undoes [`inject`] in every boot control set (and, for safety, in every `ControlSetNNN`
/// carrying rvblk's record).
pub fn remove<H: RegistryHive>(h: &mut H) -> Result<RemoveReport> {
    let mut sets = boot_control_sets(h)?;
    for (name, _) in h.children(h.root())? {
        if name.len() == 13
            && name[..10].eq_ignore_ascii_case("ControlSet")
            && !sets.contains(&name)
        {
            if let Some(svc) = h.open_path(&format!("{name}\\Services\\{SERVICE}"))? {
                if h.value(svc, MARK_KEYS)?.is_some() {
                    sets.push(name);
                }
            }
        }
    }
    let mut r = RemoveReport::default();
    for cs in &sets {
        let svc_path = format!("{cs}\\Services\\{SERVICE}");
        let Some(svc) = h.open_path(&svc_path)? else {
            continue;
        };
        let keys = read_multi(h, svc, MARK_KEYS)?;
        let files = read_multi(h, svc, MARK_FILES)?;
        let has_record = h.value(svc, MARK_KEYS)?.is_some() || h.value(svc, MARK_FILES)?.is_some();
        for f in files {
            if !r.files.contains(&f) {
                r.files.push(f);
            }
        }
        if has_record {
            r.recorded = true;
            // Deepest first, so a parent deletion never invalidates a later lookup.
            let mut keys = keys;
            keys.sort_by_key(|k| std::cmp::Reverse(k.matches('\\').count()));
            for k in &keys {
                delete_path(h, k, &mut r.changes)?;
            }
            // A service key that existed before inject keeps its place; drop only our record.
            if let Some(svc) = h.open_path(&svc_path)? {
                h.delete_value(svc, MARK_KEYS)?;
                h.delete_value(svc, MARK_FILES)?;
                r.changes.push(format!(
                    "removed the inject record from {svc_path} (the key existed before inject)"
                ));
            }
            continue;
        }
        // No record: remove only keys whose values are what rvblk writes.
        let image_path = h
            .value(svc, "ImagePath")?
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if !image_path
            .to_ascii_lowercase()
            .ends_with(&format!("\\{SYS_NAME}"))
        {
            r.warnings.push(format!(
                "{svc_path} does not point at {SYS_NAME}; left alone"
            ));
            continue;
        }
        let idx = class_index(h, cs)?;
        let class_path = format!("{cs}\\Control\\Class\\{CLASS_KEY}\\{idx}");
        if let Some(c) = h.open_path(&class_path)? {
            if h.value(c, "MatchingDeviceId")?
                .and_then(|v| v.as_str())
                .is_some_and(|m| m.eq_ignore_ascii_case(MATCHING_ID))
            {
                delete_path(h, &class_path, &mut r.changes)?;
            }
        }
        let dev = format!("{cs}\\Enum\\Root\\{DEVICE}");
        if let Some(d) = h.open_path(&format!("{dev}\\0000"))? {
            if h.value(d, "Service")?
                .and_then(|v| v.as_str())
                .is_some_and(|s| s.eq_ignore_ascii_case(SERVICE))
            {
                delete_path(h, &dev, &mut r.changes)?;
            }
        }
        let cddb = format!("{cs}\\Control\\CriticalDeviceDatabase\\{CDDB_KEY}");
        if let Some(c) = h.open_path(&cddb)? {
            if h.value(c, "Service")?
                .and_then(|v| v.as_str())
                .is_some_and(|s| s.eq_ignore_ascii_case(SERVICE))
            {
                delete_path(h, &cddb, &mut r.changes)?;
            }
        }
        delete_path(h, &svc_path, &mut r.changes)?;
    }
    if !r.recorded && !r.changes.is_empty() {
        for f in [WIM_SYS_PATH, WIM_INF_PATH] {
            r.files.push(f.to_string());
        }
    }
    Ok(r)
}

/// rvblk's state in one control set, for `rvblk info`.
#[derive(Debug, Default)]
pub struct SetStatus {
    pub control_set: String,
    pub service: Option<String>,
    pub devnode: Option<String>,
    pub class_key: Option<String>,
    pub cddb: Option<String>,
    pub recorded: bool,
}

impl SetStatus {
    pub fn complete(&self) -> bool {
        self.service.is_some() && self.devnode.is_some() && self.class_key.is_some()
    }
}

/// Reads rvblk's keys in each boot control set.
pub fn status<H: RegistryHive>(h: &H) -> Result<Vec<SetStatus>> {
    let mut out = Vec::new();
    for cs in boot_control_sets(h)? {
        let mut s = SetStatus {
            control_set: cs.clone(),
            ..Default::default()
        };
        if let Some(svc) = h.open_path(&format!("{cs}\\Services\\{SERVICE}"))? {
            let get = |n: &str| -> Result<String> {
                Ok(h.value(svc, n)?
                    .map(|v| v.display())
                    .unwrap_or_else(|| "-".into()))
            };
            s.service = Some(format!(
                "Start={} Type={} Group={} ImagePath={}",
                get("Start")?,
                get("Type")?,
                get("Group")?,
                get("ImagePath")?
            ));
            s.recorded = h.value(svc, MARK_KEYS)?.is_some();
        }
        if let Some(d) = h.open_path(&format!("{cs}\\Enum\\Root\\{DEVICE}\\0000"))? {
            let cf = h
                .value(d, "ConfigFlags")?
                .map(|v| v.display())
                .unwrap_or_else(|| "missing (device not configured!)".into());
            let drv = h
                .value(d, "Driver")?
                .map(|v| v.display())
                .unwrap_or_else(|| "-".into());
            s.devnode = Some(format!("ConfigFlags={cf} Driver={drv}"));
        }
        let idx = class_index(h, &cs)?;
        let cp = format!("{cs}\\Control\\Class\\{CLASS_KEY}\\{idx}");
        if let Some(c) = h.open_path(&cp)? {
            if h.value(c, "MatchingDeviceId")?.is_some() {
                let v = h
                    .value(c, "DriverVersion")?
                    .map(|v| v.display())
                    .unwrap_or_else(|| "-".into());
                s.class_key = Some(format!("{CLASS_KEY}\\{idx} DriverVersion={v}"));
            }
        }
        if let Some(c) = h.open_path(&format!(
            "{cs}\\Control\\CriticalDeviceDatabase\\{CDDB_KEY}"
        ))? {
            s.cddb = Some(
                h.value(c, "Service")?
                    .map(|v| v.display())
                    .unwrap_or_else(|| "-".into()),
            );
        }
        out.push(s);
    }
    Ok(out)
}
