//! The host-wide guard's lock on the driver's device: two small eBPF programs, assembled here
//! as the seccomp filter is (`filter.rs`), so that the packages need no compiler, no libbpf and
//! no object file: the instructions are data, checked by golden tests, loaded with `bpf(2)`.
//!
//! Both programs read one entry of an array map, [`LockValue`]: the driver's character major
//! (0: nothing locked) and who may open it. Each lets everything else through at once (a
//! block device, another major), and refuses the driver's major to anyone but the daemon:
//!
//! - [`cgroup_device`] (`BPF_PROG_TYPE_CGROUP_DEVICE`, attached to the root of the cgroup v2
//!   hierarchy, so that it runs for every process): the device's access (open, `mknod`) is
//!   refused unless the caller's cgroup is the daemon's (`bpf_get_current_cgroup_id`, Linux
//!   4.18);
//! - [`lsm`] (`BPF_PROG_TYPE_LSM` on the `file_open` and `file_ioctl` hooks, where the BPF LSM
//!   is active): an open, or an ioctl on a file opened by someone else and passed on, is
//!   refused unless the caller is the daemon's process: its thread group id
//!   (`bpf_get_current_pid_tgid`) and the start time of that thread group (read through
//!   `bpf_probe_read_kernel`, so that a process given the daemon's pid after it died is not
//!   taken for it). The offsets of the fields it reads come from the kernel's BTF ([`btf`]).

pub mod attr;
pub mod btf;
pub mod sys;

use zerocopy::byteorder::native_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `struct bpf_insn`: one eBPF instruction.
#[doc(alias = "bpf_insn")]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct Insn {
    /// Opcode. // 0x00
    pub code: u8,
    /// `dst_reg` (low nibble) and `src_reg` (high nibble). // 0x01
    pub regs: u8,
    /// Signed offset. // 0x02
    pub off: i16,
    /// Signed immediate. // 0x04
    pub imm: i32,
}
const _: () = assert!(std::mem::size_of::<Insn>() == 8);

// Opcode parts (`include/uapi/linux/bpf_common.h`, `bpf.h`).
const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_ST: u8 = 0x02;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_H: u8 = 0x08;
const BPF_DW: u8 = 0x18;
const BPF_IMM: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_ADD: u8 = 0x00;
const BPF_DIV: u8 = 0x30;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_CALL: u8 = 0x80;
const BPF_EXIT: u8 = 0x90;
/// `BPF_PSEUDO_MAP_FD`: the `imm` of a 64-bit load is a map's descriptor.
const BPF_PSEUDO_MAP_FD: u8 = 1;

/// The helpers called (`enum bpf_func_id`, `__BPF_FUNC_MAPPER`).
pub mod helper {
    /// `bpf_map_lookup_elem`.
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    /// `bpf_get_current_pid_tgid`: `tgid << 32 | pid`.
    pub const GET_CURRENT_PID_TGID: i32 = 14;
    /// `bpf_get_current_task`: the current `struct task_struct *`, as a number.
    pub const GET_CURRENT_TASK: i32 = 35;
    /// `bpf_get_current_cgroup_id`: the caller's cgroup v2 id.
    pub const GET_CURRENT_CGROUP_ID: i32 = 80;
    /// `bpf_probe_read_kernel(dst, size, src)`.
    pub const PROBE_READ_KERNEL: i32 = 113;
}

