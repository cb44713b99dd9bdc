//! The sampler: every [`SAMPLE_PERIOD`], records each queue's counters for the rates and
//! reads the free space of each persistent queue's filesystem (`statvfs`, on a blocking
//! thread: it is a filesystem call and may stall on a sick disk).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::watch::{SAMPLE_PERIOD, Watch};

/// Bytes available to unprivileged users on the filesystem holding `dir` (`f_bavail *
/// f_frsize`, what `df` shows as available); `None` when it cannot be read.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Reads the free space of every persistent queue now (blocking).
pub fn sample_free_space(watch: &Watch) {
    for q in &watch.queues {
        if let Some(dir) = &q.dir {
            let free = free_bytes(dir);
            if free.is_none() && q.free_bytes().is_some() {
                tracing::warn!(exporter = %q.exporter, signal = %q.signal, dir = %dir.display(), "cannot read the free space of the queue's filesystem");
            }
            q.set_free_bytes(free);
        }
    }
}

/// Samples until `stop`: free space first (so health and metrics have it from the start),
/// then every [`SAMPLE_PERIOD`].
pub async fn run_sampler(watch: Arc<Watch>, stop: CancellationToken) {
    let persistent = watch.queues.iter().any(|q| q.dir.is_some());
    let mut tick = tokio::time::interval(SAMPLE_PERIOD);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        watch.sample_counters(Instant::now());
        if persistent {
            let w = Arc::clone(&watch);
            if let Err(e) = tokio::task::spawn_blocking(move || sample_free_space(&w)).await {
                tracing::warn!(error = %e, "free-space sampling task failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: the free space of a temporary folder's filesystem, read twice.
    /// Guarantees: a plausible reading (more than 0, less than 2^60 bytes); a missing folder
    /// reads as `None`.
    #[test]
    fn reads_free_space_of_a_real_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let free = free_bytes(dir.path()).expect("statvfs");
        assert!(free > 0 && free < 1 << 60, "{free}");
        assert_eq!(free_bytes(&dir.path().join("missing")), None);
    }
}
