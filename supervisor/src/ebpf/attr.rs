//! The parts of `union bpf_attr` the lock uses, declared as `include/uapi/linux/bpf.h` lays
//! them out (alignment 1, host-endian, sizes pinned). Each is passed whole to `bpf(2)`, which
//! takes a larger union as long as the bytes past what it knows are zero.

use zerocopy::byteorder::native_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `BPF_OBJ_NAME_LEN`.
pub const BPF_OBJ_NAME_LEN: usize = 16;

/// The commands (`enum bpf_cmd`).
pub mod cmd {
    /// `BPF_MAP_CREATE`.
    pub const MAP_CREATE: i32 = 0;
    /// `BPF_MAP_LOOKUP_ELEM`.
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    /// `BPF_MAP_UPDATE_ELEM`.
    pub const MAP_UPDATE_ELEM: i32 = 2;
    /// `BPF_PROG_LOAD`.
    pub const PROG_LOAD: i32 = 5;
    /// `BPF_OBJ_PIN`.
    pub const OBJ_PIN: i32 = 6;
    /// `BPF_OBJ_GET`.
    pub const OBJ_GET: i32 = 7;
    /// `BPF_PROG_ATTACH`.
    pub const PROG_ATTACH: i32 = 8;
    /// `BPF_PROG_DETACH`.
    pub const PROG_DETACH: i32 = 9;
    /// `BPF_OBJ_GET_INFO_BY_FD`.
    pub const OBJ_GET_INFO_BY_FD: i32 = 15;
    /// `BPF_PROG_QUERY`.
    pub const PROG_QUERY: i32 = 16;
    /// `BPF_RAW_TRACEPOINT_OPEN`: for an LSM program, attaches it and returns its link.
    pub const RAW_TRACEPOINT_OPEN: i32 = 17;
}

/// `BPF_MAP_CREATE`'s part.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MapCreate {
    /// `map_type`. // 0x00
    pub map_type: U32,
    /// `key_size`. // 0x04
    pub key_size: U32,
    /// `value_size`. // 0x08
    pub value_size: U32,
    /// `max_entries`. // 0x0C
    pub max_entries: U32,
    /// `map_flags`. // 0x10
    pub map_flags: U32,
    /// `inner_map_fd`. // 0x14
    pub inner_map_fd: U32,
    /// `numa_node`. // 0x18
    pub numa_node: U32,
    /// `map_name`. // 0x1C
    pub map_name: [u8; BPF_OBJ_NAME_LEN],
}

/// `BPF_MAP_*_ELEM`'s part.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct MapElem {
    /// `map_fd`. // 0x00
    pub map_fd: U32,
    /// Padding (`key` is 8-aligned). // 0x04
    pub pad: U32,
    /// `key`: a pointer. // 0x08
    pub key: U64,
    /// `value`: a pointer. // 0x10
    pub value: U64,
    /// `flags` (`BPF_ANY`: 0). // 0x18
    pub flags: U64,
}

/// `BPF_PROG_LOAD`'s part, up to `attach_btf_obj_fd`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct ProgLoad {
    /// `prog_type`. // 0x00
    pub prog_type: U32,
    /// `insn_cnt`. // 0x04
    pub insn_cnt: U32,
    /// `insns`: a pointer. // 0x08
    pub insns: U64,
    /// `license`: a pointer to a NUL-terminated string. // 0x10
    pub license: U64,
    /// `log_level`. // 0x18
    pub log_level: U32,
    /// `log_size`. // 0x1C
    pub log_size: U32,
    /// `log_buf`: a pointer. // 0x20
    pub log_buf: U64,
    /// `kern_version`. // 0x28
    pub kern_version: U32,
    /// `prog_flags`. // 0x2C
    pub prog_flags: U32,
    /// `prog_name`. // 0x30
    pub prog_name: [u8; BPF_OBJ_NAME_LEN],
    /// `prog_ifindex`. // 0x40
    pub prog_ifindex: U32,
    /// `expected_attach_type`. // 0x44
    pub expected_attach_type: U32,
    /// `prog_btf_fd`. // 0x48
    pub prog_btf_fd: U32,
    /// `func_info_rec_size`. // 0x4C
    pub func_info_rec_size: U32,
    /// `func_info`. // 0x50
    pub func_info: U64,
    /// `func_info_cnt`. // 0x58
    pub func_info_cnt: U32,
    /// `line_info_rec_size`. // 0x5C
    pub line_info_rec_size: U32,
    /// `line_info`. // 0x60
    pub line_info: U64,
    /// `line_info_cnt`. // 0x68
    pub line_info_cnt: U32,
    /// `attach_btf_id`: the hook's type id in the kernel's BTF. // 0x6C
    pub attach_btf_id: U32,
    /// `attach_btf_obj_fd` (0: the kernel's own BTF). // 0x70
    pub attach_btf_obj_fd: U32,
    /// `core_relo_cnt` (0). // 0x74
    pub core_relo_cnt: U32,
}

