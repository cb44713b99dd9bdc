//! The ledger's snapshot file: the settled counts of every job and, per tracked queue, the
//! id below which (plus the listed exceptions at or above it) records are settled. JSON,
//! written whole and atomically (temporary file, fsync, rename, folder fsync).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::book::{Book, Counts, Job};

/// Snapshot format version.
const VERSION: u64 = 1;
/// The file's name in the ledger's folder.
pub const FILE_NAME: &str = "snapshot.json";

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be read.
    #[error("could not read the job ledger snapshot {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not a snapshot of this version.
    #[error("the job ledger snapshot {path} is damaged or of another version")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
}

fn counts_of(v: &Value) -> Option<Counts> {
    let a = v.as_array()?;
    let n = |i: usize| a.get(i).and_then(Value::as_u64);
    Some(Counts {
        received: n(0)?,
        delivered: n(1)?,
        rejected: n(2)?,
        dropped_full: n(3)?,
        dropped_expired: n(4)?,
    })
}

/// Encodes the settled part of `book`; `names` are the tracked queues' names by index.
/// Written straight into one buffer (runs under the ledger's lock, every
/// `snapshot_interval`, over up to `max_jobs` jobs): building a `serde_json::Value` first
/// cost an allocation per field. Strings go through `serde_json` for their escaping.
pub fn encode(book: &Book, names: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + book.jobs.len() * 160);
    // Writes into a Vec cannot fail.
    let _ = write_snapshot(&mut out, book, names);
    out
}

