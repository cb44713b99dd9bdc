//! Where a request's CPU work runs: gzip inflation, validation (the wire walk) and OTLP/JSON
//! conversion stay on the async worker for small bodies and move to tokio's blocking pool for
//! large ones, at most one such job per core at a time.
//!
//! Why a threshold: a hop to the blocking pool costs a thread wake-up and a cross-thread
//! hand-off each way (~70 µs on the loaded 2-vCPU reference machine; figures in
//! docs/architecture.md), more than the whole CPU work of a request of the plan's size (10
//! records, ~4 KB: 4.5 µs to walk, 15 µs gzipped). A large body (a 1 MiB batch, or gzip that
//! inflates to it) takes milliseconds, during which an async worker would answer nobody
//! else's acks. Each threshold is where the work done inline reaches about one hop.
//!
//! Why a bound: the blocking pool grows to 512 threads; CPU-bound jobs beyond the cores only
//! add context switches and memory. Jobs wait for a slot on a semaphore (asynchronously: a
//! waiting request holds no thread), and the slot travels with the job, so a request whose
//! client went away still counts until its job ends.

use std::sync::{Arc, LazyLock};

use tokio::sync::Semaphore;

/// Plain (uncompressed) bodies from this many bytes are walked off the async workers.
pub const OFFLOAD_MIN_BYTES: usize = 64 << 10;
/// Gzip bodies from this many compressed bytes are inflated and walked off the async workers
/// (log records compress 10 to 26 times: 4 KiB inflate to 40-100 KiB).
pub const OFFLOAD_MIN_GZIP_BYTES: usize = 4 << 10;
/// OTLP/JSON bodies from this many bytes (compressed or not) are converted off the async
/// workers: conversion costs several times a walk per byte.
pub const OFFLOAD_MIN_JSON_BYTES: usize = 8 << 10;

/// Jobs running on the blocking pool at once: one per core.
static SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    Arc::new(Semaphore::new(cores))
});

/// Whether a body of `received` bytes is worth a hop to the blocking pool.
pub fn worth_it(received: usize, gzip: bool, json: bool) -> bool {
    let min = if json {
        OFFLOAD_MIN_JSON_BYTES
    } else if gzip {
        OFFLOAD_MIN_GZIP_BYTES
    } else {
        OFFLOAD_MIN_BYTES
    };
    received >= min
}

/// Runs `work` on the blocking pool once a slot is free; `None` when the runtime shut down
/// before it ran. A panic in `work` is resumed here.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let slot = SLOTS.clone().acquire_owned().await.ok();
    let job = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work()
    });
    match job.await {
        Ok(t) => Some(t),
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: bodies of the plan's size (10 records, ~4 KB, ~1 KB gzipped) and bodies at
    /// each threshold, plain, gzip and JSON.
    /// Guarantees: the small ones stay on the async worker; each threshold moves its kind.
    #[test]
    fn only_large_bodies_are_worth_a_hop() {
        for (gzip, json) in [(false, false), (true, false), (false, true), (true, true)] {
            assert!(!worth_it(1 << 10, gzip, json), "{gzip} {json}");
        }
        assert!(!worth_it(4 << 10, false, false));
        assert!(!worth_it(400, true, false));
        assert!(!worth_it(OFFLOAD_MIN_BYTES - 1, false, false));
        assert!(worth_it(OFFLOAD_MIN_BYTES, false, false));
        assert!(!worth_it(OFFLOAD_MIN_GZIP_BYTES - 1, true, false));
        assert!(worth_it(OFFLOAD_MIN_GZIP_BYTES, true, false));
        assert!(!worth_it(OFFLOAD_MIN_JSON_BYTES - 1, false, true));
        assert!(worth_it(OFFLOAD_MIN_JSON_BYTES, true, true));
    }

    /// Scenario: a job run from a single-threaded runtime.
    /// Guarantees: it runs on another thread than the runtime's, holding one of the slots
    /// while it runs, and its result comes back.
    #[tokio::test(flavor = "current_thread")]
    async fn work_runs_on_another_thread_holding_a_slot() {
        let here = std::thread::current().id();
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let (there, free) = run(|| (std::thread::current().id(), SLOTS.available_permits()))
            .await
            .expect("ran");
        assert_ne!(there, here);
        assert!(free < cores, "{free} of {cores} slots free while a job ran");
    }

    /// Scenario: a job that panics.
    /// Guarantees: the panic reaches the caller (not swallowed into a wrong answer).
    #[tokio::test(flavor = "current_thread")]
    async fn a_panic_in_the_work_reaches_the_caller() {
        let caught = tokio::spawn(run(|| -> u8 { panic!("boom") })).await;
        assert!(caught.expect_err("panicked").is_panic());
    }
}
