//! [`Hive`]: a registry hive file opened with hivex, implementing [`RegistryHive`].

use crate::error::{Error, ErrorKind, Result};
use crate::ffi::hivex as ffi;
use crate::store::{RegValue, RegistryHive};
use std::ffi::{c_char, c_void, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// An open hive; closed (without writing) on drop.
pub struct Hive {
    h: *mut ffi::hive_h,
    path: PathBuf,
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(ErrorKind::Usage, format!("name contains NUL: {s:?}")))
}

fn path_cstring(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| {
        Error::new(
            ErrorKind::Usage,
            format!("path contains NUL: {}", p.display()),
        )
    })
}

/// Takes ownership of a malloc'd C string returned by hivex.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string allocated with malloc that nothing else frees.
unsafe fn take_cstring(p: *mut c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated per this function's contract.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    // SAFETY: allocated with malloc by hivex and owned by us per the contract.
    unsafe { ffi::free(p.cast::<c_void>()) };
    Some(s)
}

/// Takes ownership of a malloc'd, 0-terminated array of handles returned by hivex.
///
/// # Safety
/// `p` must be NULL or a 0-terminated `size_t` array allocated with malloc that nothing else frees.
unsafe fn take_handles(p: *mut usize) -> Option<Vec<usize>> {
    if p.is_null() {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        // SAFETY: the array is 0-terminated, so every index up to and including the
        // terminator is in bounds.
        let v = unsafe { p.wrapping_add(i).read() };
        if v == 0 {
            break;
        }
        out.push(v);
        i += 1;
    }
    // SAFETY: allocated with malloc by hivex and owned by us per the contract.
    unsafe { ffi::free(p.cast::<c_void>()) };
    Some(out)
}

impl Hive {
    /// Opens `path` (read-only unless `write`; writes only happen through `commit_to`).
    pub fn open(path: &Path, write: bool) -> Result<Hive> {
        let mut magic = [0u8; 4];
        {
            use std::io::Read;
            let mut f =
                std::fs::File::open(path).map_err(|e| Error::io(path, "cannot open", &e))?;
            if f.read_exact(&mut magic).is_err() || &magic != b"regf" {
                return Err(Error::new(
                    ErrorKind::BadHive,
                    format!(
                        "{}: not a registry hive (no \"regf\" signature)",
                        path.display()
                    ),
                ));
            }
        }
        let c = path_cstring(path)?;
        let flags = if write { ffi::HIVEX_OPEN_WRITE } else { 0 };
        // SAFETY: `c` is a valid NUL-terminated path; hivex_open returns NULL or a handle we own.
        let h = unsafe { ffi::hivex_open(c.as_ptr(), flags) };
        if h.is_null() {
            let e = std::io::Error::last_os_error();
            return Err(Error::new(
                ErrorKind::BadHive,
                format!(
                    "{}: corrupt or unsupported registry hive ({e})",
                    path.display()
                ),
            ));
        }
        Ok(Hive {
            h,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self, what: &str) -> Error {
        let e = std::io::Error::last_os_error();
        Error::new(
            ErrorKind::BadHive,
            format!("{}: hivex: {what}: {e}", self.path.display()),
        )
    }

    fn node_name(&self, node: usize) -> Result<String> {
        // SAFETY: `self.h` is open; `node` came from this hive.
        let name = unsafe { ffi::hivex_node_name(self.h, node) };
        // SAFETY: the result is malloc'd (or null) and owned by us.
        unsafe { take_cstring(name) }.ok_or_else(|| self.fail("reading key name"))
    }

    fn read_value(&self, v: usize) -> Result<(String, RegValue)> {
        // SAFETY: `self.h` is open; `v` came from this hive.
        let name = unsafe { ffi::hivex_value_key(self.h, v) };
        // SAFETY: the result is malloc'd (or null) and owned by us.
        let name = unsafe { take_cstring(name) }.ok_or_else(|| self.fail("reading value name"))?;
        let mut t: ffi::hive_type = 0;
        let mut len: usize = 0;
        // SAFETY: out-pointers are valid locals; the returned buffer holds `len` bytes and is
        // malloc'd for the caller.
        let p = unsafe { ffi::hivex_value_value(self.h, v, &mut t, &mut len) };
        if p.is_null() {
            return Err(self.fail("reading value data"));
        }
        // SAFETY: hivex guarantees `len` readable bytes at `p`.
        let data = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }.to_vec();
        // SAFETY: malloc'd by hivex, owned by us, not used afterwards.
        unsafe { ffi::free(p.cast::<c_void>()) };
        Ok((name, RegValue { ty: t as u32, data }))
    }

    fn write_values(&mut self, node: usize, values: &[(String, RegValue)]) -> Result<()> {
        let names: Vec<CString> = values
            .iter()
            .map(|(n, _)| cstring(n))
            .collect::<Result<_>>()?;
        let raw: Vec<ffi::hive_set_value> = values
            .iter()
            .zip(&names)
            .map(|((_, v), n)| ffi::hive_set_value {
                key: n.as_ptr().cast_mut(),
                t: v.ty as ffi::hive_type,
                len: v.data.len(),
                value: v.data.as_ptr().cast::<c_char>().cast_mut(),
            })
            .collect();
        // SAFETY: `raw` holds `raw.len()` entries whose pointers borrow `names`/`values`, alive for
        // the call; hivex copies the data and does not write through them.
        let r = unsafe { ffi::hivex_node_set_values(self.h, node, raw.len(), raw.as_ptr(), 0) };
        if r != 0 {
            return Err(self.fail("writing values"));
        }
        Ok(())
    }
}

impl Drop for Hive {
    fn drop(&mut self) {
        // SAFETY: `self.h` was returned by hivex_open and is closed exactly once, here.
        unsafe { ffi::hivex_close(self.h) };
    }
}

impl RegistryHive for Hive {
    type Node = usize;

