//! Every call into Windows: SetupAPI, newdev, cfgmgr32, the registry, the service control
//! manager, kernel32. Each function is a thin, safe wrapper that owns its handles (closed on
//! drop) and turns failures into the Win32 error code; the decisions live in the library.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};
use windows_sys::core::GUID;
use windows_sys::Win32::Devices::DeviceAndDriverInstallation as di;
use windows_sys::Win32::Foundation as fd;
use windows_sys::Win32::Security as sec;
use windows_sys::Win32::Storage::FileSystem as fs;
use windows_sys::Win32::System::Registry as reg;
use windows_sys::Win32::System::Services as svc;
use windows_sys::Win32::System::{LibraryLoader, SystemInformation as si, Threading, IO};

pub type Win32Error = u32;

pub fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain([0]).collect()
}

fn wide_path(p: &Path) -> Vec<u16> {
    wide(&p.to_string_lossy())
}

fn from_wide(buf: &[u16]) -> String {
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf16_lossy(&buf[..end])
}

/// Splits a REG_MULTI_SZ into its strings.
fn multi_sz(buf: &[u16]) -> Vec<String> {
    buf.split(|&c| c == 0)
        .filter(|s| !s.is_empty())
        .map(String::from_utf16_lossy)
        .collect()
}

fn last_error() -> Win32Error {
    // SAFETY: GetLastError only reads the calling thread's last-error value.
    unsafe { fd::GetLastError() }
}

/// Maps a BOOL result to `Ok` or the thread's last error.
fn check(ok: windows_sys::core::BOOL) -> Result<(), Win32Error> {
    if ok != 0 {
        Ok(())
    } else {
        Err(last_error())
    }
}

// ---- process and machine ----

pub fn is_admin() -> bool {
    let nt_authority = sec::SID_IDENTIFIER_AUTHORITY {
        Value: [0, 0, 0, 0, 0, 5],
    };
    let mut sid: sec::PSID = null_mut();
    // SAFETY: `nt_authority` and `sid` are valid for the call; two sub-authorities are given
    // (BUILTIN, Administrators) and the rest are ignored.
    let ok = unsafe {
        sec::AllocateAndInitializeSid(
            &nt_authority,
            2,
            windows_sys::Win32::System::SystemServices::SECURITY_BUILTIN_DOMAIN_RID as u32,
            windows_sys::Win32::System::SystemServices::DOMAIN_ALIAS_RID_ADMINS as u32,
            0,
            0,
            0,
            0,
            0,
            0,
            &mut sid,
        )
    };
    if ok == 0 {
        return false;
    }
    let mut member = 0;
    // SAFETY: a null token means the calling thread's (impersonation or primary) token; `sid`
    // was allocated above and is freed right after.
    let ok = unsafe { sec::CheckTokenMembership(null_mut(), sid, &mut member) };
    // SAFETY: `sid` came from AllocateAndInitializeSid and is not used after this.
    unsafe { sec::FreeSid(sid) };
    ok != 0 && member != 0
}

pub fn is_wow64() -> bool {
    let mut wow = 0;
    // SAFETY: the pseudo handle of the current process is always valid; `wow` is a BOOL out.
    let ok = unsafe { Threading::IsWow64Process(Threading::GetCurrentProcess(), &mut wow) };
    ok != 0 && wow != 0
}

/// The processor architecture of Windows itself (`PROCESSOR_ARCHITECTURE_*`).
pub fn native_architecture() -> u16 {
    // SAFETY: SYSTEM_INFO is plain data; GetNativeSystemInfo fills it in.
    unsafe {
        let mut info: si::SYSTEM_INFO = std::mem::zeroed();
        si::GetNativeSystemInfo(&mut info);
        info.Anonymous.Anonymous.wProcessorArchitecture
    }
}

