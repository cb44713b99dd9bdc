//! The recovery report while the background indexer builds it: readable so far at any time,
//! final once every segment found at open has been scanned, awaited by blocking callers
//! (`Queue::open`) and async ones (`Queue::recovered`) alike.

use std::sync::{Condvar, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::error::OpenError;
use crate::stats::RecoveryReport;

#[derive(Debug, Default)]
struct Shared {
    report: RecoveryReport,
    finished: bool,
    /// Why indexing stopped, for the blocking open to return (taken once).
    failed: Option<OpenError>,
}

/// The report and whether it is final.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    shared: Mutex<Shared>,
    done: Condvar,
    notify: Notify,
}

impl Progress {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The report so far (the final one once finished).
    pub fn report(&self) -> RecoveryReport {
        self.lock().report.clone()
    }

    /// The final report, if indexing has finished.
    pub fn finished(&self) -> Option<RecoveryReport> {
        let s = self.lock();
        s.finished.then(|| s.report.clone())
    }

    /// Adds what scanning one segment found.
    pub fn update(&self, f: impl FnOnce(&mut RecoveryReport)) {
        f(&mut self.lock().report);
    }

    /// Marks the report final and wakes every waiter.
    pub fn finish(&self) {
        self.lock().finished = true;
        self.done.notify_all();
        self.notify.notify_waiters();
    }

    /// Records why indexing stopped early and wakes every waiter (the report stays unfinished).
    pub fn fail(&self, e: OpenError) {
        self.lock().failed = Some(e);
        self.done.notify_all();
        self.notify.notify_waiters();
    }

    /// Blocks until indexing finished (the final report) or failed (its error).
    pub fn wait(&self) -> Result<RecoveryReport, OpenError> {
        let mut s = self.lock();
        loop {
            if let Some(e) = s.failed.take() {
                return Err(e);
            }
            if s.finished {
                return Ok(s.report.clone());
            }
            s = self.done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Waits until indexing finished; returns the final report.
    pub async fn wait_async(&self) -> RecoveryReport {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.finished() {
                return r;
            }
            notified.await;
        }
    }
}
