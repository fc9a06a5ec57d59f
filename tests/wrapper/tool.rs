//! Which library (or none) a tool gets: its ELF class and linking read from synthetic and real
//! programs, scripts, static and setuid tools.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::wrapper::*;
use crate::common::*;

// ---- synthetic ELF files ---------------------------------------------------------------------

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;

/// The start of an ELF program, enough for the wrapper's reader (not for the kernel): a header,
/// program headers at `phoff`, and the interpreter's path at `interp_at` when there is one.
fn synth_elf(class64: bool, interp: Option<(&str, usize)>, phoff: usize) -> Vec<u8> {
    let (ehsize, phentsize) = if class64 { (64, 56) } else { (52, 32) };
    let mut phdrs: Vec<(u32, u64, u64)> = vec![(PT_PHDR, phoff as u64, 0)];
    if let Some((path, at)) = interp {
        phdrs.push((PT_INTERP, at as u64, path.len() as u64 + 1));
    }
    phdrs.push((PT_LOAD, 0, 0));
    let end = phoff + phentsize * phdrs.len();
    let interp_end = interp.map_or(0, |(p, at)| at + p.len() + 1);
    let mut b = vec![0u8; end.max(interp_end).max(ehsize)];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = if class64 { 2 } else { 1 };
    b[5] = 1; // little-endian
    b[6] = 1;
    b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    b[18..20].copy_from_slice(&(if class64 { 62u16 } else { 3 }).to_le_bytes());
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    if class64 {
        b[32..40].copy_from_slice(&(phoff as u64).to_le_bytes());
        b[52..54].copy_from_slice(&(ehsize as u16).to_le_bytes());
        b[54..56].copy_from_slice(&(phentsize as u16).to_le_bytes());
        b[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
    } else {
        b[28..32].copy_from_slice(&(phoff as u32).to_le_bytes());
        b[40..42].copy_from_slice(&(ehsize as u16).to_le_bytes());
        b[42..44].copy_from_slice(&(phentsize as u16).to_le_bytes());
        b[44..46].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
    }
    for (i, (ty, off, filesz)) in phdrs.iter().enumerate() {
        let e = phoff + i * phentsize;
        b[e..e + 4].copy_from_slice(&ty.to_le_bytes());
        if class64 {
            b[e + 8..e + 16].copy_from_slice(&off.to_le_bytes());
            b[e + 32..e + 40].copy_from_slice(&filesz.to_le_bytes());
        } else {
            b[e + 4..e + 8].copy_from_slice(&(*off as u32).to_le_bytes());
            b[e + 16..e + 20].copy_from_slice(&(*filesz as u32).to_le_bytes());
        }
    }
    if let Some((path, at)) = interp {
        b[at..at + path.len()].copy_from_slice(path.as_bytes());
    }
    b
}

fn synth(s: &Scratch, name: &str, bytes: &[u8]) -> PathBuf {
    let p = s.path(name);
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

const LD64: &str = "/lib64/ld-linux-x86-64.so.2";
const LD32: &str = "/lib/ld-linux.so.2";

// ---- the ELF class, static programs, setuid, scripts ------------------------------------------

/// `--check TOOL`'s lines about TOOL (between "tool:" and the first "library").
fn tool_report(lib: &Path, tool: &Path) -> (i32, String) {
    let out = run(&mut wrap(lib, &["--check", tool.to_str().unwrap()]));
    assert!(
        out.stdout.starts_with("mfiguard-run ") && out.stdout.contains("\nresult: "),
        "{}",
        out.dump()
    );
    let report: String = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("tool: "))
        .take_while(|l| !l.starts_with("library "))
        .map(|l| format!("{l}\n"))
        .collect();
    (out.code(), report)
}

#[test]
fn check_tool_reads_class_and_linking_from_the_program_headers() {
    let s = Scratch::new("elf");
    let lib = stand_in(&s);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dyn64",
            synth_elf(true, Some((LD64, 0x318)), 64),
            "ELF 64-bit, dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2)",
        ),
        (
            "dyn32",
            synth_elf(false, Some((LD32, 0x154)), 52),
            "ELF 32-bit, dynamically linked (interpreter /lib/ld-linux.so.2)",
        ),
        (
            "static64",
            synth_elf(true, None, 64),
            "ELF 64-bit, statically linked",
        ),
        (
            "static32",
            synth_elf(false, None, 52),
            "ELF 32-bit, statically linked",
        ),
        // Headers past the first 4 KiB the wrapper reads: it reads on.
        (
            "far-interp",
            synth_elf(true, Some((LD64, 9000)), 64),
            "ELF 64-bit, dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2)",
        ),
        (
            "far-phdrs",
            synth_elf(false, Some((LD32, 12000)), 5000),
            "ELF 32-bit, dynamically linked (interpreter /lib/ld-linux.so.2)",
        ),
        (
            "truncated",
            b"\x7fELF\x02\x01\x01".to_vec(),
            "not an ELF program",
        ),
        (
            "data",
            b"MZ\x90\x00 not a program\n".to_vec(),
            "not an ELF program",
        ),
    ];
    for (name, bytes, want) in cases {
        let p = synth(&s, name, &bytes);
        let (code, report) = tool_report(&lib, &p);
        assert!(
            report.contains(want),
            "{name}: expected {want:?} in\n{report}"
        );
        let guardable = want.contains("dynamically");
        assert_eq!(
            report.contains("guard: none") || report.contains("not an ELF"),
            !guardable,
            "{name}:\n{report}"
        );
        if !guardable {
            assert_eq!(
                code, 1,
                "{name}: --check must fail for a tool the guard cannot reach"
            );
        }
    }

    // Real programs: this host's shell and the probe are dynamically linked 64-bit programs.
    for p in [PathBuf::from("/bin/sh"), probe_bin()] {
        let (_, report) = tool_report(&lib, &p);
        assert!(
            report.contains("ELF 64-bit, dynamically linked (interpreter /"),
            "{report}"
        );
    }
    // Found through PATH like the shell would.
    let (_, report) = tool_report(&lib, Path::new("sh"));
    assert!(
        report.starts_with("tool: /") && report.contains("dynamically linked"),
        "{report}"
    );
}

