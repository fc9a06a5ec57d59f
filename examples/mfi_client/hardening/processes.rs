//! Forked and exec'd children, a fork while another thread reads the configuration, and a
//! stdin-driven sequence of calls for the sink tests.

use super::*;

// ---- processes ----------------------------------------------------------------------------------

pub(crate) fn fork() -> libc::pid_t {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: fork; the child only issues ioctls, allocates (single-threaded parent) and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    pid
}

pub(crate) fn exit_now(code: c_int) -> ! {
    let _ = std::io::stdout().flush();
    // SAFETY: _exit ends the child without running the parent's atexit handlers twice.
    unsafe { libc::_exit(code) }
}

/// `waitpid` and the status as text: `exit=N` or `signal=N`.
pub(crate) fn wait_for(pid: libc::pid_t) -> String {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    if r != pid {
        return "lost".into();
    }
    if libc::WIFEXITED(status) {
        format!("exit={}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("signal={}", libc::WTERMSIG(status))
    } else {
        format!("status={status:#x}")
    }
}

pub(crate) fn getpid() -> libc::pid_t {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// One ieee-dcmd in the parent (which reads the configuration), then CHILDREN forked children
/// running at once, each issuing CALLS calls on the inherited descriptor: ieee-dcmd (ret 0,
/// status OK) and sgl.bounds (EINVAL) in turn; a child exits 0 when all ended so. Then one more
/// ieee-dcmd in the parent.
pub fn fork_children(fd: c_int, host: u16, children: usize, calls: u64) -> i32 {
    let mut first = ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64));
    let mut parent_ok = u32::from(ok(&issue(fd, first.request, &mut first.packet)));
    let mut pids = Vec::new();
    for _ in 0..children {
        let pid = fork();
        if pid == 0 {
            let mut rewrite = ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64));
            let mut reject = rule_call(host, "sgl.bounds").expect("rule packet");
            let mut bad = 0;
            for i in 0..calls {
                let good = if i % 2 == 0 {
                    ok(&issue(fd, rewrite.request, &mut rewrite.packet))
                } else {
                    refused(&issue(fd, reject.request, &mut reject.packet), libc::EINVAL)
                };
                bad += u32::from(!good);
            }
            exit_now(i32::from(bad != 0));
        }
        pids.push(pid);
    }
    let statuses: Vec<String> = pids.iter().map(|&p| wait_for(p)).collect();
    let children_ok = statuses.iter().filter(|s| *s == "exit=0").count();
    parent_ok += u32::from(ok(&issue(fd, first.request, &mut first.packet)));
    println!(
        "children={children} calls_each={calls} children_ok={children_ok} parent_calls=2 \
         parent_ok={parent_ok}"
    );
    eprintln!(
        "mfi_client: fork: parent={} children={}",
        getpid(),
        pids.iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    i32::from(children_ok != children || parent_ok != 2)
}

/// The configuration a process uses: ieee-dcmd in the parent (the configuration is read),
/// `setenv(KEY, VALUE)`, then a forked child's ieee-dcmd (it keeps what its parent read) and
/// an exec'd child's (`/proc/self/exe ... ieee-dcmd`: a new program reads it afresh). Prints
/// what each saw: on a legacy driver cmd_status OK means the flags were cleared.
pub fn config_inherit(fd: c_int, opts: &Opts, key: &str, value: &str) -> i32 {
    let host = opts.host;
    let mut call = ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64));
    let o = issue(fd, call.request, &mut call.packet);
    println!("parent {}", describe(&o));
    std::env::set_var(key, value);
    let forked = fork();
    if forked == 0 {
        let o = issue(fd, call.request, &mut call.packet);
        println!("fork {}", describe(&o));
        exit_now(o.ret.abs());
    }
    let forked_status = wait_for(forked);
    let exe = std::env::current_exe().expect("current_exe");
    let device = opts
        .device
        .clone()
        .unwrap_or_else(|| crate::DEFAULT_DEVICE.to_owned());
    let argv: Vec<CString> = [
        exe.to_str().expect("exe path"),
        "--device",
        &device,
        "--host",
        &host.to_string(),
        "ieee-dcmd",
    ]
    .iter()
    .map(|s| CString::new(*s).expect("arg"))
    .collect();
    let exec = fork();
    if exec == 0 {
        let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        // SAFETY: a NUL-terminated argv of valid C strings; execv only returns on failure.
        unsafe { libc::execv(ptrs[0], ptrs.as_ptr()) };
        eprintln!(
            "mfi_client: execv failed: {}",
            std::io::Error::last_os_error()
        );
        exit_now(127);
    }
    let exec_status = wait_for(exec);
    println!("fork {forked_status}");
    println!("exec {exec_status}");
    eprintln!(
        "mfi_client: config-inherit: parent={} fork={forked} exec={exec}",
        getpid()
    );
    i32::from(o.ret != 0 || forked_status != "exit=0" || exec_status != "exit=0")
}

