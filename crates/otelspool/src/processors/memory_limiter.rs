//! `memory_limiter`: refuse new data with a retryable error while the process's resident
//! memory is above the soft limit (`limit - spike`), as otelcol's memory limiter does, but
//! measured on RSS (what the kernel and the container runtime see), not the heap alone.
//!
//! The check runs every `check_interval` on a timer and also on every request when the last
//! reading is older than the interval, so a burst cannot run far past the limit between ticks.
//! Refusing happens before the request is decoded (otelcol decodes first; core #8632).
//! Before refusing, freed heap is handed back to the OS (`malloc_trim`), the counterpart of
//! the garbage collection otelcol forces: an idle process must not keep refusing because
//! its allocator kept the pages of a past burst.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::pipeline::Refusal;
use crate::telemetry::process::{release_free_memory, resident_memory_bytes};

/// Limits in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Hard limit: `limit_mib`, or `limit_percentage` of total memory.
    pub limit: u64,
    /// Headroom below the hard limit where refusing starts.
    pub spike: u64,
    /// How often memory is read.
    pub check_interval: Duration,
}

impl MemoryLimits {
    /// The soft limit above which data is refused.
    pub fn soft_limit(&self) -> u64 {
        self.limit.saturating_sub(self.spike)
    }
}

/// A running memory limiter; shared by every pipeline that lists it.
#[derive(Debug)]
pub struct MemoryLimiter {
    limits: MemoryLimits,
    over: AtomicBool,
    last_rss: AtomicU64,
}

impl MemoryLimiter {
    /// Creates the limiter and starts its check timer on the current runtime.
    pub fn start(limits: MemoryLimits) -> Arc<MemoryLimiter> {
        let limiter = Arc::new(MemoryLimiter {
            limits,
            over: AtomicBool::new(false),
            last_rss: AtomicU64::new(0),
        });
        limiter.check();
        let weak = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(limits.check_interval.max(Duration::from_millis(10)));
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(l) => l.check(),
                    None => return,
                }
            }
        });
        limiter
    }

    /// Reads RSS and updates the refusing state. Over the soft limit, freed heap is first
    /// returned to the OS and RSS read again: memory that is free but still mapped must not
    /// make the collector refuse data (after a burst, glibc keeps it until asked).
    pub fn check(&self) {
        let mut rss = resident_memory_bytes().unwrap_or(0);
        if rss > self.limits.soft_limit() {
            release_free_memory();
            rss = resident_memory_bytes().unwrap_or(0);
        }
        self.last_rss.store(rss, Ordering::Relaxed);
        let over = rss > self.limits.soft_limit();
        let was = self.over.swap(over, Ordering::Relaxed);
        if over && !was {
            tracing::warn!(
                rss_bytes = rss,
                soft_limit_bytes = self.limits.soft_limit(),
                "memory above the soft limit; refusing new data with a retryable error until it drops"
            );
        } else if was && !over {
            tracing::info!(
                rss_bytes = rss,
                "memory back under the soft limit; accepting data again"
            );
        }
    }

    /// `Err` while memory is above the soft limit.
    pub fn admit(&self) -> Result<(), Refusal> {
        if self.over.load(Ordering::Relaxed) {
            return Err(Refusal::Overloaded(format!(
                "resident memory {} MiB over soft limit {} MiB",
                self.last_rss.load(Ordering::Relaxed) >> 20,
                self.limits.soft_limit() >> 20
            )));
        }
        Ok(())
    }

    /// The configured limits.
    pub fn limits(&self) -> MemoryLimits {
        self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: a limit far below the process's real RSS, then one far above.
    /// Guarantees: the first refuses with a retryable error, the second admits.
    #[tokio::test]
    async fn refuses_above_the_soft_limit_and_admits_below() {
        let low = MemoryLimiter::start(MemoryLimits {
            limit: 1 << 20,
            spike: 0,
            check_interval: Duration::from_secs(1),
        });
        let err = low.admit().expect_err("1 MiB limit must refuse");
        assert!(err.is_retryable());
        let high = MemoryLimiter::start(MemoryLimits {
            limit: 1 << 40,
            spike: 1 << 20,
            check_interval: Duration::from_secs(1),
        });
        assert!(high.admit().is_ok());
    }
}
