//! The record file is a regular file owned by root or the caller, or nothing is written to it;
//! and no sink ever waits for a reader.
//!
//! - A FIFO with no reader (an unprivileged user can create one first in a world-writable log
//!   directory) used to hang the tool forever in `open`: now the call completes, the FIFO is
//!   refused with its reason on stderr, and the records go to stderr.
//! - A symlink, a device, a directory: refused the same way, never followed or written.
//! - A file owned by another user (pre-created in `/tmp`): refused with a clear line, left as
//!   it was.
//! - A file the guard creates is mode 0640, group `adm` when it exists (logrotate's
//!   `create 0640 root adm`).
//! - `MFIGUARD_LOG=stderr` with stderr a full pipe nobody reads: the tool still finishes (the
//!   records are lost, not waited for).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::hardening::*;
use common::*;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Three calls the guard rewrites: six records (a decision and an outcome each).
const REWRITES: [&str; 3] = ["--repeat", "3", "ieee-dcmd"];
/// A hang fails the test in this time, not in the harness's two minutes.
const LIMIT: Duration = Duration::from_secs(30);

/// The guard's own lines on stderr, without `mfiguard[PID]: ` (checked to be the client's).
fn guard_lines(run: &Run) -> Vec<String> {
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("mfiguard["))
        .collect();
    let pids: Vec<&str> = lines
        .iter()
        .map(|l| l.split_once("]: ").unwrap().0)
        .collect();
    assert!(pids.windows(2).all(|w| w[0] == w[1]), "{lines:?}");
    lines
        .iter()
        .map(|l| l.split_once("]: ").unwrap().1.to_owned())
        .collect()
}

fn refused(path: &str, why: &str) -> String {
    format!(
        "cannot write audit records to {path}: {why}; its records go to stderr instead and are \
         counted in records_lost"
    )
}

/// The calls completed (each reached the driver rewritten), the refusal was reported once, and
/// the six records followed it on stderr in order.
fn assert_refused_to_stderr(run: &Run, path: &str, why: &str) {
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert_eq!(run.sim.len(), 3, "{}", run.dump());
    assert!(
        run.sim.iter().all(|r| text(r, "flags") == Some("0x0010")),
        "{}",
        run.dump()
    );
    let lines = guard_lines(run);
    assert_eq!(lines.len(), 7, "{}", run.dump());
    assert_eq!(lines[0], refused(path, why), "{}", run.dump());
    for (i, line) in lines[1..].iter().enumerate() {
        let phase = if i % 2 == 0 { "decision" } else { "outcome" };
        // (MEGASAS_IOC_FIRMWARE32 in a 32-bit client.)
        let head = format!("#{} {phase} rewrite MEGASAS_IOC_FIRMWARE", i / 2 + 1);
        assert!(line.starts_with(&head), "{line}\n{}", run.dump());
        assert!(line.contains(" DCMD MR_DCMD_CTRL_GET_INFO "), "{line}");
    }
    // The records each carry the count of records the file missed before them.
    assert!(lines[6].ends_with("(5 records lost)"), "{}", lines[6]);
}

fn logged_to(path: &std::path::Path) -> Run {
    run_within(
        client(&REWRITES)
            .guard(Guard::Enforce)
            .env("MFIGUARD_LOG", path.to_str().unwrap()),
        LIMIT,
    )
}

#[test]
fn a_fifo_with_no_reader_does_not_hang_the_tool() {
    let dir = Scratch::new("fifo-log");
    let fifo = dir.path("audit.jsonl");
    mkfifo(&fifo);
    let start = Instant::now();
    let run = logged_to(&fifo);
    assert_refused_to_stderr(
        &run,
        fifo.to_str().unwrap(),
        "it is a FIFO, not a regular file",
    );
    assert!(start.elapsed() < LIMIT);
}

#[test]
fn a_fifo_with_a_reader_gets_nothing() {
    let dir = Scratch::new("fifo-read");
    let fifo = dir.path("audit.jsonl");
    mkfifo(&fifo);
    // A reader that holds the FIFO open (non-blocking, so this test never waits for a writer).
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let run = logged_to(&fifo);
    assert_refused_to_stderr(
        &run,
        fifo.to_str().unwrap(),
        "it is a FIFO, not a regular file",
    );
    let mut got = Vec::new();
    let _ = (&reader).read_to_end(&mut got);
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
}

