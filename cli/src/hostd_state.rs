//! The host-wide guard's state as JSON, one shape for `mfiguard-hostd --status --json` and
//! the `hostd` object of `mfiguard-run --check --json`, built from the one reader of that state
//! (`mfiguard_supervisor::hostd::Status`, and the lock's `lock::status`). Documented in
//! mfiguard-hostd(8) (JSON OUTPUT); fields are only ever added.

use std::path::Path;

use serde_json::{json, Value};

use mfiguard_supervisor::hostd::instance::DaemonState;
use mfiguard_supervisor::hostd::lock::LockStatus;
use mfiguard_supervisor::hostd::{dev_name, NodeState, Status};

/// The state of the node at `path`, its daemons and the lock.
pub fn to_json(path: &Path, st: &Status, lock: &LockStatus) -> Value {
    let node = match st.node {
        NodeState::Missing => json!({"path": path, "kind": "missing", "device": null}),
        NodeState::Char { rdev, .. } => {
            json!({"path": path, "kind": "char", "device": dev_name(rdev)})
        }
        NodeState::NotCharDevice => json!({"path": path, "kind": "other", "device": null}),
    };
    let at_path = st.at_path().map(|d| d.name.clone());
    let daemons: Vec<Value> = st
        .daemons
        .iter()
        .map(|d| {
            let in_driver = match d.state {
                DaemonState::Live { in_driver } | DaemonState::Stuck { in_driver } => {
                    Some(in_driver)
                }
                DaemonState::Unknown => None,
            };
            json!({
                "name": d.name,
                "device": dev_name(d.dev),
                "pid": d.pid,
                "state": d.state.name(),
                "threads_in_driver": in_driver,
                "at_path": at_path.as_deref() == Some(d.name.as_str()),
            })
        })
        .collect();
    let (allowed_pid, allowed_cgroup) = match lock.allowed {
        Some((tgid, cgroup)) => (Some(tgid), Some(cgroup)),
        None => (None, None),
    };
    json!({
        "state": st.coverage().name(),
        "description": st.describe(path),
        "node": node,
        "driver": {"loaded": st.driver_major.is_some(), "major": st.driver_major},
        "daemons": daemons,
        "lock": {
            "state": lock.state.name(),
            "mechanism": lock.mechanism.map(|m| m.name()),
            "major": (lock.major != 0).then_some(lock.major),
            "allowed_pid": allowed_pid,
            "allowed_cgroup": allowed_cgroup,
            "probe": lock.probe.map(|p| p.name()),
            "detail": lock.detail,
        },
    })
}
