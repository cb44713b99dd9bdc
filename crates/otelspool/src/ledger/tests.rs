//! The ledger's delivery path: tallies kept from the append, or walked when not kept.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otelspool_queue::Entry;
use prost::Message;

use super::tally::JobTally;
use super::{JobLedger, LedgerSettings};
use crate::pipeline::Signal;

fn ledger() -> (Arc<JobLedger>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let l = JobLedger::new(
        LedgerSettings {
            keys: vec!["emerge.job_id".into()],
            max_jobs: 100,
            retention: Duration::from_secs(3600),
            complete_after: Duration::from_secs(30),
            snapshot_interval: Duration::from_secs(1),
            dir: dir.path().to_path_buf(),
        },
        vec![("otlp/logs".into(), Signal::Logs, None)],
    );
    (l, dir)
}

fn tally(job: &str, n: u64) -> JobTally {
    JobTally {
        jobs: vec![(0, job.into(), n)],
        unkeyed: 0,
    }
}

fn entry(id: u64, payload: Bytes) -> Entry {
    Entry {
        id,
        items: 0,
        appended_at: 0,
        payload,
    }
}

/// A log request of `n` records of job `job`.
fn request(job: &str, n: usize) -> Bytes {
    let record = LogRecord {
        attributes: vec![KeyValue {
            key: "emerge.job_id".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(job.into())),
            }),
            ..KeyValue::default()
        }],
        ..LogRecord::default()
    };
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record; n],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    Bytes::from(req.encode_to_vec())
}

/// Scenario: a record is appended with the tally of its receive walk, then delivered; its
/// queued bytes are not a valid request (so a second walk would count nothing).
/// Guarantees: it is counted received at the append and delivered from the kept tally, with
/// no second walk of the batch.
#[test]
fn a_delivery_counts_the_tally_kept_at_the_append() {
    let (l, _dir) = ledger();
    l.queued(0, 5, tally("a", 3));
    assert_eq!(l.job("a").expect("known").counts.received, 3);
    l.delivered(0, &[entry(5, Bytes::from_static(b"\xff\xff\xff"))], 0);
    let j = l.job("a").expect("known");
    assert_eq!(j.counts.delivered, 3);
    assert_eq!(j.counts.received, 3);
}

/// Scenario: a record the ledger holds no tally for (appended before a restart) is delivered,
/// beside one it holds a tally for.
/// Guarantees: the first is counted by walking its bytes, the second from its tally, each
/// once.
#[test]
fn a_record_without_a_kept_tally_is_walked_at_delivery() {
    let (l, _dir) = ledger();
    // Counted received by the restart's scan of the queue folder, which keeps no tally.
    l.lock().received(&tally("walked", 7), 0);
    l.queued(0, 2, tally("kept", 4));
    l.delivered(
        0,
        &[entry(1, request("walked", 7)), entry(2, request("kept", 4))],
        0,
    );
    assert_eq!(l.job("walked").expect("known").counts.delivered, 7);
    assert_eq!(l.job("kept").expect("known").counts.delivered, 4);
    // The kept tally was used up: handing id 2 out again is counted from its bytes (here
    // unreadable, so nothing), not from the tally a second time.
    l.delivered(0, &[entry(2, Bytes::from_static(b"\xff"))], 0);
    assert_eq!(l.job("kept").expect("known").counts.delivered, 4);
}

/// Scenario: records are appended, then given up on (dead-lettered) and dropped by
/// `drop_oldest`.
/// Guarantees: both outcomes are counted from the kept tallies.
#[test]
fn rejections_and_drops_use_the_kept_tallies() {
    let (l, _dir) = ledger();
    l.queued(0, 1, tally("r", 2));
    l.queued(0, 2, tally("d", 5));
    l.gave_up(0, &[entry(1, Bytes::new())], false);
    l.dropping(0, &[(2, Bytes::new())]);
    assert_eq!(l.job("r").expect("known").counts.rejected, 2);
    assert_eq!(l.job("d").expect("known").counts.dropped_full, 5);
}