/// A thread's first guarded call blocks while the guard reads its configuration (the test
/// makes `MFIGUARD_CONFIG` a FIFO and writes it later); meanwhile the main thread forks. The
/// child issues ieee-dcmd under `alarm(10)`: a child whose copy of the half-read configuration
/// can never complete is killed by SIGALRM instead of hanging the test.
pub fn fork_during_load(fd: c_int, host: u16) -> i32 {
    let tid = Arc::new(AtomicI32::new(0));
    let loader = {
        let tid = Arc::clone(&tid);
        std::thread::spawn(move || {
            let mut call = ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64));
            tid.store(gettid(), SeqCst);
            issue(fd, call.request, &mut call.packet)
        })
    };
    let start = Instant::now();
    while tid.load(SeqCst) == 0 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let blocked = wait_until_sleeping(tid.load(SeqCst), Duration::from_secs(10));
    let child = fork();
    if child == 0 {
        // SAFETY: alarm only arms a timer; SIGALRM's default action ends the child.
        unsafe { libc::alarm(10) };
        let mut call = ctrl_info_with(host, 2048, |b| add_flags(b, IEEE_SGL64));
        let o = issue(fd, call.request, &mut call.packet);
        exit_now(i32::from(!ok(&o)));
    }
    let child_status = wait_for(child);
    let o = loader.join().expect("loader thread");
    println!(
        "loader_blocked={} thread {}",
        u8::from(blocked),
        describe(&o)
    );
    println!("child {child_status}");
    i32::from(!ok(&o) || child_status != "exit=0")
}

// ---- stdin-driven -----------------------------------------------------------------------------

/// Reads rule ids (or `pass`) from stdin and issues each as it is read, printing one line per
/// call (`RULE ret=.. errno=.. (NAME) cmd_status=..`), flushed, so that a test can act between
/// calls (rotate the log, make the sink fail or recover).
///
/// With `MFI_CLIENT_OUTCOMES=LOG` (a JSON audit log), each line also says, as soon as the
/// call returned, how many outcome records LOG holds, `outcomes=N`: a guard that writes a
/// call's outcome record before answering shows at least as many as calls returned.
pub fn lines(fd: c_int, host: u16) -> i32 {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let outcomes_log = std::env::var_os("MFI_CLIENT_OUTCOMES");
    let outcomes = || -> String {
        let Some(log) = &outcomes_log else {
            return String::new();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let n = text
            .lines()
            .filter(|l| l.contains("\"record\":\"outcome\""))
            .count();
        format!(" outcomes={n}")
    };
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let id = line.trim();
        if id.is_empty() {
            continue;
        }
        match rule_call(host, id) {
            Ok(mut c) => {
                let o = issue(fd, c.request, &mut c.packet);
                let _ = writeln!(out, "{id} {}{}", describe(&o), outcomes());
            }
            Err(e) => {
                let _ = writeln!(out, "{id} error={e}");
            }
        }
        let _ = out.flush();
    }
    0
}
