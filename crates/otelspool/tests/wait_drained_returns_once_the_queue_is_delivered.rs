//! `otelspool wait-drained`, the rollback's "is the queue empty?" command, against a real
//! otelspool (in-process, the binary's code path) and the testkit backend on 127.0.0.1: it
//! fails while records wait behind a down backend and succeeds once every one is delivered.

mod health_support;
#[allow(dead_code)]
mod support;

use health_support::{Spool, config, poll_until};
use otelspool_testkit::backend::Mode;
use support::start_backend;

/// Runs the real `otelspool wait-drained` against `health`: exit code, stdout and stderr.
async fn wait_drained(health: std::net::SocketAddr, timeout: &str) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_otelspool"))
        .args([
            "wait-drained",
            "--endpoint",
            &health.to_string(),
            "--timeout",
            timeout,
            "--every",
            "100ms",
        ])
        .output()
        .await
        .expect("run otelspool wait-drained");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Scenario: the backend refuses every export (UNAVAILABLE) while 20 requests of 5 records
/// are acknowledged; `wait-drained --timeout 1s` runs; the backend comes back and
/// `wait-drained` runs again.
/// Guarantees: while records wait it exits 1 and names the queue and its 100 records; after
/// the backend is back it exits 0 only when the backend holds all 100 records, and the status
/// API then shows an empty queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_drained_fails_while_records_wait_and_succeeds_once_delivered() {
    let backend = start_backend(Mode::Unavailable).await;
    let data = tempfile::tempdir().expect("tempdir");
    let (yaml, grpc, health) = config(backend.addr, data.path(), "", "max_queue_fill_ratio: 1");
    let spool = Spool::start(&yaml, grpc, health).await;
    spool.send(20, 5, 10).await;
    poll_until("100 records queued", || async {
        let (_, s) = spool.get("/status.json").await.ok()?;
        (s["exporters"][0]["queue"]["records"] == 100).then_some(())
    })
    .await;

    let (code, stdout, stderr) = wait_drained(health, "1s").await;
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.starts_with("not drained: still queued after"),
        "{stderr}"
    );
    assert!(
        stderr.contains("otlp (logs): 100 records in 20 requests"),
        "{stderr}"
    );
    assert!(stdout.contains("100 records queued"), "{stdout}");
    assert_eq!(backend.backend.stats().log_records, 0);

    backend.backend.set_mode(Mode::Ok);
    let (code, stdout, stderr) = wait_drained(health, "30s").await;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.ends_with("drained: every queue is empty\n"),
        "{stdout}"
    );
    let stats = backend.backend.stats();
    assert_eq!(stats.log_records, 100, "{stats:?}");
    let (_, status) = spool.get("/status.json").await.expect("status");
    assert_eq!(status["exporters"][0]["queue"]["records"], 0, "{status}");
    assert_eq!(status["exporters"][0]["delivery"]["delivered_records"], 100);
    spool.stop().await;
}

/// Scenario: `wait-drained` asks an endpoint where nothing listens.
/// Guarantees: it exits 1 at its deadline saying it could not connect; it never reports an
/// unreachable otelspool as drained.
#[tokio::test]
async fn an_unreachable_endpoint_is_not_drained() {
    let port = health_support::free_port();
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let (code, stdout, stderr) = wait_drained(addr, "300ms").await;
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.starts_with(&format!("not drained: cannot connect to 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(
        !stdout.contains("drained: every queue is empty"),
        "{stdout}"
    );
}
