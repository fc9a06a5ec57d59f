//! End-to-end tests of `mfiguard-run` (the native program of `cli/`, built by `tests/common`),
//! `mfiguard-probe` and the operator integrations in `examples/integrations/`, each spawning
//! real processes. What the wrapper and the library share (the configuration reader in
//! `core/src/config.rs`) is unit-tested there; here, that the wrapper uses it.
//!
//! Most tests need only *a* library that loads: a "stand-in", a symlink named `libmfiguard.so`
//! to the C library this process already uses, which loads everywhere and guards nothing. They
//! do not depend on the state of the preload crate. The tests whose names end in `_with_the_guard`
//! load the real `libmfiguard.so` (built by `tests/common`, or `MFIGUARD_TEST_LIB`) and check
//! that it intercepts through the wrapper.
//!
//! `MFIGUARD_TEST_WRAPPER=/usr/bin/mfiguard-run` tests an installed wrapper instead of the tree's.
//!
//! With `MFIGUARD_TEST_TARGET=i686-unknown-linux-gnu` (or a 32-bit `MFIGUARD_TEST_LIB`) the guard
//! is 32-bit: the tests with the guard put it where the wrapper looks for 32-bit programs
//! (`MFIGUARD_LIB_DIR/i386/`) and run 32-bit programs (an i686 probe and client) through the
//! wrapper. `both_libraries_...` lays out both classes (building the other one) and runs a
//! client of each through one wrapper.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;

use common::{examples, firmware_addrs, guard_lib, merge_calls, parse_lines, text, Scratch, Value};

// ---- set-up --------------------------------------------------------------------------------------

fn root() -> &'static Path {
    common::root()
}

fn wrapper() -> PathBuf {
    common::wrapper_bin().to_path_buf()
}

fn probe_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mfiguard-probe"))
}

fn integration(rel: &str) -> PathBuf {
    root().join("examples/integrations").join(rel)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn write_exec(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The C library mapped into this process (a path `LD_PRELOAD` can name harmlessly).
fn libc_path() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let maps = read(Path::new("/proc/self/maps"));
        maps.lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| {
                let name = p.rsplit('/').next().unwrap_or("");
                name.starts_with("libc.so") || name.starts_with("libc-")
            })
            .map(PathBuf::from)
            .expect("libc in /proc/self/maps")
    })
}

/// A library directory whose `libmfiguard.so` loads but guards nothing, with the probe beside it.
fn stand_in(s: &Scratch) -> PathBuf {
    let dir = s.path("stand-in");
    std::fs::create_dir_all(&dir).unwrap();
    symlink(libc_path(), dir.join("libmfiguard.so")).unwrap();
    symlink(probe_bin(), dir.join("mfiguard-probe")).unwrap();
    dir
}

// ---- the guard's ELF class ------------------------------------------------------------------
//
// The wrapper takes `DIR/libmfiguard.so` for a 64-bit program and `DIR/i386/libmfiguard.so` for
// a 32-bit one, each with its own `mfiguard-probe` beside it. The guard under test is of the
// class `MFIGUARD_TEST_TARGET` builds (i686: 32-bit) or of `MFIGUARD_TEST_LIB`'s; the tests with
// the guard lay it out where the wrapper looks for that class, and run programs of that class
// (the probe, the client) through the wrapper. The test binary and `CARGO_BIN_EXE_mfiguard-probe`
// are always the host's.

/// The ELF class (32 or 64) of a file, from its header.
fn elf_class(p: &Path) -> u8 {
    use std::io::Read;
    let mut h = [0u8; 5];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut h))
        .unwrap_or_else(|e| panic!("read the ELF header of {}: {e}", p.display()));
    assert_eq!(&h[..4], b"\x7fELF", "{} is not an ELF file", p.display());
    match h[4] {
        1 => 32,
        2 => 64,
        c => panic!("{}: ELF class byte {c}", p.display()),
    }
}

/// The class of the guard under test.
fn guard_class() -> u8 {
    elf_class(guard_lib())
}

/// The class of the host's programs (this test binary's).
fn host_class() -> u8 {
    elf_class(&probe_bin())
}

/// The target triple that builds programs of `class` here (`None`: the host's).
fn triple_for(class: u8) -> Option<String> {
    if class == host_class() {
        None
    } else if let Some(t) = common::cross_target().filter(|_| class == guard_class()) {
        Some(t)
    } else if class == 32 {
        Some("i686-unknown-linux-gnu".to_owned())
    } else {
        Some("x86_64-unknown-linux-gnu".to_owned())
    }
}

/// Where the wrapper looks for the library of `class` under `MFIGUARD_LIB_DIR=dir`.
fn class_lib(dir: &Path, class: u8) -> PathBuf {
    if class == 32 {
        dir.join("i386/libmfiguard.so")
    } else {
        dir.join("libmfiguard.so")
    }
}

/// The guard, the probe, the client and the simulator of one ELF class.
struct ClassArtifacts {
    lib: PathBuf,
    probe: PathBuf,
    client: PathBuf,
    sim: PathBuf,
}

