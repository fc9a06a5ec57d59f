//! Running `mfiguard-run` in the tests: the wrapper and its probe, a stand-in library or the real
//! guard laid out where the wrapper looks for each ELF class, an environment the test runner
//! cannot leak into, and tools for it to run.
//!
//! The wrapper takes `DIR/libmfiguard.so` for a 64-bit program and `DIR/i386/libmfiguard.so` for
//! a 32-bit one, each with its own `mfiguard-probe` beside it. The guard under test is of the
//! class `MFIGUARD_TEST_TARGET` builds (i686: 32-bit) or of `MFIGUARD_TEST_LIB`'s; the tests with
//! the guard lay it out where the wrapper looks for that class, and run programs of that class
//! (the probe, the client) through the wrapper. The test binary and `CARGO_BIN_EXE_mfiguard-probe`
//! are always the host's.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::{examples, guard_lib, root, Scratch};

pub fn wrapper() -> PathBuf {
    super::wrapper_bin().to_path_buf()
}

pub fn probe_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mfiguard-probe"))
}

pub fn integration(rel: &str) -> PathBuf {
    root().join("examples/integrations").join(rel)
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

pub fn write_exec(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The C library mapped into this process (a path `LD_PRELOAD` can name harmlessly).
pub fn libc_path() -> &'static Path {
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
pub fn stand_in(s: &Scratch) -> PathBuf {
    let dir = s.path("stand-in");
    std::fs::create_dir_all(&dir).unwrap();
    symlink(libc_path(), dir.join("libmfiguard.so")).unwrap();
    symlink(probe_bin(), dir.join("mfiguard-probe")).unwrap();
    dir
}

/// The ELF class (32 or 64) of a file, from its header.
pub fn elf_class(p: &Path) -> u8 {
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
pub fn guard_class() -> u8 {
    elf_class(guard_lib())
}

/// The class of the host's programs (this test binary's).
pub fn host_class() -> u8 {
    elf_class(&probe_bin())
}

/// The target triple that builds programs of `class` here (`None`: the host's).
pub fn triple_for(class: u8) -> Option<String> {
    if class == host_class() {
        None
    } else if let Some(t) = super::cross_target().filter(|_| class == guard_class()) {
        Some(t)
    } else if class == 32 {
        Some("i686-unknown-linux-gnu".to_owned())
    } else {
        Some("x86_64-unknown-linux-gnu".to_owned())
    }
}

/// Where the wrapper looks for the library of `class` under `MFIGUARD_LIB_DIR=dir`.
pub fn class_lib(dir: &Path, class: u8) -> PathBuf {
    if class == 32 {
        dir.join("i386/libmfiguard.so")
    } else {
        dir.join("libmfiguard.so")
    }
}

/// The guard, the probe, the client and the simulator of one ELF class.
pub struct ClassArtifacts {
    pub lib: PathBuf,
    pub probe: PathBuf,
    pub client: PathBuf,
    pub sim: PathBuf,
}

/// The artifacts of `class`: those under test for the guard's class, otherwise built here
/// (`Err` when this host cannot build for that class, e.g. no i686 target or no gcc-multilib).
pub fn artifacts(class: u8) -> Result<&'static ClassArtifacts, String> {
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
                super::try_cargo_build(
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
        super::try_cargo_build(t.as_deref(), &["-p", "mfiguard-preload", "--lib"])?;
        let dir = super::try_cargo_build(
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
pub fn target_probe() -> PathBuf {
    artifacts(guard_class())
        .unwrap_or_else(|e| panic!("{e}"))
        .probe
        .clone()
}

/// `lib` and `probe` linked into `dir` where the wrapper looks for `class`.
pub fn lay_out(dir: &Path, class: u8, lib: &Path, probe: &Path) {
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
pub fn guard_dir(s: &Scratch) -> PathBuf {
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
pub fn both_dir(
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
pub fn scrub(cmd: &mut Command) -> &mut Command {
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
pub fn wrap(lib_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(wrapper());
    scrub(&mut cmd)
        .env("MFIGUARD_LIB_DIR", lib_dir)
        .env("MFIGUARD_CONFIG", NO_CONFIG)
        .args(args);
    cmd
}

/// The config file of most runs: none.
pub const NO_CONFIG: &str = "/dev/null";

pub fn cc(s: &Scratch, name: &str, src: &str, args: &[&str]) -> Option<PathBuf> {
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

/// `--check`'s policy section, without the line about where records go (it depends on the
/// host: see `check_says_whether_records_can_be_written`).
pub fn policy(cmd: &mut Command) -> String {
    let out = super::run(cmd);
    out.stdout
        .lines()
        .skip_while(|l| !l.starts_with("policy for runs"))
        .take_while(|l| !l.starts_with("result:"))
        .filter(|l| !l.contains("records: "))
        .map(|l| format!("{l}\n"))
        .collect()
}
