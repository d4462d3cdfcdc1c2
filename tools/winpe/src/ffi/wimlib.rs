//! Raw bindings to wimlib (Debian `libwim-dev`, `/usr/include/wimlib.h`, API 1.13).
//!
//! `wimlib_tchar` is `char` (UTF-8) on non-Windows builds.

#![allow(non_camel_case_types, dead_code)]

use std::ffi::{c_char, c_int, c_uint, c_void};

/// Opaque `WIMStruct`.
#[repr(C)]
pub struct WIMStruct {
    _private: [u8; 0],
}

pub const WIMLIB_NO_IMAGE: c_int = 0;
pub const WIMLIB_ALL_IMAGES: c_int = -1;

pub const WIMLIB_INIT_FLAG_DEFAULT_CASE_INSENSITIVE: c_int = 0x0000_0020;
pub const WIMLIB_OPEN_FLAG_WRITE_ACCESS: c_int = 0x0000_0004;
pub const WIMLIB_OPEN_FLAG_ERROR_IF_SPLIT: c_int = 0x0000_0002;
pub const WIMLIB_EXTRACT_FLAG_NO_PRESERVE_DIR_STRUCTURE: c_int = 0x0020_0000;
pub const WIMLIB_DELETE_FLAG_RECURSIVE: c_int = 0x0000_0002;
pub const WIMLIB_UPDATE_FLAG_SEND_PROGRESS: c_int = 0x0000_0001;
pub const WIMLIB_ITERATE_DIR_TREE_FLAG_CHILDREN: c_int = 0x0000_0002;

pub const WIMLIB_UPDATE_OP_ADD: c_int = 0;
pub const WIMLIB_UPDATE_OP_DELETE: c_int = 1;

pub const WIMLIB_PROGRESS_MSG_WRITE_STREAMS: c_int = 12;
pub const WIMLIB_PROGRESS_MSG_WRITE_METADATA_BEGIN: c_int = 13;
pub const WIMLIB_PROGRESS_MSG_VERIFY_INTEGRITY: c_int = 16;
pub const WIMLIB_PROGRESS_MSG_CALC_INTEGRITY: c_int = 17;
pub const WIMLIB_PROGRESS_STATUS_CONTINUE: c_int = 0;

pub const WIMLIB_ERR_INVALID_HEADER: c_int = 17;
pub const WIMLIB_ERR_INVALID_IMAGE: c_int = 18;
pub const WIMLIB_ERR_IS_SPLIT_WIM: c_int = 33;
pub const WIMLIB_ERR_NOT_A_WIM_FILE: c_int = 43;
pub const WIMLIB_ERR_OPEN: c_int = 47;
pub const WIMLIB_ERR_PATH_DOES_NOT_EXIST: c_int = 49;
pub const WIMLIB_ERR_READ: c_int = 50;
pub const WIMLIB_ERR_UNEXPECTED_END_OF_FILE: c_int = 65;
pub const WIMLIB_ERR_UNKNOWN_VERSION: c_int = 67;
pub const WIMLIB_ERR_WIM_IS_READONLY: c_int = 71;
pub const WIMLIB_ERR_WRITE: c_int = 72;
pub const WIMLIB_ERR_WIM_IS_ENCRYPTED: c_int = 74;

/// `struct wimlib_wim_info` (wimlib.h). The bitfield word holds, from bit 0:
/// has_integrity_table, opened_from_file, is_readonly, has_rpfix, is_marked_readonly, spanned,
/// write_in_progress, metadata_only, resource_only, pipable.
#[repr(C)]
#[derive(Default)]
pub struct wimlib_wim_info {
    pub guid: [u8; 16],
    pub image_count: u32,
    pub boot_index: u32,
    pub wim_version: u32,
    pub chunk_size: u32,
    pub part_number: u16,
    pub total_parts: u16,
    pub compression_type: i32,
    pub total_bytes: u64,
    pub flags: u32,
    pub reserved: [u32; 9],
}