/// `BPF_PROG_TYPE_CGROUP_DEVICE`.
pub const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_PROG_TYPE_LSM`.
pub const BPF_PROG_TYPE_LSM: u32 = 29;
/// `BPF_CGROUP_DEVICE`: the attach type of a device program.
pub const BPF_CGROUP_DEVICE: u32 = 6;
/// `BPF_LSM_MAC`: the attach type of an LSM program.
pub const BPF_LSM_MAC: u32 = 27;
/// `BPF_MAP_TYPE_ARRAY`.
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_F_ALLOW_MULTI`: other programs (systemd's `DeviceAllow=`, container runtimes') may be
/// attached below ours; each must allow an access.
pub const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
/// `BPF_DEVCG_DEV_CHAR`: the device type of a character device in `access_type`.
pub const BPF_DEVCG_DEV_CHAR: i32 = 1 << 1;
/// The programs' license: the LSM's helpers are for GPL-compatible programs only.
pub const LICENSE: &str = "Dual MIT/GPL";
/// The programs' and the map's name (`bpftool prog` shows it).
pub const NAME: &str = "mfiguard_lock";

/// `S_IFMT` and `S_IFCHR`, as the kernel's `umode_t` holds them.
const S_IFMT: i32 = 0o170000;
const S_IFCHR: i32 = 0o020000;
/// `MINORBITS`: `i_rdev` is the kernel's own encoding, `major << 20 | minor`.
const MINORBITS: i32 = 20;

/// The lock's one map entry: whose is the driver's device. Read by both programs; written by
/// the daemon at each start (and when the driver's major changes), never removed with the
/// daemon, so that the driver stays locked while no daemon runs.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
pub struct LockValue {
    /// The driver's character major; 0: nothing is locked (the driver is not loaded). // 0x00
    pub major: U32,
    /// Unused, 0. // 0x04
    pub flags: U32,
    /// The daemon's cgroup v2 id (the device program). // 0x08
    pub cgroup_id: U64,
    /// The daemon's thread group id (the LSM programs). // 0x10
    pub tgid: U64,
    /// The daemon's start, in clock ticks since boot (`/proc/PID/stat` field 22). // 0x18
    pub start_ticks: U64,
}
const _: () = assert!(std::mem::size_of::<LockValue>() == 32);

/// A register.
#[derive(Clone, Copy)]
#[repr(u8)]
enum R {
    R0 = 0,
    R1 = 1,
    R2 = 2,
    R3 = 3,
    R6 = 6,
    R7 = 7,
    R8 = 8,
    R9 = 9,
    R10 = 10,
}

/// Where a jump goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Label {
    Allow,
    Deny,
}

/// A program being assembled: instructions, and jumps to labels resolved at the end.
#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    jumps: Vec<(usize, Label)>,
    labels: Vec<(Label, usize)>,
}

const fn ins(code: u8, dst: R, src: R, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (dst as u8) | ((src as u8) << 4),
        off,
        imm,
    }
}