/// The artifacts of `class`: those under test for the guard's class, otherwise built here
/// (`Err` when this host cannot build for that class, e.g. no i686 target or no gcc-multilib).
fn artifacts(class: u8) -> Result<&'static ClassArtifacts, String> {
    static A: [OnceLock<Result<ClassArtifacts, String>>; 2] = [OnceLock::new(), OnceLock::new()];
    let slot = &A[usize::from(class == 64)];
    slot.get_or_init(|| {
        if class == guard_class() {
            let lib = guard_lib().to_path_buf();
            let beside = lib.parent().unwrap().join("mfiguard-probe");
            let probe = if beside.is_file() && elf_class(&beside) == class {
                beside
            } else if host_class() == class {
                probe_bin()
            } else {
                let t = triple_for(class);
                common::try_cargo_build(
                    t.as_deref(),
                    &["-p", "mfiguard", "--bin", "mfiguard-probe"],
                )?
                .join("mfiguard-probe")
            };
            let ex = examples();
            return Ok(ClassArtifacts {
                lib,
                probe,
                client: ex.client.clone(),
                sim: ex.sim.clone(),
            });
        }
        let t = triple_for(class);
        common::try_cargo_build(t.as_deref(), &["-p", "mfiguard-preload", "--lib"])?;
        let dir = common::try_cargo_build(
            t.as_deref(),
            &["-p", "mfiguard", "--examples", "--bin", "mfiguard-probe"],
        )?;
        let a = ClassArtifacts {
            lib: dir.join("libmfiguard.so"),
            probe: dir.join("mfiguard-probe"),
            client: dir.join("examples/mfi_client"),
            sim: dir.join("examples/liblegacy_sim.so"),
        };
        for p in [&a.lib, &a.probe, &a.client, &a.sim] {
            if elf_class(p) != class {
                return Err(format!("{} is not {class}-bit", p.display()));
            }
        }
        Ok(a)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// The probe of the guard's class (a 32-bit program with the i686 guard).
fn target_probe() -> PathBuf {
    artifacts(guard_class())
        .unwrap_or_else(|e| panic!("{e}"))
        .probe
        .clone()
}

/// `lib` and `probe` linked into `dir` where the wrapper looks for `class`.
fn lay_out(dir: &Path, class: u8, lib: &Path, probe: &Path) {
    let sub = if class == 32 {
        dir.join("i386")
    } else {
        dir.to_path_buf()
    };
    std::fs::create_dir_all(&sub).unwrap();
    symlink(lib, sub.join("libmfiguard.so")).unwrap();
    symlink(probe, sub.join("mfiguard-probe")).unwrap();
}

/// A `MFIGUARD_LIB_DIR` with the real guard where the wrapper looks for the guard's class, and
/// its probe beside it: `DIR/libmfiguard.so` (64-bit) or `DIR/i386/libmfiguard.so` (32-bit;
/// then a scratch directory has no 64-bit library, so nothing 32-bit can take the wrong one).
/// An installed layout (`/usr/lib/mfiguard`) or a build tree's is used as it is.
fn guard_dir(s: &Scratch) -> PathBuf {
    let class = guard_class();
    let lib = guard_lib();
    let dir = lib.parent().unwrap();
    if dir.join("mfiguard-probe").is_file() && elf_class(&dir.join("mfiguard-probe")) == class {
        if class == 64 {
            return dir.to_path_buf();
        }
        if dir.file_name().is_some_and(|n| n == "i386") {
            return dir.parent().unwrap().to_path_buf();
        }
    }
    let d = s.path("guard");
    lay_out(&d, class, lib, &target_probe());
    d
}

/// A `MFIGUARD_LIB_DIR` with both guards and both probes, and the clients and simulators of
/// both classes: an installed layout (`MFIGUARD_TEST_LIB`) that has both is used as it is;
/// otherwise the other class is built. `Err` (why) when this host cannot build the i686 target.
fn both_dir(
    s: &Scratch,
) -> Result<(PathBuf, &'static ClassArtifacts, &'static ClassArtifacts), String> {
    let a64 = artifacts(64)?;
    let a32 = artifacts(32)?;
    let installed = guard_dir(s);
    // Only files named by MFIGUARD_TEST_LIB (an installed package) are taken as they are: a
    // build tree's target/release/i386/ is a copy made by packaging/build-packages.sh.
    let complete = std::env::var_os("MFIGUARD_TEST_LIB").is_some()
        && [32, 64].iter().all(|&c| {
            let lib = class_lib(&installed, c);
            let probe = lib.with_file_name("mfiguard-probe");
            lib.is_file() && probe.is_file() && elf_class(&lib) == c && elf_class(&probe) == c
        });
    if complete {
        return Ok((installed, a64, a32));
    }
    let d = s.path("both");
    lay_out(&d, 64, &a64.lib, &a64.probe);
    lay_out(&d, 32, &a32.lib, &a32.probe);
    Ok((d, a64, a32))
}

/// Removes what the test runner's environment could leak into a run.
fn scrub(cmd: &mut Command) -> &mut Command {
    cmd.env_remove("LD_PRELOAD");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("MFIGUARD_") || k.starts_with("MFISIM_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("MFIGUARD_VIA", "preload").stdin(Stdio::null())
}

/// `mfiguard-run ARGS` with its library from `lib_dir` and no site config (the null device
/// reads as an empty config file; a missing one named explicitly would refuse the run).
/// `scrub` sets `MFIGUARD_VIA=preload`: these tests are about the preload mechanism and the
/// wrapper and integrations around it (the supervisor's are in tests/supervisor.rs).
fn wrap(lib_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(wrapper());
    scrub(&mut cmd)
        .env("MFIGUARD_LIB_DIR", lib_dir)
        .env("MFIGUARD_CONFIG", NO_CONFIG)
        .args(args);
    cmd
}

/// The config file of most runs: none.
const NO_CONFIG: &str = "/dev/null";

struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Out {
    fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
    fn dump(&self) -> String {
        format!(
            "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn run(cmd: &mut Command) -> Out {
    let (status, stdout, stderr) = common::run_with_timeout(
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()),
        common::RUN_TIMEOUT,
    );
    Out {
        status,
        stdout,
        stderr,
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .is_ok_and(|s| s.success())
}

/// Compiles C `src` with `cc ARGS`; `None` (with a note) when this host cannot.
fn cc(s: &Scratch, name: &str, src: &str, args: &[&str]) -> Option<PathBuf> {
    let c = s.path(&format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let out = s.path(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let ok = Command::new(&cc)
        .args(args)
        .arg("-o")
        .arg(&out)
        .arg(&c)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|st| st.success());
    if !ok {
        eprintln!(
            "note: `{cc} {}` does not work here; that part is covered by synthetic ELF files only",
            args.join(" ")
        );
    }
    ok.then_some(out)
}

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

// ---- help, version, usage ----------------------------------------------------------------------

#[test]
fn help_is_a_man_page_summary_on_stdout() {
    let s = Scratch::new("help");
    for flag in ["--help", "-h"] {
        let out = run(&mut wrap(&s.0, &[flag]));
        assert_eq!(out.code(), 0, "{}", out.dump());
        assert_eq!(out.stderr, "", "{}", out.dump());
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "ENVIRONMENT",
            "EXIT STATUS",
            "EXAMPLES",
            "SEE ALSO",
        ] {
            assert!(
                out.stdout.contains(&format!("\n{section}\n")) || out.stdout.starts_with(section),
                "--help lacks {section}\n{}",
                out.dump()
            );
        }
    }
}

#[test]
fn version_is_the_package_version() {
    let s = Scratch::new("version");
    for flag in ["--version", "-V"] {
        let out = run(&mut wrap(&s.0, &[flag]));
        assert_eq!(out.code(), 0, "{}", out.dump());
        assert_eq!(
            out.stdout,
            format!("mfiguard-run {}\n", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(out.stderr, "");
    }
    let man = read(&root().join("doc/mfiguard-run.1"));
    assert!(
        man.contains(&format!("\"mfiguard {}\"", env!("CARGO_PKG_VERSION"))),
        "the man page's .TH names another version"
    );
}

/// The options of `--help`, of the man page, of the option parser and of the bash completion
/// are the same set.
#[test]
fn help_man_page_parser_and_completion_know_the_same_options() {
    let s = Scratch::new("opts");
    let help = run(&mut wrap(&s.0, &["--help"])).stdout;
    let long = |text: &str| -> BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '\\'))
            .map(|w| w.replace("\\-", "-"))
            .filter(|w| w.starts_with("--") && w.len() > 2 && !w.starts_with("---"))
            .collect()
    };
    let help_opts = long(&help);
    let man_opts = long(&read(&root().join("doc/mfiguard-run.1")));
    let completion_opts = long(&read(&integration("bash-completion/mfiguard-run")));
    // The parser's options: the `long` fields of the clap struct in cli/src/settings.rs.
    let src = read(&root().join("cli/src/settings.rs"));
    let cli = src
        .split("pub struct Cli {")
        .nth(1)
        .and_then(|t| t.split("\n}").next())
        .expect("the Cli struct");
    let mut parser_opts = BTreeSet::new();
    let mut long = false;
    for line in cli.lines().map(str::trim) {
        if line.starts_with("#[arg(") {
            long = line.contains("long");
        } else if let Some(field) = line.strip_prefix("pub ") {
            if long {
                let name = field.split(':').next().unwrap().trim();
                parser_opts.insert(format!("--{}", name.replace('_', "-")));
            }
            long = false;
        }
    }
    assert!(parser_opts.contains("--require-guard"), "{parser_opts:?}");
    // Each is an option the wrapper knows (not "unknown option"), and a bogus one is not.
    for opt in parser_opts.iter().chain(["--bogus".to_string()].iter()) {
        let out = run(&mut wrap(&s.0, &[opt.as_str(), "x", "true"]));
        assert_eq!(
            out.stderr.contains("unknown option"),
            opt == "--bogus",
            "{opt}\n{}",
            out.dump()
        );
    }
    assert_eq!(help_opts, parser_opts, "--help vs the option parser");
    assert_eq!(man_opts, parser_opts, "the man page vs the option parser");
    assert_eq!(
        completion_opts, parser_opts,
        "the bash completion vs the option parser"
    );
}

#[test]
fn usage_errors_exit_125_and_print_nothing_on_stdout() {
    let s = Scratch::new("usage");
    let lib = stand_in(&s);
    let cases: &[(&[&str], &str)] = &[
        (&[], "no TOOL"),
        (&["--bogus", "true"], "unknown option '--bogus'"),
        (&["--mode"], "--mode needs a value"),
        (&["--mode", "strict", "true"], "'strict' is not one of"),
        (&["--mode=", "true"], "'' is not one of"),
        (
            &["--log", "audit.jsonl", "true"],
            "not syslog, stderr, none or an absolute path",
        ),
        (
            &["--allow", "sgl.bound", "true"],
            "unknown rule id 'sgl.bound'",
        ),
        (
            &["--allow", "sgl.bounds,", "true"],
            "not a comma-separated list",
        ),
        (&["--allow=", "true"], "not a comma-separated list"),
        (
            &["--config", "relative.conf", "true"],
            "not an absolute path",
        ),
        (&["--config", "/nonexistent/x.conf", "true"], "cannot read"),
        (&["--check", "true", "false"], "at most one TOOL"),
    ];
    for (args, msg) in cases {
        let out = run(&mut wrap(&lib, args));
        assert_eq!(out.code(), 125, "{args:?}\n{}", out.dump());
        assert_eq!(out.stdout, "", "{args:?}\n{}", out.dump());
        assert!(
            out.stderr.starts_with("mfiguard-run: ") && out.stderr.contains(msg),
            "{args:?}: expected {msg:?}\n{}",
            out.dump()
        );
    }
    // "--mode=" is empty, not unset: refused above. The valid values all pass.
    for mode in ["enforce", "audit", "off", "readonly"] {
        let out = run(&mut wrap(&lib, &["--mode", mode, "true"]));
        assert_eq!(out.code(), 0, "{mode}\n{}", out.dump());
    }
}

#[test]
fn a_missing_tool_is_127_and_a_non_executable_one_126() {
    let s = Scratch::new("notfound");
    let lib = stand_in(&s);
    let out = run(wrap(&lib, &["mfiguard-no-such-tool"]).env("PATH", "/usr/bin:/bin"));
    assert_eq!(out.code(), 127, "{}", out.dump());
    assert!(out
        .stderr
        .contains("mfiguard-no-such-tool: command not found"));
    let out = run(&mut wrap(&lib, &["/nonexistent/MegaCli64"]));
    assert_eq!(out.code(), 127, "{}", out.dump());
    let plain = s.path("plain");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    let out = run(&mut wrap(&lib, &[plain.to_str().unwrap()]));
    assert_eq!(out.code(), 126, "{}", out.dump());
    assert!(out.stderr.contains("not an executable file"));
    let out = run(&mut wrap(&lib, &[s.0.to_str().unwrap()]));
    assert_eq!(out.code(), 126, "a directory\n{}", out.dump());
    assert_eq!(out.stdout, "");
}

#[test]
fn a_missing_library_is_a_clear_error_before_the_tool_runs() {
    let s = Scratch::new("nolib");
    let marker = s.path("ran");
    let tool = s.path("tool");
    write_exec(&tool, &format!("#!/bin/sh\ntouch {}\n", marker.display()));
    let empty = s.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run(&mut wrap(&empty, &[tool.to_str().unwrap()]));
    assert_eq!(out.code(), 125, "{}", out.dump());
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains(&format!(
            "{}/libmfiguard.so is not installed",
            empty.display()
        )) && out.stderr.contains("MFIGUARD_LIB_DIR"),
        "{}",
        out.dump()
    );
    assert!(!marker.exists(), "the tool ran without its guard");
}

// ---- exec: the tool's status, output and process are its own -------------------------------

#[test]
fn the_tool_keeps_its_pid_exit_status_stdout_and_stderr_byte_for_byte() {
    let s = Scratch::new("exec");
    let lib = stand_in(&s);
    // Bytes a text-mangling wrapper would break: NUL, 0xff, CR, no final newline.
    let script = r"printf 'out\000\377\r\nlast'; printf 'err\001\n' >&2; exit 42";
    let direct: Output = scrub(Command::new("sh").args(["-c", script]))
        .output()
        .unwrap();
    let wrapped: Output = wrap(&lib, &["sh", "-c", script]).output().unwrap();
    assert_eq!(direct.status.code(), Some(42));
    assert_eq!(wrapped.status.code(), Some(42));
    assert_eq!(wrapped.stdout, direct.stdout);
    assert_eq!(wrapped.stderr, direct.stderr);
    assert_eq!(wrapped.stdout, b"out\0\xff\r\nlast");

    // exec, not fork: the tool runs as the very process that was started.
    let child = wrap(&lib, &["sh", "-c", "echo $$"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pid.to_string());

    // stdin reaches the tool.
    let mut child = wrap(&lib, &["cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"to the tool\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.stdout, b"to the tool\n");
}

#[test]
fn a_tool_killed_by_a_signal_looks_killed_by_that_signal() {
    use std::os::unix::process::ExitStatusExt;
    let s = Scratch::new("signal");
    let lib = stand_in(&s);
    let out = run(&mut wrap(&lib, &["sh", "-c", "kill -TERM $$"]));
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{}", out.dump());
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "");
}

// ---- options and the environment ---------------------------------------------------------------

const SHOW_ENV: &str = r#"printf '%s|%s|%s|%s|%s|%s|' "${LD_PRELOAD-unset}" "${MFIGUARD_MODE-unset}" "${MFIGUARD_LOG-unset}" "${MFIGUARD_ALLOW-unset}" "${MFIGUARD_AUDIT-unset}" "${MFIGUARD_CONFIG-unset}"; printf '%s,' "$@""#;

fn show_env(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert_eq!(out.code(), 0, "{}", out.dump());
    out.stdout
}

#[test]
fn options_become_the_libraries_environment() {
    let s = Scratch::new("env");
    let lib = stand_in(&s);
    let so = lib.join("libmfiguard.so");
    let conf = s.path("site.conf");
    std::fs::write(&conf, "mode = audit\n").unwrap();
    let conf_s = conf.to_str().unwrap();
    // A log in a directory that exists (the wrapper refuses a log whose directory is missing).
    let log = s.path("audit.jsonl");
    let log_s = log.to_str().unwrap();

    // No option: nothing is set for the library but LD_PRELOAD (the config path is the test's).
    let got = show_env(&mut wrap(&lib, &["sh", "-c", SHOW_ENV, "sh", "a", "b"]));
    assert_eq!(
        got,
        format!("{}|unset|unset|unset|unset|/dev/null|a,b,", so.display())
    );

    // Every option, both spellings; --allow accumulates.
    let got = show_env(&mut wrap(
        &lib,
        &[
            "--mode",
            "audit",
            &format!("--log={log_s}"),
            "--allow",
            "sgl.offset-unusual",
            "--allow=xfer.length,sense.length",
            "--audit-all",
            "--config",
            conf_s,
            "--",
            "sh",
            "-c",
            SHOW_ENV,
            "sh",
            "--mode",
            "off",
        ],
    ));
    assert_eq!(
        got,
        format!(
            "{}|audit|{log_s}|sgl.offset-unusual,xfer.length,sense.length|all|{conf_s}|--mode,off,",
            so.display()
        )
    );

    // Options override the environment; without an option the environment passes through.
    let got = show_env(
        wrap(&lib, &["--mode", "enforce", "sh", "-c", SHOW_ENV, "sh"])
            .env("MFIGUARD_MODE", "off")
            .env("MFIGUARD_LOG", "stderr"),
    );
    assert!(
        got.starts_with(&format!("{}|enforce|stderr|", so.display())),
        "{got}"
    );

    // An option given twice takes its last value (flags may be repeated).
    let got = show_env(&mut wrap(
        &lib,
        &[
            "--mode",
            "audit",
            "--audit-all",
            "--mode=off",
            "--audit-all",
            "sh",
            "-c",
            SHOW_ENV,
        ],
    ));
    assert!(got.contains("|off|") && got.contains("|all|"), "{got}");

    // The first word that is not an option is the tool; what follows is the tool's.
    let got = show_env(&mut wrap(
        &lib,
        &[
            "--mode", "off", "sh", "-c", SHOW_ENV, "sh", "--mode", "audit", "--",
        ],
    ));
    assert!(
        got.contains("|off|") && got.ends_with("|--mode,audit,--,"),
        "{got}"
    );

    // "--" lets a tool name start with a dash.
    let dash_tool = s.path("-tool");
    write_exec(&dash_tool, "#!/bin/sh\necho dash-tool \"$@\"\n");
    let out =
        run(wrap(&lib, &["--", "-tool", "x"])
            .env("PATH", format!("{}:/usr/bin:/bin", s.0.display())));
    assert_eq!(out.stdout, "dash-tool x\n", "{}", out.dump());
}

#[test]
fn the_guard_goes_first_in_ld_preload_and_replaces_another_guard() {
    let s = Scratch::new("preload");
    let lib = stand_in(&s);
    let so = lib.join("libmfiguard.so");
    // Libraries that really load, so that ld.so prints nothing.
    let other = s.path("libother.so");
    symlink(libc_path(), &other).unwrap();
    let old_guard_dir = s.path("old");
    std::fs::create_dir_all(&old_guard_dir).unwrap();
    let old_guard = old_guard_dir.join("libmfiguard.so");
    symlink(libc_path(), &old_guard).unwrap();

    let show = ["sh", "-c", r#"printf '%s' "$LD_PRELOAD""#];
    let cases = [
        (
            format!("{}", other.display()),
            format!("{}:{}", so.display(), other.display()),
        ),
        (
            format!("{} {}", old_guard.display(), other.display()),
            format!("{}:{}", so.display(), other.display()),
        ),
        (
            format!("{}:{}:", other.display(), old_guard.display()),
            format!("{}:{}", so.display(), other.display()),
        ),
        (String::new(), format!("{}", so.display())),
    ];
    for (before, after) in cases {
        let out = run(wrap(&lib, &show).env("LD_PRELOAD", &before));
        assert_eq!(out.code(), 0, "{}", out.dump());
        assert_eq!(out.stdout, after, "LD_PRELOAD={before:?}");
        assert_eq!(out.stderr, "", "{}", out.dump());
    }
}

/// The caller's `LD_PRELOAD` is kept for the tool, behind the guard: a library ld.so cannot
/// load (one of a 32-bit tool's class, here a missing one) costs one complaint from ld.so in
/// the wrapper's own process and one in the tool's, and nothing more.
#[test]
fn the_callers_ld_preload_is_for_the_tool_not_for_the_wrappers_helpers() {
    let s = Scratch::new("preload-helpers");
    let lib = stand_in(&s);
    let missing = s.path("libvendor32.so");
    let out =
        run(wrap(&lib, &["sh", "-c", r#"printf '%s' "$LD_PRELOAD""#]).env("LD_PRELOAD", &missing));
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(
        out.stdout,
        format!(
            "{}:{}",
            lib.join("libmfiguard.so").display(),
            missing.display()
        )
    );
    let complaints = out
        .stderr
        .lines()
        .filter(|l| l.contains("libvendor32.so"))
        .count();
    assert_eq!(complaints, 2, "{}", out.dump());
}

/// The wrapper takes its rule ids from the sanitizer (no copied list in its source), and each
/// id is accepted by `--allow`.
#[test]
fn allow_knows_exactly_the_sanitizers_rule_ids() {
    let sanitizer_ids: BTreeSet<&str> = mfiguard_sanitizer::RuleId::ALL
        .iter()
        .map(|r| r.name())
        .collect();
    let src = root().join("cli/src");
    let files = std::fs::read_dir(&src)
        .unwrap()
        .chain(std::fs::read_dir(src.join("bin")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file());
    for p in files {
        let text = read(&p);
        for id in &sanitizer_ids {
            assert!(
                !text.contains(&format!("\"{id}\"")),
                "{} copies the rule id {id}",
                p.display()
            );
        }
    }

    let completion = read(&integration("bash-completion/mfiguard-run"));
    for id in &sanitizer_ids {
        assert!(completion.contains(id), "the bash completion lacks {id}");
    }

    let s = Scratch::new("allow");
    let lib = stand_in(&s);
    let all = sanitizer_ids.iter().copied().collect::<Vec<_>>().join(",");
    let got = show_env(&mut wrap(&lib, &["--allow", &all, "sh", "-c", SHOW_ENV]));
    assert!(got.contains(&format!("|{all}|")), "{got}");
}

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

// ---- --check: the self-test -----------------------------------------------------------------

#[test]
fn the_probe_alone_sees_dev_null_answer_enotty() {
    let out = run(scrub(&mut Command::new(probe_bin())).env("MFIGUARD_DEVICE", "/dev/null"));
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert_eq!(
        out.stdout,
        "intercepted: no (ENOTTY: the call reached /dev/null unguarded; libmfiguard is not loaded in this process)\n"
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn check_fails_when_the_library_loads_but_does_not_intercept() {
    let s = Scratch::new("nointercept");
    let lib = stand_in(&s);
    let out = run(&mut wrap(&lib, &["--check"]));
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(
        out.stdout.contains(&format!(
            "library (64-bit): {}/libmfiguard.so\n    intercepted: no (ENOTTY",
            lib.display()
        )),
        "{}",
        out.dump()
    );
    assert!(
        out.stdout.ends_with("result: FAILED: see above\n"),
        "{}",
        out.dump()
    );
    assert_eq!(out.stderr, "");

    // No probe beside the library: nothing is proven.
    let bare = s.path("bare");
    std::fs::create_dir_all(&bare).unwrap();
    symlink(libc_path(), bare.join("libmfiguard.so")).unwrap();
    let out = run(&mut wrap(&bare, &["--check"]));
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(
        out.stdout
            .contains("mfiguard-probe not found: cannot prove interception"),
        "{}",
        out.dump()
    );

    // No library at all.
    let out = run(&mut wrap(&s.path("nothing"), &["--check"]));
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(
        out.stdout
            .contains("/nothing/libmfiguard.so: not installed"),
        "{}",
        out.dump()
    );
}

#[test]
fn check_reports_the_running_kernels_driver() {
    let s = Scratch::new("driver");
    let out = run(&mut wrap(&s.0, &["--check"]));
    let line = |prefix: &str| -> String {
        out.stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line\n{}", out.dump()))
            .to_owned()
    };
    let release =
        String::from_utf8(Command::new("uname").arg("-r").output().unwrap().stdout).unwrap();
    assert_eq!(
        line("kernel: "),
        format!("kernel: Linux {}", release.trim())
    );
    let driver = line("megaraid_sas: ");
    match std::fs::read_to_string("/sys/module/megaraid_sas/version") {
        Ok(v) => assert_eq!(
            driver,
            format!("megaraid_sas: version {} (loaded)", v.trim())
        ),
        Err(_) if Path::new("/sys/module/megaraid_sas").exists() => {
            assert!(driver.contains("loaded"), "{driver}")
        }
        Err(_) => assert!(driver.starts_with("megaraid_sas: not loaded"), "{driver}"),
    }
    let devices = read(Path::new("/proc/devices"));
    let node = line("management node: ");
    assert_eq!(
        devices.contains("megaraid_sas_ioctl"),
        node.contains("character major"),
        "{node}"
    );
    assert!(line("  sgl_off bound:").contains("ABSENT: no kernel checks sgl_off"));
}

/// The protections a kernel has, judged by version; commit 381d34e376e3 ("scsi: megaraid_sas:
/// Check user-provided offsets") is in 5.11 and was backported to 5.10.4, 5.4.86 and 4.19.164
/// (it failed to apply to 4.14, 4.9 and 4.4).
#[test]
fn check_judges_kernel_protections_by_version() {
    let s = Scratch::new("kernels");
    let cases: &[(&str, &str, &str)] = &[
        ("2.6.32-754.el6.x86_64", "ABSENT", "ABSENT"),
        ("3.2.0-4-amd64", "ABSENT", "ABSENT"),
        ("3.3.0", "present", "ABSENT"),
        ("3.10.0-1160.el7.x86_64", "present", "ABSENT"),
        ("4.4.302", "present", "ABSENT"),
        ("4.14.336", "present", "ABSENT"),
        ("4.18.0-553.el8_10.x86_64", "present", "ABSENT"),
        ("4.19.163", "present", "ABSENT"),
        ("4.19.164", "present", "present: backported in 4.19.164"),
        ("5.4.85", "present", "ABSENT"),
        ("5.4.86-generic", "present", "present: backported in 5.4.86"),
        ("5.10.3", "present", "ABSENT"),
        ("5.10.4", "present", "present: backported in 5.10.4"),
        ("5.10.0-30-amd64", "present", "unknown"),
        (
            "5.10.0-30-amd64 #1 SMP Debian 5.10.218-1 (2024-06-01) gcc 10.2.1",
            "present",
            "present: backported in 5.10.4",
        ),
        ("5.11.0", "present", "present: sense_off > 56 is refused"),
        (
            "6.1.0-28-amd64",
            "present",
            "present: sense_off > 56 is refused",
        ),
        ("not-a-version", "unknown", "unknown"),
    ];
    for (release, flag, sense) in cases {
        let out = run(wrap(&s.0, &["--check"]).env("MFIGUARD_KERNEL_RELEASE", release));
        let line = |prefix: &str| -> &str {
            out.stdout
                .lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{release}: no {prefix:?}\n{}", out.dump()))
        };
        assert_eq!(line("kernel: "), format!("kernel: Linux {release}"));
        let f = line("  flag fix (2012, Linux 3.3):");
        let x = line("  sense_off check (2020, Linux 5.11):");
        assert!(
            f.contains(&format!(": {flag}")) || f.contains(&format!("  {flag}")),
            "{release}: {f}"
        );
        assert!(
            x.contains(&format!(": {sense}")) || x.contains(&format!("  {sense}")),
            "{release}: {x}"
        );
        assert!(line("  sgl_off bound:").contains("ABSENT"));
    }
}

#[test]
fn check_shows_where_each_setting_of_a_run_comes_from() {
    let s = Scratch::new("policy");
    let conf = s.path("mfiguard.conf");
    std::fs::write(
        &conf,
        "# site policy\nmode = audit   # roll-out\nMFIGUARD_LOG = /var/log/mfiguard/audit.jsonl\n#allow = sgl.bounds\n",
    )
    .unwrap();
    let conf_s = conf.to_str().unwrap();
    let p = policy(wrap(&s.0, &["--check"]).env("MFIGUARD_CONFIG", conf_s));
    assert_eq!(
        p,
        format!(
            "policy for runs (config {conf_s}):\n  mode:  audit (from {conf_s}:2)\n  log:   /var/log/mfiguard/audit.jsonl (from {conf_s}:3)\n  allow: none (default)\n  audit: findings in enforce, all in audit (default)\n  log_sync:     off (default)\n  log_required: off (default)\n"
        )
    );
    let p = policy(
        wrap(
            &s.0,
            &["--config", conf_s, "--allow", "xfer.length", "--check"],
        )
        .env("MFIGUARD_MODE", "off"),
    );
    assert!(p.contains("mode:  off (from MFIGUARD_MODE)"), "{p}");
    assert!(p.contains("allow: xfer.length (from --allow)"), "{p}");
    let p = policy(
        wrap(&s.0, &["--mode", "enforce", "--audit-all", "--check"]).env("MFIGUARD_MODE", "off"),
    );
    assert!(p.starts_with("policy for runs (config /dev/null):"), "{p}");
    assert!(p.contains("mode:  enforce (from --mode)"), "{p}");
    assert!(p.contains("audit: all (from --audit-all)"), "{p}");
    // A config file that does not exist at the default path is no config file.
    if !Path::new("/etc/mfiguard.conf").exists() {
        let p = policy(wrap(&s.0, &["--check"]).env_remove("MFIGUARD_CONFIG"));
        assert!(
            p.starts_with("policy for runs (no config file at /etc/mfiguard.conf):"),
            "{p}"
        );
    }
}

/// `--check`'s policy section, without the line about where records go (it depends on the
/// host: see `check_says_whether_records_can_be_written`).
fn policy(cmd: &mut Command) -> String {
    let out = run(cmd);
    out.stdout
        .lines()
        .skip_while(|l| !l.starts_with("policy for runs"))
        .take_while(|l| !l.starts_with("result:"))
        .filter(|l| !l.contains("records: "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `--check`'s line about where records go.
fn records_line(out: &Out) -> &str {
    out.stdout
        .lines()
        .find(|l| l.starts_with("  ") && l.contains("records: "))
        .unwrap_or_else(|| panic!("no records line\n{}", out.dump()))
}

/// The config file is read by the library's rule (`core/src/config.rs`): comments, a `#`
/// after a blank, quotes, keys in any case with or without the prefix, the last one wins.
#[test]
fn config_file_lines_are_read_by_the_librarys_rule() {
    let s = Scratch::new("conf-rule");
    let lib = stand_in(&s);
    let conf = s.path("mfiguard.conf");
    let conf_s = conf.to_str().unwrap();
    std::fs::write(
        &conf,
        [
            "# site policy",
            "   # an indented comment = x",
            "mode = audit",
            "MFIGUARD_Mode = readonly   # monitoring host",
            "log = /var/log/a#b.jsonl",
            "allow = \"sgl.bounds, sgl.offset-unusual\"\t# two rules",
            "AUDIT='all'",
            "log_sync = \"yes\"",
            "log_required=off#not a comment, but off# is not a boolean",
            "log_required = 'on' # the last one wins",
            "",
        ]
        .join("\n"),
    )
    .unwrap();
    let p = policy(wrap(&lib, &["--check"]).env("MFIGUARD_CONFIG", conf_s));
    assert_eq!(
        p,
        format!(
            "policy for runs (config {conf_s}):\n  mode:  readonly (from {conf_s}:4)\n  log:   /var/log/a#b.jsonl (from {conf_s}:5)\n  allow: sgl.bounds,sgl.offset-unusual (from {conf_s}:6)\n  audit: all (from {conf_s}:7)\n  log_sync:     on (from {conf_s}:8)\n  log_required: on (from {conf_s}:10)\n"
        )
    );
    // A run with that file is not refused: every value is one the library can use.
    let out = run(wrap(&lib, &["true"]).env("MFIGUARD_CONFIG", conf_s));
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(out.stderr, "", "{}", out.dump());

    // A `#` in a quoted value is not a comment; one pair of quotes only; lines the library
    // ignores are shown.
    std::fs::write(
        &conf,
        "log = \"/srv/a # b.jsonl\"  # quoted\nmode='\"off\"'\nmdoe = readonly\njust words\n",
    )
    .unwrap();
    let p = policy(wrap(&lib, &["--check"]).env("MFIGUARD_CONFIG", conf_s));
    assert!(
        p.contains(&format!("  log:   /srv/a # b.jsonl (from {conf_s}:1)\n")),
        "{p}"
    );
    assert!(
        p.contains(&format!(
            "  INVALID: MFIGUARD_MODE=\"\"off\"\" (from {conf_s}:2): unknown mode"
        )),
        "{p}"
    );
    // A key the library does not know, and a line it cannot read, refuse the run too (the
    // library takes the strictest mode for them).
    assert!(
        p.contains(&format!(
            "  INVALID: mdoe=\"readonly\" (from {conf_s}:3): unknown key; valid keys: mode, "
        )),
        "{p}"
    );
    assert!(
        p.contains(&format!(
            "  INVALID: {conf_s}:4: \"just words\" is not a \"key = value\" line"
        )),
        "{p}"
    );
    assert!(!p.contains("WARNING"), "{p}");
}

/// A variable set in the environment wins over the file even when it is empty.
#[test]
fn an_empty_variable_wins_over_the_config_file() {
    let s = Scratch::new("conf-empty");
    let lib = stand_in(&s);
    let conf = s.path("mfiguard.conf");
    let conf_s = conf.to_str().unwrap();
    std::fs::write(&conf, "allow = sgl.bounds\nlog_sync = 1\nmode = audit\n").unwrap();
    let p = policy(
        wrap(&lib, &["--check"])
            .env("MFIGUARD_CONFIG", conf_s)
            .env("MFIGUARD_ALLOW", "")
            .env("MFIGUARD_LOG_SYNC", ""),
    );
    assert!(p.contains("  allow: none (from MFIGUARD_ALLOW)\n"), "{p}");
    assert!(
        p.contains("  log_sync:     off (from MFIGUARD_LOG_SYNC)\n"),
        "{p}"
    );
    assert!(
        p.contains(&format!("  mode:  audit (from {conf_s}:3)\n")),
        "{p}"
    );
    assert!(!p.contains("INVALID"), "{p}");
    // An empty mode is not "no mode": the library cannot use it (it falls back to readonly).
    let out = run(wrap(&lib, &["true"])
        .env("MFIGUARD_CONFIG", conf_s)
        .env("MFIGUARD_MODE", ""));
    assert_eq!(out.code(), 125, "{}", out.dump());
    assert_eq!(
        out.stderr,
        "mfiguard-run: MFIGUARD_MODE=\"\" (from the environment): unknown mode; use off, audit, enforce or readonly\n"
    );
}

/// A setting from the environment or the file that the library cannot use refuses the run
/// (125, one line naming it, the tool never starts) and shows in `--check` as INVALID; every
/// value the library accepts is accepted.
#[test]
fn invalid_settings_from_the_environment_or_the_file_refuse_the_run() {
    let s = Scratch::new("conf-invalid");
    let lib = stand_in(&s);
    let conf = s.path("mfiguard.conf");
    let conf_s = conf.to_str().unwrap();
    let marker = s.path("ran");
    let tool = s.path("tool");
    write_exec(&tool, &format!("#!/bin/sh\ntouch {}\n", marker.display()));
    let tool_s = tool.to_str().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "MFIGUARD_MODE",
            "readonyl",
            "unknown mode; use readonly, enforce, audit or off",
        ),
        (
            "MFIGUARD_AUDIT",
            "some",
            "unknown audit level; use all or findings",
        ),
        (
            "MFIGUARD_LOG",
            "audit.jsonl",
            "not a log target; use none, syslog, stderr or an absolute path",
        ),
        (
            "MFIGUARD_ALLOW",
            "sgl.bounds, sgl.bound",
            "unknown rule id 'sgl.bound' (one unknown id voids the whole list); known: sgl.bounds, ",
        ),
        (
            "MFIGUARD_LOG_SYNC",
            "2",
            "not a boolean; use 1, 0, no, on, yes, off, true or false",
        ),
        (
            "MFIGUARD_LOG_REQUIRED",
            "maybe",
            "not a boolean; use false, true, yes, 1, 0, no, on or off",
        ),
    ];
    for (var, value, why) in cases {
        let key = var.trim_start_matches("MFIGUARD_").to_ascii_lowercase();
        // From the environment.
        let out = run(wrap(&lib, &[tool_s]).env(var, value));
        assert_eq!(out.code(), 125, "{var}={value}\n{}", out.dump());
        assert_eq!(out.stdout, "");
        let want = format!("mfiguard-run: {var}=\"{value}\" (from the environment): {why}");
        assert!(
            out.stderr.starts_with(&want) && out.stderr.lines().count() == 1,
            "{want}\n{}",
            out.dump()
        );
        // From line 2 of the file.
        std::fs::write(&conf, format!("# site\n{key} = {value}   # typo\n")).unwrap();
        let out = run(wrap(&lib, &[tool_s]).env("MFIGUARD_CONFIG", conf_s));
        assert_eq!(out.code(), 125, "{key} = {value}\n{}", out.dump());
        let want = format!("mfiguard-run: {var}=\"{value}\" (from {conf_s}:2): {why}");
        assert!(out.stderr.starts_with(&want), "{want}\n{}", out.dump());
        assert!(!marker.exists(), "the tool ran with {var}={value}");
        // --check shows the same reason and fails.
        let out = run(wrap(&lib, &["--check"]).env("MFIGUARD_CONFIG", conf_s));
        assert_eq!(out.code(), 1, "{}", out.dump());
        let want = format!("\n  INVALID: {var}=\"{value}\" (from {conf_s}:2): {why}");
        assert!(out.stdout.contains(&want), "{want}\n{}", out.dump());
        assert!(out.stdout.contains("\nresult: FAILED"), "{}", out.dump());
        // An option overrides the bad value: the library never sees it.
        let opt: Option<&[&str]> = match *var {
            "MFIGUARD_MODE" => Some(&["--mode", "enforce"]),
            "MFIGUARD_LOG" => Some(&["--log", "none"]),
            "MFIGUARD_ALLOW" => Some(&["--allow", "sgl.bounds"]),
            "MFIGUARD_AUDIT" => Some(&["--audit-all"]),
            _ => None,
        };
        if let Some(opt) = opt {
            let out = run(wrap(&lib, &[opt, &[tool_s]].concat()).env(var, value));
            assert_eq!(out.code(), 0, "{opt:?} over {var}={value}\n{}", out.dump());
            assert!(marker.exists());
            std::fs::remove_file(&marker).unwrap();
        }
    }

    // Several problems: one line each.
    let out = run(wrap(&lib, &[tool_s])
        .env("MFIGUARD_MODE", "strict")
        .env("MFIGUARD_AUDIT", "every"));
    assert_eq!(out.code(), 125, "{}", out.dump());
    assert_eq!(out.stderr.lines().count(), 2, "{}", out.dump());

    // What the library accepts passes: case, blanks, empty allow items, every boolean.
    // A log path with blanks around it, in a directory that exists.
    let padded_log = format!(" {} ", s.path("audit.jsonl").display());
    let ok: &[(&str, &str)] = &[
        ("MFIGUARD_MODE", " Readonly "),
        ("MFIGUARD_MODE", "AUDIT"),
        ("MFIGUARD_AUDIT", "All"),
        ("MFIGUARD_LOG", "Syslog"),
        ("MFIGUARD_LOG", &padded_log),
        ("MFIGUARD_LOG", "none"),
        ("MFIGUARD_ALLOW", " sgl.bounds ,, xfer.length ,"),
        ("MFIGUARD_ALLOW", ""),
        ("MFIGUARD_LOG_SYNC", "YES"),
        ("MFIGUARD_LOG_SYNC", ""),
        ("MFIGUARD_LOG_REQUIRED", "off"),
        ("MFIGUARD_LOG_REQUIRED", "1"),
        ("MFIGUARD_DEBUG", "nonsense is the library's business"),
    ];
    for (var, value) in ok {
        let out = run(wrap(&lib, &[tool_s]).env(var, value));
        assert_eq!(out.code(), 0, "{var}={value:?}\n{}", out.dump());
        assert_eq!(out.stderr, "", "{var}={value:?}\n{}", out.dump());
        assert!(marker.exists(), "{var}={value:?}");
        std::fs::remove_file(&marker).unwrap();
    }

    // A config file this user cannot read: its policy would not apply.
    std::fs::write(&conf, "mode = readonly\n").unwrap();
    let unreadable = s.path("dir.conf");
    std::fs::create_dir_all(&unreadable).unwrap();
    let out = run(wrap(&lib, &[tool_s]).env("MFIGUARD_CONFIG", &unreadable));
    assert_eq!(out.code(), 125, "{}", out.dump());
    assert!(
        out.stderr.contains("cannot read this config file"),
        "{}",
        out.dump()
    );
    assert!(!marker.exists());
}

/// `--allow` takes a list written with blanks after the commas.
#[test]
fn allow_trims_blanks_around_each_rule_id() {
    let s = Scratch::new("allow-blanks");
    let lib = stand_in(&s);
    let got = show_env(&mut wrap(
        &lib,
        &[
            "--allow",
            "sgl.bounds, sgl.offset-unusual",
            "--allow= xfer.length\t",
            "sh",
            "-c",
            SHOW_ENV,
        ],
    ));
    assert!(
        got.contains("|sgl.bounds,sgl.offset-unusual,xfer.length|"),
        "{got}"
    );
    // A blank list is still not a list, and an unknown id is still named.
    for (arg, msg) in [
        (" ", "is not a comma-separated list"),
        ("sgl.bounds, sgl.bound", "unknown rule id 'sgl.bound'"),
    ] {
        let out = run(&mut wrap(&lib, &["--allow", arg, "true"]));
        assert_eq!(out.code(), 125, "{arg:?}\n{}", out.dump());
        assert!(out.stderr.contains(msg), "{arg:?}\n{}", out.dump());
    }
}

/// `--check` says where records go and whether this user can write them: a warning when it
/// cannot, a failure when log_required is on. It never creates nor writes the log.
#[test]
fn check_says_whether_records_can_be_written() {
    let s = Scratch::new("check-sink");
    let lib = stand_in(&s);
    let check = |log: &str, required: Option<&str>| -> Out {
        let mut cmd = wrap(&lib, &["--log", log, "--check"]);
        if let Some(r) = required {
            cmd.env("MFIGUARD_LOG_REQUIRED", r);
        }
        run(&mut cmd)
    };
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };

    let existing = s.path("audit.jsonl");
    std::fs::write(&existing, "{\"seq\":1}\n").unwrap();
    let out = check(existing.to_str().unwrap(), None);
    assert_eq!(
        records_line(&out),
        format!(
            "  records: {}: exists, can be appended to by uid {uid}",
            existing.display()
        )
    );
    assert_eq!(
        read(&existing),
        "{\"seq\":1}\n",
        "the check wrote to the log"
    );

    let fresh = s.path("fresh.jsonl");
    let out = check(fresh.to_str().unwrap(), None);
    assert_eq!(
        records_line(&out),
        format!(
            "  records: {}: does not exist yet; uid {uid} can create it in {}",
            fresh.display(),
            s.0.display()
        )
    );
    assert!(!fresh.exists(), "the check created the log");

    let nodir = s.path("nodir/audit.jsonl");
    let out = check(nodir.to_str().unwrap(), None);
    let line = records_line(&out);
    assert!(
        line.starts_with(&format!(
            "  WARNING: records: {}: the directory {} does not exist: records would be lost",
            nodir.display(),
            s.path("nodir").display()
        )) && line.contains("'cannot write audit records'"),
        "{line}"
    );
    assert!(!out.stdout.contains("  FAILED: records"), "{}", out.dump());
    let out = check(nodir.to_str().unwrap(), Some("yes"));
    let line = records_line(&out);
    assert!(
        line.starts_with("  FAILED: records: ")
            && line
                .ends_with("with log_required on, every guarded MegaRAID call would fail with EIO"),
        "{line}"
    );
    assert!(out.stdout.contains("\nresult: FAILED"), "{}", out.dump());

    let out = check(s.0.to_str().unwrap(), None);
    assert!(
        records_line(&out).starts_with(&format!(
            "  WARNING: records: {} is a directory",
            s.0.display()
        )),
        "{}",
        out.dump()
    );

    // syslog: judged by /dev/log on this host.
    let out = check("syslog", None);
    let socket = std::fs::metadata("/dev/log")
        .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()));
    if socket {
        assert_eq!(
            records_line(&out),
            "  records: syslog: /dev/log is a socket"
        );
    } else {
        assert!(
            records_line(&out).starts_with("  WARNING: records: syslog: /dev/log is not a socket"),
            "{}",
            out.dump()
        );
    }
    let out = check("stderr", Some("1"));
    assert_eq!(records_line(&out), "  records: the tool's standard error");
}

/// `--help` and the man page document the two log settings, and the 125 of a tool nothing
/// guards (and of --allow-unguarded's absence).
#[test]
fn help_and_man_page_document_every_setting() {
    let s = Scratch::new("help-settings");
    let help = run(&mut wrap(&s.0, &["--help"])).stdout;
    let man = read(&root().join("doc/mfiguard-run.1"));
    for word in [
        "MFIGUARD_LOG_REQUIRED",
        "MFIGUARD_LOG_SYNC",
        "log_required",
        "log_sync",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
        assert!(man.contains(word), "the man page lacks {word}");
    }
    let exit = help
        .split("\nEXIT STATUS\n")
        .nth(1)
        .and_then(|t| t.split("\nEXAMPLES\n").next())
        .unwrap();
    assert!(
        exit.contains("125") && exit.contains("--allow-unguarded") && exit.contains("invalid"),
        "{exit}"
    );
    assert!(man.contains("readonly") && man.contains("the strictest mode"));
}

// ---- with the real guard ------------------------------------------------------------------------

#[test]
fn the_probe_under_the_library_is_intercepted_with_the_guard() {
    let out = run(scrub(&mut Command::new(target_probe()))
        .env("LD_PRELOAD", guard_lib())
        .env("MFIGUARD_DEVICE", "/dev/null")
        .env("MFIGUARD_MODE", "enforce")
        .env("MFIGUARD_LOG", "none")
        .env("MFIGUARD_CONFIG", NO_CONFIG));
    assert_eq!(
        out.stdout,
        "intercepted: yes (EINVAL from mfiguard)\n",
        "{}",
        out.dump()
    );
    assert_eq!(out.code(), 0);
    assert_eq!(out.stderr, "");
}

#[test]
fn check_proves_interception_with_the_guard() {
    let s = Scratch::new("check-real");
    let dir = guard_dir(&s);
    let class = guard_class();
    let proven = format!(
        "library ({class}-bit): {}\n    intercepted: yes (EINVAL from mfiguard)\n",
        class_lib(&dir, class).display()
    );
    // Without TOOL the 64-bit library is the one under test; a 32-bit one is checked too.
    let has64 = class_lib(&dir, 64).is_file();
    let out = run(&mut wrap(&dir, &["--check"]));
    assert!(out.stdout.contains(&proven), "{}", out.dump());
    if has64 {
        assert!(
            out.stdout
                .ends_with("result: OK: the guard loads and intercepts\n"),
            "{}",
            out.dump()
        );
        assert_eq!(out.code(), 0, "{}", out.dump());
    } else {
        assert!(
            out.stdout.contains(&format!(
                "library (64-bit): {}: not installed\n",
                class_lib(&dir, 64).display()
            )) && out.stdout.ends_with("result: FAILED: see above\n"),
            "{}",
            out.dump()
        );
        assert_eq!(out.code(), 1, "{}", out.dump());
    }
    assert_eq!(out.stderr, "");

    // ... and for a tool: the probe itself (of the guard's class), and a script (whose
    // interpreter, /bin/sh, is a 64-bit program).
    let script = s.path("monitor.sh");
    write_exec(&script, "#!/bin/sh\nexit 0\n");
    for tool in [target_probe(), script] {
        let out = run(&mut wrap(&dir, &["--check", tool.to_str().unwrap()]));
        let tool_class = if tool == target_probe() { class } else { 64 };
        if tool_class == 32 || has64 {
            assert_eq!(out.code(), 0, "{}", out.dump());
            assert!(
                out.stdout
                    .contains("result: OK: the guard loads, intercepts, and can apply to"),
                "{}",
                out.dump()
            );
            assert!(
                out.stdout.contains(&format!(
                    "library ({tool_class}-bit): {}\n    intercepted: yes",
                    class_lib(&dir, tool_class).display()
                )),
                "{}",
                out.dump()
            );
        } else {
            assert_eq!(out.code(), 1, "{}", out.dump());
            assert!(
                out.stdout.contains("library (64-bit): ") && out.stdout.contains("not installed"),
                "{}",
                out.dump()
            );
        }
    }
    // A site policy that would let the probe through does not fool the self-test.
    let conf = s.path("lax.conf");
    std::fs::write(&conf, "mode = off\nallow = ioc.sge-count\n").unwrap();
    let probe = target_probe();
    let out = run(wrap(&dir, &["--check", probe.to_str().unwrap()])
        .env("MFIGUARD_CONFIG", &conf)
        .env("MFIGUARD_MODE", "audit")
        .env("MFIGUARD_ALLOW", "ioc.sge-count"));
    assert!(out.stdout.contains(&proven), "{}", out.dump());
    assert_eq!(out.code(), 0, "{}", out.dump());
}

/// The probe as the wrapped tool: the options reach the real library.
#[test]
fn the_wrapper_guards_a_client_with_the_guard() {
    let s = Scratch::new("guarded");
    let dir = guard_dir(&s);
    let probe = target_probe();
    let probe_s = probe.to_str().unwrap();
    let log = s.path("audit.jsonl");
    let log_s = log.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--log", "none"], "intercepted: yes"),
        (&["--log", "none", "--mode", "enforce"], "intercepted: yes"),
        (&["--log", "none", "--mode", "readonly"], "intercepted: yes"),
        (&["--log", "none", "--mode", "audit"], "intercepted: no"),
        (&["--log", "none", "--mode", "off"], "intercepted: no"),
        (
            &["--log", "none", "--allow", "ioc.sge-count"],
            "intercepted: no",
        ),
        (&["--log", log_s, "--mode", "enforce"], "intercepted: yes"),
    ];
    for (opts, want) in cases {
        let mut args = opts.to_vec();
        args.extend(["--", probe_s]);
        let out = run(wrap(&dir, &args).env("MFIGUARD_DEVICE", "/dev/null"));
        assert!(out.stdout.starts_with(want), "{opts:?}\n{}", out.dump());
        assert_eq!(
            out.code(),
            i32::from(*want == "intercepted: no"),
            "{opts:?}\n{}",
            out.dump()
        );
    }
    // The file log has the rejected call, with the rule that rejected it.
    let records = parse_lines(&read(&log), "audit log");
    let calls = merge_calls(&records);
    assert_eq!(calls.len(), 1, "{records:?}");
    assert_eq!(text(&calls[0], "verdict"), Some("reject"), "{:?}", calls[0]);
    assert!(
        calls[0].to_string().contains("ioc.sge-count"),
        "{:?}",
        calls[0]
    );

    // The same through a script that runs the probe: LD_PRELOAD is inherited.
    let script = s.path("cron-job.sh");
    write_exec(&script, &format!("#!/bin/sh\nexec {probe_s}\n"));
    let out = run(wrap(&dir, &["--log", "none", script.to_str().unwrap()])
        .env("MFIGUARD_DEVICE", "/dev/null"));
    if guard_class() == 64 {
        assert_eq!(
            out.stdout,
            "intercepted: yes (EINVAL from mfiguard)\n",
            "{}",
            out.dump()
        );
    } else if !class_lib(&dir, 64).is_file() {
        // The script's interpreter is 64-bit: with no 64-bit library nothing runs.
        assert_eq!(out.code(), 125, "{}", out.dump());
        assert!(
            out.stderr.contains(&format!(
                "the guard library {} is not installed",
                class_lib(&dir, 64).display()
            )),
            "{}",
            out.dump()
        );
        assert_eq!(out.stdout, "");
    } else {
        // With both libraries: the script gets the 64-bit one, which ld.so cannot load into
        // the 32-bit program the script starts (the limit `--check SCRIPT` warns about).
        assert!(
            out.stdout.starts_with("intercepted: no") && out.stderr.contains("wrong ELF class"),
            "{}",
            out.dump()
        );
    }
    // A script that runs a 32-bit tool through the wrapper itself (as the README advises):
    // the tool gets its own class's library.
    if guard_class() == 32 {
        let script = s.path("cron-job32.sh");
        write_exec(
            &script,
            &format!(
                "#!/bin/sh\nexec {} --log none {probe_s}\n",
                wrapper().display()
            ),
        );
        let out = run(scrub(&mut Command::new(&script))
            .env("MFIGUARD_LIB_DIR", &dir)
            .env("MFIGUARD_CONFIG", NO_CONFIG)
            .env("MFIGUARD_DEVICE", "/dev/null"));
        assert_eq!(
            out.stdout,
            "intercepted: yes (EINVAL from mfiguard)\n",
            "{}",
            out.dump()
        );
        assert_eq!(out.stderr, "", "{}", out.dump());
    }
}

/// The site config's key names are the library's: a commented-out line of the packaged
/// `/etc/mfiguard.conf`, switched on, changes what the library does.
#[test]
fn the_packaged_config_keys_reach_the_library_with_the_guard() {
    let s = Scratch::new("conf");
    let dir = guard_dir(&s);
    let packaged = read(&root().join("packaging/mfiguard.conf"));
    for key_line in [
        "#mode = enforce",
        "#log = /var/log/mfiguard/audit.jsonl",
        "#audit = findings",
        "#allow = sgl.offset-unusual",
        "#log_sync = 0",
        "#log_required = 0",
    ] {
        assert!(
            packaged.contains(&format!("\n{key_line}\n")),
            "{key_line} is not in the packaged config"
        );
    }
    // Nothing is switched on: the built-in defaults apply.
    assert!(
        packaged.lines().all(|l| l.is_empty() || l.starts_with('#')),
        "the packaged config sets something"
    );
    for (line, want) in [
        ("mode = audit", "intercepted: no"),
        ("mode = off", "intercepted: no"),
        ("allow = ioc.sge-count", "intercepted: no"),
        ("mode = enforce", "intercepted: yes"),
        ("mode = readonly", "intercepted: yes"),
    ] {
        let conf = s.path("mfiguard.conf");
        std::fs::write(
            &conf,
            packaged.replace("#log = /var/log/mfiguard/audit.jsonl", "log = none") + line + "\n",
        )
        .unwrap();
        let out = run(wrap(&dir, &["--", target_probe().to_str().unwrap()])
            .env("MFIGUARD_DEVICE", "/dev/null")
            .env("MFIGUARD_CONFIG", &conf));
        assert!(
            out.stdout.starts_with(want),
            "config line {line:?}\n{}",
            out.dump()
        );
    }
}

/// MegaCli 8.01.06's STP probe by `client` against the simulator `sim`, bare (`dir` is `None`)
/// or through the wrapper with `MFIGUARD_LIB_DIR=dir` and a file log: what ran, the simulator's
/// one record, and the guarded calls of the audit log.
fn stp_run(
    s: &Scratch,
    dir: Option<&Path>,
    client: &Path,
    sim: &Path,
    tag: &str,
) -> (Out, Value, Vec<Value>) {
    let record = s.path(&format!("sim-{tag}.jsonl"));
    let log = s.path(&format!("audit-{tag}.jsonl"));
    let mut cmd = match dir {
        Some(dir) => {
            let mut c = wrap(dir, &["--log", log.to_str().unwrap(), "--"]);
            c.arg(client);
            c
        }
        None => {
            let mut c = Command::new(client);
            scrub(&mut c);
            c
        }
    };
    // The simulator is loaded after the guard (the wrapper keeps it in LD_PRELOAD).
    cmd.args(["--device", "/dev/null", "stp-probe", "10"])
        .env("LD_PRELOAD", sim)
        .env("MFIGUARD_DEVICE", "/dev/null")
        .env("MFISIM_RECORD", &record);
    let out = run(&mut cmd);
    let recs = parse_lines(
        &std::fs::read_to_string(&record).unwrap_or_default(),
        "simulator",
    );
    assert_eq!(recs.len(), 1, "{}", out.dump());
    let audit = parse_lines(&std::fs::read_to_string(&log).unwrap_or_default(), "audit");
    (out, recs[0].clone(), merge_calls(&audit))
}

/// A guarded STP probe by a `class`-bit client: repaired, by the library of that class (the
/// audit record names the process's ABI and request code), with nothing from ld.so.
fn assert_stp_guarded(class: u8, (out, sim, calls): &(Out, Value, Vec<Value>)) {
    assert_eq!(out.code(), 0, "{}", out.dump());
    // (ld.so may complain about the 32-bit simulator in the wrapper's own 64-bit shell.)
    assert!(
        !out.stderr
            .lines()
            .any(|l| l.contains("ld.so") && l.contains("libmfiguard")),
        "ld.so refused the guard\n{}",
        out.dump()
    );
    assert_eq!(firmware_addrs(sim)[0], "0x91dfc000", "{}", out.dump());
    assert_eq!(sim["wild_dma"].as_array().map(Vec::len), Some(0), "{sim}");
    assert_eq!(calls.len(), 1, "{calls:?}\n{}", out.dump());
    let call = &calls[0];
    assert_eq!(text(call, "verdict"), Some("rewrite"), "{call:?}");
    assert!(
        call.to_string().contains("frame.addressing-flags"),
        "{call:?}"
    );
    let (abi, code) = if class == 32 {
        ("i386", "0xc1144d01")
    } else {
        ("x86_64", "0xc1944d01")
    };
    assert_eq!(text(call, "abi"), Some(abi), "{call:?}");
    assert_eq!(text(call, "request_code"), Some(code), "{call:?}");
}

/// The seed's bug, through the wrapper: MegaCli 8.01.06's STP probe against the legacy-driver
/// simulator, by a client of the guard's class.
#[test]
fn the_wrapper_fixes_the_seed_stp_probe_with_the_guard() {
    let s = Scratch::new("stp");
    let dir = guard_dir(&s);
    let ex = examples();
    let (bare, sim, _) = stp_run(&s, None, &ex.client, &ex.sim, "bare");
    assert_eq!(firmware_addrs(&sim)[0], "0x1491dfc000", "{}", bare.dump());
    let guarded = stp_run(&s, Some(&dir), &ex.client, &ex.sim, "wrapped");
    assert_stp_guarded(guard_class(), &guarded);
}

/// With both libraries installed, as the packages install them, one wrapper guards a 64-bit
/// and a 32-bit MegaCli-like client, each with the library of its own class: the 32-bit one
/// through `i386/libmfiguard.so`, on the compat layout (276-byte packet).
#[test]
fn both_libraries_guard_a_64_and_a_32_bit_client_each_with_the_guard() {
    let s = Scratch::new("both");
    let (dir, a64, a32) = match both_dir(&s) {
        Ok(x) => x,
        Err(e) => {
            eprintln!(
                "note: SKIPPED: the other ELF class cannot be built here ({e}); install it \
                 with `rustup target add i686-unknown-linux-gnu` and gcc-multilib"
            );
            return;
        }
    };
    eprintln!(
        "note: both libraries under {}; 32-bit client {}",
        dir.display(),
        a32.client.display()
    );
    // The self-test proves both libraries.
    let out = run(&mut wrap(&dir, &["--check"]));
    for c in [64, 32] {
        assert!(
            out.stdout.contains(&format!(
                "library ({c}-bit): {}\n    intercepted: yes (EINVAL from mfiguard)\n",
                class_lib(&dir, c).display()
            )),
            "{}",
            out.dump()
        );
    }
    assert_eq!(out.code(), 0, "{}", out.dump());
    // --check on each client names its class, and that class's library comes first.
    for (c, a) in [(64, a64), (32, a32)] {
        let out = run(&mut wrap(&dir, &["--check", a.client.to_str().unwrap()]));
        assert_eq!(out.code(), 0, "{}", out.dump());
        let first_lib = out
            .stdout
            .lines()
            .find(|l| l.starts_with("library ("))
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            first_lib,
            format!("library ({c}-bit): {}", class_lib(&dir, c).display()),
            "{}",
            out.dump()
        );
        assert!(
            out.stdout
                .contains(&format!("ELF {c}-bit, dynamically linked")),
            "{}",
            out.dump()
        );
    }
    // The seed's STP probe, by each client: each repaired by its own library.
    for (c, a) in [(64, a64), (32, a32)] {
        let (bare, sim, _) = stp_run(&s, None, &a.client, &a.sim, &format!("bare{c}"));
        assert_eq!(firmware_addrs(&sim)[0], "0x1491dfc000", "{}", bare.dump());
        let guarded = stp_run(&s, Some(&dir), &a.client, &a.sim, &format!("wrapped{c}"));
        assert_stp_guarded(c, &guarded);
    }
    // Each class's probe, run through the wrapper, is intercepted (ld.so says nothing).
    for (c, a) in [(64, a64), (32, a32)] {
        let out = run(wrap(&dir, &["--", a.probe.to_str().unwrap()])
            .env("MFIGUARD_DEVICE", "/dev/null")
            .env("MFIGUARD_LOG", "none"));
        assert_eq!(
            out.stdout,
            "intercepted: yes (EINVAL from mfiguard)\n",
            "{c}-bit probe\n{}",
            out.dump()
        );
        assert_eq!(out.stderr, "", "{}", out.dump());
    }
}

// ---- portability and lint ---------------------------------------------------------------------

/// The wrapper is a native program: it needs no shell or helper programs, and works with the
/// bare environment cron or sudo give it (no PATH: the default one; no HOME, no locale).
#[test]
fn the_wrapper_runs_with_an_empty_environment() {
    let s = Scratch::new("bare-env");
    let lib = stand_in(&s);
    let so = lib.join("libmfiguard.so");
    let w = wrapper();
    let head = std::fs::read(&w).unwrap();
    assert_eq!(
        &head[..4],
        b"\x7fELF",
        "{} is not a native program",
        w.display()
    );
    let mut cmd = Command::new(&w);
    cmd.env_clear()
        .env("MFIGUARD_VIA", "preload")
        .stdin(Stdio::null())
        .args([
            "--mode",
            "audit",
            "--allow",
            "sgl.bounds",
            "--",
            "sh",
            "-c",
            SHOW_ENV,
            "sh",
            "x y",
        ])
        .env("MFIGUARD_LIB_DIR", &lib);
    let out = run(&mut cmd);
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(
        out.stdout,
        format!("{}|audit|unset|sgl.bounds|unset|unset|x y,", so.display())
    );
    let mut cmd = Command::new(&w);
    cmd.env_clear()
        .stdin(Stdio::null())
        .args(["--check", "/bin/sh"])
        .env("MFIGUARD_LIB_DIR", &lib)
        .env("MFIGUARD_CONFIG", NO_CONFIG)
        .env(
            "MFIGUARD_KERNEL_RELEASE",
            "5.10.0-30-amd64 Debian 5.10.218-1",
        );
    let out = run(&mut cmd);
    assert_eq!(out.code(), 1, "{}", out.dump());
    assert!(
        out.stdout.contains("ELF 64-bit, dynamically linked")
            && out.stdout.contains("present: backported in 5.10.4")
            && out.stdout.contains("intercepted: no (ENOTTY"),
        "{}",
        out.dump()
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn the_shell_scripts_pass_their_linters() {
    let scripts = [
        integration("nagios/check_mfiguard"),
        integration("prometheus/mfiguard-textfile"),
        integration("path-shim/MegaCli64"),
        root().join("packaging/build-packages.sh"),
    ];
    for p in &scripts {
        let st = Command::new("dash")
            .arg("-n")
            .arg(p)
            .status()
            .expect("dash");
        assert!(st.success(), "dash -n {}", p.display());
    }
    let posix: Vec<&PathBuf> = scripts.iter().collect();
    if have("checkbashisms") {
        for p in &posix {
            let out = run(Command::new("checkbashisms").arg("-f").arg(p));
            assert_eq!(
                out.code(),
                0,
                "checkbashisms {}\n{}",
                p.display(),
                out.dump()
            );
        }
    } else {
        eprintln!("note: checkbashisms (devscripts) not installed");
    }
    if have("shellcheck") {
        for p in &posix {
            let out = run(Command::new("shellcheck").args(["-s", "sh"]).arg(p));
            assert_eq!(out.code(), 0, "shellcheck {}\n{}", p.display(), out.dump());
        }
        let out = run(Command::new("shellcheck")
            .args(["-s", "bash"])
            .arg(integration("bash-completion/mfiguard-run")));
        assert_eq!(out.code(), 0, "{}", out.dump());
    } else {
        eprintln!("note: shellcheck not installed");
    }
}

#[test]
fn the_man_page_renders_without_warnings() {
    let page = root().join("doc/mfiguard-run.1");
    let man = read(&page);
    assert!(man.starts_with(".\\\"") && man.contains("\n.TH MFIGUARD-RUN 1 "));
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "ENVIRONMENT",
        "FILES",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(
            man.contains(&format!("\n.SH {section}\n"))
                || man.contains(&format!("\n.SH \"{section}\"\n")),
            "{section}"
        );
    }
    if have("groff") {
        let out = run(Command::new("groff").args(["-man", "-ww", "-z"]).arg(&page));
        assert_eq!(out.code(), 0, "{}", out.dump());
        assert_eq!(out.stderr, "", "groff warnings:\n{}", out.stderr);
    } else {
        eprintln!("note: groff not installed: the page was not rendered");
    }
}

/// The wrapper's reading of the config file is the library's: for each file, the mode that
/// `--check` shows is the one the guard applies to the probe, and a `#` inside a path is
/// kept by both (the log is created under that name).
#[test]
fn the_wrapper_and_the_library_read_the_config_file_alike_with_the_guard() {
    let s = Scratch::new("conf-alike");
    let dir = guard_dir(&s);
    let conf = s.path("mfiguard.conf");
    let log = s.path("a#b.jsonl");
    for (text, mode, intercepted) in [
        ("mode = audit   # roll-out first\n", "audit", "no"),
        ("mode = \"off\"\t# quoted\n", "off", "no"),
        ("MFIGUARD_MODE = 'Audit'\n", "audit", "no"),
        (
            "mode = audit\nmode = enforce # audit later\n",
            "enforce",
            "yes",
        ),
        ("  # mode = audit\nmode = readonly\n", "readonly", "yes"),
    ] {
        let body = format!("{text}log = {}\naudit = all # every call\n", log.display());
        std::fs::write(&conf, &body).unwrap();
        let p = policy(
            wrap(&dir, &["--check"])
                .env("MFIGUARD_CONFIG", &conf)
                .env("MFIGUARD_DEVICE", "/dev/null"),
        );
        assert!(
            p.contains(&format!("\n  mode:  {mode} (from ")),
            "{body}\n{p}"
        );
        assert!(
            !p.contains("INVALID") && !p.contains("WARNING"),
            "{body}\n{p}"
        );
        let _ = std::fs::remove_file(&log);
        let out = run(wrap(&dir, &["--", target_probe().to_str().unwrap()])
            .env("MFIGUARD_DEVICE", "/dev/null")
            .env("MFIGUARD_CONFIG", &conf));
        assert!(
            out.stdout
                .starts_with(&format!("intercepted: {intercepted}")),
            "{body}\n{}",
            out.dump()
        );
        if mode == "off" {
            // Off records nothing.
            continue;
        }
        let records = std::fs::read_to_string(&log)
            .unwrap_or_else(|e| panic!("{body}: no record in {}: {e}", log.display()));
        assert!(
            !records.contains("\"record\":\"error\""),
            "the library could not use a line the wrapper accepted:\n{body}\n{records}"
        );
    }
}

#[test]
fn the_sudoers_example_keeps_wrapper_options_out_of_the_callers_reach() {
    let text = read(&integration("sudoers.d/mfiguard"));
    // Join continuation lines, then look at every command of the alias.
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let alias = joined
        .lines()
        .find(|l| l.starts_with("Cmnd_Alias "))
        .expect("a Cmnd_Alias");
    let (_, cmds) = alias.split_once('=').unwrap();
    let cmds: Vec<&str> = cmds.split(',').map(str::trim).collect();
    assert!(cmds.len() >= 3, "{cmds:?}");
    for c in &cmds {
        assert!(
            c.starts_with("/usr/bin/mfiguard-run --mode readonly -- /"),
            "a caller could add wrapper options, or the mode is not read-only: {c}"
        );
        assert!(!c.contains('*'), "arguments are pinned: {c}");
    }
    assert!(joined.contains("\nnagios ALL=(root) NOPASSWD: MFIGUARD_MEGACLI_READ"));
    if have("visudo") {
        let out = run(Command::new("visudo")
            .arg("-cf")
            .arg(integration("sudoers.d/mfiguard")));
        assert_eq!(out.code(), 0, "visudo -cf:\n{}", out.dump());
    } else {
        eprintln!("note: visudo (sudo) not installed: syntax not checked by sudo itself");
    }
}

#[test]
fn logrotate_rotates_the_json_log_without_losing_a_line() {
    let s = Scratch::new("logrotate");
    let text = read(&integration("logrotate.d/mfiguard"));
    assert!(text.contains("/var/log/mfiguard/*.jsonl {"));
    for directive in [
        "create 0640 root adm",
        "delaycompress",
        "missingok",
        "notifempty",
    ] {
        assert!(text.contains(&format!("\t{directive}\n")), "{directive}");
    }
    assert!(
        !text.lines().any(|l| l.trim() == "copytruncate"),
        "copytruncate can lose records"
    );
    if !have("logrotate") {
        eprintln!("note: logrotate not installed: the file was not run");
        return;
    }
    let logdir = s.path("log");
    std::fs::create_dir_all(&logdir).unwrap();
    std::fs::set_permissions(&logdir, std::fs::Permissions::from_mode(0o750)).unwrap();
    let mut conf = text.replace("/var/log/mfiguard", logdir.to_str().unwrap());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !read(Path::new("/etc/group")).contains("\nadm:") {
        conf = conf.replace("create 0640 root adm", "create 0640");
    }
    let conf_path = s.path("mfiguard.logrotate");
    std::fs::write(&conf_path, conf).unwrap();
    std::fs::set_permissions(&conf_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = logdir.join("audit.jsonl");
    let lines = "{\"seq\":1,\"verdict\":\"reject\"}\n{\"seq\":2,\"verdict\":\"pass\"}\n";
    std::fs::write(&log, lines).unwrap();
    let out = run(Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(s.path("state"))
        .arg(&conf_path));
    assert_eq!(out.code(), 0, "{}", out.dump());
    assert_eq!(
        read(&logdir.join("audit.jsonl.1")),
        lines,
        "delaycompress keeps .1 plain"
    );
    let fresh = std::fs::metadata(&log).expect("create made a new log");
    assert_eq!(fresh.len(), 0);
    assert_eq!(fresh.permissions().mode() & 0o777, 0o640);
}

#[test]
fn bash_completes_options_values_rule_ids_and_the_tool() {
    let file = integration("bash-completion/mfiguard-run");
    let complete = |words: &[&str]| -> Vec<String> {
        let script = format!(
            "source {}; COMP_WORDS=({}); COMP_CWORD={}; _mfiguard_run; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display(),
            words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
            words.len() - 1
        );
        let out = run(Command::new("bash").arg("-c").arg(script));
        assert_eq!(out.code(), 0, "{words:?}\n{}", out.dump());
        out.stdout
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        complete(&["mfiguard-run", "--mode", ""]),
        ["enforce", "audit", "off", "readonly"]
    );
    assert_eq!(
        complete(&["mfiguard-run", "--log", "s"]),
        ["syslog", "stderr"]
    );
    assert_eq!(
        complete(&["mfiguard-run", "--allow", "sgl.bounds,sense.length-"]),
        ["sgl.bounds,sense.length-mismatch"]
    );
    assert_eq!(complete(&["mfiguard-run", "--req"]), ["--require-guard"]);
    assert!(
        complete(&["mfiguard-run", "--mode", "audit", "--", "das"]).contains(&"dash".to_owned())
    );
    assert!(complete(&["mfiguard-run", "--mode", "audit", "dash"]).contains(&"dash".to_owned()));
    assert!(complete(&["mfiguard-run", "--check", "dash"]).contains(&"dash".to_owned()));
}
