//! A TCP fault proxy: forwards connections to an upstream and misbehaves on command.
//!
//! It works below HTTP/2, so gRPC and HTTP/1.1 pass through untouched in mode `pass`. Modes,
//! switched at run time through the control API ([`control`]):
//!
//! - `pass`: forward bytes both ways.
//! - `blackhole`: new connections are accepted and everything they send is read and discarded;
//!   nothing is ever answered (when the mode leaves `blackhole` they are closed). Connections
//!   that were already open are frozen: nothing is forwarded either way until the mode changes,
//!   then they resume intact, as a TCP connection does when a partition heals.
//! - `reset`: every open connection is closed with a RST; new ones are accepted and reset at
//!   once (the closest a listening proxy gets to "connection refused").
//! - `slow:MS`: every chunk is held MS milliseconds before it is forwarded.
//! - `cut`: every open connection is closed (FIN); new ones are accepted and closed at once.
//!
//! When the upstream cannot be reached, a new client connection is reset.

pub mod control;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long a connection attempt to the upstream may take.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Read buffer per direction.
const CHUNK: usize = 64 * 1024;

/// What the proxy does with connections; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward.
    Pass,
    /// Swallow new connections, freeze open ones.
    Blackhole,
    /// RST everything.
    Reset,
    /// Delay every chunk by this many milliseconds.
    Slow(u64),
    /// Close everything.
    Cut,
}

impl ProxyMode {
    /// The mode's spelling in `POST /mode`.
    pub fn spelling(&self) -> String {
        match self {
            ProxyMode::Pass => "pass".into(),
            ProxyMode::Blackhole => "blackhole".into(),
            ProxyMode::Reset => "reset".into(),
            ProxyMode::Slow(ms) => format!("slow:{ms}"),
            ProxyMode::Cut => "cut".into(),
        }
    }
}

impl FromStr for ProxyMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "pass" => Ok(ProxyMode::Pass),
            "blackhole" => Ok(ProxyMode::Blackhole),
            "reset" => Ok(ProxyMode::Reset),
            "cut" => Ok(ProxyMode::Cut),
            _ => match s.split_once(':') {
                Some(("slow", ms)) => ms
                    .parse()
                    .map(ProxyMode::Slow)
                    .map_err(|e| format!("bad number in mode {s:?}: {e}")),
                _ => Err(format!(
                    "unknown mode {s:?}; expected pass, blackhole, reset, slow:MS or cut"
                )),
            },
        }
    }
}

/// Counters served by `GET /stats`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted (all modes).
    pub accepted: AtomicU64,
    /// Connections currently forwarding (or frozen).
    pub active: AtomicU64,
    /// Connections reset or closed at accept (modes `reset`, `cut`, upstream unreachable).
    pub refused: AtomicU64,
    /// Connections accepted in `blackhole` mode and discarded.
    pub blackholed: AtomicU64,
    /// Open connections killed by a switch to `reset` or `cut`.
    pub killed: AtomicU64,
    /// Failed connection attempts to the upstream.
    pub upstream_failures: AtomicU64,
    /// Bytes forwarded client to upstream.
    pub bytes_up: AtomicU64,
    /// Bytes forwarded upstream to client.
    pub bytes_down: AtomicU64,
    /// Bytes read from blackholed connections and dropped.
    pub bytes_discarded: AtomicU64,
}

/// A snapshot of [`Counters`] plus the mode, as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct ProxyStats {
    /// Current mode.
    pub mode: String,
    /// Connections accepted.
    pub connections: u64,
    /// Connections open now.
    pub active: u64,
    /// Connections refused at accept.
    pub refused: u64,
    /// Connections swallowed by `blackhole`.
    pub blackholed: u64,
    /// Open connections killed by `reset` or `cut`.
    pub killed: u64,
    /// Failed upstream connects.
    pub upstream_failures: u64,
    /// Bytes client to upstream.
    pub bytes_up: u64,
    /// Bytes upstream to client.
    pub bytes_down: u64,
    /// Bytes discarded.
    pub bytes_discarded: u64,
}

