//! The power switch: mounts the filesystem and serves a control API until it is unmounted.
//!
//! - `POST /cut`: cuts the power now: answers the [`CutReport`] (what was thrown away) once
//!   every later operation fails with `EIO`; `409` if the power is already off.
//! - `GET /stats`: `{"powered": bool, "stats": DiskStats}`.
//! - `POST /stop`: unmounts and exits (the process also exits when someone else unmounts it,
//!   and unmounts on SIGTERM or SIGINT).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fuser::{BackgroundSession, Config, MountOption};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use super::disk::{CutReport, Disk};
use super::fs::PowercutFs;

/// How often the control loop checks whether the mount went away underneath it.
const SESSION_POLL: Duration = Duration::from_millis(100);

/// Where to mount what, and where to listen.
#[derive(Clone, Debug)]
pub struct PowercutConfig {
    /// The durable state: read at start, kept equal to the durable tree.
    pub backing: PathBuf,
    /// The mount point (an existing empty directory).
    pub mount: PathBuf,
    /// Control API listen address, e.g. 127.0.0.1:0.
    pub control: SocketAddr,
    /// Written (JSON: control address, mount point) once mounted and listening.
    pub ready_file: Option<PathBuf>,
}

#[derive(Clone)]
struct Switch {
    disk: Arc<Mutex<Disk>>,
    stop: watch::Sender<bool>,
}

/// Mounts, serves the control API, and returns once unmounted.
pub async fn run(config: PowercutConfig) -> anyhow::Result<()> {
    let backing = config.backing.clone();
    let disk = tokio::task::spawn_blocking(move || Disk::open(&backing))
        .await?
        .with_context(|| format!("loading the backing directory {}", config.backing.display()))?;
    let disk = Arc::new(Mutex::new(disk));
    let fs = PowercutFs::new(disk.clone());
    let mut options = Config::default();
    options.mount_options = vec![
        MountOption::FSName("powercutfs".into()),
        MountOption::DefaultPermissions,
    ];
    let mount = config.mount.clone();
    let session = tokio::task::spawn_blocking(move || fuser::spawn_mount(fs, &mount, &options))
        .await?
        .with_context(|| format!("mounting on {}", config.mount.display()))?;
    let listener = TcpListener::bind(config.control)
        .await
        .context("binding the control API")?;
    let control = listener.local_addr()?;
    if let Some(path) = &config.ready_file {
        let ready = json!({ "control": control.to_string(), "mount": config.mount });
        tokio::fs::write(path, ready.to_string())
            .await
            .context("writing the ready file")?;
    }
    tracing::info!(%control, mount = %config.mount.display(), backing = %config.backing.display(), "mounted; power on");

    let (stop, mut stopped) = watch::channel(false);
    let app = Router::new()
        .route("/cut", post(cut))
        .route("/stats", get(stats))
        .route("/stop", post(request_stop))
        .with_state(Switch {
            disk,
            stop: stop.clone(),
        });
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut wanted = stop.subscribe();
    let mut poll = tokio::time::interval(SESSION_POLL);
    let unmounted_by_others = loop {
        tokio::select! {
            _ = wanted.wait_for(|s| *s) => break false,
            _ = term.recv() => break false,
            _ = int.recv() => break false,
            _ = poll.tick() => if session.guard.is_finished() { break true },
        }
    };
    let _ = stop.send(true);
    let _ = server.await;
    if unmounted_by_others {
        tracing::info!("unmounted from outside; exiting");
        return session_result(session);
    }
    tracing::info!("unmounting");
    tokio::task::spawn_blocking(move || session.umount_and_join())
        .await?
        .context("unmounting")
}

fn session_result(session: BackgroundSession) -> anyhow::Result<()> {
    session.join().context("the FUSE session failed")
}

async fn cut(State(switch): State<Switch>) -> Response {
    let disk = switch.disk.clone();
    let report: Option<CutReport> = match tokio::task::spawn_blocking(move || {
        let mut disk = disk.lock().unwrap_or_else(PoisonError::into_inner);
        disk.powered().then(|| disk.cut())
    })
    .await
    {
        Ok(report) => report,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    match report {
        Some(report) => {
            tracing::warn!(
                ?report,
                "power cut: everything not durable is gone; I/O fails until restart"
            );
            json_response(&report)
        }
        None => (StatusCode::CONFLICT, "the power is already off").into_response(),
    }
}

async fn stats(State(switch): State<Switch>) -> Response {
    let disk = switch.disk.clone();
    match tokio::task::spawn_blocking(move || {
        let disk = disk.lock().unwrap_or_else(PoisonError::into_inner);
        json!({ "powered": disk.powered(), "stats": disk.stats() })
    })
    .await
    {
        Ok(body) => json_response(&body),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn json_response(body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn request_stop(State(switch): State<Switch>) -> Response {
    let _ = switch.stop.send(true);
    StatusCode::ACCEPTED.into_response()
}