    fn root(&self) -> usize {
        // SAFETY: `self.h` is an open hive handle.
        unsafe { ffi::hivex_root(self.h) }
    }

    fn child(&self, node: usize, name: &str) -> Result<Option<usize>> {
        let c = cstring(name)?;
        // SAFETY: open handle, node from this hive, `c` NUL-terminated. 0 = not found.
        let n = unsafe { ffi::hivex_node_get_child(self.h, node, c.as_ptr()) };
        Ok((n != 0).then_some(n))
    }

    fn children(&self, node: usize) -> Result<Vec<(String, usize)>> {
        // SAFETY: open handle, node from this hive.
        let kids = unsafe { ffi::hivex_node_children(self.h, node) };
        // SAFETY: the result is a malloc'd 0-terminated array (or null), owned by us.
        let kids = unsafe { take_handles(kids) }.ok_or_else(|| self.fail("listing subkeys"))?;
        kids.into_iter()
            .map(|k| Ok((self.node_name(k)?, k)))
            .collect()
    }

    fn value(&self, node: usize, name: &str) -> Result<Option<RegValue>> {
        let c = cstring(name)?;
        // SAFETY: open handle, node from this hive, `c` NUL-terminated. 0 = not found.
        let v = unsafe { ffi::hivex_node_get_value(self.h, node, c.as_ptr()) };
        if v == 0 {
            return Ok(None);
        }
        Ok(Some(self.read_value(v)?.1))
    }

    fn values(&self, node: usize) -> Result<Vec<(String, RegValue)>> {
        // SAFETY: open handle, node from this hive.
        let vals = unsafe { ffi::hivex_node_values(self.h, node) };
        // SAFETY: the result is a malloc'd 0-terminated array (or null), owned by us.
        let vals = unsafe { take_handles(vals) }.ok_or_else(|| self.fail("listing values"))?;
        vals.into_iter().map(|v| self.read_value(v)).collect()
    }

    fn add_child(&mut self, node: usize, name: &str) -> Result<usize> {
        let c = cstring(name)?;
        // SAFETY: handle opened for writing, node from this hive, `c` NUL-terminated.
        let n = unsafe { ffi::hivex_node_add_child(self.h, node, c.as_ptr()) };
        if n == 0 {
            return Err(self.fail(&format!("adding key {name}")));
        }
        Ok(n)
    }

    fn delete_key(&mut self, node: usize) -> Result<()> {
        // SAFETY: handle opened for writing, node from this hive (not the root: hivex refuses).
        if unsafe { ffi::hivex_node_delete_child(self.h, node) } != 0 {
            return Err(self.fail("deleting key"));
        }
        Ok(())
    }

    fn set_value(&mut self, node: usize, name: &str, value: &RegValue) -> Result<()> {
        let c = cstring(name)?;
        let v = ffi::hive_set_value {
            key: c.as_ptr().cast_mut(),
            t: value.ty as ffi::hive_type,
            len: value.data.len(),
            value: value.data.as_ptr().cast::<c_char>().cast_mut(),
        };
        // SAFETY: `v` borrows `c` and `value.data`, both alive for the call; hivex copies them.
        if unsafe { ffi::hivex_node_set_value(self.h, node, &v, 0) } != 0 {
            return Err(self.fail(&format!("setting value {name}")));
        }
        Ok(())
    }

