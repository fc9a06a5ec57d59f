//! `dlsym` and `dlvsym`, interposed so that asking for `ioctl` by name returns the guard's (and,
//! in the i386 library, `__ioctl_time64`).
//!
//! Python's ctypes, and any program that loads libc by hand, finds `ioctl` with
//! `dlsym(dlopen("libc.so.6"), "ioctl")` (or `dlvsym(..., "ioctl", "GLIBC_2.2.5")`), which the
//! `LD_PRELOAD` order does not affect: the lookup is in libc's own scope, and a versioned one
//! skips unversioned definitions such as ours. So both functions are interposed, and:
//!
//! - a name other than `ioctl`: the real function is **jumped to** (not called) with the stack
//!   exactly as the caller left it. glibc decides what `RTLD_NEXT` (and `RTLD_DEFAULT`'s
//!   namespace) means from its caller's return address; a wrapper that called it would make
//!   every `dlsym(RTLD_NEXT, ...)` of the program search after *this* library instead of after
//!   the caller. Jumping leaves the caller's return address on top of the stack, so the real
//!   `dlsym` sees the caller, and returns to it directly.
//! - `ioctl`, from an object that defines `ioctl` itself (another interposer in the chain the
//!   guard calls through, such as the test simulator looking for its next): jumped to as well,
//!   so that it gets its own next definition and never loops back into the guard.
//! - `ioctl` from anyone else: the guard's `ioctl` when the lookup would have found one (the
//!   real function is asked first, for a handle; for `RTLD_NEXT` every process has libc's after
//!   any caller, except a versioned lookup of a version nobody defines, which is left to the
//!   real function), and whatever the real function answered (NULL and its `dlerror`) when not.
//!
//! The entry points are two trampolines in assembly (x86_64 and i686): they save the
//! arguments, call [`decide`] with the caller's return address, and either return its answer
//! or restore the arguments and jump to the real function. They are exported through
//! `preload/exports.map` (see `build.rs`): rustc's own export list only has Rust items.
//!
//! The real functions cannot be found with `dlsym` (that is us): they are looked up in the
//! dynamic symbol tables of the loaded objects (`dl_iterate_phdr`, then the object's GNU or
//! SysV hash table), the first definition after this library in load order, the default
//! version, as `dlsym(RTLD_NEXT)` would find it. Nothing here allocates, takes a lock of ours
//! or can panic.
//!
//! Not covered (the preload's limits, doc/preload-guarantees.md): a program that reaches
//! libc's `ioctl` without a symbol lookup by name (a raw system call, a static binary, a
//! pointer taken before this library was loaded), and `dlmopen` namespaces, whose own libc
//! this library is not loaded into.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `decide`'s answer meaning "jump to the real function": no symbol has this address.
const PASS: usize = usize::MAX;
const IOCTL: &[u8] = b"ioctl";
/// glibc's other name for `ioctl` in a 32-bit `-D_TIME_BITS=64` program (see `crate::__ioctl_time64`).
#[cfg(target_arch = "x86")]
const IOCTL_TIME64: &[u8] = b"__ioctl_time64";

/// The guard's definition of `name`, if it interposes a function of that name.
fn guard_for(name: &[u8]) -> Option<(&'static [u8], usize)> {
    if name == IOCTL {
        return Some((IOCTL, crate::ioctl as *const () as usize));
    }
    #[cfg(target_arch = "x86")]
    if name == IOCTL_TIME64 {
        return Some((IOCTL_TIME64, crate::__ioctl_time64 as *const () as usize));
    }
    None
}

type DlsymFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_void;
type DlvsymFn = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> *mut c_void;

/// The real functions once found (0: not yet; `NOT_FOUND`: looked for, absent).
static REAL_DLSYM: AtomicUsize = AtomicUsize::new(0);
static REAL_DLVSYM: AtomicUsize = AtomicUsize::new(0);
const NOT_FOUND: usize = 1;