impl Asm {
    fn op(&mut self, i: Insn) -> &mut Self {
        self.insns.push(i);
        self
    }
    /// `dst = src`.
    fn mov(&mut self, dst: R, src: R) -> &mut Self {
        self.op(ins(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0))
    }
    /// `dst = imm` (sign-extended).
    fn mov_imm(&mut self, dst: R, imm: i32) -> &mut Self {
        self.op(ins(BPF_ALU64 | BPF_MOV | BPF_K, dst, R::R0, 0, imm))
    }
    /// `dst op= imm`.
    fn alu_imm(&mut self, op: u8, dst: R, imm: i32) -> &mut Self {
        self.op(ins(BPF_ALU64 | op | BPF_K, dst, R::R0, 0, imm))
    }
    /// `dst = *(size *)(src + off)`.
    fn load(&mut self, size: u8, dst: R, src: R, off: i16) -> &mut Self {
        self.op(ins(BPF_LDX | size | BPF_MEM, dst, src, off, 0))
    }
    /// `*(size *)(dst + off) = imm`.
    fn store_imm(&mut self, size: u8, dst: R, off: i16, imm: i32) -> &mut Self {
        self.op(ins(BPF_ST | size | BPF_MEM, dst, R::R0, off, imm))
    }
    /// `dst = map` (the 64-bit load of a map's descriptor: two instructions).
    fn map(&mut self, dst: R, fd: i32) -> &mut Self {
        let mut first = ins(BPF_LD | BPF_DW | BPF_IMM, dst, R::R0, 0, fd);
        first.regs |= BPF_PSEUDO_MAP_FD << 4;
        self.op(first).op(ins(0, R::R0, R::R0, 0, 0))
    }
    fn call(&mut self, helper: i32) -> &mut Self {
        self.op(ins(BPF_JMP | BPF_CALL, R::R0, R::R0, 0, helper))
    }
    fn exit(&mut self) -> &mut Self {
        self.op(ins(BPF_JMP | BPF_EXIT, R::R0, R::R0, 0, 0))
    }
    /// `if dst op imm goto to`.
    fn jump_imm(&mut self, op: u8, dst: R, imm: i32, to: Label) -> &mut Self {
        self.jumps.push((self.insns.len(), to));
        self.op(ins(BPF_JMP | op | BPF_K, dst, R::R0, 0, imm))
    }
    /// `if dst op src goto to`.
    fn jump_reg(&mut self, op: u8, dst: R, src: R, to: Label) -> &mut Self {
        self.jumps.push((self.insns.len(), to));
        self.op(ins(BPF_JMP | op | BPF_X, dst, src, 0, 0))
    }
    fn label(&mut self, l: Label) -> &mut Self {
        self.labels.push((l, self.insns.len()));
        self
    }
    /// `r0 = lock entry` (via `r1`, `r2` and the stack at `r10 - 4`), or allow when there is
    /// none; then allow unless the entry's major (via `r1`) is `major`, which is not 0.
    fn lock_entry_for(&mut self, map_fd: i32, major: R) -> &mut Self {
        self.store_imm(BPF_W, R::R10, -4, 0)
            .mov(R::R2, R::R10)
            .alu_imm(BPF_ADD, R::R2, -4)
            .map(R::R1, map_fd)
            .call(helper::MAP_LOOKUP_ELEM)
            .jump_imm(BPF_JEQ, R::R0, 0, Label::Allow)
            .load(BPF_W, R::R1, R::R0, 0x00)
            .jump_imm(BPF_JEQ, R::R1, 0, Label::Allow)
            .jump_reg(BPF_JNE, R::R1, major, Label::Allow)
    }
    /// `*(u64 *)(r10 - 16) = *(u64 *)(r3 + off)`, read with `bpf_probe_read_kernel`; refuse
    /// when it cannot be read.
    fn read_kernel_u64(&mut self, off: i32) -> &mut Self {
        self.alu_imm(BPF_ADD, R::R3, off)
            .mov(R::R1, R::R10)
            .alu_imm(BPF_ADD, R::R1, -16)
            .mov_imm(R::R2, 8)
            .call(helper::PROBE_READ_KERNEL)
            .jump_imm(BPF_JNE, R::R0, 0, Label::Deny)
    }
    /// The instructions, each jump's offset computed (`target - (jump + 1)`).
    fn finish(&mut self) -> Vec<Insn> {
        let mut out = self.insns.clone();
        for &(at, to) in &self.jumps {
            let target = self
                .labels
                .iter()
                .find(|(l, _)| *l == to)
                .map(|(_, i)| *i)
                .unwrap_or(at + 1);
            let off = target as i64 - (at as i64 + 1);
            if let Some(i) = out.get_mut(at) {
                i.off = i16::try_from(off).unwrap_or(0);
            }
        }
        out
    }
}