fn write_snapshot(out: &mut Vec<u8>, book: &Book, names: &[String]) -> std::io::Result<()> {
    write!(
        out,
        r#"{{"version":{VERSION},"evicted":{},"unattributed_rejected":{},"queues":{{"#,
        book.evicted, book.unattributed_rejected
    )?;
    for (i, (q, name)) in book.queues.iter().zip(names).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, name)?;
        write!(
            out,
            r#":{{"settled_below":{},"exceptions":["#,
            q.settled_below
        )?;
        for (k, id) in q.exceptions.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            write!(out, "{id}")?;
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(br#"},"jobs":["#);
    for (i, (v, j)) in book.jobs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"id":"#);
        serde_json::to_writer(&mut *out, v)?;
        let c = &j.settled;
        write!(
            out,
            r#","key":{},"settled":[{},{},{},{},{}],"first_seen_ms":{},"last_seen_ms":{},"last_delivery_ms":"#,
            j.key,
            c.received,
            c.delivered,
            c.rejected,
            c.dropped_full,
            c.dropped_expired,
            j.first_seen_ms,
            j.last_seen_ms
        )?;
        match j.last_delivery_ms {
            Some(ms) => write!(out, "{ms}}}")?,
            None => out.extend_from_slice(b"null}"),
        }
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

/// Reads a snapshot into `book` (whose `queues` are already laid out for `names`). A missing
/// file is an empty ledger.
pub fn load(path: &Path, book: &mut Book, names: &[String]) -> Result<(), SnapshotError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(SnapshotError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let malformed = || SnapshotError::Malformed {
        path: path.to_owned(),
    };
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
    if v["version"].as_u64() != Some(VERSION) {
        return Err(malformed());
    }
    book.evicted = v["evicted"].as_u64().unwrap_or(0);
    book.unattributed_rejected = v["unattributed_rejected"].as_u64().unwrap_or(0);
    for (q, name) in book.queues.iter_mut().zip(names) {
        let Some(qv) = v["queues"].get(name) else {
            continue;
        };
        q.settled_below = qv["settled_below"].as_u64().ok_or_else(malformed)?;
        q.exceptions = qv["exceptions"]
            .as_array()
            .ok_or_else(malformed)?
            .iter()
            .filter_map(Value::as_u64)
            .collect::<BTreeSet<u64>>();
    }
    for jv in v["jobs"].as_array().ok_or_else(malformed)? {
        let id = jv["id"].as_str().ok_or_else(malformed)?;
        let settled = counts_of(&jv["settled"]).ok_or_else(malformed)?;
        book.jobs.insert(
            id.into(),
            Job {
                key: jv["key"].as_u64().unwrap_or(0) as u8,
                live: settled,
                settled,
                first_seen_ms: jv["first_seen_ms"].as_u64().unwrap_or(0),
                last_seen_ms: jv["last_seen_ms"].as_u64().unwrap_or(0),
                last_delivery_ms: jv["last_delivery_ms"].as_u64(),
                notify: None,
            },
        );
    }
    Ok(())
}

/// Writes `bytes` as the snapshot in `dir`, atomically and durably.
pub fn write(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join("snapshot.json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(FILE_NAME))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::book::QueueBook;
    use super::*;

    /// Scenario: a book with two jobs (one whose id needs escaping and was never delivered,
    /// one delivered) and one tracked queue with two exceptions is encoded, then loaded into
    /// an empty book.
    /// Guarantees: the file is the JSON document of format version 1 (the shape earlier
    /// builds wrote and read), and loading it gives back every settled count, time and
    /// exception.
    #[test]
    fn a_snapshot_round_trips_in_format_1() {
        let mut book = Book {
            queues: vec![QueueBook::default()],
            evicted: 3,
            unattributed_rejected: 4,
            ..Book::default()
        };
        book.queues[0].settled_below = 10;
        book.queues[0].exceptions = [12, 15].into();
        let settled = Counts {
            received: 9,
            delivered: 5,
            rejected: 1,
            dropped_full: 2,
            dropped_expired: 1,
        };
        book.jobs.insert(
            "j \"1\" ü".into(),
            Job {
                key: 0,
                settled,
                first_seen_ms: 100,
                last_seen_ms: 200,
                ..Job::default()
            },
        );
        book.jobs.insert(
            "wf".into(),
            Job {
                key: 1,
                settled: Counts::default(),
                first_seen_ms: 1,
                last_seen_ms: 2,
                last_delivery_ms: Some(3),
                ..Job::default()
            },
        );
        let names = vec!["otlp/logs".to_string()];
        let bytes = encode(&book, &names);
        let v: Value = serde_json::from_slice(&bytes).expect("valid JSON");
        let mut jobs = v["jobs"].as_array().expect("jobs").clone();
        jobs.sort_by_key(|j| j["id"].as_str().map(str::to_owned));
        assert_eq!(
            json!({"version": v["version"], "evicted": v["evicted"],
                   "unattributed_rejected": v["unattributed_rejected"],
                   "queues": v["queues"], "jobs": jobs}),
            json!({
                "version": 1, "evicted": 3, "unattributed_rejected": 4,
                "queues": {"otlp/logs": {"settled_below": 10, "exceptions": [12, 15]}},
                "jobs": [
                    {"id": "j \"1\" ü", "key": 0, "settled": [9, 5, 1, 2, 1],
                     "first_seen_ms": 100, "last_seen_ms": 200, "last_delivery_ms": null},
                    {"id": "wf", "key": 1, "settled": [0, 0, 0, 0, 0],
                     "first_seen_ms": 1, "last_seen_ms": 2, "last_delivery_ms": 3},
                ],
            })
        );
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), &bytes).expect("write");
        let mut back = Book {
            queues: vec![QueueBook::default()],
            ..Book::default()
        };
        load(&dir.path().join(FILE_NAME), &mut back, &names).expect("load");
        assert_eq!((back.evicted, back.unattributed_rejected), (3, 4));
        assert_eq!(back.queues[0].settled_below, 10);
        assert_eq!(back.queues[0].exceptions, [12, 15].into());
        let j = &back.jobs["j \"1\" ü"];
        assert_eq!((j.settled, j.live, j.key), (settled, settled, 0));
        assert_eq!(
            (j.first_seen_ms, j.last_seen_ms, j.last_delivery_ms),
            (100, 200, None)
        );
        assert_eq!(back.jobs["wf"].last_delivery_ms, Some(3));
        assert_eq!(back.jobs["wf"].key, 1);
    }
}