/// Wine's version, through the `wine_get_version` export Wine's ntdll has and Windows' lacks.
pub fn wine_version() -> Option<String> {
    let ntdll = wide("ntdll.dll");
    // SAFETY: ntdll is loaded in every process; the name is NUL-terminated.
    let module = unsafe { LibraryLoader::GetModuleHandleW(ntdll.as_ptr()) };
    if module.is_null() {
        return None;
    }
    // SAFETY: the export name is a NUL-terminated ANSI string.
    let f = unsafe { LibraryLoader::GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }?;
    // SAFETY: Wine documents wine_get_version as `const char *(void)`, returning a static string.
    let version = unsafe {
        let f: extern "C" fn() -> *const std::ffi::c_char = std::mem::transmute(f);
        std::ffi::CStr::from_ptr(f())
    };
    Some(format!("wine-{}", version.to_string_lossy()))
}

fn directory(get: unsafe extern "system" fn(*mut u16, u32) -> u32) -> PathBuf {
    let mut buf = [0u16; 260];
    // SAFETY: the buffer and its length in characters match.
    let n = unsafe { get(buf.as_mut_ptr(), buf.len() as u32) } as usize;
    PathBuf::from(from_wide(&buf[..n.min(buf.len())]))
}

pub fn system_dir() -> PathBuf {
    directory(si::GetSystemDirectoryW)
}

pub fn windows_dir() -> PathBuf {
    directory(si::GetWindowsDirectoryW)
}

/// Deletes a file at the next restart (it is in use now).
pub fn delete_at_restart(path: &Path) -> Result<(), Win32Error> {
    let p = wide_path(path);
    // SAFETY: `p` is NUL-terminated; a null new name means delete.
    check(unsafe { fs::MoveFileExW(p.as_ptr(), null(), fs::MOVEFILE_DELAY_UNTIL_REBOOT) })
}

/// Replaces `to` with `from` at the next restart (`to` is in use now).
pub fn replace_at_restart(from: &Path, to: &Path) -> Result<(), Win32Error> {
    let f = wide_path(from);
    let t = wide_path(to);
    // SAFETY: both paths are NUL-terminated.
    check(unsafe {
        fs::MoveFileExW(
            f.as_ptr(),
            t.as_ptr(),
            fs::MOVEFILE_DELAY_UNTIL_REBOOT | fs::MOVEFILE_REPLACE_EXISTING,
        )
    })
}

// ---- registry ----

struct Key(reg::HKEY);

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: the key was opened by RegOpenKeyExW and is closed once.
        unsafe { reg::RegCloseKey(self.0) };
    }
}

fn open_key(path: &str) -> Option<Key> {
    let p = wide(path);
    let mut key = null_mut();
    // SAFETY: `p` is NUL-terminated, `key` receives the handle.
    let r = unsafe {
        reg::RegOpenKeyExW(
            reg::HKEY_LOCAL_MACHINE,
            p.as_ptr(),
            0,
            reg::KEY_READ,
            &mut key,
        )
    };
    (r == fd::ERROR_SUCCESS).then_some(Key(key))
}

/// A value's type and raw bytes.
fn reg_value(path: &str, name: &str) -> Option<(u32, Vec<u8>)> {
    let key = open_key(path)?;
    let n = wide(name);
    let mut ty = 0;
    let mut len = 0u32;
    // SAFETY: a null data pointer asks for the size only.
    let r =
        unsafe { reg::RegQueryValueExW(key.0, n.as_ptr(), null(), &mut ty, null_mut(), &mut len) };
    if r != fd::ERROR_SUCCESS {
        return None;
    }
    let mut data = vec![0u8; len as usize];
    // SAFETY: `data` holds `len` bytes.
    let r = unsafe {
        reg::RegQueryValueExW(
            key.0,
            n.as_ptr(),
            null(),
            &mut ty,
            data.as_mut_ptr(),
            &mut len,
        )
    };
    (r == fd::ERROR_SUCCESS).then(|| {
        data.truncate(len as usize);
        (ty, data)
    })
}