/// The device program: returns 1 (allow) or 0 (refuse, `EPERM`) for a device access
/// (`struct bpf_cgroup_dev_ctx`: `access_type` @0, `major` @4, `minor` @8).
pub fn cgroup_device(map_fd: i32) -> Vec<Insn> {
    let mut a = Asm::default();
    a.mov(R::R6, R::R1)
        .load(BPF_W, R::R2, R::R6, 0)
        .alu_imm(BPF_AND, R::R2, 0xffff)
        .jump_imm(BPF_JNE, R::R2, BPF_DEVCG_DEV_CHAR, Label::Allow)
        .load(BPF_W, R::R7, R::R6, 4)
        .lock_entry_for(map_fd, R::R7)
        .load(BPF_DW, R::R8, R::R0, 0x08)
        .call(helper::GET_CURRENT_CGROUP_ID)
        .jump_reg(BPF_JEQ, R::R0, R::R8, Label::Allow)
        .label(Label::Deny)
        .mov_imm(R::R0, 0)
        .exit()
        .label(Label::Allow)
        .mov_imm(R::R0, 1)
        .exit();
    a.finish()
}

/// Where the LSM programs read, in this kernel (from its BTF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    /// `struct file`'s `f_inode`.
    pub f_inode: i16,
    /// `struct inode`'s `i_mode` (`umode_t`).
    pub i_mode: i16,
    /// `struct inode`'s `i_rdev` (`dev_t`).
    pub i_rdev: i16,
    /// `struct task_struct`'s `group_leader`.
    pub group_leader: i32,
    /// `struct task_struct`'s `start_boottime` (nanoseconds since boot).
    pub start_boottime: i32,
}

/// The LSM program, for a hook whose first argument is the `struct file *` (`file_open`,
/// `file_ioctl`, `file_ioctl_compat`): returns 0 (allow) or `-EPERM`. `tick_ns`: nanoseconds a
/// clock tick (`/proc`'s start times are in ticks).
pub fn lsm(map_fd: i32, o: Offsets, tick_ns: i32) -> Vec<Insn> {
    let mut a = Asm::default();
    a.load(BPF_DW, R::R6, R::R1, 0)
        .jump_imm(BPF_JEQ, R::R6, 0, Label::Allow)
        .load(BPF_DW, R::R6, R::R6, o.f_inode)
        .jump_imm(BPF_JEQ, R::R6, 0, Label::Allow)
        .load(BPF_H, R::R2, R::R6, o.i_mode)
        .alu_imm(BPF_AND, R::R2, S_IFMT)
        .jump_imm(BPF_JNE, R::R2, S_IFCHR, Label::Allow)
        .load(BPF_W, R::R7, R::R6, o.i_rdev)
        .alu_imm(BPF_RSH, R::R7, MINORBITS)
        .lock_entry_for(map_fd, R::R7)
        .load(BPF_DW, R::R8, R::R0, 0x10)
        .load(BPF_DW, R::R9, R::R0, 0x18)
        .call(helper::GET_CURRENT_PID_TGID)
        .alu_imm(BPF_RSH, R::R0, 32)
        .jump_reg(BPF_JNE, R::R0, R::R8, Label::Deny)
        // The thread group's start: current->group_leader->start_boottime.
        .call(helper::GET_CURRENT_TASK)
        .mov(R::R3, R::R0)
        .read_kernel_u64(o.group_leader)
        .load(BPF_DW, R::R3, R::R10, -16)
        .read_kernel_u64(o.start_boottime)
        .load(BPF_DW, R::R0, R::R10, -16)
        .alu_imm(BPF_DIV, R::R0, tick_ns)
        .jump_reg(BPF_JEQ, R::R0, R::R9, Label::Allow)
        .label(Label::Deny)
        .mov_imm(R::R0, -libc::EPERM)
        .exit()
        .label(Label::Allow)
        .mov_imm(R::R0, 0)
        .exit();
    a.finish()
}

/// The LSM hooks a program is attached to: every way to open the device, or to use a file
/// opened by someone else (passed on with `SCM_RIGHTS`, taken with `pidfd_getfd`).
/// `file_ioctl_compat` exists in some kernels only (32-bit callers on 64-bit kernels; Linux
/// 6.8, and back-ported): it is attached where the BTF has it.
pub const LSM_HOOKS: [&str; 3] = ["file_open", "file_ioctl", "file_ioctl_compat"];

