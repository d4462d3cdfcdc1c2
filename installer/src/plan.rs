//! What `install` and `remove` must do, decided from what is on the machine (docs/installer.md
//! §3). This is the whole decision: the Windows layer only observes and carries out the actions,
//! so every rule here is tested on the host.

use crate::package::{ServiceSpec, HARDWARE_ID, SERVICE};
use std::fmt;

/// A device node that is rvblk's, or that claims rvblk's service.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeviceNode {
    pub instance_id: String,
    pub hardware_ids: Vec<String>,
    pub service: Option<String>,
}

impl DeviceNode {
    /// Ours: its hardware IDs include `ROOT\RVBLK`. Nothing else is ever removed.
    pub fn is_rvblk(&self) -> bool {
        self.hardware_ids
            .iter()
            .any(|h| h.eq_ignore_ascii_case(HARDWARE_ID))
    }

    fn uses_service(&self) -> bool {
        self.service
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(SERVICE))
    }
}

/// The service's registry configuration as the SCM reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ServiceConfig {
    pub service_type: u32,
    pub start_type: u32,
    pub error_control: u32,
    pub group: String,
    pub image_path: String,
}

impl ServiceConfig {
    /// Whether this is the service the INF asks for. The image path is compared by its
    /// `drivers\<binary>` tail: Windows writes `System32\drivers\rvblk.sys`, or
    /// `\SystemRoot\System32\…`, or a full path, for the same file.
    pub fn matches(&self, spec: &ServiceSpec) -> bool {
        let image = self.image_path.replace('/', "\\").to_ascii_lowercase();
        let tail = format!("drivers\\{}", spec.binary.to_ascii_lowercase());
        self.service_type == spec.service_type
            && self.start_type == spec.start_type
            && self.error_control == spec.error_control
            && self.group.eq_ignore_ascii_case(&spec.group)
            && image.ends_with(&tail)
    }
}

/// The driver file in `system32\drivers` compared with the package's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    Missing,
    Same,
    Different,
}

/// A staged copy of rvblk's INF in the driver store (`%windir%\INF\oem*.inf`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StagedInf {
    pub name: String,
    /// Byte-identical to the package's INF.
    #[serde(skip)]
    pub same_as_package: bool,
}

/// Everything the plans depend on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Device nodes with hardware ID `ROOT\RVBLK` or service `rvblk`.
    pub devices: Vec<DeviceNode>,
    pub staged: Vec<StagedInf>,
    pub service: Option<ServiceConfig>,
    pub driver_file: Option<FileState>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Add the package to the driver store (what `pnputil /add-driver` does).
    StageInf,
    /// Create the root-enumerated device node with hardware ID `ROOT\RVBLK`.
    CreateDevice,
    /// Install the package's driver on the `ROOT\RVBLK` node: files, service, driver key.
    InstallDriver,
    RemoveDevice(String),
    UnstageInf(String),
    DeleteService,
    DeleteDriverFile,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::StageInf => write!(f, "add the driver package (rvblk.inf, rvblk.cat) to the driver store"),
            Action::CreateDevice => write!(f, "create the device node {HARDWARE_ID}"),
            Action::InstallDriver => write!(
                f,
                "install the driver on {HARDWARE_ID} (copy rvblk.sys to system32\\drivers, create service {SERVICE})"
            ),
            Action::RemoveDevice(id) => write!(f, "remove the device node {id}"),
            Action::UnstageInf(name) => write!(f, "remove {name} from the driver store"),
            Action::DeleteService => write!(f, "delete the service {SERVICE}"),
            Action::DeleteDriverFile => write!(f, "delete system32\\drivers\\rvblk.sys"),
        }
    }
}

