//! The seccomp filter, as data: which system calls go to the supervisor.
//!
//! Only `ioctl` with a MegaRAID request code is sent to the supervisor; every other system
//! call is allowed by the kernel without waking anyone (the filter costs one short BPF run).
//!
//! - x86_64 (`AUDIT_ARCH_X86_64`, nr 16): `MEGASAS_IOC_FIRMWARE` (`0xc1944d01`) and
//!   `MEGASAS_IOC_GET_AEN` (`0x400c4d03`). The compat code `0xc1144d01` through the 64-bit
//!   entry reaches the driver's native handler, which answers `ENOTTY`: nothing to guard.
//! - i386 (`AUDIT_ARCH_I386`, nr 54: a 32-bit tool, or `int 0x80` from a 64-bit one): the
//!   compat handler takes only `MEGASAS_IOC_FIRMWARE32` (`0xc1144d01`) and `GET_AEN`.
//! - x32 (`AUDIT_ARCH_X86_64` with bit 30 of nr set; its `ioctl` is 514): refused with
//!   `EPERM` for the three codes. MegaRAID tools are not built for x32, and the supervisor
//!   does not emulate its layout.
//!
//! The code is compared on the low 32 bits of `args[1]`, as the kernel's `unsigned int cmd`.

use libc::sock_filter;
use mfiguard_sanitizer::Abi;

/// `offsetof(struct seccomp_data, nr)`.
const NR: u32 = 0;
/// `offsetof(struct seccomp_data, arch)`.
const ARCH: u32 = 4;
/// `offsetof(struct seccomp_data, args[0])`, low 32 bits on a little-endian machine.
const ARG0_LO: u32 = 16;
/// `offsetof(struct seccomp_data, args[1])`, low 32 bits.
const ARG1_LO: u32 = 16 + 8;

/// The system calls a RAID tool never makes and that would let it take the guard's place:
/// their numbers on one entry.
#[derive(Clone, Copy, Debug)]
pub struct Closed {
    /// `clone`: refused only with `CLONE_UNTRACED` (a child the tracer would not see).
    pub clone: u32,
    /// `clone3`: its flags are in memory, which a filter cannot read: `ENOSYS`, so that libc
    /// falls back to `clone` (glibc and musl do), whose flags it reads.
    pub clone3: u32,
    /// `ptrace`: tracing its own children (and answering their `RET_TRACE` stops) or the
    /// supervisor.
    pub ptrace: u32,
    /// `pidfd_getfd`: taking the listener (or the node) out of another process.
    pub pidfd_getfd: u32,
    /// `process_vm_writev`: writing into the supervisor's private copies.
    pub process_vm_writev: u32,
    /// `seccomp`: a filter with a listener of its own (`SECCOMP_FILTER_FLAG_NEW_LISTENER`),
    /// whose `SECCOMP_RET_USER_NOTIF` outranks `RET_TRACE` and would let it `CONTINUE` its
    /// own calls once the guard's listener is gone.
    pub seccomp: u32,
}

/// x86_64 (`arch/x86/entry/syscalls/syscall_64.tbl`).
pub const X86_64_CLOSED: Closed = Closed {
    clone: 56,
    clone3: 435,
    ptrace: 101,
    pidfd_getfd: 438,
    process_vm_writev: 311,
    seccomp: 317,
};

/// i386 (`syscall_32.tbl`): a 32-bit tool, or `int 0x80` from a 64-bit one.
pub const I386_CLOSED: Closed = Closed {
    clone: 120,
    clone3: 435,
    ptrace: 26,
    pidfd_getfd: 438,
    process_vm_writev: 348,
    seccomp: 354,
};

/// `CLONE_UNTRACED`.
pub const CLONE_UNTRACED: u32 = 0x0080_0000;
/// `SECCOMP_SET_MODE_FILTER`.
pub const SECCOMP_SET_MODE_FILTER: u32 = 1;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
pub const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 8;