    fn delete_value(&mut self, node: usize, name: &str) -> Result<()> {
        // hivex has no "delete one value": rewrite the node's value list without it.
        let values = self.values(node)?;
        if !values.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Ok(());
        }
        let kept: Vec<_> = values
            .into_iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
            .collect();
        self.write_values(node, &kept)
    }

    fn commit_to(&mut self, path: &Path) -> Result<()> {
        let c = path_cstring(path)?;
        // SAFETY: handle opened for writing; `c` is a valid NUL-terminated path.
        if unsafe { ffi::hivex_commit(self.h, c.as_ptr(), 0) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(Error::io(path, "cannot write hive", &e));
        }
        Ok(())
    }
}

/// Commits `hive` over its own file atomically (`rvblk-outfile`: a sibling temporary file that
/// hivex writes, synced, renamed into place with the original's mode). An interruption leaves
/// the old file intact.
pub fn commit_in_place(hive: &mut Hive) -> Result<()> {
    let path = hive.path().to_path_buf();
    rvblk_outfile::replace_with(&path, |_, tmp| hive.commit_to(tmp))
}

/// Writes an empty registry hive (only a root key) to `path`. hivex edits hives but cannot create
/// one, so the tests start from this: a `regf` base block (version 1.3, checksum = XOR of its
/// first 127 dwords), one 4 KiB `hbin` holding the root `nk` cell (flags: hive entry, no delete,
/// compressed name), one `sk` cell with an empty self-relative security descriptor that new keys
/// share, and a free cell for the rest of the bin.
pub fn write_empty_hive(path: &Path) -> Result<()> {
    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    let mut b = vec![0u8; 0x2000];
    b[..4].copy_from_slice(b"regf");
    put32(&mut b, 0x04, 1); // sequence numbers equal: the hive is consistent
    put32(&mut b, 0x08, 1);
    put32(&mut b, 0x14, 1); // major version
    put32(&mut b, 0x18, 3); // minor version
    put32(&mut b, 0x20, 1); // file format: direct memory load
    put32(&mut b, 0x24, 0x20); // root cell, relative to the first bin
    put32(&mut b, 0x28, 0x1000); // size of the bins
    put32(&mut b, 0x2c, 1); // clustering factor
    let sum = (0..0x1fc).step_by(4).fold(0u32, |x, i| {
        x ^ u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
    });
    put32(&mut b, 0x1fc, sum);
    let bin = 0x1000;
    b[bin..bin + 4].copy_from_slice(b"hbin");
    put32(&mut b, bin + 8, 0x1000);
    // Root key at bin offset 0x20: a 0x58-byte cell (allocated cells have negative sizes).
    let nk = bin + 0x20;
    let name = b"ROOT";
    put32(&mut b, nk, (-0x58i32) as u32);
    b[nk + 4..nk + 6].copy_from_slice(b"nk");
    b[nk + 6..nk + 8].copy_from_slice(&0x2cu16.to_le_bytes());
    put32(&mut b, nk + 0x14, u32::MAX); // parent: none
    put32(&mut b, nk + 0x20, u32::MAX); // subkey list: none
    put32(&mut b, nk + 0x24, u32::MAX);
    put32(&mut b, nk + 0x2c, u32::MAX); // value list: none
    put32(&mut b, nk + 0x30, 0x78); // security cell
    put32(&mut b, nk + 0x34, u32::MAX); // class name: none
    b[nk + 0x4c..nk + 0x4e].copy_from_slice(&(name.len() as u16).to_le_bytes());
    b[nk + 0x50..nk + 0x50 + name.len()].copy_from_slice(name);
    // Security cell at bin offset 0x78: list links to itself, one reference, 20-byte descriptor
    // (revision 1, control SE_SELF_RELATIVE, no owner, group, SACL or DACL).
    let sk = bin + 0x78;
    put32(&mut b, sk, (-0x30i32) as u32);
    b[sk + 4..sk + 6].copy_from_slice(b"sk");
    put32(&mut b, sk + 0x08, 0x78);
    put32(&mut b, sk + 0x0c, 0x78);
    put32(&mut b, sk + 0x10, 1);
    put32(&mut b, sk + 0x14, 20);
    b[sk + 0x18] = 1;
    b[sk + 0x1a..sk + 0x1c].copy_from_slice(&0x8000u16.to_le_bytes());
    // The rest of the bin is one free cell.
    put32(&mut b, bin + 0xa8, 0x1000 - 0xa8);
    std::fs::write(path, b).map_err(|e| Error::io(path, "cannot write", &e))
}
