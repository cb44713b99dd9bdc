//! Readers waiting in `next_batch` are woken by appends only when it matters (the first unread
//! entry, or a full batch), and never miss either.

mod common;

use std::time::Duration;

use common::*;
use otelspool_queue::{BatchLimits, Entry, Queue, QueueOptions};
use tokio::sync::mpsc;

/// Longest any step may take before the test counts it as a hang.
const HANG: Duration = Duration::from_secs(30);

fn limits(min_items: u64, linger: Duration) -> BatchLimits {
    BatchLimits {
        min_items,
        linger,
        max_items: 0,
        max_bytes: u64::MAX,
    }
}

/// Readers waiting in `next_batch`; each sends what it got on the channel.
struct Readers {
    tx: mpsc::UnboundedSender<Option<Vec<Entry>>>,
    rx: mpsc::UnboundedReceiver<Option<Vec<Entry>>>,
}

impl Readers {
    fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Readers { tx, rx }
    }

    fn spawn(&self, q: &Queue, n: usize, l: BatchLimits) {
        for _ in 0..n {
            let (q, tx) = (q.clone(), self.tx.clone());
            tokio::spawn(async move { tx.send(q.next_batch(l).await) });
        }
    }

    /// What the next reader to return got.
    async fn next(&mut self) -> Option<Vec<Entry>> {
        tokio::time::timeout(HANG, self.rx.recv())
            .await
            .expect("no reader returned")
            .expect("reader tasks alive")
    }

    /// The next batch a reader returns.
    async fn batch(&mut self) -> Vec<Entry> {
        self.next().await.expect("a batch, not a closed queue")
    }
}

/// Lets spawned readers reach their wait.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

async fn a_full_batch_wakes_readers_that_would_otherwise_wait_an_hour(o: QueueOptions) {
    let (q, _) = Queue::open(o).expect("open");
    let mut readers = Readers::new();
    readers.spawn(&q, 3, limits(10, Duration::from_secs(3600)));
    settle().await;
    for n in 0..3 {
        q.append(3, payload(n)).await.expect("append");
    }
    settle().await;
    assert_eq!(q.stats().in_flight, 0, "9 items are not a batch of 10");
    q.append(3, payload(3)).await.expect("append");
    let batch = readers.batch().await;
    assert_eq!(batch.iter().map(|e| e.items).sum::<u32>(), 12);
    let bodies: Vec<_> = batch.iter().map(|e| e.payload.clone()).collect();
    assert_eq!(bodies, (0..4).map(payload).collect::<Vec<_>>());
    q.shutdown();
    for _ in 0..2 {
        let got = readers.next().await;
        assert!(
            got.is_none(),
            "closing wakes the other readers, with nothing to read"
        );
    }
}

/// Scenario: three readers wait for batches of 10 items with a one-hour linger on a disk
/// queue; 9 items are appended, then 3 more.
/// Guarantees: nothing is handed out at 9 items; the append that makes the batch full wakes a
/// reader, which gets all 12 items in order at once; closing wakes the others with `None`.
#[tokio::test]
async fn a_full_batch_wakes_a_reader_of_a_disk_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    a_full_batch_wakes_readers_that_would_otherwise_wait_an_hour(opts(dir.path())).await;
}

/// Scenario: the same with an in-memory queue.
/// Guarantees: the same.
#[tokio::test]
async fn a_full_batch_wakes_a_reader_of_an_in_memory_queue() {
    a_full_batch_wakes_readers_that_would_otherwise_wait_an_hour(QueueOptions::new("mem", None))
        .await;
}

/// Scenario: readers wait on an empty disk queue for batches of 100 items with a short linger;
/// one item is appended, and after it has been read, another one.
/// Guarantees: each lone item is handed out (the first unread entry wakes the readers, who
/// then wait out the linger instead of waiting for a batch that never fills).
#[tokio::test]
async fn a_first_entry_starts_the_linger_of_readers_waiting_on_an_empty_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (q, _) = Queue::open(opts(dir.path())).expect("open");
    let l = limits(100, Duration::from_millis(100));
    let mut readers = Readers::new();
    readers.spawn(&q, 3, l);
    settle().await;
    q.append(1, payload(0)).await.expect("append");
    let batch = readers.batch().await;
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].payload, payload(0));
    q.ack(&[batch[0].id]);
    readers.spawn(&q, 1, l);
    settle().await;
    q.append(1, payload(1)).await.expect("append");
    let batch = readers.batch().await;
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].payload, payload(1));
    q.shutdown();
}
