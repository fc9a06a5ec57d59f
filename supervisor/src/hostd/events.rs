//! Controller events: the driver's poll flag relayed to the callers' polls.

use std::sync::Mutex;

/// The driver's event flag, relayed: set when a poll of the driver's node says readable, seen
/// (and cleared) by the first caller's poll after, as the driver's own flag is.
#[derive(Default)]
pub(super) struct Events {
    state: Mutex<EventState>,
}

#[derive(Default)]
pub(super) struct EventState {
    pending: bool,
    /// The polled files to wake at the next event (`kh`), each once.
    waiting: Vec<u64>,
}

/// How many polled files are remembered for a wake-up (a closed file's handle is forgotten at
/// the next event).
pub(super) const POLL_WAITERS_MAX: usize = 1024;

impl Events {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, EventState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn poll(&self, kh: u64, notify: bool) -> bool {
        let mut st = self.lock();
        if st.pending {
            st.pending = false;
            return true;
        }
        if notify && !st.waiting.contains(&kh) && st.waiting.len() < POLL_WAITERS_MAX {
            st.waiting.push(kh);
        }
        false
    }

    /// An event came: flag it, and the files to wake.
    pub(super) fn arrived(&self) -> Vec<u64> {
        let mut st = self.lock();
        st.pending = true;
        std::mem::take(&mut st.waiting)
    }
}
