//! The ledger's snapshot file: the settled counts of every job and, per tracked queue, the
//! id below which (plus the listed exceptions at or above it) records are settled. JSON,
//! written whole and atomically (temporary file, fsync, rename, folder fsync).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

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

fn counts_json(c: &Counts) -> Value {
    json!([
        c.received,
        c.delivered,
        c.rejected,
        c.dropped_full,
        c.dropped_expired
    ])
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
pub fn encode(book: &Book, names: &[String]) -> Vec<u8> {
    let jobs: Vec<Value> = book
        .jobs
        .iter()
        .map(|(v, j)| {
            json!({
                "id": &**v,
                "key": j.key,
                "settled": counts_json(&j.settled),
                "first_seen_ms": j.first_seen_ms,
                "last_seen_ms": j.last_seen_ms,
                "last_delivery_ms": j.last_delivery_ms,
            })
        })
        .collect();
    let queues: serde_json::Map<String, Value> = book
        .queues
        .iter()
        .zip(names)
        .map(|(q, name)| {
            (
                name.clone(),
                json!({
                    "settled_below": q.settled_below,
                    "exceptions": q.exceptions.iter().collect::<Vec<_>>(),
                }),
            )
        })
        .collect();
    json!({
        "version": VERSION,
        "evicted": book.evicted,
        "unattributed_rejected": book.unattributed_rejected,
        "queues": queues,
        "jobs": jobs,
    })
    .to_string()
    .into_bytes()
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
