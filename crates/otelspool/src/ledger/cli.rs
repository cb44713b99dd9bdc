//! `otelspool jobs`: asks a running otelspool's job ledger over its health endpoint and prints
//! a table (with coverage = delivered / received), or flushes one job and exits 0 only when
//! everything it received was delivered.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::extensions::health_check::probe::call;

/// How long the answer to a listing may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// Extra time the flush request gets beyond its own timeout.
const FLUSH_MARGIN: Duration = Duration::from_secs(5);

/// Percent-encodes a job id for a URL path segment.
fn encode_segment(id: &str) -> String {
    id.bytes().fold(String::new(), |mut s, b| {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02X}");
        }
        s
    })
}

fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// One table row per job: id, state, counts, coverage, last seen.
pub fn table(jobs: &[Value]) -> String {
    let mut out = format!(
        "{:<36} {:<8} {:>10} {:>10} {:>9} {:>8} {:>8} {:>9}  {}\n",
        "JOB",
        "STATE",
        "RECEIVED",
        "DELIVERED",
        "REJECTED",
        "DROPPED",
        "QUEUED",
        "COVERAGE",
        "LAST SEEN"
    );
    for j in jobs {
        let dropped = u(&j["dropped"], "drop_oldest") + u(&j["dropped"], "expired");
        let _ = writeln!(
            out,
            "{:<36} {:<8} {:>10} {:>10} {:>9} {:>8} {:>8} {:>8.2}%  {}",
            j["id"].as_str().unwrap_or("?"),
            j["state"].as_str().unwrap_or("?"),
            u(j, "received"),
            u(j, "delivered"),
            u(j, "rejected"),
            dropped,
            u(j, "queued"),
            j["coverage"].as_f64().unwrap_or(0.0) * 100.0,
            j["last_seen"].as_str().unwrap_or(""),
        );
    }
    out
}

/// `otelspool jobs [ID]`: prints the table; `Err` with the message when the endpoint does
/// not answer or knows no such job.
pub fn show(endpoint: &str, id: Option<&str>) -> Result<String, String> {
    let path = match id {
        Some(id) => format!("/v1/jobs/{}", encode_segment(id)),
        None => "/v1/jobs".to_string(),
    };
    let answer = call("GET", endpoint, &path, LIST_TIMEOUT).map_err(|e| e.to_string())?;
    let body: Value = serde_json::from_str(&answer.body)
        .map_err(|e| format!("{endpoint} answered {} with no JSON: {e}", answer.status))?;
    if answer.status != 200 {
        return Err(body["error"].as_str().unwrap_or("error").to_string());
    }
    Ok(match id {
        Some(_) => table(std::slice::from_ref(&body)),
        None => table(body["jobs"].as_array().map_or(&[][..], Vec::as_slice)),
    })
}

/// What `otelspool jobs flush` found: the text to print and whether everything was delivered.
#[derive(Debug)]
pub struct FlushReport {
    /// Human-readable outcome.
    pub text: String,
    /// Every record received was delivered (exit 0).
    pub all_delivered: bool,
}

/// `otelspool jobs flush ID --timeout T`.
pub fn flush(endpoint: &str, id: &str, timeout: Duration) -> Result<FlushReport, String> {
    let path = format!(
        "/v1/jobs/{}/flush?timeout={}ms",
        encode_segment(id),
        timeout.as_millis()
    );
    let answer =
        call("POST", endpoint, &path, timeout + FLUSH_MARGIN).map_err(|e| e.to_string())?;
    let body: Value = serde_json::from_str(&answer.body)
        .map_err(|e| format!("{endpoint} answered {} with no JSON: {e}", answer.status))?;
    if answer.status == 404 {
        return Err(body["error"].as_str().unwrap_or("unknown job").to_string());
    }
    let job = &body["job"];
    let mut text = table(std::slice::from_ref(job));
    let all_delivered = answer.status == 200 && body["all_delivered"].as_bool() == Some(true);
    if !body["flushed"].as_bool().unwrap_or(false) {
        let _ = writeln!(
            text,
            "timed out after {timeout:?}: {} records still queued",
            u(&body, "still_queued")
        );
        for e in body["last_errors"].as_array().into_iter().flatten() {
            let _ = writeln!(
                text,
                "  {}: {}",
                e["queue"].as_str().unwrap_or("?"),
                e["error"].as_str().unwrap_or("?")
            );
        }
    } else if !all_delivered {
        let _ = writeln!(
            text,
            "flushed, but not everything was delivered (rejected or dropped)"
        );
    } else {
        let _ = writeln!(text, "flushed: every record received was delivered");
    }
    Ok(FlushReport {
        text,
        all_delivered,
    })
}
