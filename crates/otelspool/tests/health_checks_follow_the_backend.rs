//! Each `check_delivery` check turns otelspool not ready while the backend is down and ready
//! again once it is back: `/readyz` (and otelcol's `/`) answer 503 with the failing check and
//! its figures, the real `otelspool healthcheck` exits 1 and names it, then 0; `/livez` stays
//! 200 throughout. The backend is the testkit's, on a real socket; "down" is its
//! `unavailable` mode (every export refused with UNAVAILABLE), "up" its `ok` mode.

mod health_support;
#[allow(dead_code)]
mod support;

use std::path::Path;

use health_support::{Spool, config, failing, poll_until};
use otelspool_testkit::backend::Mode;
use serde_json::Value;
use support::{TestBackend, start_backend};

/// Load sent while the backend is down: requests, records per request, body bytes.
struct Load(usize, usize, usize);

/// Up, delivering and ready; down until `check` fails (returning that failure's JSON); up
/// again until ready and drained. Asserts `/livez` at every step and the subcommand's exit
/// code at each verdict.
async fn down_and_up(check: &str, checks: &str, queue: &str, data: &Path, load: Load) -> Value {
    let backend: TestBackend = start_backend(Mode::Ok).await;
    let (yaml, grpc, health) = config(backend.addr, data, queue, checks);
    let spool = Spool::start(&yaml, grpc, health).await;

    spool.send(1, 5, 10).await;
    poll_until("the first records to be delivered", || async {
        let (_, s) = spool.get("/status.json").await.ok()?;
        (s["exporters"][0]["delivery"]["delivered_records"] == 5).then_some(())
    })
    .await;
    assert_eq!(spool.get("/readyz").await.expect("readyz").0, 200);
    let (code, out) = spool.healthcheck_command("/readyz").await;
    assert_eq!(code, 0, "healthy: {out}");
    spool.assert_live("normal delivery").await;

    backend.backend.set_mode(Mode::Unavailable);
    spool.send(load.0, load.1, load.2).await;
    let body = poll_until(&format!("{check} to fail"), || async {
        spool.assert_live("the outage").await;
        let (code, body) = spool.get("/readyz").await.ok()?;
        (code == 503 && !failing(&body).is_empty()).then_some(body)
    })
    .await;
    assert_eq!(
        failing(&body),
        vec![(check.to_owned(), "otlp".to_owned(), "logs".to_owned())],
        "only the configured check fails: {body}"
    );
    assert_eq!(body["status"], "Server not available");
    assert!(
        body["reason"].as_str().is_some_and(|r| r.contains(check)),
        "{body}"
    );
    let (code, otelcol_body) = spool.get("/").await.expect("otelcol path");
    assert_eq!((code, failing(&otelcol_body)), (503, failing(&body)));
    let (code, out) = spool.healthcheck_command("/readyz").await;
    assert_eq!(code, 1, "not ready: {out}");
    assert!(
        out.contains(check) && out.contains("exporter otlp (logs)"),
        "{out}"
    );
    let (code, out) = spool.healthcheck_command("/livez").await;
    assert_eq!(code, 0, "live during the outage: {out}");
    let (_, status) = spool.get("/status.json").await.expect("status.json");
    let exporter = &status["exporters"][0];
    assert_eq!(exporter["healthy"], false, "{status}");
    assert_eq!(
        exporter["delivery"]["last_error"]["kind"], "retryable",
        "{status}"
    );
    let failure = body["failing_checks"][0].clone();

    backend.backend.set_mode(Mode::Ok);
    poll_until("ready again, with the queue drained", || async {
        spool.assert_live("the recovery").await;
        let (code, _) = spool.get("/readyz").await.ok()?;
        let (_, s) = spool.get("/status.json").await.ok()?;
        (code == 200 && s["exporters"][0]["queue"]["records"] == 0).then_some(())
    })
    .await;
    let (code, out) = spool.healthcheck_command("/readyz").await;
    assert_eq!(code, 0, "healthy after recovery: {out}");
    spool.assert_live("after recovery").await;
    spool.stop().await;
    failure
}

/// Scenario: `max_time_since_success: 1s`; the backend goes down while 3 requests of 4
/// records wait, then comes back.
/// Guarantees: 503 naming `max_time_since_success` for otlp/logs with the time waited
/// (> 1 s), the threshold and the 12 queued records; ready again after recovery; `/livez`
/// 200 and the subcommand's exit codes 0, 1, 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_recent_success_while_data_waits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = "max_time_since_success";
    let f = down_and_up(
        check,
        "max_time_since_success: 1s",
        "",
        dir.path(),
        Load(3, 4, 10),
    )
    .await;
    assert!(f["value"].as_f64().is_some_and(|v| v > 1.0), "{f}");
    assert_eq!(
        (f["threshold"].as_f64(), f["unit"].as_str()),
        (Some(1.0), Some("seconds"))
    );
    assert_eq!(f["queued_records"], 12, "{f}");
}

/// Scenario: `max_oldest_record_age: 1s`; the backend goes down while records wait.
/// Guarantees: 503 naming `max_oldest_record_age` with the record's age (> 1 s) and the
/// threshold; ready again once the backend is back and the queue drained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oldest_record_too_old() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = "max_oldest_record_age";
    let f = down_and_up(
        check,
        "max_oldest_record_age: 1s",
        "",
        dir.path(),
        Load(2, 3, 10),
    )
    .await;
    assert!(f["value"].as_f64().is_some_and(|v| v > 1.0), "{f}");
    assert_eq!(f["threshold"].as_f64(), Some(1.0));
}

/// Scenario: `max_queue_fill_ratio: 0.5` on a queue of 10 requests; 6 requests wait while
/// the backend is down.
/// Guarantees: 503 naming `max_queue_fill_ratio` with the ratio 0.6 and the threshold 0.5;
/// ready again after the queue drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_fuller_than_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = "max_queue_fill_ratio";
    let queue = ", queue_size: 10";
    let f = down_and_up(
        check,
        "max_queue_fill_ratio: 0.5",
        queue,
        dir.path(),
        Load(6, 1, 10),
    )
    .await;
    assert_eq!(
        (f["value"].as_f64(), f["threshold"].as_f64()),
        (Some(0.6), Some(0.5)),
        "{f}"
    );
    assert_eq!(f["unit"], "ratio");
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Scenario: the queue on a 64 MiB tmpfs with `min_free_disk_mib: 56`; about 12 MiB wait
/// while the backend is down, then it comes back.
/// Guarantees: 503 naming `min_free_disk_mib` with the free bytes (below 56 MiB) and the
/// threshold in bytes; ready again once the queue drained and its segment files were
/// deleted. Needs root for the mount (skipped with a message otherwise; CI runs as root).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_filesystem_low_on_space() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("tmpfs");
    std::fs::create_dir(&mnt).expect("mount point");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED queue_filesystem_low_on_space: mounting a tmpfs needs root");
        return;
    }
    let _guard = Tmpfs(mnt.clone());
    let check = "min_free_disk_mib";
    let queue = ", max_size_mib: 32";
    let f = down_and_up(
        check,
        "min_free_disk_mib: 56",
        queue,
        &mnt,
        Load(48, 64, 4000),
    )
    .await;
    let threshold = 56u64 << 20;
    assert_eq!(f["threshold"].as_u64(), Some(threshold), "{f}");
    assert!(f["value"].as_u64().is_some_and(|v| v < threshold), "{f}");
    assert_eq!(f["unit"], "bytes");
}