/// Why a plan cannot be carried out; nothing has been changed when this is returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// More than one `ROOT\RVBLK` node: rvblk's adapter must be unique (two adapters would
    /// expose every image twice).
    SeveralDevices(Vec<String>),
    /// A node that is not rvblk's uses the service name `rvblk`.
    ForeignDevice(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::SeveralDevices(ids) => write!(
                f,
                "found {} device nodes with hardware ID {HARDWARE_ID} ({}); rvblk needs exactly \
                 one, or every RAM image would appear twice. Nothing was changed. Run \
                 `rvblk-install remove` (it removes all of them), then install again",
                ids.len(),
                ids.join(", ")
            ),
            Refusal::ForeignDevice(id) => write!(
                f,
                "the device node {id} is not rvblk's (its hardware ID is not {HARDWARE_ID}) but \
                 uses the service name {SERVICE}; refusing to touch it. Nothing was changed"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// A plan: the actions in order, and notes for the user about what is left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub notes: Vec<String>,
}

fn foreign(o: &Observed) -> impl Iterator<Item = &DeviceNode> {
    o.devices
        .iter()
        .filter(|d| !d.is_rvblk() && d.uses_service())
}

/// `install`: stage, create the node if there is none, install the driver unless the node, the
/// service and the file already are what the package installs. Twice = once.
pub fn install(o: &Observed, spec: &ServiceSpec) -> Result<Plan, Refusal> {
    if let Some(d) = foreign(o).next() {
        return Err(Refusal::ForeignDevice(d.instance_id.clone()));
    }
    let ours: Vec<&DeviceNode> = o.devices.iter().filter(|d| d.is_rvblk()).collect();
    if ours.len() > 1 {
        return Err(Refusal::SeveralDevices(
            ours.iter().map(|d| d.instance_id.clone()).collect(),
        ));
    }
    let mut plan = Plan::default();
    if !o.staged.iter().any(|s| s.same_as_package) {
        plan.actions.push(Action::StageInf);
    }
    let installed = match ours.first() {
        None => {
            plan.actions.push(Action::CreateDevice);
            false
        }
        Some(d) => {
            d.uses_service()
                && o.service.as_ref().is_some_and(|s| s.matches(spec))
                && o.driver_file == Some(FileState::Same)
        }
    };
    if !installed {
        plan.actions.push(Action::InstallDriver);
    }
    Ok(plan)
}

/// `remove`: every rvblk node, the staged copies (unless kept), the service and the driver
/// file. Nodes that are not rvblk's are never removed; if one still uses the service, the
/// service and its file stay too.
pub fn remove(o: &Observed, keep_package: bool) -> Plan {
    let mut plan = Plan::default();
    for d in o.devices.iter().filter(|d| d.is_rvblk()) {
        plan.actions
            .push(Action::RemoveDevice(d.instance_id.clone()));
    }
    if !keep_package {
        for s in &o.staged {
            plan.actions.push(Action::UnstageInf(s.name.clone()));
        }
    }
    let others: Vec<&str> = foreign(o).map(|d| d.instance_id.as_str()).collect();
    if others.is_empty() {
        if o.service.is_some() {
            plan.actions.push(Action::DeleteService);
        }
        if matches!(o.driver_file, Some(FileState::Same | FileState::Different)) {
            plan.actions.push(Action::DeleteDriverFile);
        }
    } else {
        plan.notes.push(format!(
            "kept the service {SERVICE} and its driver file: {} (not rvblk's) still uses them",
            others.join(", ")
        ));
    }
    plan
}

/// A key with neither subkeys nor values carries nothing: setup created it on the way to a
/// driver key that `remove` deleted.
pub fn is_leftover_key(subkeys: u32, values: u32) -> bool {
    subkeys == 0 && values == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServiceSpec {
        ServiceSpec {
            name: "rvblk".into(),
            service_type: 1,
            start_type: 0,
            error_control: 1,
            group: "SCSI miniport".into(),
            binary: "rvblk.sys".into(),
        }
    }

    fn node(id: &str, hwid: &str, service: Option<&str>) -> DeviceNode {
        DeviceNode {
            instance_id: id.into(),
            hardware_ids: vec![hwid.into()],
            service: service.map(Into::into),
        }
    }

    fn config(image: &str) -> ServiceConfig {
        ServiceConfig {
            service_type: 1,
            start_type: 0,
            error_control: 1,
            group: "scsi Miniport".into(),
            image_path: image.into(),
        }
    }

    fn installed() -> Observed {
        Observed {
            devices: vec![node(
                "ROOT\\SCSIADAPTER\\0000",
                "root\\rvblk",
                Some("rvblk"),
            )],
            staged: vec![StagedInf {
                name: "oem3.inf".into(),
                same_as_package: true,
            }],
            service: Some(config("\\SystemRoot\\System32\\drivers\\rvblk.sys")),
            driver_file: Some(FileState::Same),
        }
    }

    #[test]
    fn only_empty_keys_are_leftovers() {
        assert!(is_leftover_key(0, 0));
        assert!(!is_leftover_key(1, 0));
        assert!(!is_leftover_key(0, 3));
    }

    #[test]
    fn fresh_machine_gets_everything() {
        let o = Observed {
            driver_file: Some(FileState::Missing),
            ..Observed::default()
        };
        let p = install(&o, &spec()).unwrap();
        assert_eq!(
            p.actions,
            [
                Action::StageInf,
                Action::CreateDevice,
                Action::InstallDriver
            ]
        );
    }

    #[test]
    fn installed_machine_gets_nothing() {
        assert_eq!(install(&installed(), &spec()).unwrap(), Plan::default());
    }

    #[test]
    fn any_difference_reinstalls_the_driver_only() {
        let mut changed = Vec::new();
        let mut o = installed();
        o.driver_file = Some(FileState::Different);
        changed.push(o);
        let mut o = installed();
        o.service.as_mut().unwrap().start_type = 3;
        changed.push(o);
        let mut o = installed();
        o.service.as_mut().unwrap().image_path = "C:\\other\\drivers\\x.sys".into();
        changed.push(o);
        let mut o = installed();
        o.service = None;
        changed.push(o);
        let mut o = installed();
        o.devices[0].service = None;
        changed.push(o);
        for o in changed {
            assert_eq!(
                install(&o, &spec()).unwrap().actions,
                [Action::InstallDriver],
                "{o:?}"
            );
        }
        let mut o = installed();
        o.staged[0].same_as_package = false;
        assert_eq!(install(&o, &spec()).unwrap().actions, [Action::StageInf]);
    }

    #[test]
    fn a_second_node_is_refused() {
        let mut o = installed();
        o.devices
            .push(node("ROOT\\SCSIADAPTER\\0001", "ROOT\\RVBLK", None));
        let e = install(&o, &spec()).unwrap_err();
        assert_eq!(
            e,
            Refusal::SeveralDevices(vec![
                "ROOT\\SCSIADAPTER\\0000".into(),
                "ROOT\\SCSIADAPTER\\0001".into()
            ])
        );
        assert!(e.to_string().contains("Nothing was changed"));
    }

    #[test]
    fn foreign_nodes_are_never_touched() {
        let mut o = installed();
        o.devices
            .push(node("ROOT\\OTHER\\0000", "ROOT\\OTHER", Some("RVBLK")));
        assert_eq!(
            install(&o, &spec()).unwrap_err(),
            Refusal::ForeignDevice("ROOT\\OTHER\\0000".into())
        );
        let p = remove(&o, false);
        assert_eq!(
            p.actions,
            [
                Action::RemoveDevice("ROOT\\SCSIADAPTER\\0000".into()),
                Action::UnstageInf("oem3.inf".into())
            ]
        );
        assert!(p.notes[0].contains("ROOT\\OTHER\\0000"), "{:?}", p.notes);
        // A node with another hardware ID and another service is not even considered.
        let mut o = installed();
        o.devices
            .push(node("ROOT\\OTHER\\0000", "ROOT\\OTHER", Some("other")));
        assert_eq!(remove(&o, false), remove(&installed(), false));
    }

    #[test]
    fn remove_takes_everything_and_is_idempotent() {
        let mut o = installed();
        o.devices
            .push(node("ROOT\\SCSIADAPTER\\0001", "ROOT\\RVBLK", None));
        o.staged.push(StagedInf {
            name: "oem9.inf".into(),
            same_as_package: false,
        });
        assert_eq!(
            remove(&o, false).actions,
            [
                Action::RemoveDevice("ROOT\\SCSIADAPTER\\0000".into()),
                Action::RemoveDevice("ROOT\\SCSIADAPTER\\0001".into()),
                Action::UnstageInf("oem3.inf".into()),
                Action::UnstageInf("oem9.inf".into()),
                Action::DeleteService,
                Action::DeleteDriverFile,
            ]
        );
        assert!(!remove(&o, true)
            .actions
            .iter()
            .any(|a| matches!(a, Action::UnstageInf(_))));
        let gone = Observed {
            driver_file: Some(FileState::Missing),
            ..Observed::default()
        };
        assert_eq!(remove(&gone, false), Plan::default());
    }
}