/// `(subkeys, values)` of a key under HKLM, if it exists.
pub fn key_counts(path: &str) -> Option<(u32, u32)> {
    let key = open_key(path)?;
    let (mut subkeys, mut values) = (0, 0);
    // SAFETY: every out-pointer not wanted is null; the two counts are u32 outs.
    let r = unsafe {
        reg::RegQueryInfoKeyW(
            key.0,
            null_mut(),
            null_mut(),
            null(),
            &mut subkeys,
            null_mut(),
            null_mut(),
            &mut values,
            null_mut(),
            null_mut(),
            null_mut(),
            null_mut(),
        )
    };
    (r == fd::ERROR_SUCCESS).then_some((subkeys, values))
}

/// Deletes a key (without subkeys) under HKLM.
pub fn delete_key(path: &str) -> Result<(), Win32Error> {
    let p = wide(path);
    // SAFETY: `p` is NUL-terminated.
    match unsafe { reg::RegDeleteKeyW(reg::HKEY_LOCAL_MACHINE, p.as_ptr()) } {
        fd::ERROR_SUCCESS => Ok(()),
        e => Err(e),
    }
}

pub fn reg_dword(path: &str, name: &str) -> Option<u32> {
    match reg_value(path, name)? {
        (reg::REG_DWORD, d) if d.len() >= 4 => Some(u32::from_le_bytes([d[0], d[1], d[2], d[3]])),
        _ => None,
    }
}

pub fn reg_string(path: &str, name: &str) -> Option<String> {
    match reg_value(path, name)? {
        (reg::REG_SZ | reg::REG_EXPAND_SZ, d) => {
            let units: Vec<u16> = d
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            Some(from_wide(&units))
        }
        _ => None,
    }
}

// ---- device nodes (SetupAPI, cfgmgr32) ----

/// A device information set, destroyed on drop.
struct DevInfo(di::HDEVINFO);

impl DevInfo {
    fn new(h: di::HDEVINFO) -> Result<DevInfo, Win32Error> {
        if h == fd::INVALID_HANDLE_VALUE as di::HDEVINFO {
            Err(last_error())
        } else {
            Ok(DevInfo(h))
        }
    }

    fn empty(class: Option<&GUID>) -> Result<DevInfo, Win32Error> {
        let class = class.map_or(null(), |c| c as *const GUID);
        // SAFETY: the class GUID pointer is null or points at a GUID that outlives the call.
        DevInfo::new(unsafe { di::SetupDiCreateDeviceInfoList(class, null_mut()) })
    }

    fn property(&self, dev: &di::SP_DEVINFO_DATA, property: u32) -> Option<Vec<u16>> {
        let mut buf = vec![0u16; 512];
        let mut ty = 0;
        let mut needed = 0;
        // SAFETY: `dev` belongs to this set; the buffer size is given in bytes.
        let ok = unsafe {
            di::SetupDiGetDeviceRegistryPropertyW(
                self.0,
                dev,
                property,
                &mut ty,
                buf.as_mut_ptr().cast(),
                (buf.len() * 2) as u32,
                &mut needed,
            )
        };
        (ok != 0).then(|| {
            buf.truncate(needed as usize / 2);
            buf
        })
    }

    fn instance_id(&self, dev: &di::SP_DEVINFO_DATA) -> Option<String> {
        let mut buf = [0u16; 512];
        // SAFETY: `dev` belongs to this set; the buffer length is in characters.
        let ok = unsafe {
            di::SetupDiGetDeviceInstanceIdW(
                self.0,
                dev,
                buf.as_mut_ptr(),
                buf.len() as u32,
                null_mut(),
            )
        };
        (ok != 0).then(|| from_wide(&buf))
    }
}

impl Drop for DevInfo {
    fn drop(&mut self) {
        // SAFETY: the set was created by SetupAPI and is destroyed once.
        unsafe { di::SetupDiDestroyDeviceInfoList(self.0) };
    }
}

fn devinfo_data() -> di::SP_DEVINFO_DATA {
    di::SP_DEVINFO_DATA {
        cbSize: std::mem::size_of::<di::SP_DEVINFO_DATA>() as u32,
        ..Default::default()
    }
}

