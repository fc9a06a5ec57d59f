//! What a forked child must not inherit from its parent: the per-process counters of the audit
//! trail. A child's records start again at `seq` 1, it does not report its parent's lost
//! records as its own (`records_lost`), and it reports its own first sink failure on stderr
//! (once per process, as the parent did). A `pthread_atfork` child handler, registered by a
//! constructor while the library loads, resets them; it only stores to atomics.
//!
//! The configuration needs nothing here: a forked child keeps what its parent read (see
//! `config.rs`), and the pid is cached in a wipe-on-fork page (`snapshot.rs`). A child made by
//! glibc's `_Fork` or a raw `clone` runs no atfork handler: it keeps counting where its parent
//! was, and its records stay distinct by `(pid, seq)`. A `vfork` or `posix_spawn` child shares
//! its parent's memory until it execs and must not touch these counters: no handler runs for
//! it, which is what it needs.

#![allow(unsafe_code)]

extern "C" fn in_child() {
    mfiguard_core::guarded::after_fork();
    crate::audit::after_fork();
}

extern "C" fn register_at_load() {
    // SAFETY: pthread_atfork only records the handler; the handler stores to atomics, which is
    // all a child of a multi-threaded parent may safely do before it execs.
    unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
}

/// The constructor: register the child handler while the library loads.
#[used]
#[link_section = ".init_array"]
static REGISTER_AT_LOAD: extern "C" fn() = register_at_load;