fn real(cell: &AtomicUsize, name: &[u8]) -> Option<usize> {
    let mut p = cell.load(Ordering::Acquire);
    if p == 0 {
        // Threads racing here find the same address: no need to make the others wait.
        p = find_next_definition(name).unwrap_or(NOT_FOUND);
        cell.store(p, Ordering::Release);
    }
    (p != NOT_FOUND).then_some(p)
}

/// The real `dlsym` (glibc's, or the next interposer's), found without `dlsym`.
pub fn real_dlsym() -> Option<DlsymFn> {
    let p = real(&REAL_DLSYM, b"dlsym")?;
    // SAFETY: the address of a defined function symbol named `dlsym`, which has this type.
    Some(unsafe { std::mem::transmute::<usize, DlsymFn>(p) })
}

/// The real `dlvsym`.
pub fn real_dlvsym() -> Option<DlvsymFn> {
    let p = real(&REAL_DLVSYM, b"dlvsym")?;
    // SAFETY: the address of a defined function symbol named `dlvsym`, which has this type.
    Some(unsafe { std::mem::transmute::<usize, DlvsymFn>(p) })
}

extern "C" fn resolve_at_load() {
    let _ = real_dlsym();
    let _ = real_dlvsym();
}

/// The constructor: find both real functions while the loaded objects are the program, the
/// preloaded libraries and their dependencies (the global scope `RTLD_NEXT` searches), before
/// the program `dlopen`s anything of its own.
#[used]
#[link_section = ".init_array"]
static RESOLVE_AT_LOAD: extern "C" fn() = resolve_at_load;

/// Where the trampolines jump for a name they pass on. Never 0: when the real function was not
/// found `decide` answers NULL itself instead of passing.
extern "C" fn target_dlsym() -> usize {
    real(&REAL_DLSYM, b"dlsym").unwrap_or(0)
}

extern "C" fn target_dlvsym() -> usize {
    real(&REAL_DLVSYM, b"dlvsym").unwrap_or(0)
}

extern "C" fn decide_dlsym(handle: *mut c_void, name: *const c_char, caller: usize) -> usize {
    if real_dlsym().is_none() {
        return 0;
    }
    decide(handle, name, std::ptr::null(), caller)
}

extern "C" fn decide_dlvsym(
    handle: *mut c_void,
    name: *const c_char,
    version: *const c_char,
    caller: usize,
) -> usize {
    if real_dlvsym().is_none() {
        return 0;
    }
    decide(handle, name, version, caller)
}

/// What the caller of `dlsym(handle, name)` / `dlvsym(handle, name, version)` gets: `PASS` (the
/// real function answers it), or an answer.
fn decide(
    handle: *mut c_void,
    name: *const c_char,
    version: *const c_char,
    caller: usize,
) -> usize {
    if name.is_null() {
        return PASS;
    }
    // SAFETY: a non-null `name` is the caller's NUL-terminated symbol name (dlsym's contract).
    let name_c = unsafe { CStr::from_ptr(name) };
    let Some((symbol, guard)) = guard_for(name_c.to_bytes()) else {
        return PASS;
    };
    if object_defines(caller, symbol) {
        // An interposer after the guard (or before it) asking for its own next: untouched.
        return PASS;
    }
    if handle == libc::RTLD_NEXT {
        if !version.is_null() {
            // A version nobody defines: the real function says so, in its own words.
            let Some(dlvsym) = real_dlvsym() else {
                return PASS;
            };
            // SAFETY: RTLD_DEFAULT, and the caller's own NUL-terminated name and version.
            if unsafe { dlvsym(libc::RTLD_DEFAULT, name, version) }.is_null() {
                return PASS;
            }
        }
        return guard;
    }
    // A real handle (or RTLD_DEFAULT, searched in our namespace, which is the caller's: only
    // the base namespace sees this library): the real function's answer does not depend on
    // who asks, so we ask it, and keep its NULL and `dlerror` if it finds nothing.
    // SAFETY: the caller's own arguments, passed on unchanged.
    let found = unsafe {
        match (version.is_null(), real_dlsym(), real_dlvsym()) {
            (true, Some(f), _) => f(handle, name),
            (false, _, Some(f)) => f(handle, name, version),
            _ => return PASS,
        }
    };
    if found.is_null() {
        return 0;
    }
    guard
}