/// `ioctl(-1, MEGASAS_IOC_GET_AEN, ALREADY_GUARDED_PROBE)`: the kernel answers `EBADF`; the
/// supervisor and the tracer answer `EALREADY`, so that an `mfiguard-run` started under
/// another one (a PATH shim called from a guarded script) knows its tool is guarded already
/// (it can no longer install a listener or trace: the outer filter closes both).
pub const ALREADY_GUARDED_PROBE: u64 = 0x6d66_6775;

/// Whether the calling process runs under an `mfiguard-run` supervisor or tracer (see
/// [`ALREADY_GUARDED_PROBE`]). A filter the process installed itself could fake the answer;
/// that needs `no_new_privs` or `CAP_SYS_ADMIN` before `mfiguard-run` starts, so only someone
/// who could run the tool unguarded anyway.
#[allow(unsafe_code)]
pub fn already_guarded() -> bool {
    // SAFETY: descriptor -1 reaches no driver; the argument is never dereferenced.
    let ret = unsafe {
        libc::ioctl(
            -1,
            libc::c_ulong::from(GET_AEN),
            ALREADY_GUARDED_PROBE as usize as *mut libc::c_void,
        )
    };
    ret == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EALREADY)
}

/// Whether a guarded call is the probe of [`already_guarded`].
pub fn is_already_guarded_probe(
    fd: std::ffi::c_int,
    req: &mfiguard_core::guarded::Request,
) -> bool {
    fd == -1 && req.is_get_aen() && req.arg == ALREADY_GUARDED_PROBE
}

/// The name of a closed system call made through the entry `arch` with number `nr`, for
/// records; `None` when it is not one the filter sends to the guard.
pub fn closed_name(arch: u32, nr: u64) -> Option<&'static str> {
    let t = match arch {
        AUDIT_ARCH_X86_64 => X86_64_CLOSED,
        AUDIT_ARCH_I386 => I386_CLOSED,
        _ => return None,
    };
    let nr = u32::try_from(nr).ok()?;
    Some(match nr {
        n if n == t.clone => "clone(CLONE_UNTRACED)",
        n if n == t.ptrace => "ptrace",
        n if n == t.pidfd_getfd => "pidfd_getfd",
        n if n == t.process_vm_writev => "process_vm_writev",
        n if n == t.seccomp => "seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER)",
        _ => return None,
    })
}

/// `AUDIT_ARCH_X86_64` = `EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
pub const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// `AUDIT_ARCH_I386` = `EM_386 | __AUDIT_ARCH_LE`.
pub const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
/// `__X32_SYSCALL_BIT`.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// `__NR_ioctl` on x86_64, on i386, and on x32 (without its bit).
pub const NR_IOCTL_X86_64: u32 = 16;
/// `__NR_ioctl` on i386.
pub const NR_IOCTL_I386: u32 = 54;
/// `__NR_ioctl` for x32 (`compat_sys_ioctl`), without `__X32_SYSCALL_BIT`.
pub const NR_IOCTL_X32: u32 = 514;

/// `MEGASAS_IOC_FIRMWARE`, x86_64 layout.
pub const FIRMWARE: u32 = mfiguard_sanitizer::abi::ioctl::MEGASAS_IOC_FIRMWARE;
/// `MEGASAS_IOC_FIRMWARE32`, i386 layout.
pub const FIRMWARE32: u32 = mfiguard_sanitizer::abi::ioctl::MEGASAS_IOC_FIRMWARE32;
/// `MEGASAS_IOC_GET_AEN`, both.
pub const GET_AEN: u32 = mfiguard_sanitizer::abi::ioctl::MEGASAS_IOC_GET_AEN;
const _: () = assert!(FIRMWARE == 0xc194_4d01 && FIRMWARE32 == 0xc114_4d01);
const _: () = assert!(GET_AEN == 0x400c_4d03);

/// The layout of a caller in `ioctl` through the system-call entry `arch` (an `AUDIT_ARCH_*`)
/// with number `nr`: the x86_64 entry (nr 16), or the i386 one (nr 54: a 32-bit tool, or
/// `int 0x80` from a 64-bit one); `None` for anything else (x32, another call). Whether its
/// request is a guarded call is then `mfiguard_core::guarded::is_guarded`'s question.
pub fn ioctl_abi(arch: u32, nr: u64) -> Option<Abi> {
    match arch {
        AUDIT_ARCH_X86_64 if nr == u64::from(NR_IOCTL_X86_64) => Some(Abi::Lp64),
        AUDIT_ARCH_I386 if nr == u64::from(NR_IOCTL_I386) => Some(Abi::Ilp32),
        _ => None,
    }
}

