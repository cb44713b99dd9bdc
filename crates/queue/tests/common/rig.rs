//! A disk queue on [`FaultFs`] with a record of what it acknowledged, and the checks every
//! fault test makes: refused appends get a retryable error, nothing acknowledged is lost, ids
//! are never reused, and `disk_bytes` matches the segment files.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use otelspool_queue::{AppendError, Queue, QueueOptions};
use tempfile::TempDir;

use super::faultfs::{Fault, FaultFs, Op, Target};
use super::{now_limits, opts, payload, segment_bytes, segment_files, wait_until};

/// Generous bound for anything the I/O thread does in the background.
pub const SOON: Duration = Duration::from_secs(10);

type AppendFuture = Pin<Box<dyn Future<Output = Result<u64, AppendError>> + Send>>;

/// See the module doc.
pub struct Rig {
    pub dir: TempDir,
    pub fs: Arc<FaultFs>,
    pub q: Queue,
    /// Payloads of the appends that returned `Ok`, by id.
    pub ok: BTreeMap<u64, Bytes>,
    /// Payloads of the appends refused with `AppendError::Io`.
    pub refused: Vec<Bytes>,
    /// Ids the consumer acknowledged (they may come back after a reopen: at-least-once).
    pub consumed: BTreeSet<u64>,
    seq: u64,
}

/// Options for the rig's queue on `fs` (fsync on, 4 KiB segments, no payload cache).
pub fn fault_opts(dir: &Path, fs: &Arc<FaultFs>) -> QueueOptions {
    let mut o = opts(dir);
    o.io = fs.clone();
    o
}