// ---------------------------------------------------------------------------------------------
// The trampolines.

// x86_64 (System V): rdi = handle, rsi = name, rdx = version (dlvsym); the caller's return
// address at [rsp]. On entry rsp = 8 (mod 16); three pushes make it 0 for the call.
#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".pushsection .text.mfiguard_dl,\"ax\",@progbits",
    ".globl dlsym",
    ".type dlsym,@function",
    ".p2align 4",
    "dlsym:",
    "endbr64",
    "push rdi",
    "push rsi",
    "push rdx",
    "mov rdx, [rsp + 24]",
    "call {decide_dlsym}",
    "pop rdx",
    "pop rsi",
    "pop rdi",
    "cmp rax, -1",
    "jne 2f",
    "push rdi",
    "push rsi",
    "push rdx",
    "call {target_dlsym}",
    "mov r11, rax",
    "pop rdx",
    "pop rsi",
    "pop rdi",
    "jmp r11",
    "2:",
    "ret",
    ".size dlsym, .-dlsym",
    "",
    ".globl dlvsym",
    ".type dlvsym,@function",
    ".p2align 4",
    "dlvsym:",
    "endbr64",
    "push rdi",
    "push rsi",
    "push rdx",
    "mov rcx, [rsp + 24]",
    "call {decide_dlvsym}",
    "pop rdx",
    "pop rsi",
    "pop rdi",
    "cmp rax, -1",
    "jne 2f",
    "push rdi",
    "push rsi",
    "push rdx",
    "call {target_dlvsym}",
    "mov r11, rax",
    "pop rdx",
    "pop rsi",
    "pop rdi",
    "jmp r11",
    "2:",
    "ret",
    ".size dlvsym, .-dlvsym",
    ".popsection",
    decide_dlsym = sym decide_dlsym,
    target_dlsym = sym target_dlsym,
    decide_dlvsym = sym decide_dlvsym,
    target_dlvsym = sym target_dlvsym,
);

// i686 (cdecl): the arguments on the stack above the caller's return address, which the
// callee leaves in place; eax, ecx, edx are the callee's to use. On entry [esp] = return
// address, [esp+4] = handle, [esp+8] = name, [esp+12] = version (dlvsym). The i386 ABI wants
// esp = 0 (mod 16) at a call; we enter at 12 (mod 16): `dlsym` pushes three words (12 bytes),
// `dlvsym` reserves 12 bytes and pushes four (28), the jump target's call reserves 12.
#[cfg(target_arch = "x86")]
std::arch::global_asm!(
    ".pushsection .text.mfiguard_dl,\"ax\",@progbits",
    ".globl dlsym",
    ".type dlsym,@function",
    ".p2align 4",
    "dlsym:",
    "endbr32",
    "push dword ptr [esp]",
    "push dword ptr [esp + 12]",
    "push dword ptr [esp + 12]",
    "call {decide_dlsym}",
    "add esp, 12",
    "cmp eax, -1",
    "jne 2f",
    "sub esp, 12",
    "call {target_dlsym}",
    "add esp, 12",
    "jmp eax",
    "2:",
    "ret",
    ".size dlsym, .-dlsym",
    "",
    ".globl dlvsym",
    ".type dlvsym,@function",
    ".p2align 4",
    "dlvsym:",
    "endbr32",
    "sub esp, 12",
    "push dword ptr [esp + 12]",
    "push dword ptr [esp + 28]",
    "push dword ptr [esp + 28]",
    "push dword ptr [esp + 28]",
    "call {decide_dlvsym}",
    "add esp, 28",
    "cmp eax, -1",
    "jne 2f",
    "sub esp, 12",
    "call {target_dlvsym}",
    "add esp, 12",
    "jmp eax",
    "2:",
    "ret",
    ".size dlvsym, .-dlvsym",
    ".popsection",
    decide_dlsym = sym decide_dlsym,
    target_dlsym = sym target_dlsym,
    decide_dlvsym = sym decide_dlvsym,
    target_dlvsym = sym target_dlvsym,
);

