//! `ioctl` found by name: Python's ctypes and hand-written loaders look it up with
//! `dlsym(dlopen("libc.so.6"), "ioctl")` or `dlvsym(RTLD_NEXT, "ioctl", "GLIBC_2.2.5")`, which
//! the preload order does not affect, so they went around the guard (and around the simulator,
//! which is why the unguarded runs below never reach it). The library now interposes `dlsym`
//! and `dlvsym` too: such a lookup returns the guard, and the call is guarded (the oracle is
//! the simulator's record); every other lookup is answered as before, `RTLD_NEXT` from the
//! caller's own position.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::process::{Command, Stdio};

fn lookup(how: &str, guard: Guard) -> Run {
    client(&["dl-ioctl", how]).guard(guard).run()
}

#[test]
fn ioctl_looked_up_by_name_is_the_guard() {
    for how in ["libc", "libc-vsym", "next-vsym", "default"] {
        let run = lookup(how, Guard::Enforce);
        assert_eq!(run.code(), 0, "{how}\n{}", run.dump());
        assert!(
            run.stdout
                .starts_with("found=libmfiguard.so\nret=0 errno=0 (0) cmd_status=0x00\n"),
            "{how}\n{}",
            run.dump()
        );
        // Reached the driver once, rewritten; recorded once.
        assert_eq!(text(run.sim_call(), "flags"), Some("0x0010"), "{how}");
        let call = run.audit_call();
        assert_eq!(text(&call, "verdict"), Some("rewrite"), "{how}");
        assert_eq!(text(&call, "flags_sent"), Some("0x0010"), "{how}");
    }
}

#[test]
fn without_the_guard_these_lookups_go_around_every_preload() {
    // What the guard fixes: the libc's own ioctl, straight to the kernel (here /dev/null:
    // ENOTTY), seen by no preloaded library.
    for how in ["libc", "libc-vsym", "next-vsym"] {
        let run = lookup(how, Guard::Without);
        assert!(
            run.stdout.starts_with("found=libc.so.6\nret=-1 errno=25"),
            "{how}\n{}",
            run.dump()
        );
        assert!(run.sim.is_empty(), "{how}\n{}", run.dump());
    }
}

fn lookups(guard: Guard) -> Vec<(String, String)> {
    let run = client(&["dl-lookups"]).guard(guard).run();
    assert_eq!(run.code(), 0, "{}", run.dump());
    run.stdout
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[test]
fn other_lookups_answer_as_without_the_guard() {
    let without = lookups(Guard::Without);
    let with = lookups(Guard::Enforce);
    assert_eq!(with.len(), without.len());
    for ((k, before), (k2, after)) in without.iter().zip(&with) {
        assert_eq!(k, k2);
        match k.as_str() {
            // `RTLD_NEXT` from the program: the first preloaded library that defines the name.
            // That is the guard, which now defines these: the real dlsym saw the *program's*
            // return address (a wrapper calling it from the library would get the libc's).
            "next dlsym" | "next dlvsym" | "next ioctl" => {
                assert_eq!(after, "libmfiguard.so", "{k}: {with:?}")
            }
            // Everything else, the same object as without the guard (a version nobody
            // defines: still not found).
            _ => assert_eq!(after, before, "{k}: {with:?}"),
        }
    }
    assert!(without.contains(&("next malloc".into(), "libc.so.6".into())));
    assert!(without.contains(&("next ioctl@NOPE_1.0".into(), "null".into())));
    assert!(without.contains(&("libm cos".into(), "libm.so.6".into())));
}

/// A MegaCli-like call from Python: CTRL_GET_INFO with IEEE|SGL64 set, through
/// `ctypes.CDLL("libc.so.6").ioctl` (x86_64 layout).
const PYTHON_CLIENT: &str = r#"
import ctypes, os, struct
libc = ctypes.CDLL("libc.so.6", use_errno=True)
fd = os.open("/dev/null", os.O_RDWR)
buf = ctypes.create_string_buffer(2048)
pkt = bytearray(404)
struct.pack_into("<HHIIII", pkt, 0, 0, 0, 0x28, 1, 0, 0)
f = 0x14
pkt[f + 0] = 0x05
pkt[f + 2] = 0xFF
pkt[f + 7] = 1
struct.pack_into("<HHI", pkt, f + 0x10, 0x0032, 0, 2048)
struct.pack_into("<I", pkt, f + 0x18, 0x01010000)
struct.pack_into("<QQ", pkt, 0x94, ctypes.addressof(buf), 2048)
p = (ctypes.c_char * 404).from_buffer(pkt)
libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
ret = libc.ioctl(fd, 0xC1944D01, p)
err = ctypes.get_errno() if ret < 0 else 0
print("ret=%d errno=%d cmd_status=%#04x" % (ret, err, pkt[f + 2]))
"#;

#[test]
fn python_ctypes_ioctl_is_guarded() {
    if cross_target().is_some() {
        eprintln!("skipped: the Python client builds an x86_64 packet; this run tests i686");
        return;
    }
    let python = match Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
    {
        Ok(o) if o.status.success() => String::from_utf8(o.stdout).unwrap().trim().to_owned(),
        _ => {
            eprintln!("skipped: no python3 here");
            return;
        }
    };
    let dir = Scratch::new("ctypes");
    let conf = dir.path("empty.conf");
    std::fs::write(&conf, "").unwrap();
    let sim = examples().sim.display().to_string();
    let run_python = |preload: String| {
        let mut cmd = Command::new(&python);
        cmd.args(["-c", PYTHON_CLIENT]);
        for (k, _) in std::env::vars() {
            if k.starts_with("MFIGUARD_") || k.starts_with("MFISIM_") {
                cmd.env_remove(k);
            }
        }
        let _ = std::fs::remove_file(dir.path("sim.jsonl"));
        cmd.env("LD_PRELOAD", preload)
            .env("MFIGUARD_CONFIG", &conf)
            .env("MFIGUARD_DEVICE", "/dev/null")
            .env("MFIGUARD_MODE", "enforce")
            .env("MFIGUARD_LOG", dir.path("audit.jsonl"))
            .env("MFISIM_RECORD", dir.path("sim.jsonl"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (status, out, err) = run_with_timeout(&mut cmd, RUN_TIMEOUT);
        assert!(status.success(), "{status:?}\n{out}\n{err}");
        let sim = std::fs::read_to_string(dir.path("sim.jsonl")).unwrap_or_default();
        (out, parse_lines(&sim, "simulator record"))
    };
    // Without the guard: the libc's ioctl, straight to /dev/null, no simulator either.
    let (out, sim_records) = run_python(sim.clone());
    assert_eq!(out, "ret=-1 errno=25 cmd_status=0xff\n");
    assert!(sim_records.is_empty());
    // With it: guarded, rewritten, answered.
    let (out, sim_records) = run_python(format!("{} {sim}", guard_lib().display()));
    assert_eq!(out, "ret=0 errno=0 cmd_status=0x00\n");
    assert_eq!(sim_records.len(), 1);
    assert_eq!(text(&sim_records[0], "flags"), Some("0x0010"));
    let audit = parse_records(
        &std::fs::read_to_string(dir.path("audit.jsonl")).unwrap(),
        "audit log",
    );
    let calls = merge_calls(&audit);
    assert_eq!(calls.len(), 1, "{audit:?}");
    assert_eq!(text(&calls[0], "verdict"), Some("rewrite"));
}
