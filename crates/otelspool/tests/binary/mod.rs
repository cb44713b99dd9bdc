//! The real `otelspool` binary for tests that must see what it prints: started with a config
//! file and an environment, its stdout and stderr collected, stopped with SIGTERM; plus raw
//! HTTP/1.1 GETs against its endpoints.
#![allow(dead_code)]

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_otelspool");

/// A free port on 127.0.0.1 (bound, then released for the binary to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `otelspool <args>` with `env` (and no `RUST_LOG` unless `env` sets it), run to the end.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run otelspool")
}

/// A running `otelspool`; its output is read as it comes (a full pipe would block it).
pub struct Running {
    child: Child,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> Option<std::thread::JoinHandle<String>> {
    let mut pipe = pipe?;
    Some(std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }))
}

impl Running {
    /// Starts `otelspool --config <config>` with `env` (and no `RUST_LOG` unless `env` sets it).
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Running {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start otelspool");
        let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// Polls `GET http://addr/` until it answers 200, failing after `deadline` or if the
    /// process exits.
    pub async fn wait_healthy(&mut self, addr: SocketAddr, deadline: Duration) {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            if let Ok((200, _)) = get(addr, "/").await {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("otelspool exited with {status} before it was healthy");
            }
            assert!(
                tokio::time::Instant::now() < until,
                "otelspool never became healthy"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, waits for the exit, and returns stdout and stderr.
    pub fn stop(mut self) -> (String, String) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let _ = self.child.wait();
        let take = |h: Option<std::thread::JoinHandle<String>>| {
            h.map(|h| h.join().expect("output reader"))
                .unwrap_or_default()
        };
        (take(self.stdout.take()), take(self.stderr.take()))
    }
}

impl Running {
    /// Sends SIGKILL (no shutdown of any kind), waits for the exit, and returns stdout and
    /// stderr.
    pub fn kill9(mut self) -> (String, String) {
        self.child.kill().expect("SIGKILL otelspool");
        let _ = self.child.wait();
        let take = |h: Option<std::thread::JoinHandle<String>>| {
            h.map(|h| h.join().expect("output reader"))
                .unwrap_or_default()
        };
        (take(self.stdout.take()), take(self.stderr.take()))
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over HTTP/1.1 on a fresh connection: the status and the whole answer, head
/// included.
pub async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, text))
}