/// The system-call entry (`AUDIT_ARCH_*`) the trace filter's `SECCOMP_RET_DATA` names.
pub fn arch_of_data(data: u32) -> Option<u32> {
    match data & RET_DATA_MASK {
        DATA_X86_64 => Some(AUDIT_ARCH_X86_64),
        DATA_I386 => Some(AUDIT_ARCH_I386),
        _ => None,
    }
}

/// `SECCOMP_RET_ALLOW`.
pub const RET_ALLOW: u32 = 0x7fff_0000;
/// `SECCOMP_RET_USER_NOTIF`.
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// `SECCOMP_RET_TRACE`.
pub const RET_TRACE: u32 = 0x7ff0_0000;
/// `SECCOMP_RET_TRACE | DATA_X86_64`: a guarded call through the x86_64 entry.
pub const DATA_X86_64: u32 = 1;
/// `SECCOMP_RET_TRACE | DATA_I386`: a guarded call through the i386 entry (`int 0x80`, or a
/// 32-bit tool). The tracer reads it with `PTRACE_GETEVENTMSG` at the seccomp stop, so it knows
/// the caller's ABI without `PTRACE_GET_SYSCALL_INFO` (Linux 5.3, missing on RHEL 7 and 8).
pub const DATA_I386: u32 = 2;
/// `SECCOMP_RET_TRACE | DATA_CONTAINED`: a closed system call (ptrace, `CLONE_UNTRACED`, ...),
/// which the tracer refuses and records.
pub const DATA_CONTAINED: u32 = 3;
/// `SECCOMP_RET_DATA`: the low 16 bits of a return value.
pub const RET_DATA_MASK: u32 = 0xffff;
/// `SECCOMP_RET_ERRNO | EPERM`.
pub const RET_EPERM: u32 = 0x0005_0000 | libc::EPERM as u32;
/// `SECCOMP_RET_ERRNO | ENOSYS`.
pub const RET_ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;

/// Who handles a guarded call: the filter returns its `SECCOMP_RET_*` action for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    /// `SECCOMP_RET_USER_NOTIF`: the supervisor answers it.
    UserNotif,
    /// `SECCOMP_RET_TRACE`: a ptrace tracer handles it.
    Trace,
    /// `SECCOMP_RET_ALLOW`: for a filter that costs the same and guards nothing (benchmarks).
    Allow,
}

impl Handler {
    const fn ret(self) -> u32 {
        match self {
            Handler::UserNotif => RET_USER_NOTIF,
            Handler::Trace => RET_TRACE,
            Handler::Allow => RET_ALLOW,
        }
    }
}