/// One device node as SetupAPI and the configuration manager report it.
pub struct Node {
    pub instance_id: String,
    pub hardware_ids: Vec<String>,
    pub service: Option<String>,
    /// `(started, problem)` from CM_Get_DevNode_Status, if it answers.
    pub status: Option<(bool, u32)>,
}

/// Every device node Windows knows, present or not.
pub fn device_nodes() -> Result<Vec<Node>, Win32Error> {
    // SAFETY: no class GUID, no enumerator, no window: all classes.
    let set = DevInfo::new(unsafe {
        di::SetupDiGetClassDevsW(null(), null(), null_mut(), di::DIGCF_ALLCLASSES)
    })?;
    let mut out = Vec::new();
    for index in 0.. {
        let mut dev = devinfo_data();
        // SAFETY: `dev.cbSize` is set; the set is valid.
        if unsafe { di::SetupDiEnumDeviceInfo(set.0, index, &mut dev) } == 0 {
            break;
        }
        let Some(instance_id) = set.instance_id(&dev) else {
            continue;
        };
        let hardware_ids = set
            .property(&dev, di::SPDRP_HARDWAREID)
            .map(|b| multi_sz(&b))
            .unwrap_or_default();
        let service = set
            .property(&dev, di::SPDRP_SERVICE)
            .map(|b| from_wide(&b))
            .filter(|s| !s.is_empty());
        let (mut st, mut problem) = (0, 0);
        // SAFETY: `dev.DevInst` is the node's handle from the enumeration above.
        let r = unsafe { di::CM_Get_DevNode_Status(&mut st, &mut problem, dev.DevInst, 0) };
        let status = (r == di::CR_SUCCESS).then(|| {
            let problem = if st & di::DN_HAS_PROBLEM != 0 {
                problem
            } else {
                0
            };
            (st & di::DN_STARTED != 0, problem)
        });
        out.push(Node {
            instance_id,
            hardware_ids,
            service,
            status,
        });
    }
    Ok(out)
}

/// Creates a root-enumerated SCSI adapter node (`ROOT\SCSIADAPTER\NNNN`) with one hardware ID
/// and registers it, as `devcon install` / `devgen` do. Returns its instance ID.
pub fn create_root_device(
    class: &GUID,
    class_name: &str,
    description: &str,
    hardware_id: &str,
) -> Result<String, Win32Error> {
    let set = DevInfo::empty(Some(class))?;
    let mut dev = devinfo_data();
    let name = wide(class_name);
    let desc = wide(description);
    // SAFETY: the strings are NUL-terminated, `dev.cbSize` is set, the class GUID is valid.
    check(unsafe {
        di::SetupDiCreateDeviceInfoW(
            set.0,
            name.as_ptr(),
            class,
            desc.as_ptr(),
            null_mut(),
            di::DICD_GENERATE_ID,
            &mut dev,
        )
    })?;
    let ids: Vec<u16> = hardware_id.encode_utf16().chain([0, 0]).collect();
    // SAFETY: a REG_MULTI_SZ (two NULs at the end) and its size in bytes.
    check(unsafe {
        di::SetupDiSetDeviceRegistryPropertyW(
            set.0,
            &mut dev,
            di::SPDRP_HARDWAREID,
            ids.as_ptr().cast(),
            (ids.len() * 2) as u32,
        )
    })?;
    // SAFETY: `dev` was created in `set` above.
    check(unsafe { di::SetupDiCallClassInstaller(di::DIF_REGISTERDEVICE, set.0, &dev) })?;
    Ok(set.instance_id(&dev).unwrap_or_default())
}

