//! The `appended_*` counters: what received-rate figures are computed from.

mod common;

use otelspool_queue::{AppendError, Queue, QueueOptions};

use common::{drain, opts, payload};

/// Scenario: appends to a persistent and to an in-memory queue, some refused as full, then
/// the queue is reopened with its backlog.
/// Guarantees: `appended_entries`/`appended_items` count exactly the durable appends (not
/// the refused ones), do not fall when data is acknowledged, and start at 0 after a reopen
/// (recovered entries are reported by the recovery report, not counted as appended).
#[tokio::test]
async fn count_durable_appends_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = opts(dir.path());
    o.max_entries = 5;
    let (q, _) = Queue::open(o.clone()).expect("open");
    let mut refused = 0;
    for n in 0..8 {
        match q.append(3, payload(n)).await {
            Ok(_) => {}
            Err(AppendError::Full { .. }) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(refused, 3);
    let c = q.counters();
    assert_eq!((c.appended_entries, c.appended_items), (5, 15));
    let got = drain(&q).await;
    q.ack(&got[..2].iter().map(|e| e.id).collect::<Vec<_>>());
    let c = q.counters();
    assert_eq!((c.appended_entries, c.appended_items), (5, 15));
    q.shutdown();

    let (q, report) = Queue::open(o).expect("reopen");
    assert_eq!(report.entries, 3);
    assert_eq!(q.counters().appended_entries, 0);
    q.shutdown();

    let (mem, _) = Queue::open(QueueOptions::new("mem", None)).expect("memory queue");
    mem.append(7, payload(1)).await.expect("append");
    let c = mem.counters();
    assert_eq!((c.appended_entries, c.appended_items), (1, 7));
}