/// Shared state of a running proxy.
#[derive(Debug)]
pub struct Proxy {
    mode: watch::Sender<ProxyMode>,
    counters: Counters,
    upstream: SocketAddr,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Proxy {
    /// A proxy to `upstream`, starting in `mode`.
    pub fn new(upstream: SocketAddr, mode: ProxyMode) -> Self {
        Proxy {
            mode: watch::Sender::new(mode),
            counters: Counters::default(),
            upstream,
        }
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        *self.mode.borrow()
    }

    /// Switches the mode; open connections react at once.
    pub fn set_mode(&self, mode: ProxyMode) {
        tracing::info!(mode = %mode.spelling(), "proxy mode switched");
        self.mode.send_replace(mode);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProxyStats {
            mode: self.mode().spelling(),
            connections: get(&c.accepted),
            active: get(&c.active),
            refused: get(&c.refused),
            blackholed: get(&c.blackholed),
            killed: get(&c.killed),
            upstream_failures: get(&c.upstream_failures),
            bytes_up: get(&c.bytes_up),
            bytes_down: get(&c.bytes_down),
            bytes_discarded: get(&c.bytes_discarded),
        }
    }

    /// Accepts connections on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let (client, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying in 50ms");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            add(&self.counters.accepted, 1);
            let _ = client.set_nodelay(true);
            let this = Arc::clone(&self);
            match self.mode() {
                ProxyMode::Reset => {
                    add(&self.counters.refused, 1);
                    reset(client);
                }
                ProxyMode::Cut => {
                    add(&self.counters.refused, 1);
                    drop(client);
                }
                ProxyMode::Blackhole => {
                    add(&self.counters.blackholed, 1);
                    tokio::spawn(this.discard(client));
                }
                ProxyMode::Pass | ProxyMode::Slow(_) => {
                    tokio::spawn(async move {
                        if let Err(e) = this.forward(client).await {
                            tracing::debug!(error = %e, %peer, "connection ended with an error");
                        }
                    });
                }
            }
        }
    }

    /// Reads and drops everything until the client leaves or the mode leaves `blackhole`.
    async fn discard(self: Arc<Self>, mut client: TcpStream) {
        let mut modes = self.mode.subscribe();
        let mut buffer = vec![0u8; CHUNK];
        loop {
            tokio::select! {
                read = client.read(&mut buffer) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => add(&self.counters.bytes_discarded, n as u64),
                },
                changed = modes.wait_for(|m| *m != ProxyMode::Blackhole) => {
                    if matches!(changed.as_deref(), Ok(ProxyMode::Reset)) {
                        reset(client);
                    }
                    return;
                }
            }
        }
    }

    async fn forward(self: Arc<Self>, mut client: TcpStream) -> std::io::Result<()> {
        let connect =
            tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(self.upstream)).await;
        let mut upstream = match connect {
            Ok(Ok(upstream)) => upstream,
            Ok(Err(_)) | Err(_) => {
                add(&self.counters.upstream_failures, 1);
                add(&self.counters.refused, 1);
                reset(client);
                return Ok(());
            }
        };
        let _ = upstream.set_nodelay(true);
        add(&self.counters.active, 1);
        let mut modes = self.mode.subscribe();
        let ending = {
            let (mut client_read, mut client_write) = client.split();
            let (mut upstream_read, mut upstream_write) = upstream.split();
            let up = pump(
                &mut client_read,
                &mut upstream_write,
                self.mode.subscribe(),
                &self.counters.bytes_up,
            );
            let down = pump(
                &mut upstream_read,
                &mut client_write,
                self.mode.subscribe(),
                &self.counters.bytes_down,
            );
            tokio::select! {
                done = async { tokio::try_join!(up, down) } => Ending::Done(done.err()),
                killed = modes.wait_for(|m| matches!(m, ProxyMode::Reset | ProxyMode::Cut)) => {
                    Ending::Killed(killed.map(|m| *m).unwrap_or(ProxyMode::Cut))
                }
            }
        };
        self.counters.active.fetch_sub(1, Ordering::Relaxed);
        match ending {
            Ending::Done(None) => Ok(()),
            Ending::Done(Some(e)) => {
                // Pass a broken connection on as a broken connection.
                reset(client);
                reset(upstream);
                Err(e)
            }
            Ending::Killed(mode) => {
                add(&self.counters.killed, 1);
                if mode == ProxyMode::Reset {
                    reset(client);
                    reset(upstream);
                }
                Ok(())
            }
        }
    }
}