/// Removes one device node by instance ID (DIF_REMOVE: the node, its driver key and its
/// Enum key).
pub fn remove_device(instance_id: &str) -> Result<(), Win32Error> {
    let set = DevInfo::empty(None)?;
    let mut dev = devinfo_data();
    let id = wide(instance_id);
    // SAFETY: `id` is NUL-terminated; `dev.cbSize` is set.
    check(unsafe { di::SetupDiOpenDeviceInfoW(set.0, id.as_ptr(), null_mut(), 0, &mut dev) })?;
    // SAFETY: `dev` was opened in `set` above.
    check(unsafe { di::SetupDiCallClassInstaller(di::DIF_REMOVE, set.0, &dev) })
}

fn install_params(
    set: &DevInfo,
    dev: &di::SP_DEVINFO_DATA,
) -> Result<di::SP_DEVINSTALL_PARAMS_W, Win32Error> {
    // SAFETY: SP_DEVINSTALL_PARAMS_W is plain data (integers, pointers, an array).
    let mut p: di::SP_DEVINSTALL_PARAMS_W = unsafe { std::mem::zeroed() };
    p.cbSize = std::mem::size_of::<di::SP_DEVINSTALL_PARAMS_W>() as u32;
    // SAFETY: `dev` belongs to `set`; `p.cbSize` is set.
    check(unsafe { di::SetupDiGetDeviceInstallParamsW(set.0, dev, &mut p) })?;
    Ok(p)
}

fn set_install_params(
    set: &DevInfo,
    dev: &di::SP_DEVINFO_DATA,
    p: &di::SP_DEVINSTALL_PARAMS_W,
) -> Result<(), Win32Error> {
    // SAFETY: `dev` belongs to `set`; `p` came from install_params.
    check(unsafe { di::SetupDiSetDeviceInstallParamsW(set.0, dev, p) })
}

/// Installs the driver from `inf` on one device node: the INF's best match for the node's
/// hardware ID, then DIF_INSTALLDEVICE (registry, service, driver key; Windows and Wine then
/// start the device). The driver file is already in place: DI_NOFILECOPY, because Wine's file
/// queue ignores the INF's platform-decorated source sections (docs/installer.md §6). Returns
/// whether Windows asks for a restart.
pub fn install_driver(instance_id: &str, inf: &Path) -> Result<bool, Win32Error> {
    let set = DevInfo::empty(None)?;
    let mut dev = devinfo_data();
    let id = wide(instance_id);
    // SAFETY: `id` is NUL-terminated; `dev.cbSize` is set.
    check(unsafe { di::SetupDiOpenDeviceInfoW(set.0, id.as_ptr(), null_mut(), 0, &mut dev) })?;
    let mut p = install_params(&set, &dev)?;
    let path: Vec<u16> = inf.to_string_lossy().encode_utf16().collect();
    // The x86 layout of this structure is packed: the array is copied out and back, never
    // borrowed in place.
    let mut driver_path = p.DriverPath;
    if path.len() >= driver_path.len() {
        return Err(fd::ERROR_FILENAME_EXCED_RANGE);
    }
    driver_path[..path.len()].copy_from_slice(&path);
    driver_path[path.len()] = 0;
    p.DriverPath = driver_path;
    p.Flags |= di::DI_ENUMSINGLEINF | di::DI_QUIETINSTALL;
    set_install_params(&set, &dev, &p)?;
    // SAFETY: `dev` belongs to `set`.
    check(unsafe { di::SetupDiBuildDriverInfoList(set.0, &mut dev, di::SPDIT_COMPATDRIVER) })?;
    // SAFETY: `dev` belongs to `set`.
    check(unsafe { di::SetupDiCallClassInstaller(di::DIF_SELECTBESTCOMPATDRV, set.0, &dev) })?;
    let mut p = install_params(&set, &dev)?;
    p.Flags |= di::DI_NOFILECOPY;
    set_install_params(&set, &dev, &p)?;
    // SAFETY: `dev` belongs to `set` and has a selected driver.
    check(unsafe { di::SetupDiCallClassInstaller(di::DIF_INSTALLDEVICE, set.0, &dev) })?;
    let p = install_params(&set, &dev)?;
    Ok(p.Flags & (di::DI_NEEDREBOOT | di::DI_NEEDRESTART) != 0)
}