/// `BPF_OBJ_PIN` / `BPF_OBJ_GET`'s part.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Obj {
    /// `pathname`: a pointer to a NUL-terminated path in a bpf file system. // 0x00
    pub pathname: U64,
    /// `bpf_fd`. // 0x08
    pub bpf_fd: U32,
    /// `file_flags`. // 0x0C
    pub file_flags: U32,
}

/// `BPF_PROG_ATTACH` / `BPF_PROG_DETACH`'s part.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Attach {
    /// `target_fd`: the cgroup's directory. // 0x00
    pub target_fd: U32,
    /// `attach_bpf_fd`. // 0x04
    pub attach_bpf_fd: U32,
    /// `attach_type`. // 0x08
    pub attach_type: U32,
    /// `attach_flags`. // 0x0C
    pub attach_flags: U32,
    /// `replace_bpf_fd`. // 0x10
    pub replace_bpf_fd: U32,
}

/// `BPF_PROG_QUERY`'s part.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Query {
    /// `target_fd`. // 0x00
    pub target_fd: U32,
    /// `attach_type`. // 0x04
    pub attach_type: U32,
    /// `query_flags`. // 0x08
    pub query_flags: U32,
    /// `attach_flags` (out). // 0x0C
    pub attach_flags: U32,
    /// `prog_ids`: a pointer to `prog_cnt` u32s. // 0x10
    pub prog_ids: U64,
    /// `prog_cnt` (in: room; out: how many). // 0x18
    pub prog_cnt: U32,
    /// Padding. // 0x1C
    pub pad: U32,
}

/// `BPF_RAW_TRACEPOINT_OPEN`'s part.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct RawTracepoint {
    /// `name` (0 for an LSM program). // 0x00
    pub name: U64,
    /// `prog_fd`. // 0x08
    pub prog_fd: U32,
    /// Padding. // 0x0C
    pub pad: U32,
}

/// `BPF_OBJ_GET_INFO_BY_FD`'s part.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct Info {
    /// `bpf_fd`. // 0x00
    pub bpf_fd: U32,
    /// `info_len`. // 0x04
    pub info_len: U32,
    /// `info`: a pointer. // 0x08
    pub info: U64,
}

/// The head of `struct bpf_prog_info`: its type and id.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct ProgInfo {
    /// `type`. // 0x00
    pub prog_type: U32,
    /// `id`. // 0x04
    pub id: U32,
}

/// The head of `struct bpf_link_info`: its type, id and program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct LinkInfo {
    /// `type`. // 0x00
    pub link_type: U32,
    /// `id`. // 0x04
    pub id: U32,
    /// `prog_id`. // 0x08
    pub prog_id: U32,
}

// The offsets `include/uapi/linux/bpf.h` gives each field.
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<MapCreate>() == 0x2C);
    assert!(size_of::<MapElem>() == 0x20);
    assert!(offset_of!(ProgLoad, prog_name) == 0x30);
    assert!(offset_of!(ProgLoad, expected_attach_type) == 0x44);
    assert!(offset_of!(ProgLoad, attach_btf_id) == 0x6C);
    assert!(size_of::<ProgLoad>() == 0x78);
    assert!(size_of::<Obj>() == 0x10);
    assert!(size_of::<Attach>() == 0x14);
    assert!(offset_of!(Query, prog_cnt) == 0x18);
    assert!(size_of::<RawTracepoint>() == 0x10);
    assert!(size_of::<Info>() == 0x10);
};

/// `name` as a `BPF_OBJ_NAME_LEN` field (cut, NUL-padded).
pub fn obj_name(name: &str) -> [u8; BPF_OBJ_NAME_LEN] {
    let mut out = [0u8; BPF_OBJ_NAME_LEN];
    for (o, b) in out.iter_mut().zip(name.bytes().take(BPF_OBJ_NAME_LEN - 1)) {
        *o = b;
    }
    out
}