/// One instruction, with jumps to named places (resolved by [`assemble`]).
#[derive(Clone, Copy, Debug)]
enum Op {
    /// `BPF_LD | BPF_W | BPF_ABS`: the 32-bit word at an offset of `seccomp_data`.
    Load(u32),
    /// `BPF_JMP | BPF_JEQ | BPF_K`.
    JumpEq(u32, &'static str, &'static str),
    /// `BPF_JMP | BPF_JSET | BPF_K`.
    JumpSet(u32, &'static str, &'static str),
    /// `BPF_RET | BPF_K`.
    Ret(u32),
    /// A place to jump to (no instruction).
    At(&'static str),
}

fn program() -> Vec<Op> {
    use Op::*;
    let mut ops = vec![
        Load(ARCH),
        JumpEq(AUDIT_ARCH_X86_64, "x86_64", "not x86_64"),
        At("x86_64"),
        Load(NR),
        // x32 (bit 30 of nr): no RAID tool is built for it, and its own ptrace, clone and
        // ioctl numbers would need every check twice. Refused whole.
        JumpSet(X32_SYSCALL_BIT, "refuse", "native"),
        At("native"),
        JumpEq(NR_IOCTL_X86_64, "native ioctl", "native other"),
        At("native ioctl"),
        Load(ARG1_LO),
        JumpEq(FIRMWARE, "guard", "native not firmware"),
        At("native not firmware"),
        JumpEq(GET_AEN, "guard", "allow"),
        At("native other"),
    ];
    ops.extend(closed_tests(
        X86_64_CLOSED,
        ["native 1", "native 2", "native 3", "native 4", "native 5"],
    ));
    ops.extend([
        At("not x86_64"),
        JumpEq(AUDIT_ARCH_I386, "i386", "allow"),
        At("i386"),
        Load(NR),
        JumpEq(NR_IOCTL_I386, "i386 ioctl", "i386 other"),
        At("i386 ioctl"),
        Load(ARG1_LO),
        JumpEq(FIRMWARE32, "guard32", "i386 not firmware32"),
        At("i386 not firmware32"),
        JumpEq(GET_AEN, "guard32", "allow"),
        At("i386 other"),
    ]);
    ops.extend(closed_tests(
        I386_CLOSED,
        ["i386 1", "i386 2", "i386 3", "i386 4", "i386 5"],
    ));
    ops.extend([
        // clone(flags, ...): both entries pass the flags first.
        At("clone"),
        Load(ARG0_LO),
        JumpSet(CLONE_UNTRACED, "contained", "allow"),
        // seccomp(op, flags, args): a new filter with a listener of its own.
        At("seccomp"),
        Load(ARG0_LO),
        JumpEq(SECCOMP_SET_MODE_FILTER, "seccomp filter", "allow"),
        At("seccomp filter"),
        Load(ARG1_LO),
        JumpSet(SECCOMP_FILTER_FLAG_NEW_LISTENER, "contained", "allow"),
    ]);
    ops
}

/// The closed system calls of one entry, tested in turn on `nr` (loaded): `clone` and `seccomp`
/// go on to their argument tests, `clone3` to `ENOSYS`, the others to the guard; `between`
/// names the places between the tests.
fn closed_tests(t: Closed, between: [&'static str; 5]) -> Vec<Op> {
    use Op::*;
    let [a, b, c, d, e] = between;
    vec![
        JumpEq(t.clone, "clone", a),
        At(a),
        JumpEq(t.clone3, "enosys", b),
        At(b),
        JumpEq(t.ptrace, "contained", c),
        At(c),
        JumpEq(t.pidfd_getfd, "contained", d),
        At(d),
        JumpEq(t.process_vm_writev, "contained", e),
        At(e),
        JumpEq(t.seccomp, "seccomp", "allow"),
    ]
}

/// The tail of every program: the answers. Under `Trace` the i386 entry has its own (its
/// `SECCOMP_RET_DATA` names the ABI); otherwise both entries share one instruction.
fn answers(handler: Handler) -> Vec<Op> {
    use Op::*;
    let mut ops = Vec::new();
    if handler == Handler::Trace {
        ops.extend([At("guard32"), Ret(RET_TRACE | DATA_I386)]);
        ops.extend([At("guard"), Ret(RET_TRACE | DATA_X86_64)]);
    } else {
        ops.extend([At("guard32"), At("guard"), Ret(handler.ret())]);
    }
    // What the guard refuses and records: sent to it, so that a record names the call.
    let contained = match handler {
        Handler::UserNotif => RET_USER_NOTIF,
        Handler::Trace => RET_TRACE | DATA_CONTAINED,
        Handler::Allow => RET_EPERM,
    };
    ops.extend([At("contained"), Ret(contained)]);
    ops.extend([At("enosys"), Ret(RET_ENOSYS)]);
    ops.extend([At("refuse"), Ret(RET_EPERM), At("allow"), Ret(RET_ALLOW)]);
    ops
}

/// Why a program could not be assembled (a bug in the table above; tests build every one).
#[derive(Debug, PartialEq, Eq)]
pub enum AssembleError {
    /// A jump names a place that does not exist, or lies behind it.
    BadTarget(&'static str),
    /// A jump is longer than the 255 instructions BPF can skip.
    TooFar(&'static str),
}

fn assemble(ops: &[Op]) -> Result<Vec<sock_filter>, AssembleError> {
    let mut places = Vec::new();
    let mut pc = 0usize;
    for op in ops {
        match op {
            Op::At(name) => places.push((*name, pc)),
            _ => pc += 1,
        }
    }
    let place = |name: &'static str| {
        places
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, at)| *at)
            .ok_or(AssembleError::BadTarget(name))
    };
    let mut out = Vec::with_capacity(pc);
    for op in ops {
        let pc = out.len();
        let skip = |name: &'static str| -> Result<u8, AssembleError> {
            let to = place(name)?;
            let d = to
                .checked_sub(pc + 1)
                .ok_or(AssembleError::BadTarget(name))?;
            u8::try_from(d).map_err(|_| AssembleError::TooFar(name))
        };
        let ins = match *op {
            Op::At(_) => continue,
            Op::Load(k) => stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, k),
            Op::JumpEq(k, t, f) => jump(
                libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                k,
                skip(t)?,
                skip(f)?,
            ),
            Op::JumpSet(k, t, f) => jump(
                libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
                k,
                skip(t)?,
                skip(f)?,
            ),
            Op::Ret(k) => stmt(libc::BPF_RET | libc::BPF_K, k),
        };
        out.push(ins);
    }
    Ok(out)
}

fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The filter's BPF program for guarded calls handled by `handler`.
pub fn build(handler: Handler) -> Vec<sock_filter> {
    let ops: Vec<Op> = program().into_iter().chain(answers(handler)).collect();
    // The table is fixed: a failure is a bug caught by the tests, never a run-time state.
    assemble(&ops).unwrap_or_default()
}

/// `struct seccomp_data`, for the tests' interpreter.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeccompData {
    /// `nr`.
    pub nr: u32,
    /// `arch`.
    pub arch: u32,
    /// `args`.
    pub args: [u64; 6],
}

/// Runs `prog` the way the kernel would on `data` (the instructions this module emits only).
pub fn run(prog: &[sock_filter], data: &SeccompData) -> Option<u32> {
    let word = |off: u32| -> Option<u32> {
        Some(match off {
            0 => data.nr,
            4 => data.arch,
            o if (16..64).contains(&o) && o % 4 == 0 => {
                let a = data.args[((o - 16) / 8) as usize];
                if (o - 16) % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            _ => return None,
        })
    };
    let mut acc = 0u32;
    let mut pc = 0usize;
    loop {
        let ins = prog.get(pc)?;
        let code = u32::from(ins.code);
        pc += 1;
        if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
            acc = word(ins.k)?;
        } else if code == libc::BPF_RET | libc::BPF_K {
            return Some(ins.k);
        } else {
            let taken = if code == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K {
                acc == ins.k
            } else if code == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K {
                acc & ins.k != 0
            } else {
                return None;
            };
            pc += usize::from(if taken { ins.jt } else { ins.jf });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ioctl(arch: u32, nr: u32, code: u64) -> SeccompData {
        SeccompData {
            nr,
            arch,
            args: [3, code, 0x7fff_0000_1000, 0, 0, 0],
        }
    }

    #[test]
    fn every_program_assembles_and_fits() {
        for handler in [Handler::UserNotif, Handler::Trace, Handler::Allow] {
            let ops: Vec<Op> = program().into_iter().chain(answers(handler)).collect();
            let prog = assemble(&ops).expect("assembles");
            assert!(prog.len() <= usize::from(libc::BPF_MAXINSNS as u16));
            // The trace program has one more answer: the i386 entry's own data.
            let len = if handler == Handler::Trace { 38 } else { 37 };
            assert_eq!(prog.len(), len);
        }
    }

    #[test]
    fn megaraid_codes_on_ioctl_are_guarded() {
        let p = build(Handler::UserNotif);
        let g = Some(RET_USER_NOTIF);
        assert_eq!(run(&p, &ioctl(AUDIT_ARCH_X86_64, 16, FIRMWARE.into())), g);
        assert_eq!(run(&p, &ioctl(AUDIT_ARCH_X86_64, 16, GET_AEN.into())), g);
        // Garbage above the low 32 bits: the kernel still sees the code.
        assert_eq!(
            run(
                &p,
                &ioctl(
                    AUDIT_ARCH_X86_64,
                    16,
                    0xffff_ffff_0000_0000 | u64::from(FIRMWARE)
                )
            ),
            g
        );
        assert_eq!(run(&p, &ioctl(AUDIT_ARCH_I386, 54, FIRMWARE32.into())), g);
        assert_eq!(run(&p, &ioctl(AUDIT_ARCH_I386, 54, GET_AEN.into())), g);
    }

    #[test]
    fn the_trace_program_names_the_abi_in_its_data() {
        let t = build(Handler::Trace);
        let x64 = Some(RET_TRACE | DATA_X86_64);
        let i386 = Some(RET_TRACE | DATA_I386);
        assert_eq!(run(&t, &ioctl(AUDIT_ARCH_X86_64, 16, FIRMWARE.into())), x64);
        assert_eq!(run(&t, &ioctl(AUDIT_ARCH_X86_64, 16, GET_AEN.into())), x64);
        assert_eq!(
            run(&t, &ioctl(AUDIT_ARCH_I386, 54, FIRMWARE32.into())),
            i386
        );
        assert_eq!(run(&t, &ioctl(AUDIT_ARCH_I386, 54, GET_AEN.into())), i386);
        // The rest as under the notification filter.
        let a = Some(RET_ALLOW);
        assert_eq!(run(&t, &ioctl(AUDIT_ARCH_X86_64, 16, 0x541b)), a);
        assert_eq!(run(&t, &ioctl(AUDIT_ARCH_X86_64, 16, FIRMWARE32.into())), a);
        assert_eq!(run(&t, &ioctl(AUDIT_ARCH_I386, 54, FIRMWARE.into())), a);
        assert_eq!(run(&t, &ioctl(AUDIT_ARCH_X86_64, 1, FIRMWARE.into())), a);
        let x32 = NR_IOCTL_X32 | X32_SYSCALL_BIT;
        assert_eq!(
            run(&t, &ioctl(AUDIT_ARCH_X86_64, x32, FIRMWARE.into())),
            Some(RET_EPERM)
        );
        // Both ABIs in the data field, distinct and nonzero.
        assert_ne!(DATA_X86_64, DATA_I386);
        assert_eq!(DATA_X86_64 & !RET_DATA_MASK, 0);
        assert_eq!(DATA_I386 & !RET_DATA_MASK, 0);
    }

    #[test]
    fn the_notification_program_is_unchanged_by_the_trace_answers() {
        // Golden: both entries share the one USER_NOTIF instruction.
        let p = build(Handler::UserNotif);
        let rets: Vec<u32> = p
            .iter()
            .filter(|i| u32::from(i.code) == libc::BPF_RET | libc::BPF_K)
            .map(|i| i.k)
            .collect();
        assert_eq!(
            rets,
            [
                RET_USER_NOTIF,
                RET_USER_NOTIF,
                RET_ENOSYS,
                RET_EPERM,
                RET_ALLOW
            ]
        );
    }

    #[test]
    fn everything_else_is_allowed() {
        let p = build(Handler::UserNotif);
        let a = Some(RET_ALLOW);
        // Other requests, other system calls with the code as an argument, the layouts the
        // driver answers with ENOTTY.
        assert_eq!(run(&p, &ioctl(AUDIT_ARCH_X86_64, 16, 0x541b)), a);
        assert_eq!(run(&p, &ioctl(AUDIT_ARCH_X86_64, 1, FIRMWARE.into())), a);
        assert_eq!(run(&p, &ioctl(AUDIT_ARCH_X86_64, 54, FIRMWARE.into())), a);
        assert_eq!(run(&p, &ioctl(AUDIT_ARCH_X86_64, 16, FIRMWARE32.into())), a);
        assert_eq!(run(&p, &ioctl(AUDIT_ARCH_I386, 54, FIRMWARE.into())), a);
        assert_eq!(run(&p, &ioctl(AUDIT_ARCH_I386, 16, FIRMWARE32.into())), a);
        assert_eq!(run(&p, &ioctl(0xdead, 16, FIRMWARE.into())), a);
    }

    #[test]
    fn x32_megaraid_calls_are_refused() {
        let p = build(Handler::UserNotif);
        let x32 = NR_IOCTL_X32 | X32_SYSCALL_BIT;
        for code in [FIRMWARE, FIRMWARE32, GET_AEN] {
            assert_eq!(
                run(&p, &ioctl(AUDIT_ARCH_X86_64, x32, code.into())),
                Some(RET_EPERM)
            );
        }
        // Every x32 system call: no RAID tool is built for that ABI.
        assert_eq!(
            run(&p, &ioctl(AUDIT_ARCH_X86_64, x32, 0x541b)),
            Some(RET_EPERM)
        );
        assert_eq!(
            run(
                &p,
                &ioctl(AUDIT_ARCH_X86_64, 1 | X32_SYSCALL_BIT, FIRMWARE.into())
            ),
            Some(RET_EPERM)
        );
    }

    fn call(arch: u32, nr: u32, args: [u64; 6]) -> SeccompData {
        SeccompData { nr, arch, args }
    }

    #[test]
    fn the_doors_a_raid_tool_never_uses_are_closed() {
        for (handler, contained) in [
            (Handler::UserNotif, RET_USER_NOTIF),
            (Handler::Trace, RET_TRACE | DATA_CONTAINED),
        ] {
            let p = build(handler);
            for (arch, t) in [
                (AUDIT_ARCH_X86_64, X86_64_CLOSED),
                (AUDIT_ARCH_I386, I386_CLOSED),
            ] {
                let c = |nr, args| run(&p, &call(arch, nr, args));
                // Sent to the guard, which refuses and records them.
                assert_eq!(c(t.ptrace, [0; 6]), Some(contained));
                assert_eq!(c(t.pidfd_getfd, [3, 4, 0, 0, 0, 0]), Some(contained));
                assert_eq!(c(t.process_vm_writev, [1; 6]), Some(contained));
                let untraced = u64::from(CLONE_UNTRACED) | 0x11;
                assert_eq!(c(t.clone, [untraced, 0, 0, 0, 0, 0]), Some(contained));
                let listener = u64::from(SECCOMP_FILTER_FLAG_NEW_LISTENER);
                assert_eq!(c(t.seccomp, [1, listener, 0, 0, 0, 0]), Some(contained));
                assert_eq!(c(t.seccomp, [1, listener | 1, 0, 0, 0, 0]), Some(contained));
                // clone3 keeps its flags in memory: ENOSYS, libc falls back to clone.
                assert_eq!(c(t.clone3, [0; 6]), Some(RET_ENOSYS));
                // Their ordinary twins pass: fork, threads, a filter without a listener (a
                // tool that sandboxes itself), seccomp's other operations.
                let thread = 0x003d_0f00; // glibc's pthread_create flags
                assert_eq!(c(t.clone, [thread, 0, 0, 0, 0, 0]), Some(RET_ALLOW));
                assert_eq!(c(t.clone, [0x0120_0011, 0, 0, 0, 0, 0]), Some(RET_ALLOW));
                assert_eq!(c(t.seccomp, [1, 0, 0, 0, 0, 0]), Some(RET_ALLOW));
                assert_eq!(c(t.seccomp, [1, 1, 0, 0, 0, 0]), Some(RET_ALLOW));
                assert_eq!(c(t.seccomp, [0, 8, 0, 0, 0, 0]), Some(RET_ALLOW));
                assert_eq!(closed_name(arch, t.ptrace.into()), Some("ptrace"));
                assert_eq!(closed_name(arch, t.clone3.into()), None);
            }
        }
        // The benchmark's allow-all twin costs the same and refuses them outright.
        let a = build(Handler::Allow);
        assert_eq!(
            run(&a, &call(AUDIT_ARCH_X86_64, 101, [0; 6])),
            Some(RET_EPERM)
        );
    }

    #[test]
    fn a_jump_to_nowhere_is_an_error() {
        let ops = [Op::JumpEq(1, "nowhere", "nowhere")];
        assert!(matches!(
            assemble(&ops),
            Err(AssembleError::BadTarget("nowhere"))
        ));
    }
}
