//! Exact loss accounting: which acknowledged records reached the backend, and how often.
//!
//! Inputs are the loadgen's ack logs (one acknowledged record id per line) and the test
//! backend's record files (JSON lines; a log record's id is the `id=` token of its body, see
//! [`crate::loadgen::records`]). Lines cut short by a kill are skipped.
//!
//! - `acked`: distinct ids in the ack logs;
//! - `delivered`: acked ids found at least once in the record files;
//! - `duplicates`: ids found more than once (`duplicate_copies` counts the extra copies);
//! - `lost`: acked ids never found: a broken guarantee;
//! - `unexpected`: ids of the same runs found but never acked: fine under at-least-once (the
//!   answer to a delivered request was lost, or the run's deadline cut it short).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::loadgen::records::id_in_body;

/// Largest number of example ids listed per category.
pub const MAX_EXAMPLES: usize = 20;

/// What to compare.
#[derive(Clone, Debug, Default)]
pub struct CheckInput {
    /// Loadgen ack logs.
    pub ack_logs: Vec<PathBuf>,
    /// Backend record files.
    pub records: Vec<PathBuf>,
    /// Loadgen `--report` files, for the `sent` count (optional).
    pub reports: Vec<PathBuf>,
}

/// The verdict, printed and written as JSON.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct CheckReport {
    /// Records sent, summed from the loadgen reports (absent without reports).
    pub sent: Option<u64>,
    /// Distinct acknowledged ids.
    pub acked: u64,
    /// Lines in the ack logs (equals `acked` unless an id was acknowledged twice).
    pub ack_lines: u64,
    /// Acknowledged ids delivered at least once.
    pub delivered: u64,
    /// Ids (acked or not) delivered more than once.
    pub duplicates: u64,
    /// Extra copies beyond the first, summed over all ids.
    pub duplicate_copies: u64,
    /// Acknowledged ids never delivered.
    pub lost: u64,
    /// Up to [`MAX_EXAMPLES`] lost ids, sorted.
    pub lost_examples: Vec<String>,
    /// Ids of the same runs delivered but never acknowledged.
    pub unexpected: u64,
    /// Log records in the record files with a loadgen id.
    pub delivered_records: u64,
    /// Log records without a loadgen id, or of other runs.
    pub other_records: u64,
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    signal: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    body: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct LoadgenReport {
    sent: u64,
    run_id: String,
}

/// The run part of an id `<run>-<job>-<seq>`.
fn run_of(id: &str) -> Option<&str> {
    let mut parts = id.rsplitn(3, '-');
    let _seq = parts.next()?;
    let _job = parts.next()?;
    parts.next()
}

fn lines(path: &Path) -> anyhow::Result<impl Iterator<Item = std::io::Result<String>>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(BufReader::with_capacity(1 << 20, file).lines())
}

/// Reads every input and counts.
pub fn check(input: &CheckInput) -> anyhow::Result<CheckReport> {
    let mut report = CheckReport::default();
    let mut runs: HashSet<String> = HashSet::new();
    if !input.reports.is_empty() {
        let mut sent = 0;
        for path in &input.reports {
            let text =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let parsed: LoadgenReport = serde_json::from_slice(&text)
                .with_context(|| format!("parsing the loadgen report {}", path.display()))?;
            sent += parsed.sent;
            runs.insert(parsed.run_id);
        }
        report.sent = Some(sent);
    }

    // id -> times delivered; acked ids start at 0.
    let mut seen: HashMap<String, u32> = HashMap::new();
    for path in &input.ack_logs {
        for line in lines(path)? {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            let id = line.trim();
            if id.is_empty() {
                continue;
            }
            report.ack_lines += 1;
            if let Some(run) = run_of(id)
                && !runs.contains(run)
            {
                runs.insert(run.to_owned());
            }
            seen.entry(id.to_owned()).or_insert(0);
        }
    }
    report.acked = seen.len() as u64;
    let acked_count = seen.len();

    let mut unacked: HashMap<String, u32> = HashMap::new();
    for path in &input.records {
        for line in lines(path)? {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            let Ok(parsed) = serde_json::from_str::<Line<'_>>(&line) else {
                continue; // a line cut short by a kill of the backend
            };
            if parsed.signal.as_deref() != Some("logs") {
                continue;
            }
            let Some(id) = parsed.body.as_deref().and_then(id_in_body) else {
                report.other_records += 1;
                continue;
            };
            if let Some(n) = seen.get_mut(id) {
                *n += 1;
            } else if run_of(id).is_some_and(|run| runs.contains(run)) {
                *unacked.entry(id.to_owned()).or_insert(0) += 1;
            } else {
                report.other_records += 1;
                continue;
            }
            report.delivered_records += 1;
        }
    }

    let mut lost = Vec::new();
    for (id, &n) in &seen {
        if n == 0 {
            lost.push(id.as_str());
        } else {
            report.delivered += 1;
        }
    }
    for &n in seen.values().chain(unacked.values()) {
        if n > 1 {
            report.duplicates += 1;
            report.duplicate_copies += u64::from(n - 1);
        }
    }
    report.lost = lost.len() as u64;
    lost.sort_unstable();
    report.lost_examples = lost
        .into_iter()
        .take(MAX_EXAMPLES)
        .map(str::to_owned)
        .collect();
    report.unexpected = unacked.len() as u64;
    debug_assert_eq!(report.delivered + report.lost, acked_count as u64);
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(id: &str) -> String {
        format!(
            "{{\"signal\":\"logs\",\"body\":\"[job j-0001] KSampler ... id={id}\",\"attributes\":{{}}}}\n"
        )
    }

    #[test]
    fn counts_lost_duplicates_and_unexpected() {
        let dir = tempfile::tempdir().unwrap();
        let acks = dir.path().join("acks");
        std::fs::write(&acks, "r-1-0001-0\nr-1-0001-1\nr-1-0001-2\n").unwrap();
        let rec = dir.path().join("rec.jsonl");
        let mut text = String::new();
        for id in [
            "r-1-0001-0",
            "r-1-0001-0",
            "r-1-0001-2",
            "r-1-0001-3",
            "other-0001-0",
        ] {
            text.push_str(&record(id));
        }
        text.push_str("{\"signal\":\"logs\",\"body\":\"no id\"}\n{\"signal\":\"lo");
        std::fs::write(&rec, text).unwrap();
        let report = check(&CheckInput {
            ack_logs: vec![acks],
            records: vec![rec],
            reports: vec![],
        })
        .unwrap();
        assert_eq!(report.acked, 3);
        assert_eq!(report.delivered, 2);
        assert_eq!(report.lost, 1);
        assert_eq!(report.lost_examples, vec!["r-1-0001-1".to_owned()]);
        assert_eq!((report.duplicates, report.duplicate_copies), (1, 1));
        assert_eq!(report.unexpected, 1);
        assert_eq!(report.other_records, 2);
        assert_eq!(report.sent, None);
    }

    #[test]
    fn run_is_everything_before_job_and_seq() {
        assert_eq!(run_of("chaos-ab12-0007-15"), Some("chaos-ab12"));
        assert_eq!(run_of("0007-15"), None);
    }
}
