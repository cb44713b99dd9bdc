//! The real binary restarted on a large backlog listens at once and indexes the backlog in the
//! background; a SIGKILL while it is doing so loses nothing and reorders nothing: after a
//! second restart every acknowledged record reaches the testkit backend, first arrivals in the
//! order they were sent (one consumer, so the queue's order is the delivery order).
#![allow(clippy::unwrap_used, missing_docs)]

mod binary;
mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use binary::{Running, free_port};
use bytes::Bytes;
use common::pass_through_codec::PassThroughCodec;
use otelspool::pipeline::Signal;
use otelspool_testkit::backend::{Backend, Mode, grpc};
use tonic::transport::Channel;

/// Requests sent while the backend is down, each of `RECORDS` records of ~`PAD` bytes: about
/// 60 MiB of backlog, eight segment files.
const REQUESTS: usize = 120;
const RECORDS: usize = 500;
const PAD: usize = 1000;

fn config(dir: &Path, grpc_port: u16, backend_port: u16) -> String {
    format!(
        "receivers:
  otlp:
    protocols:
      grpc: {{ endpoint: \"127.0.0.1:{grpc_port}\" }}
exporters:
  otlp:
    endpoint: \"127.0.0.1:{backend_port}\"
    tls: {{ insecure: true }}
    retry_on_failure: {{ initial_interval: 100ms, max_interval: 500ms }}
    sending_queue: {{ storage: file_storage, num_consumers: 1 }}
extensions:
  file_storage: {{ directory: \"{}\", fsync: false }}
service:
  extensions: [file_storage]
  pipelines:
    logs: {{ receivers: [otlp], exporters: [otlp] }}
",
        dir.display()
    )
}

fn body(request: &str, i: usize) -> String {
    format!("{request}-{i:04}-{}", "x".repeat(PAD))
}

/// A logs request whose records' bodies are `body(request, 0..n)`.
fn request(request: &str, n: usize) -> Bytes {
    common::logs_with_bodies((0..n).map(|i| body(request, i)))
}

/// Sends one request until it is acknowledged (the receiver may not listen yet).
async fn send_until_acked(channel: &Channel, running: &mut Running, body: Bytes) {
    for _ in 0..2000 {
        assert!(running.alive(), "otelspool exited");
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        if grpc.ready().await.is_ok() {
            let path = http::uri::PathAndQuery::from_static(Signal::Logs.grpc_path());
            let req = tonic::Request::new(body.clone());
            if grpc.unary(req, path, PassThroughCodec).await.is_ok() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("a request was never acknowledged");
}

/// The bodies the backend recorded, in arrival order.
fn recorded(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["body"].as_str().map(str::to_string))
        .collect()
}

/// Scenario: 120 requests (~60 MiB) are acknowledged while the backend is down; otelspool is
/// killed, restarted with the backend up, sent one more request, and killed with SIGKILL the
/// moment that request is acknowledged (while the backlog is still being indexed, unless the
/// machine indexed it all first: the test says which); then it is started once more.
/// Guarantees: every acknowledged record reaches the backend; the first arrival of each is in
/// the order it was sent (nothing delivered out of order across the restarts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_while_indexing_a_large_backlog_loses_nothing_and_keeps_order() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let (grpc_port, backend_port) = (free_port(), free_port());
    let config_path = work.path().join("otelspool.yaml");
    std::fs::write(&config_path, config(&data, grpc_port, backend_port)).unwrap();
    let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc_port}"))
        .unwrap()
        .connect_lazy();
    let mut want = Vec::new();

    // Build the backlog with the backend down.
    let mut first = Running::start(&config_path, &[]);
    for r in 0..REQUESTS {
        let name = format!("r{r:05}");
        send_until_acked(&channel, &mut first, request(&name, RECORDS)).await;
        want.extend((0..RECORDS).map(|i| body(&name, i)));
    }
    first.kill9();

    // The backend comes up; restart, get one request acknowledged, kill at once.
    let record_file = work.path().join("backend.jsonl");
    let backend = Arc::new(Backend::open(Some(record_file.clone()), Mode::Ok).unwrap());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", backend_port))
        .await
        .unwrap();
    let server = tokio::spawn(grpc::serve(Arc::clone(&backend), listener, None));
    let mut second = Running::start(&config_path, &[("RUST_LOG", "info")]);
    send_until_acked(&channel, &mut second, request("after-restart", 10)).await;
    want.extend((0..10).map(|i| body("after-restart", i)));
    let (stdout, stderr) = second.kill9();
    let indexing_done = [stdout, stderr]
        .iter()
        .any(|out| out.contains("recovered queue from disk"));
    let delivered_before_kill = recorded(&record_file).len();
    println!(
        "killed {} indexing finished; {delivered_before_kill} records delivered before the kill",
        if indexing_done { "after" } else { "before" }
    );

    // Start again: everything acknowledged arrives.
    let third = Running::start(&config_path, &[]);
    let wanted: HashSet<&String> = want.iter().collect();
    let mut got = Vec::new();
    for _ in 0..1200 {
        got = recorded(&record_file);
        let seen: HashSet<&String> = got.iter().collect();
        if wanted.iter().all(|w| seen.contains(w)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(third);
    server.abort();
    let mut seen = HashSet::new();
    let first_arrivals: Vec<&String> = got.iter().filter(|b| seen.insert(*b)).collect();
    let missing = want.iter().filter(|w| !seen.contains(w)).count();
    assert_eq!(missing, 0, "acknowledged records lost");
    let expected: Vec<&String> = want.iter().collect();
    assert_eq!(
        first_arrivals.len(),
        expected.len(),
        "records the test never sent arrived"
    );
    let out_of_order = first_arrivals
        .iter()
        .zip(&expected)
        .position(|(a, b)| a != b);
    assert_eq!(out_of_order, None, "first arrivals out of send order");
}