// ---------------------------------------------------------------------------------------------
// Symbol lookup in the loaded objects' dynamic symbol tables.

#[cfg(target_pointer_width = "64")]
type Sym = libc::Elf64_Sym;
#[cfg(target_pointer_width = "32")]
type Sym = libc::Elf32_Sym;
#[cfg(target_pointer_width = "64")]
type Phdr = libc::Elf64_Phdr;
#[cfg(target_pointer_width = "32")]
type Phdr = libc::Elf32_Phdr;

/// `ElfW(Dyn)`: a signed word tag and a word value, on both widths.
#[repr(C)]
struct Dyn {
    tag: isize,
    val: usize,
}

const DT_NULL: isize = 0;
const DT_HASH: isize = 4;
const DT_STRTAB: isize = 5;
const DT_SYMTAB: isize = 6;
const DT_GNU_HASH: isize = 0x6fff_fef5;
const DT_VERSYM: isize = 0x6fff_fff0;
const SHN_UNDEF: u16 = 0;
/// `versym` bit of a non-default (`name@VERSION`, not `@@`) definition.
const VERSYM_HIDDEN: u16 = 0x8000;

/// One loaded object, as `dl_iterate_phdr` describes it.
struct Object<'a> {
    info: &'a libc::dl_phdr_info,
}

impl Object<'_> {
    fn phdrs(&self) -> &[Phdr] {
        if self.info.dlpi_phdr.is_null() {
            return &[];
        }
        // SAFETY: the loader's program headers of a loaded object: `dlpi_phnum` entries.
        unsafe {
            std::slice::from_raw_parts(self.info.dlpi_phdr, usize::from(self.info.dlpi_phnum))
        }
    }

    fn base(&self) -> usize {
        self.info.dlpi_addr as usize
    }

    /// Whether `addr` is inside one of the object's loaded segments.
    fn contains(&self, addr: usize) -> bool {
        self.phdrs().iter().any(|p| {
            let start = self.base().wrapping_add(p.p_vaddr as usize);
            p.p_type == libc::PT_LOAD && addr >= start && addr - start < p.p_memsz as usize
        })
    }

    /// A dynamic-section address: relocated in place by the loader on most targets, an
    /// offset from the base where it is read-only (and in the vDSO).
    fn addr(&self, val: usize) -> usize {
        if self.contains(val) {
            val
        } else {
            val.wrapping_add(self.base())
        }
    }

    /// The address of the object's default-version definition of `name`, if it has one.
    fn lookup(&self, name: &[u8]) -> Option<usize> {
        let dynamic = self.phdrs().iter().find(|p| p.p_type == libc::PT_DYNAMIC)?;
        let mut d = self.base().wrapping_add(dynamic.p_vaddr as usize) as *const Dyn;
        let (mut strtab, mut symtab, mut gnu, mut sysv, mut versym) = (0, 0, 0, 0, 0);
        // SAFETY: the object's dynamic section, as loaded, ends with DT_NULL.
        unsafe {
            while (*d).tag != DT_NULL {
                let v = (*d).val;
                match (*d).tag {
                    DT_STRTAB => strtab = self.addr(v),
                    DT_SYMTAB => symtab = self.addr(v),
                    DT_GNU_HASH => gnu = self.addr(v),
                    DT_HASH => sysv = self.addr(v),
                    DT_VERSYM => versym = self.addr(v),
                    _ => {}
                }
                d = d.add(1);
            }
        }
        if strtab == 0 || symtab == 0 {
            return None;
        }
        let t = Tables {
            strtab: strtab as *const c_char,
            symtab: symtab as *const Sym,
            versym: versym as *const u16,
        };
        let mut hidden_match = None;
        let mut consider = |index: usize| -> Option<usize> {
            let (addr, hidden) = t.definition(index, name, self.base())?;
            if hidden {
                hidden_match.get_or_insert(addr);
                None
            } else {
                Some(addr)
            }
        };
        let found = if gnu != 0 {
            // SAFETY: the object's GNU hash table.
            unsafe { gnu_candidates(gnu as *const u32, name, &mut consider) }
        } else if sysv != 0 {
            // SAFETY: the object's SysV hash table.
            unsafe { sysv_candidates(sysv as *const u32, name, &mut consider) }
        } else {
            None
        };
        found.or(hidden_match)
    }
}

