//! The seam between the injection logic and the storage back ends.
//!
//! [`RegistryHive`] is an offline registry hive (implemented with hivex by [`crate::hive::Hive`]);
//! [`WimStore`] is a WIM archive (implemented with wimlib by [`crate::wim::Wim`]). The logic in
//! [`crate::system`], [`crate::bcd`] and [`crate::inject`] only uses these traits, so a Windows
//! build could plug in `RegLoadAppKey`/offreg.dll and wimgapi without touching it.

use crate::error::Result;
use std::path::{Path, PathBuf};

pub const REG_NONE: u32 = 0;
pub const REG_SZ: u32 = 1;
pub const REG_EXPAND_SZ: u32 = 2;
pub const REG_BINARY: u32 = 3;
pub const REG_DWORD: u32 = 4;
pub const REG_MULTI_SZ: u32 = 7;
pub const REG_QWORD: u32 = 11;

/// A registry value in its raw form: the `REG_*` type and the data bytes as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegValue {
    pub ty: u32,
    pub data: Vec<u8>,
}

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain(std::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn decode_utf16(data: &[u8]) -> Vec<u16> {
    data.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

impl RegValue {
    pub fn sz(s: &str) -> Self {
        RegValue {
            ty: REG_SZ,
            data: utf16z(s),
        }
    }
    pub fn expand_sz(s: &str) -> Self {
        RegValue {
            ty: REG_EXPAND_SZ,
            data: utf16z(s),
        }
    }
    pub fn multi_sz(items: &[&str]) -> Self {
        let mut data: Vec<u8> = items.iter().flat_map(|s| utf16z(s)).collect();
        data.extend_from_slice(&[0, 0]);
        RegValue {
            ty: REG_MULTI_SZ,
            data,
        }
    }
    pub fn dword(v: u32) -> Self {
        RegValue {
            ty: REG_DWORD,
            data: v.to_le_bytes().to_vec(),
        }
    }
    pub fn binary(b: &[u8]) -> Self {
        RegValue {
            ty: REG_BINARY,
            data: b.to_vec(),
        }
    }

    /// The string of a `REG_SZ`/`REG_EXPAND_SZ` value (up to the first NUL), else `None`.
    pub fn as_str(&self) -> Option<String> {
        if self.ty != REG_SZ && self.ty != REG_EXPAND_SZ {
            return None;
        }
        let u = decode_utf16(&self.data);
        let end = u.iter().position(|&c| c == 0).unwrap_or(u.len());
        Some(String::from_utf16_lossy(&u[..end]))
    }

    /// The strings of a `REG_MULTI_SZ` value, else `None`.
    pub fn as_multi(&self) -> Option<Vec<String>> {
        if self.ty != REG_MULTI_SZ {
            return None;
        }
        let u = decode_utf16(&self.data);
        let mut out = Vec::new();
        for part in u.split(|&c| c == 0) {
            if part.is_empty() {
                break;
            }
            out.push(String::from_utf16_lossy(part));
        }
        Some(out)
    }

    /// The number of a `REG_DWORD` value, else `None`.
    pub fn as_dword(&self) -> Option<u32> {
        match (self.ty, self.data.as_slice()) {
            (REG_DWORD, [a, b, c, d]) => Some(u32::from_le_bytes([*a, *b, *c, *d])),
            _ => None,
        }
    }

    /// Same meaning: equal types and, for strings, equal text regardless of trailing NULs.
    pub fn same_as(&self, other: &RegValue) -> bool {
        if self.ty != other.ty {
            return false;
        }
        match self.ty {
            REG_SZ | REG_EXPAND_SZ => self.as_str() == other.as_str(),
            REG_MULTI_SZ => self.as_multi() == other.as_multi(),
            _ => self.data == other.data,
        }
    }

    /// A short human-readable rendering (for reports and `rvblk info`).
    pub fn display(&self) -> String {
        match self.ty {
            REG_SZ | REG_EXPAND_SZ => format!("{:?}", self.as_str().unwrap_or_default()),
            REG_MULTI_SZ => format!("{:?}", self.as_multi().unwrap_or_default()),
            REG_DWORD => match self.as_dword() {
                Some(v) => format!("{v:#x}"),
                None => format!("dword? {:02x?}", self.data),
            },
            _ => self
                .data
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// An offline registry hive. Key names compare case-insensitively, as in Windows.
/// `Node` handles stay valid until the key (or an ancestor) is deleted.
pub trait RegistryHive {
    type Node: Copy + Eq + std::fmt::Debug;

    fn root(&self) -> Self::Node;
    /// The child key `name` of `node`, if any.
    fn child(&self, node: Self::Node, name: &str) -> Result<Option<Self::Node>>;
    /// The names and handles of `node`'s subkeys.
    fn children(&self, node: Self::Node) -> Result<Vec<(String, Self::Node)>>;
    /// The value `name` of `node` ("" is the default value).
    fn value(&self, node: Self::Node, name: &str) -> Result<Option<RegValue>>;
    /// All values of `node`, in stored order.
    fn values(&self, node: Self::Node) -> Result<Vec<(String, RegValue)>>;
    fn add_child(&mut self, node: Self::Node, name: &str) -> Result<Self::Node>;
    /// Deletes `node` with all its subkeys and values.
    fn delete_key(&mut self, node: Self::Node) -> Result<()>;
    fn set_value(&mut self, node: Self::Node, name: &str, value: &RegValue) -> Result<()>;
    fn delete_value(&mut self, node: Self::Node, name: &str) -> Result<()>;
    /// Writes the hive to `path` (a new file; the caller renames it into place).
    fn commit_to(&mut self, path: &Path) -> Result<()>;

    /// Follows a backslash-separated path from the root.
    fn open_path(&self, path: &str) -> Result<Option<Self::Node>> {
        let mut node = self.root();
        for part in path.split('\\').filter(|p| !p.is_empty()) {
            match self.child(node, part)? {
                Some(n) => node = n,
                None => return Ok(None),
            }
        }
        Ok(Some(node))
    }
}

/// Facts about one image of a WIM.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// 1-based index.
    pub index: u32,
    pub name: String,
    /// `WINDOWS/ARCH` from the WIM's XML metadata, if recorded.
    pub arch_property: Option<u32>,
    /// `WINDOWS/VERSION/BUILD` from the XML metadata, if recorded.
    pub build: Option<u32>,
    pub bootable: bool,
}

/// One change to an image's file tree.
#[derive(Debug, Clone)]
pub enum FileOp {
    /// Add or replace the file at `wim_path` (absolute, `/`-separated) with the local file `source`.
    Put { wim_path: String, source: PathBuf },
    /// Delete `wim_path` (recursively if it is a directory).
    Delete { wim_path: String },
}

/// A WIM archive opened for reading and, if asked, in-place updating.
pub trait WimStore {
    fn images(&self) -> Result<Vec<ImageInfo>>;
    /// The content of a file in `image` (path compared case-insensitively), or `None`.
    fn read_file(&mut self, image: u32, wim_path: &str) -> Result<Option<Vec<u8>>>;
    /// Whether `wim_path` exists in `image`.
    fn exists(&mut self, image: u32, wim_path: &str) -> Result<bool>;
    /// The names of the entries of directory `wim_path` in `image`.
    fn list_dir(&mut self, image: u32, wim_path: &str) -> Result<Vec<String>>;
    /// Queues changes to `image`; nothing reaches the file before [`WimStore::commit`].
    fn update(&mut self, image: u32, ops: &[FileOp]) -> Result<()>;
    /// Writes all queued changes into the file, safely (an interrupted write leaves the old WIM).
    fn commit(&mut self) -> Result<()>;
}