/// `struct wimlib_add_command`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct wimlib_add_command {
    pub fs_source_path: *mut c_char,
    pub wim_target_path: *mut c_char,
    pub config_file: *mut c_char,
    pub add_flags: c_int,
}

/// `struct wimlib_delete_command`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct wimlib_delete_command {
    pub wim_path: *mut c_char,
    pub delete_flags: c_int,
}

/// The anonymous union inside `struct wimlib_update_command` (the rename member, two pointers and
/// an int, is never larger than the add member).
#[repr(C)]
#[derive(Clone, Copy)]
pub union wimlib_update_command_u {
    pub add: wimlib_add_command,
    pub delete_: wimlib_delete_command,
}

/// `struct wimlib_update_command`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct wimlib_update_command {
    pub op: c_int,
    pub u: wimlib_update_command_u,
}

/// Prefix of `union wimlib_progress_info` as seen for `WIMLIB_PROGRESS_MSG_WRITE_STREAMS`.
#[repr(C)]
pub struct wimlib_progress_info_write_streams {
    pub total_bytes: u64,
    pub total_streams: u64,
    pub completed_bytes: u64,
    pub completed_streams: u64,
}

/// Prefix of `union wimlib_progress_info` as seen for the two integrity messages.
#[repr(C)]
pub struct wimlib_progress_info_integrity {
    pub total_bytes: u64,
    pub completed_bytes: u64,
}

/// Prefix of `struct wimlib_dir_entry` (only the first member is read).
#[repr(C)]
pub struct wimlib_dir_entry_prefix {
    pub filename: *const c_char,
}

/// `wimlib_progress_func_t`. `info` points to a `union wimlib_progress_info`.
pub type wimlib_progress_func_t =
    Option<unsafe extern "C" fn(msg: c_int, info: *mut c_void, ctx: *mut c_void) -> c_int>;

/// `wimlib_iterate_dir_tree_callback_t`.
pub type wimlib_iterate_dir_tree_callback_t =
    Option<unsafe extern "C" fn(dentry: *const wimlib_dir_entry_prefix, ctx: *mut c_void) -> c_int>;

#[link(name = "wim")]
extern "C" {
    pub fn wimlib_global_init(init_flags: c_int) -> c_int;
    pub fn wimlib_open_wim_with_progress(
        wim_file: *const c_char,
        open_flags: c_int,
        wim_ret: *mut *mut WIMStruct,
        progfunc: wimlib_progress_func_t,
        progctx: *mut c_void,
    ) -> c_int;
    pub fn wimlib_free(wim: *mut WIMStruct);
    pub fn wimlib_get_wim_info(wim: *mut WIMStruct, info: *mut wimlib_wim_info) -> c_int;
    pub fn wimlib_get_image_name(wim: *const WIMStruct, image: c_int) -> *const c_char;
    pub fn wimlib_get_image_property(
        wim: *const WIMStruct,
        image: c_int,
        property_name: *const c_char,
    ) -> *const c_char;
    pub fn wimlib_extract_paths(
        wim: *mut WIMStruct,
        image: c_int,
        target: *const c_char,
        paths: *const *const c_char,
        num_paths: usize,
        extract_flags: c_int,
    ) -> c_int;
    pub fn wimlib_iterate_dir_tree(
        wim: *mut WIMStruct,
        image: c_int,
        path: *const c_char,
        flags: c_int,
        cb: wimlib_iterate_dir_tree_callback_t,
        user_ctx: *mut c_void,
    ) -> c_int;
    pub fn wimlib_update_image(
        wim: *mut WIMStruct,
        image: c_int,
        cmds: *const wimlib_update_command,
        num_cmds: usize,
        update_flags: c_int,
    ) -> c_int;
    pub fn wimlib_overwrite(wim: *mut WIMStruct, write_flags: c_int, num_threads: c_uint) -> c_int;
    pub fn wimlib_register_progress_function(
        wim: *mut WIMStruct,
        progfunc: wimlib_progress_func_t,
        progctx: *mut c_void,
    );
    pub fn wimlib_get_error_string(code: c_int) -> *const c_char;
}
