//! Two instances configured with the same `file_storage` folder: the second waits up to
//! `file_storage.timeout` for the first to let go of each queue folder (as otelcol's lock
//! timeout does), then fails with a message that says so once. (That a waiting open succeeds
//! once the folder is let go is tested by the queue crate's `folder_lock.rs`.)

use std::time::{Duration, Instant};

use otelspool::app::{BuildError, build};
use otelspool_config as cfg;
use tokio_util::sync::CancellationToken;

fn config(dir: &std::path::Path, timeout: &str) -> cfg::Config {
    let yaml = format!(
        "receivers: {{otlp: {{protocols: {{grpc: {{endpoint: 127.0.0.1:0}}}}}}}}\n\
         exporters: {{debug: {{sending_queue: {{storage: file_storage}}}}}}\n\
         extensions: {{file_storage: {{directory: {}, timeout: {timeout}}}}}\n\
         service: {{extensions: [file_storage], pipelines: {{logs: \
         {{receivers: [otlp], exporters: [debug]}}}}}}\n",
        dir.display()
    );
    cfg::load_str(&yaml, "test", &|_| None)
        .expect("valid config")
        .config
}

/// Scenario: an instance holds its queue folder when a second one starts with
/// `file_storage.timeout: 300ms`.
/// Guarantees: the second waits the timeout before giving up, with a queue error whose
/// message, printed with its causes, names the folder once.
#[tokio::test]
async fn a_second_instance_gives_up_after_file_storage_timeout_with_one_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = build(&config(dir.path(), "300ms"), CancellationToken::new())
        .await
        .expect("first instance");
    let started = Instant::now();
    let err = build(&config(dir.path(), "300ms"), CancellationToken::new())
        .await
        .expect_err("the folder is in use");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "did not wait"
    );
    assert!(matches!(
        &err,
        BuildError::Queue {
            source: otelspool_queue::OpenError::Locked { .. },
            ..
        }
    ));
    let printed = format!("{:#}", anyhow::Error::from(err));
    let folder = dir.path().join("debug").join("logs").display().to_string();
    assert_eq!(printed.matches(folder.as_str()).count(), 1, "{printed}");
    for q in &first.queues {
        q.queue.shutdown();
    }
}