enum Ending {
    Done(Option<std::io::Error>),
    Killed(ProxyMode),
}

/// Closes with a RST instead of a FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Copies one direction, obeying the mode before each write; shuts the writer down on EOF.
async fn pump(
    from: &mut tokio::net::tcp::ReadHalf<'_>,
    to: &mut tokio::net::tcp::WriteHalf<'_>,
    mut modes: watch::Receiver<ProxyMode>,
    counter: &AtomicU64,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; CHUNK];
    loop {
        if *modes.borrow() == ProxyMode::Blackhole {
            // Frozen: read nothing so the peers' buffers fill, as in a real partition.
            let _ = modes.wait_for(|m| *m != ProxyMode::Blackhole).await;
        }
        let n = from.read(&mut buffer).await?;
        if n == 0 {
            to.shutdown().await?;
            return Ok(());
        }
        // The mode may have changed while waiting for data.
        let mode = *modes.borrow();
        match mode {
            ProxyMode::Blackhole => {
                let _ = modes.wait_for(|m| *m != ProxyMode::Blackhole).await;
            }
            ProxyMode::Slow(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            _ => {}
        }
        to.write_all(&buffer[..n]).await?;
        add(counter, n as u64);
    }
}

/// Where to listen; built from the command line.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Client-facing address.
    pub listen: SocketAddr,
    /// Where connections are forwarded.
    pub upstream: SocketAddr,
    /// Control API address.
    pub control: SocketAddr,
    /// Receives the bound addresses as JSON once listening.
    pub ready_file: Option<PathBuf>,
    /// Initial mode.
    pub mode: ProxyMode,
}

/// The addresses actually bound, written to the ready file.
#[derive(Clone, Debug, Serialize)]
pub struct ProxyAddrs {
    /// Client-facing address.
    pub listen: SocketAddr,
    /// Control API address.
    pub control: SocketAddr,
    /// Upstream address.
    pub upstream: SocketAddr,
    /// This process's id.
    pub pid: u32,
}

/// Binds, writes the ready file and serves until SIGINT/SIGTERM.
pub async fn run(config: ProxyConfig) -> anyhow::Result<()> {
    let proxy = Arc::new(Proxy::new(config.upstream, config.mode));
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the proxy listener on {}", config.listen))?;
    let control_listener = TcpListener::bind(config.control)
        .await
        .with_context(|| format!("binding the control listener on {}", config.control))?;
    let addrs = ProxyAddrs {
        listen: listener.local_addr()?,
        control: control_listener.local_addr()?,
        upstream: config.upstream,
        pid: std::process::id(),
    };
    if let Some(path) = &config.ready_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&addrs)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    }
    tracing::info!(listen = %addrs.listen, upstream = %addrs.upstream, control = %addrs.control,
        mode = %proxy.mode().spelling(), "fault proxy listening");
    let serving = tokio::spawn(Arc::clone(&proxy).serve(listener));
    let result = tokio::select! {
        done = control::serve(proxy, control_listener) => done,
        () = crate::backend::shutdown_signal() => Ok(()),
    };
    serving.abort();
    result
}

#[cfg(test)]
mod tests;