struct Tables {
    strtab: *const c_char,
    symtab: *const Sym,
    versym: *const u16,
}

impl Tables {
    /// Symbol `index`, if it is a definition of `name`: its address and whether it is a
    /// non-default version.
    fn definition(&self, index: usize, name: &[u8], base: usize) -> Option<(usize, bool)> {
        // SAFETY: `index` comes from the object's hash table, so it indexes its symbol table;
        // st_name indexes its string table.
        unsafe {
            let sym = &*self.symtab.add(index);
            if sym.st_shndx == SHN_UNDEF || sym.st_value == 0 {
                return None;
            }
            if CStr::from_ptr(self.strtab.add(sym.st_name as usize)).to_bytes() != name {
                return None;
            }
            let hidden = !self.versym.is_null() && *self.versym.add(index) & VERSYM_HIDDEN != 0;
            Some((base.wrapping_add(sym.st_value as usize), hidden))
        }
    }
}

fn gnu_hash(name: &[u8]) -> u32 {
    name.iter().fold(5381u32, |h, &c| {
        h.wrapping_mul(33).wrapping_add(u32::from(c))
    })
}

fn sysv_hash(name: &[u8]) -> u32 {
    name.iter().fold(0u32, |h, &c| {
        let h = (h << 4).wrapping_add(u32::from(c));
        let g = h & 0xf000_0000;
        (h ^ (g >> 24)) & !g
    })
}

/// Calls `f` on each symbol index of the GNU hash chain for `name`, until it answers.
///
/// # Safety
///
/// `table` is a loaded object's `DT_GNU_HASH` table.
unsafe fn gnu_candidates(
    table: *const u32,
    name: &[u8],
    f: &mut impl FnMut(usize) -> Option<usize>,
) -> Option<usize> {
    // SAFETY: the table's header, bloom filter (words of the native width), buckets and chains,
    // laid out as the GNU hash format defines.
    unsafe {
        let nbuckets = *table as usize;
        let symoffset = *table.add(1) as usize;
        let bloom_words = *table.add(2) as usize;
        if nbuckets == 0 {
            return None;
        }
        let bloom_u32s = bloom_words * (std::mem::size_of::<usize>() / 4);
        let buckets = table.add(4 + bloom_u32s);
        let chains = buckets.add(nbuckets);
        let h = gnu_hash(name);
        let mut i = *buckets.add(h as usize % nbuckets) as usize;
        if i < symoffset {
            return None;
        }
        loop {
            let ch = *chains.add(i - symoffset);
            if ch | 1 == h | 1 {
                if let Some(found) = f(i) {
                    return Some(found);
                }
            }
            if ch & 1 != 0 {
                return None;
            }
            i += 1;
        }
    }
}

