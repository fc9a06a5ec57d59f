//! The few facts the host-wide guard's BPF LSM programs need from the kernel's own type
//! information (`/sys/kernel/btf/vmlinux`, BTF): the type id of the hook function a program
//! attaches to (`bpf_lsm_file_open`), and the byte offsets of the fields it reads
//! (`file->f_inode`, `inode->i_mode`, ...), which differ between kernels. Pure functions over
//! the bytes, the kernel's names (`include/uapi/linux/btf.h`); nothing here panics on bad
//! input.

use std::ops::Range;

/// `BTF_MAGIC`.
pub const BTF_MAGIC: u16 = 0xeb9f;

/// The kernel's BTF of itself.
pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// `BTF_KIND_*`: what a type is.
pub mod kind {
    /// `BTF_KIND_INT`.
    pub const INT: u8 = 1;
    /// `BTF_KIND_PTR`.
    pub const PTR: u8 = 2;
    /// `BTF_KIND_ARRAY`.
    pub const ARRAY: u8 = 3;
    /// `BTF_KIND_STRUCT`.
    pub const STRUCT: u8 = 4;
    /// `BTF_KIND_UNION`.
    pub const UNION: u8 = 5;
    /// `BTF_KIND_ENUM`.
    pub const ENUM: u8 = 6;
    /// `BTF_KIND_FWD`.
    pub const FWD: u8 = 7;
    /// `BTF_KIND_TYPEDEF`.
    pub const TYPEDEF: u8 = 8;
    /// `BTF_KIND_VOLATILE`.
    pub const VOLATILE: u8 = 9;
    /// `BTF_KIND_CONST`.
    pub const CONST: u8 = 10;
    /// `BTF_KIND_RESTRICT`.
    pub const RESTRICT: u8 = 11;
    /// `BTF_KIND_FUNC`.
    pub const FUNC: u8 = 12;
    /// `BTF_KIND_FUNC_PROTO`.
    pub const FUNC_PROTO: u8 = 13;
    /// `BTF_KIND_VAR`.
    pub const VAR: u8 = 14;
    /// `BTF_KIND_DATASEC`.
    pub const DATASEC: u8 = 15;
    /// `BTF_KIND_FLOAT`.
    pub const FLOAT: u8 = 16;
    /// `BTF_KIND_DECL_TAG`.
    pub const DECL_TAG: u8 = 17;
    /// `BTF_KIND_TYPE_TAG`.
    pub const TYPE_TAG: u8 = 18;
    /// `BTF_KIND_ENUM64`.
    pub const ENUM64: u8 = 19;
}

/// Why bytes are not BTF this reader understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BtfError {
    /// Shorter than its header or its sections, or its magic is not `BTF_MAGIC`.
    NotBtf,
    /// A type of a kind this reader does not know (a newer kernel): its length is unknown.
    UnknownKind(u8),
}

impl std::fmt::Display for BtfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BtfError::NotBtf => f.write_str("not BTF (bad header, magic or lengths)"),
            BtfError::UnknownKind(k) => write!(f, "a BTF type of unknown kind {k}"),
        }
    }
}

/// One type: its header, and where what follows it is.
#[derive(Clone, Debug)]
struct Type {
    name_off: u32,
    kind: u8,
    vlen: u16,
    kflag: bool,
    /// `size` or `type`, by kind.
    size_or_type: u32,
    /// The bytes after the header (members, parameters, ...).
    extra: Range<usize>,
}

/// The types and strings of one BTF blob.
pub struct Btf<'a> {
    bytes: &'a [u8],
    strings: Range<usize>,
    /// Type id `i + 1` is `types[i]` (id 0 is `void`).
    types: Vec<Type>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(s.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(s.try_into().ok()?))
}

/// The bytes after a type's 12-byte header, by kind and `vlen`.
fn extra_len(kind: u8, vlen: usize) -> Result<usize, BtfError> {
    Ok(match kind {
        kind::INT | kind::VAR | kind::DECL_TAG => 4,
        kind::ARRAY => 12,
        kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => 12 * vlen,
        kind::ENUM | kind::FUNC_PROTO => 8 * vlen,
        kind::PTR
        | kind::FWD
        | kind::TYPEDEF
        | kind::VOLATILE
        | kind::CONST
        | kind::RESTRICT
        | kind::FUNC
        | kind::FLOAT
        | kind::TYPE_TAG => 0,
        other => return Err(BtfError::UnknownKind(other)),
    })
}