#[cfg(test)]
mod tests {
    use super::*;

    fn words(p: &[Insn]) -> Vec<String> {
        p.iter()
            .map(|i| format!("{:02x} {:02x} {} {}", i.code, i.regs, i.off, i.imm))
            .collect()
    }

    /// Every jump lands inside the program, on an instruction that is not the second half of a
    /// 64-bit load, and the program ends with `exit`.
    fn well_formed(p: &[Insn]) {
        let second_halves: Vec<usize> = p
            .iter()
            .enumerate()
            .filter(|(_, i)| i.code == (BPF_LD | BPF_DW | BPF_IMM))
            .map(|(n, _)| n + 1)
            .collect();
        for (n, i) in p.iter().enumerate() {
            let class = i.code & 0x07;
            let op = i.code & 0xf0;
            if class == BPF_JMP && op != BPF_CALL && op != BPF_EXIT {
                let to = n as i64 + 1 + i64::from(i.off);
                assert!(
                    to > n as i64 && (to as usize) < p.len(),
                    "jump at {n} to {to}"
                );
                assert!(!second_halves.contains(&(to as usize)));
            }
        }
        assert_eq!(p.last().map(|i| i.code), Some(BPF_JMP | BPF_EXIT));
    }

    #[test]
    fn the_device_program_is_as_written() {
        let p = cgroup_device(7);
        well_formed(&p);
        assert_eq!(
            words(&p),
            [
                "bf 16 0 0",     // r6 = r1
                "61 62 0 0",     // r2 = ctx->access_type
                "57 02 0 65535", // r2 &= 0xffff (the device type)
                "55 02 16 2",    // not a character device: allow
                "61 67 4 0",     // r7 = ctx->major
                "62 0a -4 0",    // key 0
                "bf a2 0 0",
                "07 02 0 -4",
                "18 11 0 7", // r1 = the map
                "00 00 0 0",
                "85 00 0 1",  // lookup
                "15 00 8 0",  // no entry: allow
                "61 01 0 0",  // r1 = the locked major
                "15 01 6 0",  // nothing locked: allow
                "5d 71 5 0",  // another major: allow
                "79 08 8 0",  // r8 = the daemon's cgroup
                "85 00 0 80", // r0 = the caller's cgroup
                "1d 80 2 0",  // the daemon's: allow
                "b7 00 0 0",  // refuse
                "95 00 0 0",
                "b7 00 0 1", // allow
                "95 00 0 0",
            ]
        );
    }

    #[test]
    fn the_lsm_program_refuses_with_eperm_and_reads_where_the_btf_says() {
        let o = Offsets {
            f_inode: 0x20,
            i_mode: 0,
            i_rdev: 0x44,
            group_leader: 0x5a8,
            start_boottime: 0x6b0,
        };
        let p = lsm(9, o, 10_000_000);
        well_formed(&p);
        let w = words(&p);
        assert_eq!(w[2], "79 66 32 0", "file->f_inode");
        assert_eq!(w[4], "69 62 0 0", "inode->i_mode, 16 bits");
        assert_eq!(w[7], "61 67 68 0", "inode->i_rdev");
        assert_eq!(w[8], "77 07 0 20", "its major");
        assert!(w.contains(&"07 03 0 1448".to_string()), "group_leader");
        assert!(w.contains(&"07 03 0 1712".to_string()), "start_boottime");
        assert!(w.contains(&"37 00 0 10000000".to_string()), "ticks");
        let n = p.len();
        assert_eq!(w[n - 4], format!("b7 00 0 {}", -libc::EPERM));
        assert_eq!(w[n - 2], "b7 00 0 0");
        // Refusals are only ever reached for the locked major, for another process.
        assert_eq!(
            p.iter().filter(|i| i.code == (BPF_JMP | BPF_CALL)).count(),
            5
        );
    }
}
