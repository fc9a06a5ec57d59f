//! Audit records and the sinks they go to.
//!
//! # Records
//!
//! A guarded call that reaches the kernel produces two records sharing a `seq`:
//!
//! - `"record":"decision"`, written **before** the kernel sees the call: who (`pid`, `exe`,
//!   `uid`), what (`request`, the packet's fields, `flags` as sent by the caller and `flags_sent`
//!   as sent to the kernel), the `verdict` and every finding. `ret`, `errno`, `cmd_status` and
//!   `latency_us` are `null`. If the host dies inside the driver (the seed's crash), this record
//!   is the evidence; with `MFIGUARD_LOG_SYNC=1` it is on disk before the call proceeds.
//! - `"record":"outcome"`, written after the call: every field again, now with the kernel's
//!   `ret`, `errno`, `cmd_status` (`null` unless the kernel wrote it back, which it does only
//!   on success) and the time the call spent below us (`latency_us`).
//!
//! A call the kernel never sees (a rejection, an unreadable packet, an internal error) has only
//! the outcome record. Every call thus has exactly one outcome record; a decision without an
//! outcome means the process died inside the call. `ts` is each record's own time.
//!
//! Configuration problems produce `"record":"error"` records (`key`, `value`, `message`).
//!
//! Who ran the tool ([`Invoker`]: `sudo_user`/`sudo_uid` when sudo set them, the kernel's
//! `login_uid`, the tool's `argv` bounded to [`ARGV_MAX`] bytes) is read once per process and
//! added to every record after `uid`, the nested path included (it only reads what was
//! published).
//!
//! Records are written by hand, not with serde: the format is small and fixed, and the same code
//! must run without allocating inside a signal handler (see [`emit`]).
//!
//! # Sinks
//!
//! - a file: one JSON object per line, each line written with a single `write` on a descriptor
//!   opened `O_APPEND` for that record and closed after it, so concurrent processes never
//!   interleave partial lines, a log rotated away is simply re-created by the next record, and
//!   no descriptor of ours stays in the host (where a daemonising host could close or reuse it).
//!   The file must be a regular file owned by root or by this process's effective uid: a FIFO
//!   (which would hang the tool), a device, a directory, a symlink (never followed) or a file
//!   someone else pre-created is refused ([`Refusal`]), never written to, and its records go
//!   to stderr instead. A file the guard creates is mode 0640, group `adm` where that exists
//!   (what logrotate's `create 0640 root adm` makes);
//! - syslog: one readable line per record, sent as a datagram to `/dev/log` without ever
//!   waiting (`MSG_DONTWAIT`), facility
//!   `authpriv`, tag `mfiguard` and the pid (what `openlog("mfiguard", LOG_PID, LOG_AUTHPRIV)`
//!   would produce); warning for rejections, notice for rewrites, info otherwise. We do not use
//!   libc's `openlog`/`syslog`: `openlog` is process-wide state the host may use for its own
//!   messages, `syslog` cannot report a failure (needed by `MFIGUARD_LOG_REQUIRED`), and it takes
//!   a lock and allocates (unusable from a signal handler);
//! - stderr: one readable line per record, with one `write`, issued only when stderr can take
//!   it within a short grace period (`poll`, 200 ms): a tool whose stderr is a pipe nobody
//!   reads loses records, it is never stalled by them (see `sys::write_stderr_nowait`).
//!
//! The syslog sink prefers the journal: when systemd-journald's native socket
//! ([`JOURNAL_SOCKET`]) exists, each record goes there as one datagram of the native protocol,
//! the readable line as `MESSAGE` plus structured fields (`SYSLOG_IDENTIFIER=mfiguard`,
//! `PRIORITY`, `SYSLOG_FACILITY=10`, `MFIGUARD_VERDICT`, `MFIGUARD_RULE` once per finding,
//! `MFIGUARD_CMD`, `MFIGUARD_OPCODE`, ...: see [`journal_entry`]), so that
//! `journalctl MFIGUARD_VERDICT=reject` finds them; without it (or when the journal refuses the
//! datagram) the record goes to `/dev/log` as before. A record from the nested path goes to
//! stderr, as for syslog.
//!
//! A sink that fails never harms the call: the record is counted as lost (`records_lost` in the
//! next record that is written), and the first failure in the process is reported on stderr.
//! With `MFIGUARD_LOG_REQUIRED=1` the guard fails the call closed instead when the record that
//! precedes the kernel call cannot be written (see `guarded::recorder`).
//!
//! # Layout
//!
//! - `record`: the records and their parts; `invoker`: who ran the tool;
//! - `json` and `line`: a record as a JSON object, as a readable line; `time`, `text`: their
//!   timestamps and small formats; `buffers`: where a record is assembled (a [`StackBuf`] in a
//!   signal handler);
//! - `sink`: one `Sink` a destination (`file`, `syslog` with `journal`, `stderr`)
//!   behind one mapping from the configuration (`sink::with_sink`);
//! - `emit`: rendering for the sink, sending, counting what was lost; `report`: the one-line
//!   reports on stderr.

mod buffers;
mod emit;
mod invoker;
mod json;
mod line;
mod record;
mod report;
mod sink;
#[cfg(test)]
mod tests;
mod text;
mod time;

pub use buffers::{LineBuf, StackBuf, NESTED_BUF};
pub use emit::{after_fork, emit, emit_config_error, set_build};
pub use invoker::{invoker, invoker_if_read, Invoker, ARGV_MAX, SUDO_USER_MAX};
pub use record::{
    AenGap, CallRecord, ErrorRecord, Guard, GuardIssue, Outcome, PacketInfo, Phase, Record, Who,
    SCHEMA_VERSION,
};
pub use report::{report_elsewhere, SinkName};
pub use sink::file::{Refusal, CREATE_MODE};
pub use sink::journal::{journal_entry, JOURNAL_SOCKET};
pub use sink::syslog::SYSLOG_SOCKET;
pub use time::{parse_rfc3339, Rfc3339, Rfc3339Seconds};