impl<'a> Btf<'a> {
    /// Reads the types of a BTF blob (in this host's byte order, as the kernel exports its own).
    pub fn parse(bytes: &'a [u8]) -> Result<Btf<'a>, BtfError> {
        let bad = BtfError::NotBtf;
        if u16_at(bytes, 0) != Some(BTF_MAGIC) {
            return Err(bad);
        }
        let field = |at| u32_at(bytes, at).map(|v| v as usize).ok_or(bad);
        let hdr_len = field(4)?;
        let (type_off, type_len) = (field(8)?, field(12)?);
        let (str_off, str_len) = (field(16)?, field(20)?);
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off).ok_or(bad)?;
            let end = start.checked_add(len).ok_or(bad)?;
            if end > bytes.len() {
                return Err(bad);
            }
            Ok(start..end)
        };
        let type_sec = section(type_off, type_len)?;
        let strings = section(str_off, str_len)?;
        let mut types = Vec::new();
        let mut at = type_sec.start;
        while at < type_sec.end {
            let name_off = u32_at(bytes, at).ok_or(bad)?;
            let info = u32_at(bytes, at + 4).ok_or(bad)?;
            let size_or_type = u32_at(bytes, at + 8).ok_or(bad)?;
            let kind = ((info >> 24) & 0x1f) as u8;
            let vlen = (info & 0xffff) as u16;
            let start = at + 12;
            let end = start
                .checked_add(extra_len(kind, usize::from(vlen))?)
                .filter(|e| *e <= type_sec.end)
                .ok_or(bad)?;
            types.push(Type {
                name_off,
                kind,
                vlen,
                kflag: info >> 31 != 0,
                size_or_type,
                extra: start..end,
            });
            at = end;
        }
        Ok(Btf {
            bytes,
            strings,
            types,
        })
    }

    /// The string at `off` of the string section.
    fn string(&self, off: u32) -> Option<&'a [u8]> {
        let start = self.strings.start.checked_add(off as usize)?;
        let rest = self.bytes.get(start..self.strings.end)?;
        let end = rest.iter().position(|&c| c == 0)?;
        rest.get(..end)
    }

    fn get(&self, id: u32) -> Option<&Type> {
        self.types.get(usize::try_from(id).ok()?.checked_sub(1)?)
    }

    /// The id of the first type of kind `k` named `name` (a struct's full definition, not a
    /// forward declaration, when `k` is `STRUCT`).
    pub fn id_of(&self, k: u8, name: &str) -> Option<u32> {
        let i = self.types.iter().position(|t| {
            t.kind == k
                && !(k == kind::STRUCT && t.vlen == 0)
                && self.string(t.name_off) == Some(name.as_bytes())
        })?;
        u32::try_from(i + 1).ok()
    }

    /// The id `id` with typedefs and qualifiers taken off.
    fn resolve(&self, mut id: u32) -> Option<&Type> {
        for _ in 0..32 {
            let t = self.get(id)?;
            match t.kind {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    id = t.size_or_type;
                }
                _ => return Some(t),
            }
        }
        None
    }

    /// The byte offset of member `member` in struct `strukt`, looking into anonymous structs
    /// and unions; `None` when there is no such member or it is a bit field.
    pub fn member_offset(&self, strukt: &str, member: &str) -> Option<u32> {
        let t = self.get(self.id_of(kind::STRUCT, strukt)?)?;
        self.find_member(t, member, 0)
    }

    fn find_member(&self, t: &Type, member: &str, base_bits: u32) -> Option<u32> {
        for i in 0..usize::from(t.vlen) {
            let at = t.extra.start.checked_add(i.checked_mul(12)?)?;
            let name_off = u32_at(self.bytes, at)?;
            let type_id = u32_at(self.bytes, at + 4)?;
            let raw = u32_at(self.bytes, at + 8)?;
            // With kind_flag set, the high 8 bits are a bit field's size.
            let (bits, bitfield) = if t.kflag {
                (raw & 0x00ff_ffff, raw >> 24 != 0)
            } else {
                (raw, false)
            };
            let bits = base_bits.checked_add(bits)?;
            if name_off == 0 {
                let inner = self.resolve(type_id)?;
                if matches!(inner.kind, kind::STRUCT | kind::UNION) {
                    if let Some(off) = self.find_member(inner, member, bits) {
                        return Some(off);
                    }
                }
                continue;
            }
            if self.string(name_off) == Some(member.as_bytes()) {
                return (!bitfield && bits % 8 == 0).then_some(bits / 8);
            }
        }
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A BTF blob built from its parts, as the kernel lays one out.
    pub(crate) struct Blob {
        types: Vec<u8>,
        strings: Vec<u8>,
        count: u32,
    }

    impl Blob {
        pub(crate) fn new() -> Blob {
            Blob {
                types: Vec::new(),
                strings: vec![0],
                count: 0,
            }
        }

        pub(crate) fn string(&mut self, s: &str) -> u32 {
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            off
        }

        /// Appends a type; its id.
        pub(crate) fn ty(
            &mut self,
            name: &str,
            kind: u8,
            vlen: u16,
            kflag: bool,
            st: u32,
            extra: &[u32],
        ) -> u32 {
            let name_off = if name.is_empty() {
                0
            } else {
                self.string(name)
            };
            let info = (u32::from(kind) << 24) | u32::from(vlen) | (u32::from(kflag) << 31);
            for v in [name_off, info, st].iter().chain(extra) {
                self.types.extend_from_slice(&v.to_ne_bytes());
            }
            self.count += 1;
            self.count
        }

        pub(crate) fn bytes(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&BTF_MAGIC.to_ne_bytes());
            out.extend_from_slice(&[1, 0]);
            for v in [
                24u32,
                0,
                self.types.len() as u32,
                self.types.len() as u32,
                self.strings.len() as u32,
            ] {
                out.extend_from_slice(&v.to_ne_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    /// `struct inode { umode_t i_mode; ...; dev_t i_rdev @0x44 }` with an anonymous union, and
    /// `struct file { union {...} f_u; struct path f_path; struct inode *f_inode @0x20 }`.
    pub(crate) fn sample() -> Vec<u8> {
        let mut b = Blob::new();
        let u16t = b.ty("unsigned short", kind::INT, 0, false, 2, &[16]);
        let u32t = b.ty("unsigned int", kind::INT, 0, false, 4, &[32]);
        let umode = b.ty("umode_t", kind::TYPEDEF, 0, false, u16t, &[]);
        let dev = b.ty("dev_t", kind::TYPEDEF, 0, false, u32t, &[]);
        // Forward declaration first: it must not be taken for the definition.
        b.ty("inode", kind::STRUCT, 0, false, 0, &[]);
        let (m1, m2, m3) = (b.string("i_mode"), b.string("i_nlink"), b.string("i_rdev"));
        let anon = b.ty("", kind::UNION, 1, false, 4, &[m2, u32t, 0]);
        let inode = b.ty(
            "inode",
            kind::STRUCT,
            3,
            false,
            0x48,
            &[m1, umode, 0, 0, anon, 0x20 * 8, m3, dev, 0x44 * 8],
        );
        let ptr = b.ty("", kind::PTR, 0, false, inode, &[]);
        let (f1, f2) = (b.string("f_flags"), b.string("f_inode"));
        // A bit field, then the pointer, in a struct with kind_flag set.
        b.ty(
            "file",
            kind::STRUCT,
            2,
            true,
            0x40,
            &[f1, u32t, (3 << 24) | (0x10 * 8), f2, ptr, 0x20 * 8],
        );
        b.ty("bpf_lsm_file_open", kind::FUNC, 0, false, 0, &[]);
        b.bytes()
    }

    #[test]
    fn offsets_and_function_ids_are_found_by_name() {
        let bytes = sample();
        let btf = Btf::parse(&bytes).unwrap();
        assert_eq!(btf.member_offset("inode", "i_mode"), Some(0));
        assert_eq!(btf.member_offset("inode", "i_rdev"), Some(0x44));
        // Inside the anonymous union.
        assert_eq!(btf.member_offset("inode", "i_nlink"), Some(0x20));
        assert_eq!(btf.member_offset("file", "f_inode"), Some(0x20));
        // A bit field has no byte offset; a missing member none at all.
        assert_eq!(btf.member_offset("file", "f_flags"), None);
        assert_eq!(btf.member_offset("file", "f_pos"), None);
        assert_eq!(btf.member_offset("task_struct", "tgid"), None);
        let id = btf.id_of(kind::FUNC, "bpf_lsm_file_open").unwrap();
        assert_eq!(btf.get(id).unwrap().kind, kind::FUNC);
        assert_eq!(btf.id_of(kind::FUNC, "bpf_lsm_file_ioctl"), None);
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            let _ = Btf::parse(&bytes[..cut]);
        }
        assert!(Btf::parse(&bytes[..10]).is_err());
        let mut wrong = bytes.clone();
        wrong[0] ^= 0xff;
        assert_eq!(Btf::parse(&wrong).err(), Some(BtfError::NotBtf));
        let mut b = Blob::new();
        b.types.extend_from_slice(&[0, 0, 0, 0]);
        b.types.extend_from_slice(&(31u32 << 24).to_ne_bytes());
        b.types.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            Btf::parse(&b.bytes()).err(),
            Some(BtfError::UnknownKind(31))
        );
    }

    /// This machine's own kernel, when it exports its BTF: the fields the LSM programs read
    /// are where the kernel's headers put them (the first of `struct inode` is `i_mode`).
    #[test]
    fn this_kernels_btf_has_what_the_lsm_programs_read() {
        let Ok(bytes) = std::fs::read(VMLINUX) else {
            eprintln!("note: no {VMLINUX}: skipped");
            return;
        };
        let btf = Btf::parse(&bytes).unwrap();
        assert_eq!(btf.member_offset("inode", "i_mode"), Some(0));
        for (s, m) in [
            ("inode", "i_rdev"),
            ("file", "f_inode"),
            ("task_struct", "group_leader"),
            ("task_struct", "start_boottime"),
        ] {
            assert!(btf.member_offset(s, m).is_some(), "{s}.{m}");
        }
        assert!(btf.id_of(kind::FUNC, "bpf_lsm_file_open").is_some());
        assert!(btf.id_of(kind::FUNC, "bpf_lsm_file_ioctl").is_some());
    }
}