/// Calls `f` on each symbol index of the SysV hash chain for `name`, until it answers.
///
/// # Safety
///
/// `table` is a loaded object's `DT_HASH` table.
unsafe fn sysv_candidates(
    table: *const u32,
    name: &[u8],
    f: &mut impl FnMut(usize) -> Option<usize>,
) -> Option<usize> {
    // SAFETY: nbucket, nchain, buckets, chains, as the SysV hash format defines.
    unsafe {
        let nbucket = *table as usize;
        let nchain = *table.add(1) as usize;
        if nbucket == 0 {
            return None;
        }
        let buckets = table.add(2);
        let chains = buckets.add(nbucket);
        let mut i = *buckets.add(sysv_hash(name) as usize % nbucket) as usize;
        let mut steps = 0;
        while i != 0 && i < nchain && steps < nchain {
            if let Some(found) = f(i) {
                return Some(found);
            }
            i = *chains.add(i) as usize;
            steps += 1;
        }
        None
    }
}

/// Runs `f` on each loaded object, in load order, until it returns `true`.
fn each_object(mut f: impl FnMut(&Object<'_>) -> bool) {
    unsafe extern "C" fn callback(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: `data` is the `&mut dyn FnMut` passed below, alive for the whole iteration;
        // `info` is the loader's description of one object, valid during this callback.
        unsafe {
            let f = &mut *data.cast::<&mut dyn FnMut(&Object<'_>) -> bool>();
            c_int::from(f(&Object { info: &*info }))
        }
    }
    let mut f: &mut dyn FnMut(&Object<'_>) -> bool = &mut f;
    // SAFETY: the callback only uses `data` as the closure above, during the call.
    unsafe {
        libc::dl_iterate_phdr(
            Some(callback),
            (&mut f as *mut &mut dyn FnMut(&Object<'_>) -> bool).cast(),
        )
    };
}

/// The first definition of `name` in an object loaded after this library (what
/// `dlsym(RTLD_NEXT, name)` finds from here); failing that (this library loaded by `dlopen`,
/// after the libc), the first in any other object.
fn find_next_definition(name: &[u8]) -> Option<usize> {
    let me = decide_dlsym as *const () as usize;
    let mut seen_me = false;
    let mut after = None;
    let mut anywhere = None;
    each_object(|o| {
        if o.contains(me) {
            seen_me = true;
            return false;
        }
        if let Some(addr) = o.lookup(name) {
            if seen_me {
                after = Some(addr);
                return true;
            }
            anywhere.get_or_insert(addr);
        }
        false
    });
    after.or(anywhere)
}

/// Whether the object containing `addr` defines `name` itself.
fn object_defines(addr: usize, name: &[u8]) -> bool {
    let mut defines = false;
    each_object(|o| {
        if o.contains(addr) {
            defines = o.lookup(name).is_some();
            return true;
        }
        false
    });
    defines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_libc_functions_as_the_loader_does() {
        // This test binary defines `dlsym` itself (this module is linked in), so the next one
        // is the libc's; compare with what the loader answers for a name nobody else defines.
        let real = real_dlsym().expect("a real dlsym");
        // SAFETY: RTLD_DEFAULT and a NUL-terminated name.
        let getpid = unsafe { real(libc::RTLD_DEFAULT, c"getpid".as_ptr()) };
        assert_eq!(getpid as usize, find_next_definition(b"getpid").unwrap());
        assert_eq!(find_next_definition(b"no_such_symbol_mfiguard"), None);
        assert!(real_dlvsym().is_some());
    }

    #[test]
    fn hashes() {
        // Values from the ELF and GNU specifications' reference implementations.
        assert_eq!(gnu_hash(b""), 5381);
        assert_eq!(gnu_hash(b"printf"), 0x156b_2bb8);
        assert_eq!(sysv_hash(b"printf"), 0x0779_05a6);
    }

    #[test]
    fn knows_who_defines_what() {
        // libc defines ioctl; this test binary does not export one, but the address of the
        // libc's getpid is inside the libc.
        let getpid = find_next_definition(b"getpid").unwrap();
        assert!(object_defines(getpid, b"ioctl"));
        assert!(!object_defines(0x10, b"ioctl"));
    }
}