/// Adds an INF (and its catalog) to the driver store; returns the `oemN.inf` name. An identical
/// package already there keeps its name.
pub fn stage_inf(inf: &Path) -> Result<String, Win32Error> {
    let src = wide_path(inf);
    let mut dest = [0u16; 260];
    // SAFETY: `src` is NUL-terminated; `dest` and its length in characters match; the
    // optional out-pointers are null.
    check(unsafe {
        di::SetupCopyOEMInfW(
            src.as_ptr(),
            null(),
            di::SPOST_PATH,
            0,
            dest.as_mut_ptr(),
            dest.len() as u32,
            null_mut(),
            null_mut(),
        )
    })?;
    let path = from_wide(&dest);
    Ok(path.rsplit('\\').next().unwrap_or(&path).to_owned())
}

pub fn unstage_inf(name: &str) -> Result<(), Win32Error> {
    let n = wide(name);
    // SAFETY: `n` is NUL-terminated; the reserved pointer must be null.
    check(unsafe { di::SetupUninstallOEMInfW(n.as_ptr(), di::SUOI_FORCEDELETE, null()) })
}

// ---- services ----

struct Sc(svc::SC_HANDLE);

impl Drop for Sc {
    fn drop(&mut self) {
        // SAFETY: the handle came from OpenSCManagerW/OpenServiceW and is closed once.
        unsafe { svc::CloseServiceHandle(self.0) };
    }
}

fn open_service(name: &str, access: u32) -> Result<Sc, Win32Error> {
    // SAFETY: null machine and database: the local active database.
    let scm = unsafe { svc::OpenSCManagerW(null(), null(), svc::SC_MANAGER_CONNECT) };
    if scm.is_null() {
        return Err(last_error());
    }
    let scm = Sc(scm);
    let n = wide(name);
    // SAFETY: `scm` is open; `n` is NUL-terminated.
    let s = unsafe { svc::OpenServiceW(scm.0, n.as_ptr(), access) };
    if s.is_null() {
        Err(last_error())
    } else {
        Ok(Sc(s))
    }
}

pub struct ServiceInfo {
    pub service_type: u32,
    pub start_type: u32,
    pub error_control: u32,
    pub group: String,
    pub image_path: String,
    /// `SERVICE_RUNNING` etc.
    pub state: u32,
}

fn pwstr(p: windows_sys::core::PWSTR) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the SCM returns NUL-terminated strings inside the buffer it filled.
    unsafe {
        let len = (0..).take_while(|&i| *p.add(i) != 0).count();
        String::from_utf16_lossy(std::slice::from_raw_parts(p, len))
    }
}

/// The service's configuration and state; `None` if it does not exist.
pub fn query_service(name: &str) -> Option<ServiceInfo> {
    let s = open_service(name, svc::SERVICE_QUERY_CONFIG | svc::SERVICE_QUERY_STATUS).ok()?;
    // QUERY_SERVICE_CONFIGW plus its strings; 8 KiB is the documented maximum.
    let mut buf = vec![0u64; 1024];
    let mut needed = 0;
    // SAFETY: the buffer is 8-byte aligned and its size in bytes is given.
    let ok = unsafe { svc::QueryServiceConfigW(s.0, buf.as_mut_ptr().cast(), 8192, &mut needed) };
    if ok == 0 {
        return None;
    }
    // SAFETY: QueryServiceConfigW wrote a QUERY_SERVICE_CONFIGW at the start of the buffer.
    let c = unsafe { &*(buf.as_ptr() as *const svc::QUERY_SERVICE_CONFIGW) };
    let mut status: svc::SERVICE_STATUS = Default::default();
    // SAFETY: `s` has SERVICE_QUERY_STATUS; `status` is plain data.
    let state = if unsafe { svc::QueryServiceStatus(s.0, &mut status) } != 0 {
        status.dwCurrentState
    } else {
        0
    };
    Some(ServiceInfo {
        service_type: c.dwServiceType,
        start_type: c.dwStartType,
        error_control: c.dwErrorControl,
        group: pwstr(c.lpLoadOrderGroup),
        image_path: pwstr(c.lpBinaryPathName),
        state,
    })
}

