//! The HTTP server loop shared by the OTLP/HTTP receiver, the health check and the metrics
//! endpoint (HTTP/1.1 and HTTP/2 on one port, with the limits `axum::serve` does not offer),
//! and the accept back-off every listener of the process uses.
//!
//! - Headers must arrive within [`HEADER_READ_TIMEOUT`] (a slow-loris client is cut off).
//! - HTTP/2 connections carry at most [`HTTP2_MAX_CONCURRENT_STREAMS`] requests at once, are
//!   pinged, and are closed when they stop answering.
//! - Every request carries its connection's [`ConnectionShare`] (a request extension), so a
//!   receiver can bound the memory of one connection's requests together.
//! - A failing `accept` (file descriptors exhausted) is retried after a pause that grows from
//!   [`ACCEPT_PAUSE_MIN`] to [`ACCEPT_PAUSE_MAX`], logged once per [`ACCEPT_LOG_INTERVAL`].
//! - With TLS ([`serve_with_tls`]), each handshake runs on its connection's task within a
//!   deadline (`receivers::tls`), so a client that never completes one holds nothing for long.
//! - Shutdown stops accepting, lets requests in flight finish, and returns.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::receivers::tls::{ServerTls, Stream};
use crate::telemetry::LogLimit;

/// Time a client has to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests one HTTP/2 connection may have open at once (gRPC and HTTP).
pub const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;
/// The pause after the first failed accept; it doubles with each failure in a row.
pub const ACCEPT_PAUSE_MIN: Duration = Duration::from_millis(10);
/// The longest pause between two failed accepts.
pub const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);
/// At most one line about failed accepts per interval; the failures between are counted.
pub const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How long requests in flight get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The memory, in KiB, that the requests of one connection hold together. Created for each
/// accepted connection and shared by all its requests.
#[derive(Debug, Clone, Default)]
pub struct ConnectionShare(Arc<AtomicU32>);

impl ConnectionShare {
    /// Takes `kib` more unless the connection would then hold more than `cap`.
    pub fn try_take_kib(&self, kib: u32, cap: u32) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(kib).filter(|&n| n <= cap)
            })
            .is_ok()
    }

    /// Gives back `kib` taken before.
    pub fn give_kib(&self, kib: u32) {
        self.0.fetch_sub(kib, Ordering::AcqRel);
    }

    /// What the connection's requests hold now, in KiB.
    pub fn held_kib(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }
}

/// Retries a failing `accept` with a growing pause and a rate-limited log, so that running
/// out of file descriptors costs neither a busy loop nor a flood of log lines.
#[derive(Debug)]
pub struct AcceptBackoff {
    port: &'static str,
    pause: Duration,
    log: LogLimit,
}

impl AcceptBackoff {
    /// A back-off for the listener named `port` in logs (`OTLP/gRPC`, `HTTP`).
    pub fn new(port: &'static str) -> Self {
        AcceptBackoff {
            port,
            pause: ACCEPT_PAUSE_MIN,
            log: LogLimit::new(ACCEPT_LOG_INTERVAL),
        }
    }

