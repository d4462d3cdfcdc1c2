//! Raw bindings to hivex (Debian `libhivex-dev`, `/usr/include/hivex.h`).

#![allow(non_camel_case_types, dead_code)]

use std::ffi::{c_char, c_int, c_void};

/// Opaque `hive_h`.
#[repr(C)]
pub struct hive_h {
    _private: [u8; 0],
}

/// `hive_node_h`: an offset into the hive; 0 means "none" or error.
pub type hive_node_h = usize;
/// `hive_value_h`: an offset into the hive; 0 means "none" or error.
pub type hive_value_h = usize;
/// `enum hive_type`, numerically identical to the Windows `REG_*` type codes.
pub type hive_type = c_int;

pub const HIVEX_OPEN_WRITE: c_int = 4;

/// `struct hive_set_value`.
#[repr(C)]
pub struct hive_set_value {
    pub key: *mut c_char,
    pub t: hive_type,
    pub len: usize,
    pub value: *mut c_char,
}

#[link(name = "hivex")]
extern "C" {
    pub fn hivex_open(filename: *const c_char, flags: c_int) -> *mut hive_h;
    pub fn hivex_close(h: *mut hive_h) -> c_int;
    pub fn hivex_root(h: *mut hive_h) -> hive_node_h;
    pub fn hivex_node_name(h: *mut hive_h, node: hive_node_h) -> *mut c_char;
    pub fn hivex_node_children(h: *mut hive_h, node: hive_node_h) -> *mut hive_node_h;
    pub fn hivex_node_get_child(
        h: *mut hive_h,
        node: hive_node_h,
        name: *const c_char,
    ) -> hive_node_h;
    pub fn hivex_node_values(h: *mut hive_h, node: hive_node_h) -> *mut hive_value_h;
    pub fn hivex_node_get_value(
        h: *mut hive_h,
        node: hive_node_h,
        key: *const c_char,
    ) -> hive_value_h;
    pub fn hivex_value_key(h: *mut hive_h, val: hive_value_h) -> *mut c_char;
    pub fn hivex_value_value(
        h: *mut hive_h,
        val: hive_value_h,
        t: *mut hive_type,
        len: *mut usize,
    ) -> *mut c_char;
    pub fn hivex_commit(h: *mut hive_h, filename: *const c_char, flags: c_int) -> c_int;
    pub fn hivex_node_add_child(
        h: *mut hive_h,
        parent: hive_node_h,
        name: *const c_char,
    ) -> hive_node_h;
    pub fn hivex_node_delete_child(h: *mut hive_h, node: hive_node_h) -> c_int;
    pub fn hivex_node_set_values(
        h: *mut hive_h,
        node: hive_node_h,
        nr_values: usize,
        values: *const hive_set_value,
        flags: c_int,
    ) -> c_int;
    pub fn hivex_node_set_value(
        h: *mut hive_h,
        node: hive_node_h,
        val: *const hive_set_value,
        flags: c_int,
    ) -> c_int;
}

extern "C" {
    /// C library `free`, for the buffers hivex returns (documented as "caller must free").
    pub fn free(p: *mut c_void);
}
