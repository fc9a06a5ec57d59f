//! `ioctl` found by name (`dlsym`, `dlvsym`).

use super::*;

// ---- ioctl found by name ----------------------------------------------------------------------

/// The libc version of `ioctl` a versioned lookup names on this architecture.
#[cfg(target_pointer_width = "64")]
pub(crate) const IOCTL_VERSION: &std::ffi::CStr = c"GLIBC_2.2.5";
#[cfg(target_pointer_width = "32")]
pub(crate) const IOCTL_VERSION: &std::ffi::CStr = c"GLIBC_2.0";

/// The file name (last component) of the object holding `p`, as `dladdr` tells it.
pub(crate) fn object_of(p: *mut c_void) -> String {
    if p.is_null() {
        return "null".into();
    }
    // SAFETY: dladdr only reads `p` and fills `info`.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::dladdr(p, &mut info) } == 0 || info.dli_fname.is_null() {
        return "unknown".into();
    }
    // SAFETY: dladdr's file name is a NUL-terminated string owned by the loader.
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }.to_string_lossy();
    let base = name.rsplit('/').next().unwrap_or_default();
    if base.is_empty() || base == "mfi_client" {
        "main".into()
    } else {
        base.into()
    }
}

/// `dl-ioctl HOW`: finds `ioctl` by name, as Python's ctypes and hand-written loaders do, and
/// issues ieee-dcmd through the pointer found. HOW: `libc` (`dlsym(dlopen("libc.so.6"),
/// "ioctl")`), `libc-vsym` (`dlvsym` on that handle with the libc version), `next-vsym`
/// (`dlvsym(RTLD_NEXT, "ioctl", version)`), `default` (`dlsym(RTLD_DEFAULT, "ioctl")`).
/// `dl-lookups`: where this program's own `dlsym(RTLD_NEXT, NAME)` lands for a few names,
/// which no guard may change. Stdout: the outcome, or one `NAME=object` line per lookup.
pub fn dl_scenario(fd: c_int, opts: &Opts) -> i32 {
    if opts.scenario == "dl-limit" {
        return dl_limit(fd, opts);
    }
    if opts.scenario == "dl-lookups" {
        for name in [c"malloc", c"getpid", c"dlsym", c"dlvsym", c"ioctl"] {
            // SAFETY: RTLD_NEXT and a NUL-terminated name.
            let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
            println!("next {}={}", name.to_string_lossy(), object_of(p));
        }
        // A version nobody defines is still not found.
        // SAFETY: as above, with a NUL-terminated version.
        let none =
            unsafe { libc::dlvsym(libc::RTLD_NEXT, c"ioctl".as_ptr(), c"NOPE_1.0".as_ptr()) };
        println!("next ioctl@NOPE_1.0={}", object_of(none));
        // SAFETY: dlopen of a NUL-terminated name; the handle is never closed (kept loaded).
        let m = unsafe { libc::dlopen(c"libm.so.6".as_ptr(), libc::RTLD_NOW) };
        // SAFETY: a handle from dlopen (or null, which dlsym reports as an error).
        let cos = unsafe { libc::dlsym(m, c"cos".as_ptr()) };
        println!("libm cos={}", object_of(cos));
        return 0;
    }
    let how = opts.args.first().map(String::as_str).unwrap_or("");
    // SAFETY: dlopen/dlsym/dlvsym with NUL-terminated names; the handle stays open.
    let f = unsafe {
        let libc_handle = || libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_NOW);
        match how {
            "libc" => libc::dlsym(libc_handle(), c"ioctl".as_ptr()),
            "libc-vsym" => libc::dlvsym(libc_handle(), c"ioctl".as_ptr(), IOCTL_VERSION.as_ptr()),
            "next-vsym" => libc::dlvsym(libc::RTLD_NEXT, c"ioctl".as_ptr(), IOCTL_VERSION.as_ptr()),
            "default" => libc::dlsym(libc::RTLD_DEFAULT, c"ioctl".as_ptr()),
            _ => {
                eprintln!("mfi_client: dl-ioctl needs libc, libc-vsym, next-vsym or default");
                return 2;
            }
        }
    };
    println!("found={}", object_of(f));
    if f.is_null() {
        return 1;
    }
    type Ioctl = unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int;
    // SAFETY: a definition of `ioctl`, whose C type this is.
    let f = unsafe { std::mem::transmute::<*mut c_void, Ioctl>(f) };
    let mut call = ctrl_info_with(opts.host, 2048, |b| add_flags(b, IEEE_SGL64));
    call.packet[CMD_STATUS] = STATUS_UNSET;
    // SAFETY: a whole packet whose buffer lives across the call.
    let ret = unsafe { f(fd, call.request, call.packet.as_mut_ptr().cast::<c_void>()) };
    let errno = if ret < 0 { super::last_errno() } else { 0 };
    println!(
        "ret={ret} errno={errno} ({}) cmd_status={:#04x}",
        Errno(errno).name(),
        call.packet[CMD_STATUS]
    );
    i32::from(ret != 0)
}