#[test]
fn a_symlink_a_device_and_a_directory_are_refused() {
    let dir = Scratch::new("not-regular");
    let target = dir.path("target.jsonl");
    std::fs::write(&target, "").unwrap();
    let link = dir.path("link.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let run = logged_to(&link);
    assert_refused_to_stderr(
        &run,
        link.to_str().unwrap(),
        "it is a symbolic link (never followed)",
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"");

    // A dangling one is not created through either.
    let dangling = dir.path("dangling.jsonl");
    std::os::unix::fs::symlink(dir.path("made.jsonl"), &dangling).unwrap();
    let run = logged_to(&dangling);
    assert_refused_to_stderr(
        &run,
        dangling.to_str().unwrap(),
        "it is a symbolic link (never followed)",
    );
    assert!(!dir.path("made.jsonl").exists());

    let run = logged_to(std::path::Path::new("/dev/null"));
    assert_refused_to_stderr(
        &run,
        "/dev/null",
        "it is a character device, not a regular file",
    );

    let a_dir = dir.path("a-directory");
    std::fs::create_dir(&a_dir).unwrap();
    let run = logged_to(&a_dir);
    assert_refused_to_stderr(
        &run,
        a_dir.to_str().unwrap(),
        "it is a directory, not a regular file",
    );
    assert!(std::fs::read_dir(&a_dir).unwrap().next().is_none());
}

#[test]
fn a_record_file_owned_by_someone_else_is_refused_and_left_alone() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: making a file owned by another uid needs root");
        return;
    }
    let dir = Scratch::new("foreign");
    let theirs = dir.path("audit.jsonl");
    std::fs::write(&theirs, "planted\n").unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::os::unix::fs::chown(&theirs, Some(4321), Some(4321)).unwrap();
    let run = logged_to(&theirs);
    assert_refused_to_stderr(
        &run,
        theirs.to_str().unwrap(),
        "it is owned by uid 4321, neither root nor this process (uid 0): refused, not written to",
    );
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "planted\n");

    // The same file given to root (what logrotate's `create 0640 root adm` leaves) is written.
    std::os::unix::fs::chown(&theirs, Some(0), None).unwrap();
    let run = logged_to(&theirs);
    assert_eq!(run.code(), 0, "{}", run.dump());
    assert!(guard_lines(&run).is_empty(), "{}", run.dump());
    let text = std::fs::read_to_string(&theirs).unwrap();
    assert_eq!(text.lines().count(), 1 + 6, "{text}");
}

/// The gid of group `adm` in /etc/group, if there is one.
fn adm_gid() -> Option<u32> {
    std::fs::read_to_string("/etc/group")
        .ok()?
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next()? == "adm").then(|| f.nth(1)?.parse().ok())?
        })
}

#[test]
fn a_created_record_file_is_0640_group_adm() {
    let dir = Scratch::new("created");
    let log = dir.path("audit.jsonl");
    // Whatever the tool's umask: a permissive one (0) must not make the records world-readable.
    let mut cmd = client(&REWRITES)
        .guard(Guard::Enforce)
        .env("MFIGUARD_LOG", log.to_str().unwrap())
        .command(&dir);
    // SAFETY: umask is async-signal-safe and has no preconditions.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::umask(0);
            Ok(())
        })
    };
    let (status, _out, err) = run_with_timeout(&mut cmd, LIMIT);
    assert!(status.success(), "{status:?}\n{err}");
    let meta = std::fs::metadata(&log).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640, "{err}");
    assert_eq!(meta.uid(), 0);
    match adm_gid() {
        // SAFETY: geteuid has no preconditions.
        Some(adm) if unsafe { libc::geteuid() } == 0 => assert_eq!(meta.gid(), adm),
        _ => eprintln!("no group adm here (or not root): the group is not checked"),
    }
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        6,
        "{err}"
    );
}

#[test]
fn stderr_a_full_pipe_nobody_reads_does_not_stall_the_tool() {
    let dir = Scratch::new("full-stderr");
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both were just returned by pipe2 and are owned by nobody else.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // Fill it: non-blocking while we fill, blocking again for the tool (the flag belongs to the
    // open pipe, which the tool shares).
    let w = write_end.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; write from a readable buffer.
    unsafe {
        libc::fcntl(w, libc::F_SETFL, libc::O_NONBLOCK);
        let chunk = [b'.'; 4096];
        while libc::write(w, chunk.as_ptr().cast(), chunk.len()) > 0 {}
        libc::fcntl(w, libc::F_SETFL, 0);
    }
    let mut cmd = client(&REWRITES)
        .guard(Guard::Enforce)
        .env("MFIGUARD_LOG", "stderr")
        .command(&dir);
    cmd.stderr(Stdio::from(write_end));
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the tool stalled on its full stderr");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "{status:?} {out}");
    assert!(out.contains("calls=3 failed=0\n"), "{out}");
    // The three calls reached the driver rewritten; the records were dropped, not half-written.
    let sim = parse_lines(
        &std::fs::read_to_string(dir.path("sim.jsonl")).unwrap(),
        "simulator record",
    );
    assert_eq!(sim.len(), 3);
    assert!(sim.iter().all(|r| text(r, "flags") == Some("0x0010")));
    let mut rest = Vec::new();
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(read_end.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let _ = std::fs::File::from(read_end).read_to_end(&mut rest);
    assert!(
        rest.iter().all(|&b| b == b'.'),
        "a record got into the full pipe"
    );
}