impl Rig {
    /// A queue with `fs` armed by `before_open` first, five records appended, and (unless a
    /// fault keeps it from being written) its ledger on disk.
    pub async fn new(before_open: &[Fault]) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = Arc::new(FaultFs::new(dir.path()));
        for f in before_open {
            fs.arm(*f);
        }
        let (q, _) = Queue::open(fault_opts(dir.path(), &fs)).expect("open");
        let mut rig = Rig {
            dir,
            fs,
            q,
            ok: BTreeMap::new(),
            refused: Vec::new(),
            consumed: BTreeSet::new(),
            seq: 0,
        };
        rig.append(5).await;
        if before_open.is_empty() {
            let ledger = rig.path().join("ledger");
            assert!(wait_until(SOON, || ledger.exists()).await, "no ledger");
            // Two more round trips through the I/O thread: the ledger write is finished.
            rig.append(2).await;
        }
        rig
    }

    /// The queue folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn next_payload(&mut self) -> Bytes {
        self.seq += 1;
        payload(self.seq)
    }

    fn record(&mut self, p: Bytes, r: Result<u64, AppendError>) -> Result<u64, AppendError> {
        match &r {
            Ok(id) => {
                assert!(!self.ok.contains_key(id), "id {id} handed out twice");
                self.ok.insert(*id, p);
            }
            Err(AppendError::Io(_)) => self.refused.push(p),
            Err(e) => panic!("expected Ok or a retryable I/O refusal, got {e:?}"),
        }
        r
    }

    /// Appends `n` records one by one; each must succeed.
    pub async fn append(&mut self, n: u64) {
        for _ in 0..n {
            let p = self.next_payload();
            let r = self.q.append(1, p.clone()).await;
            self.record(p, r).expect("append");
        }
    }

    /// Commits `n` appends as one group with `fault` armed: the I/O thread is held in the sync
    /// of one lead append while the `n` are queued behind it, then `fault` is armed and the
    /// thread released. Returns the group's results (the lead's is recorded, not returned).
    pub async fn group(&mut self, n: u64, fault: Fault) -> Vec<Result<u64, AppendError>> {
        self.fs.arm(Fault::new(Op::Sync, Target::Segment).hold());
        let lead_payload = self.next_payload();
        let lead = {
            let q = self.q.clone();
            let p = lead_payload.clone();
            tokio::spawn(async move { q.append(1, p).await })
        };
        let fs = self.fs.clone();
        assert!(
            wait_until(SOON, || fs.holding()).await,
            "writer never synced"
        );
        let mut started = Vec::new();
        for _ in 0..n {
            let p = self.next_payload();
            let q = self.q.clone();
            let pp = p.clone();
            let mut fut: AppendFuture = Box::pin(async move { q.append(1, pp).await });
            // Polled once: the append is sent to the I/O thread and waits for its answer.
            let polled = fut.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            assert!(matches!(polled, Poll::Pending));
            started.push((p, fut));
        }
        self.fs.arm(fault);
        self.fs.release();
        let r = lead.await.expect("join");
        self.record(lead_payload, r).expect("the lead append");
        let mut out = Vec::new();
        for (p, fut) in started {
            let r = fut.await;
            out.push(self.record(p, r));
        }
        out
    }

    /// Takes every unread entry and acknowledges it.
    pub async fn consume_all(&mut self) {
        let s = self.q.stats();
        self.consume((s.entries - s.in_flight) as usize).await;
    }

    /// Takes `n` entries and acknowledges them.
    pub async fn consume(&mut self, n: usize) {
        let mut taken = 0;
        while taken < n {
            let batch = tokio::time::timeout(SOON, self.q.next_batch(now_limits()))
                .await
                .expect("a batch")
                .expect("queue open");
            let ids: Vec<u64> = batch.iter().map(|e| e.id).collect();
            taken += ids.len();
            self.q.ack(&ids);
            self.consumed.extend(ids);
        }
    }

    /// Records acknowledged by an append and not consumed, in id order.
    pub fn expected(&self) -> Vec<(u64, Bytes)> {
        self.ok
            .iter()
            .filter(|(id, _)| !self.consumed.contains(id))
            .map(|(id, p)| (*id, p.clone()))
            .collect()
    }

    /// Checks what a queue delivers after a reopen: every record acknowledged to an append and
    /// not consumed, in order, with its payload; nothing else but consumed records coming back
    /// (at-least-once); and the next id is above every id handed out.
    pub async fn check_reopened(&self, q: &Queue, what: &str) {
        let got = drain_all(q).await;
        let mut last = None;
        for e in &got {
            assert!(last < Some(e.id), "{what}: ids out of order");
            last = Some(e.id);
            assert_eq!(
                self.ok.get(&e.id),
                Some(&e.payload),
                "{what}: delivered id {} was never acknowledged to an append",
                e.id
            );
        }
        let got_ids: BTreeSet<u64> = got.iter().map(|e| e.id).collect();
        for (id, _) in self.expected() {
            assert!(
                got_ids.contains(&id),
                "{what}: acknowledged record {id} lost"
            );
        }
        let id = q.append(1, payload(0)).await.expect("append after reopen");
        let max = self.ok.keys().max().copied().unwrap_or(0);
        assert!(
            id > max,
            "{what}: id {id} reused (ids up to {max} were handed out)"
        );
    }

    /// Checks the live queue: it delivers exactly the records acknowledged and not consumed,
    /// then releases them.
    pub async fn check_live(&self) {
        let got = drain_all(&self.q).await;
        let got: Vec<(u64, Bytes)> = got.into_iter().map(|e| (e.id, e.payload)).collect();
        assert_eq!(got, self.expected(), "live queue contents");
        self.q
            .release(&got.iter().map(|(id, _)| *id).collect::<Vec<_>>());
    }

    /// Waits for the I/O thread to settle and checks that `disk_bytes` is what the segment
    /// files hold.
    pub async fn check_accounting(&self) {
        let (q, dir) = (self.q.clone(), self.path().to_path_buf());
        let settled = wait_until(SOON, || q.stats().disk_bytes == segment_bytes(&dir)).await;
        assert!(
            settled,
            "disk_bytes {} but the segment files hold {} ({:?})",
            self.q.stats().disk_bytes,
            segment_bytes(self.path()),
            segment_files(self.path())
        );
    }

    /// Opens what a power cut now would leave and checks it.
    pub async fn check_power_cut(&self) {
        let image = tempfile::tempdir().expect("tempdir");
        self.fs.power_cut(image.path());
        let (q, _) = Queue::open(opts(image.path())).expect("open after a power cut");
        self.check_reopened(&q, "after a power cut").await;
        q.shutdown();
    }

    /// Shuts the queue down and checks a clean reopen (on the real filesystem).
    pub async fn check_clean_reopen(self) {
        self.q.shutdown();
        let (q, _) = Queue::open(opts(self.path())).expect("reopen");
        self.check_reopened(&q, "after a clean reopen").await;
        q.shutdown();
    }
}

pub use super::drain as drain_all;