pub fn start_service(name: &str) -> Result<(), Win32Error> {
    let s = open_service(name, svc::SERVICE_START)?;
    // SAFETY: no arguments.
    check(unsafe { svc::StartServiceW(s.0, 0, null()) })
}

pub fn delete_service(name: &str) -> Result<(), Win32Error> {
    let s = open_service(name, fs::DELETE | svc::SERVICE_STOP)?;
    let mut status: svc::SERVICE_STATUS = Default::default();
    // A StorPort miniport cannot be unloaded; the stop is attempted for completeness and its
    // failure is expected.
    // SAFETY: `s` has SERVICE_STOP; `status` is plain data.
    unsafe { svc::ControlService(s.0, svc::SERVICE_CONTROL_STOP, &mut status) };
    // SAFETY: `s` has DELETE access.
    check(unsafe { svc::DeleteService(s.0) })
}

// ---- SCSI ports ----

/// The raw `IOCTL_SCSI_GET_INQUIRY_DATA` output of `\\.\ScsiN:`, if the port exists.
pub fn scsi_inquiry_data(port: u32) -> Option<Vec<u8>> {
    let name = wide(&format!("\\\\.\\Scsi{port}:"));
    let mut buf = vec![0u8; 64 * 1024];
    let code = windows_sys::Win32::Storage::IscsiDisc::IOCTL_SCSI_GET_INQUIRY_DATA;
    let returned = device_io_control(&name, code, 0, &mut buf).ok()?;
    buf.truncate(returned);
    Some(buf)
}

// ---- the adapter's control interface (docs/control.md §1, §8) ----

/// A present storage adapter.
pub struct StoragePort {
    /// The interface path CreateFile opens, NUL-terminated.
    pub path: Vec<u16>,
    pub hardware_ids: Vec<String>,
}

/// Every present storage adapter that registered `GUID_DEVINTERFACE_STORAGEPORT`.
pub fn storage_ports() -> Result<Vec<StoragePort>, Win32Error> {
    let guid = windows_sys::Win32::System::Ioctl::GUID_DEVINTERFACE_STORAGEPORT;
    // SAFETY: the GUID outlives the call; no enumerator, no window.
    let set = DevInfo::new(unsafe {
        di::SetupDiGetClassDevsW(
            &guid,
            null(),
            null_mut(),
            di::DIGCF_PRESENT | di::DIGCF_DEVICEINTERFACE,
        )
    })?;
    let mut out = Vec::new();
    for index in 0.. {
        let mut iface = di::SP_DEVICE_INTERFACE_DATA {
            cbSize: std::mem::size_of::<di::SP_DEVICE_INTERFACE_DATA>() as u32,
            ..Default::default()
        };
        // SAFETY: `iface.cbSize` is set; the set and the GUID are valid.
        if unsafe { di::SetupDiEnumDeviceInterfaces(set.0, null(), &guid, index, &mut iface) } == 0
        {
            break;
        }
        let mut needed = 0u32;
        // SAFETY: a size query: no detail buffer, only the required size is written.
        unsafe {
            di::SetupDiGetDeviceInterfaceDetailW(
                set.0,
                &iface,
                null_mut(),
                0,
                &mut needed,
                null_mut(),
            )
        };
        let header = std::mem::size_of::<di::SP_DEVICE_INTERFACE_DETAIL_DATA_W>();
        if (needed as usize) < header {
            continue;
        }
        // u64 units: the detail structure's alignment.
        let mut buf = vec![0u64; (needed as usize).div_ceil(8)];
        let detail = buf
            .as_mut_ptr()
            .cast::<di::SP_DEVICE_INTERFACE_DETAIL_DATA_W>();
        // SAFETY: `buf` holds at least `header` bytes, suitably aligned; cbSize is the
        // structure's fixed size, as SetupAPI requires.
        unsafe { (*detail).cbSize = header as u32 };
        let mut dev = devinfo_data();
        // SAFETY: `detail` points at `needed` writable bytes; `dev.cbSize` is set.
        let ok = unsafe {
            di::SetupDiGetDeviceInterfaceDetailW(
                set.0,
                &iface,
                detail,
                needed,
                null_mut(),
                &mut dev,
            )
        };
        if ok == 0 {
            continue;
        }
        let offset = std::mem::offset_of!(di::SP_DEVICE_INTERFACE_DETAIL_DATA_W, DevicePath);
        let first = buf.as_ptr().cast::<u8>().wrapping_add(offset).cast::<u16>();
        // SAFETY: SetupAPI wrote a NUL-terminated path from `offset` within the `needed` bytes
        // of `buf` (u16-aligned: `offset` is 4 in an 8-aligned buffer).
        let units = unsafe { std::slice::from_raw_parts(first, (needed as usize - offset) / 2) };
        let end = units.iter().position(|&c| c == 0).unwrap_or(units.len());
        let path: Vec<u16> = units[..end].iter().copied().chain([0]).collect();
        let hardware_ids = set
            .property(&dev, di::SPDRP_HARDWAREID)
            .map(|b| multi_sz(&b))
            .unwrap_or_default();
        out.push(StoragePort { path, hardware_ids });
    }
    Ok(out)
}