    /// Calls `accept` until it succeeds, pausing after each failure.
    pub async fn accept<T, F, Fut>(&mut self, mut accept: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::io::Result<T>>,
    {
        loop {
            match accept().await {
                Ok(conn) => {
                    self.succeeded();
                    return conn;
                }
                Err(e) => self.failed(&e).await,
            }
        }
    }

    fn succeeded(&mut self) {
        self.pause = ACCEPT_PAUSE_MIN;
        if let Some(not_logged) = self.log.flush() {
            tracing::info!(
                port = self.port,
                not_logged,
                "accepting connections again after failed accepts"
            );
        }
    }

    async fn failed(&mut self, e: &std::io::Error) {
        if let Some(not_logged) = self.log.event() {
            tracing::warn!(port = self.port, error = %e, not_logged, pause = ?self.pause, "accept failed; retrying after a pause");
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(ACCEPT_PAUSE_MAX);
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with_tls(listener, app, None, shutdown).await
}

/// Serves `app` on `listener` until `shutdown` is cancelled, over TLS when `tls` is set: each
/// connection's handshake runs on its own task, within the handshake deadline, before the
/// header read timeout starts.
pub async fn serve_with_tls(
    listener: TcpListener,
    app: Router,
    tls: Option<ServerTls>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(HTTP2_MAX_CONCURRENT_STREAMS)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut backoff = AcceptBackoff::new("HTTP");
    loop {
        let (stream, _) = tokio::select! {
            accepted = backoff.accept(|| listener.accept()) => accepted,
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let share = ConnectionShare::default();
        let app = app.clone().map_request(move |mut req: http::Request<_>| {
            req.extensions_mut().insert(share.clone());
            req
        });
        let service = TowerToHyperService::new(app);
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            let stream = match tls {
                None => Stream::Plain(stream),
                Some(tls) => match tls.handshake(stream, "HTTP").await {
                    Ok(s) => s,
                    Err(_logged) => return,
                },
            };
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP requests still in flight at the shutdown deadline were cut");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU64;

    use tokio::time::Instant;
    use tracing_subscriber::layer::{Context, SubscriberExt};

    use super::*;

    /// Counts the log lines of the accept back-off (its `not_logged` field marks them).
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<tracing::Level>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Lines {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            if event.metadata().fields().field("not_logged").is_some() {
                self.0.lock().expect("lock").push(*event.metadata().level());
            }
        }
    }

    /// Scenario: `accept` fails without end (file descriptors exhausted) for a minute.
    /// Guarantees: the pause grows to one second, so accept is tried at most ~66 times (not
    /// 1,200 as with a fixed 50 ms), and at most one line is logged per ten seconds.
    #[tokio::test(start_paused = true)]
    async fn failing_accepts_back_off_and_log_once_per_interval() {
        let lines = Lines::default();
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(lines.clone()));
        let attempts = Arc::new(AtomicU64::new(0));
        let mut backoff = AcceptBackoff::new("test");
        let counted = attempts.clone();
        let never = backoff.accept(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            async { Err::<(), _>(std::io::Error::from_raw_os_error(libc::EMFILE)) }
        });
        assert!(
            tokio::time::timeout(Duration::from_secs(60), never)
                .await
                .is_err()
        );
        let attempts = attempts.load(Ordering::Relaxed);
        assert!((60..=70).contains(&attempts), "{attempts} attempts");
        let lines = lines.0.lock().expect("lock").clone();
        assert!((6..=7).contains(&lines.len()), "{} lines", lines.len());
        assert!(lines.iter().all(|l| *l == tracing::Level::WARN));
    }

    /// Scenario: accept fails for a while, succeeds ten seconds later, then fails once more.
    /// Guarantees: success resets the pause to its minimum, and the failures that were not
    /// logged are reported in one line once accepting works again.
    #[tokio::test(start_paused = true)]
    async fn a_successful_accept_resets_the_pause() {
        let lines = Lines::default();
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(lines.clone()));
        let mut backoff = AcceptBackoff::new("test");
        let mut calls = 0;
        let mut accept = move || {
            calls += 1;
            let call = calls;
            async move {
                match call {
                    21 => {
                        tokio::time::sleep(ACCEPT_LOG_INTERVAL).await;
                        Ok(call)
                    }
                    23 => Ok(call),
                    _ => Err(std::io::Error::from_raw_os_error(libc::EMFILE)),
                }
            }
        };
        assert_eq!(backoff.accept(&mut accept).await, 21);
        assert_eq!(backoff.pause, ACCEPT_PAUSE_MIN);
        let started = Instant::now();
        assert_eq!(backoff.accept(&mut accept).await, 23);
        assert!(
            started.elapsed() < ACCEPT_PAUSE_MIN * 2,
            "{:?}",
            started.elapsed()
        );
        let lines = lines.0.lock().expect("lock").clone();
        assert_eq!(
            lines,
            [
                tracing::Level::WARN,
                tracing::Level::WARN,
                tracing::Level::INFO
            ]
        );
    }
}