#[test]
fn check_tool_follows_a_script_to_its_interpreter() {
    let s = Scratch::new("script");
    let lib = stand_in(&s);
    let plain = s.path("plain.sh");
    write_exec(&plain, "#!/bin/sh -e\necho hi\n");
    let (code, report) = tool_report(&lib, &plain);
    assert!(report.contains("script: #!/bin/sh -e"), "{report}");
    assert!(
        report.contains("interpreter /bin/sh: ELF 64-bit, dynamically linked"),
        "{report}"
    );
    assert!(report.contains("wrong ELF class"), "{report}");
    assert_eq!(
        code, 1,
        "the stand-in library does not intercept: --check fails"
    );

    let env = s.path("env.sh");
    write_exec(&env, "#!/usr/bin/env -S sh -e\necho hi\n");
    let (_, report) = tool_report(&lib, &env);
    assert!(
        report.contains("script: #!/usr/bin/env -S sh -e"),
        "{report}"
    );
    assert!(
        report.contains("sh: ELF 64-bit, dynamically linked"),
        "{report}"
    );

    // A script whose interpreter is a 32-bit program needs the 32-bit library.
    let interp32 = synth(&s, "interp32", &synth_elf(false, Some((LD32, 0x154)), 52));
    let script32 = s.path("script32");
    write_exec(&script32, &format!("#!{}\n", interp32.display()));
    let (_, report) = tool_report(&lib, &script32);
    assert!(
        report.contains("ELF 32-bit, dynamically linked"),
        "{report}"
    );
    let out = run(&mut wrap(&lib, &[script32.to_str().unwrap()]));
    assert_eq!(out.code(), 125, "{}", out.dump());
    assert!(out.stderr.contains("is a 32-bit program"), "{}", out.dump());
}

#[test]
fn a_32_bit_tool_gets_the_32_bit_library_or_a_clear_error() {
    let s = Scratch::new("class");
    let lib = stand_in(&s);
    let tool32 = synth(&s, "MegaCli", &synth_elf(false, Some((LD32, 0x154)), 52));
    let marker = s.path("ran");

    // No 32-bit library: refused before anything runs.
    let out = run(&mut wrap(&lib, &[tool32.to_str().unwrap()]));
    assert_eq!(out.code(), 125, "{}", out.dump());
    assert!(
        out.stderr
            .contains("is a 32-bit program and the 32-bit guard library")
            && out.stderr.contains(&format!(
                "{}/i386/libmfiguard.so is not installed",
                lib.display()
            )),
        "{}",
        out.dump()
    );
    assert!(!marker.exists());

    // --check TOOL names the library it would use, for both classes.
    let dir32 = lib.join("i386");
    std::fs::create_dir_all(&dir32).unwrap();
    std::fs::write(dir32.join("libmfiguard.so"), synth_elf(false, None, 52)).unwrap();
    let out = run(&mut wrap(&lib, &["--check", tool32.to_str().unwrap()]));
    assert!(
        out.stdout.contains(&format!(
            "library (32-bit): {}/i386/libmfiguard.so\n",
            lib.display()
        )),
        "{}",
        out.dump()
    );
    // MFIGUARD_LIB32_DIR moves it.
    let elsewhere = s.path("lib32");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out =
        run(wrap(&lib, &["--check", tool32.to_str().unwrap()])
            .env("MFIGUARD_LIB32_DIR", &elsewhere));
    assert!(
        out.stdout.contains(&format!(
            "library (32-bit): {}/libmfiguard.so: not installed",
            elsewhere.display()
        )),
        "{}",
        out.dump()
    );
    assert_eq!(out.code(), 1);

    // With a C compiler that builds 32-bit programs: the real thing, run.
    let show = "#include <stdio.h>\n#include <stdlib.h>\nint main(void){const char*p=getenv(\"LD_PRELOAD\");printf(\"%s\\n\",p?p:\"(unset)\");return 7;}\n";
    let empty_lib = "int mfiguard_stand_in;\n";
    if let (Some(prog32), Some(prog64)) = (
        cc(&s, "show32", show, &["-m32"]),
        cc(&s, "show64", show, &[]),
    ) {
        let so32 = cc(
            &s,
            "libstand32.so",
            empty_lib,
            &["-m32", "-shared", "-fPIC"],
        )
        .unwrap();
        std::fs::rename(so32, dir32.join("libmfiguard.so")).unwrap();
        let out = run(&mut wrap(&lib, &[prog32.to_str().unwrap()]));
        assert_eq!(out.code(), 7, "{}", out.dump());
        assert_eq!(
            out.stdout,
            format!("{}/i386/libmfiguard.so\n", lib.display())
        );
        assert_eq!(out.stderr, "", "ld.so loaded the library without complaint");
        let out = run(&mut wrap(&lib, &[prog64.to_str().unwrap()]));
        assert_eq!(out.code(), 7, "{}", out.dump());
        assert_eq!(out.stdout, format!("{}/libmfiguard.so\n", lib.display()));
        assert_eq!(out.stderr, "");
    }
}