/// Why a control request did not reach the driver.
pub enum IoctlError {
    /// CreateFile failed (ERROR_ACCESS_DENIED: the adapter's ACL).
    Open(Win32Error),
    /// DeviceIoControl failed.
    Call(Win32Error),
}

/// `IOCTL_SCSI_MINIPORT` on the device at `path` (NUL-terminated), with `buf` as both input and
/// output (METHOD_BUFFERED). Returns the bytes the driver returned.
pub fn scsi_miniport(path: &[u16], buf: &mut [u8]) -> Result<usize, IoctlError> {
    let code = windows_sys::Win32::Storage::IscsiDisc::IOCTL_SCSI_MINIPORT;
    let len = buf.len();
    device_io_control(path, code, len, buf)
}

/// One METHOD_BUFFERED `DeviceIoControl` on the device at `path` (NUL-terminated, opened for
/// read and write): the first `input_len` bytes of `buf` are the input (none when 0), all of
/// `buf` receives the output. Returns the bytes the driver returned.
fn device_io_control(
    path: &[u16],
    code: u32,
    input_len: usize,
    buf: &mut [u8],
) -> Result<usize, IoctlError> {
    // SAFETY: `path` is NUL-terminated; no security attributes or template.
    let h = unsafe {
        fs::CreateFileW(
            path.as_ptr(),
            fd::GENERIC_READ | fd::GENERIC_WRITE,
            fs::FILE_SHARE_READ | fs::FILE_SHARE_WRITE,
            null(),
            fs::OPEN_EXISTING,
            0,
            null_mut(),
        )
    };
    if h == fd::INVALID_HANDLE_VALUE {
        return Err(IoctlError::Open(last_error()));
    }
    let mut returned = 0;
    let input = if input_len == 0 {
        null()
    } else {
        buf.as_ptr() as *const c_void
    };
    // SAFETY: `h` is open; the input is the first `input_len` bytes of `buf` (checked by the
    // slice below), the output all of `buf`: the same memory for both, which METHOD_BUFFERED
    // allows (the I/O manager copies through its own system buffer); no overlapped I/O.
    let ok = unsafe {
        IO::DeviceIoControl(
            h,
            code,
            input,
            buf[..input_len].len() as u32,
            buf.as_mut_ptr() as *mut c_void,
            buf.len() as u32,
            &mut returned,
            null_mut(),
        )
    };
    let err = last_error();
    // SAFETY: `h` came from CreateFileW and is closed once.
    unsafe { fd::CloseHandle(h) };
    if ok == 0 {
        return Err(IoctlError::Call(err));
    }
    Ok(returned as usize)
}
