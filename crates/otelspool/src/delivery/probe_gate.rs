//! The probe gate of one queue: while the backend fails, one consumer at a time probes it.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Mutex, MutexGuard};

/// While an exporter's sends fail, only one of its consumers at a time takes a batch and
/// tries (holding the probe through its backoff); the others wait. Without it, every consumer
/// keeps reading, merging and compressing a full batch against a dead backend: memory the
/// memory limiter (which gates receivers) cannot see, and load on a backend that is down.
#[derive(Debug, Default)]
pub struct ProbeGate {
    failing: AtomicBool,
    probe: Mutex<()>,
}

impl ProbeGate {
    pub(super) fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    pub(super) fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }

    pub(super) async fn probe(&self) -> MutexGuard<'_, ()> {
        self.probe.lock().await
    }
}