/// `dl-limit HOW LIB`: ieee-dcmd issued by a function of another library, `LIB`, which calls
/// `ioctl` itself: `mfiguard_test_ioctl(fd, request, packet)` (tests/hardening_dl_limits.rs
/// builds it). HOW: `plain` (`dlopen`), `deepbind` (`dlopen` with `RTLD_DEEPBIND`: the library
/// binds to its own libc's `ioctl` first), `dlmopen` (a new link-map namespace, with its own
/// libc and no preload). Shows what the preload cannot reach. Stdout: the outcome.
pub fn dl_limit(fd: c_int, opts: &Opts) -> i32 {
    let (Some(how), Some(lib)) = (opts.args.first(), opts.args.get(1)) else {
        eprintln!("mfi_client: dl-limit needs plain|deepbind|dlmopen LIB");
        return 2;
    };
    let Ok(lib) = CString::new(lib.as_str()) else {
        return 2;
    };
    // SAFETY: dlopen/dlmopen of a NUL-terminated path; the handle stays open.
    let handle = unsafe {
        match how.as_str() {
            "plain" => libc::dlopen(lib.as_ptr(), libc::RTLD_NOW),
            "deepbind" => libc::dlopen(lib.as_ptr(), libc::RTLD_NOW | libc::RTLD_DEEPBIND),
            "dlmopen" => libc::dlmopen(libc::LM_ID_NEWLM, lib.as_ptr(), libc::RTLD_NOW),
            _ => {
                eprintln!("mfi_client: dl-limit: unknown way {how}");
                return 2;
            }
        }
    };
    if handle.is_null() {
        eprintln!(
            "mfi_client: dl-limit: cannot load {}",
            lib.to_string_lossy()
        );
        return 3;
    }
    // SAFETY: a handle and a NUL-terminated name.
    let f = unsafe { libc::dlsym(handle, c"mfiguard_test_ioctl".as_ptr()) };
    if f.is_null() {
        eprintln!("mfi_client: dl-limit: no mfiguard_test_ioctl");
        return 3;
    }
    type Helper = unsafe extern "C" fn(c_int, c_ulong, *mut c_void) -> c_int;
    // SAFETY: the helper's C type.
    let f = unsafe { std::mem::transmute::<*mut c_void, Helper>(f) };
    let mut call = ctrl_info_with(opts.host, 2048, |b| add_flags(b, IEEE_SGL64));
    call.packet[CMD_STATUS] = STATUS_UNSET;
    // SAFETY: a whole packet whose buffer lives across the call; the helper passes it to ioctl.
    let ret = unsafe { f(fd, call.request, call.packet.as_mut_ptr().cast::<c_void>()) };
    let errno = if ret < 0 { super::last_errno() } else { 0 };
    println!(
        "ret={ret} errno={errno} ({}) cmd_status={:#04x}",
        Errno(errno).name(),
        call.packet[CMD_STATUS]
    );
    i32::from(ret != 0)
}