#[test]
fn under_the_preload_a_static_tool_is_refused_or_run_with_a_warning_with_allow_unguarded() {
    let s = Scratch::new("static");
    let lib = stand_in(&s);
    let fake_static = synth(&s, "storcli64", &synth_elf(true, None, 64));
    for flags in [
        &[][..],
        &["--require-guard"],
        &["--allow-unguarded", "--require-guard"],
    ] {
        let mut args = flags.to_vec();
        args.push(fake_static.to_str().unwrap());
        let out = run(&mut wrap(&lib, &args));
        assert_eq!(out.code(), 125, "{flags:?}\n{}", out.dump());
        assert!(
            out.stderr.contains("is statically linked")
                && out.stderr.contains("--via supervise")
                && out.stderr.contains("--allow-unguarded"),
            "{}",
            out.dump()
        );
        assert_eq!(out.stdout, "");
    }

    if let Some(prog) = cc(
        &s,
        "static-tool",
        "#include <stdio.h>\nint main(void){puts(\"static tool ran\");return 3;}\n",
        &["-static"],
    ) {
        let (_, report) = tool_report(&lib, &prog);
        assert!(
            report.contains("statically linked (no PT_INTERP)"),
            "{report}"
        );
        let out = run(&mut wrap(
            &lib,
            &["--allow-unguarded", prog.to_str().unwrap()],
        ));
        assert_eq!(out.code(), 3, "{}", out.dump());
        assert_eq!(out.stdout, "static tool ran\n");
        assert!(
            out.stderr.starts_with("mfiguard-run: warning: ")
                && out.stderr.contains("statically linked")
                && out.stderr.contains("the guard is NOT active"),
            "{}",
            out.dump()
        );
        let out = run(&mut wrap(&lib, &[prog.to_str().unwrap()]));
        assert_eq!(out.code(), 125);
        assert_eq!(out.stdout, "", "the tool did not run");
    }
}

#[test]
fn setuid_tools_are_reported_for_the_users_they_break() {
    let s = Scratch::new("setuid");
    let lib = stand_in(&s);
    let tool = s.path("suid-tool");
    std::fs::copy("/bin/true", &tool).unwrap();
    // Owned by us: the loader stays in normal mode for us, not for anyone else.
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let (_, report) = tool_report(&lib, &tool);
    assert!(
        report.contains("setuid/setgid bit set, but for your ids"),
        "{report}"
    );
    let out = run(&mut wrap(
        &lib,
        &["--require-guard", tool.to_str().unwrap()],
    ));
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(out.stderr, "");

    // Owned by someone else (needs root to arrange): secure mode, LD_PRELOAD ignored.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let c = std::ffi::CString::new(tool.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, u32::MAX) }, 0);
        // chown clears the setuid bit: set it again.
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o4755)).unwrap();
        let (code, report) = tool_report(&lib, &tool);
        assert!(
            report.contains("setuid (owner uid 65534, you are uid 0)")
                && report.contains("CANNOT apply"),
            "{report}"
        );
        assert_eq!(code, 1);
        let out = run(&mut wrap(
            &lib,
            &["--allow-unguarded", tool.to_str().unwrap()],
        ));
        assert_eq!(out.code(), 0, "{}", out.dump());
        assert!(
            out.stderr.contains("warning") && out.stderr.contains("setuid"),
            "{}",
            out.dump()
        );
        let out = run(&mut wrap(&lib, &[tool.to_str().unwrap()]));
        assert_eq!(out.code(), 125, "{}", out.dump());
        let out = run(&mut wrap(
            &lib,
            &["--require-guard", tool.to_str().unwrap()],
        ));
        assert_eq!(out.code(), 125, "{}", out.dump());
    } else {
        eprintln!("note: not root: the secure-mode case of a foreign setuid tool is not exercised");
    }
}
