//! Component tests of the fault proxy against real sockets on 127.0.0.1.

#![allow(clippy::unwrap_used)]

use std::io::ErrorKind;

use super::*;

/// An upstream that echoes every byte back.
async fn echo_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn proxy_to(upstream: SocketAddr) -> (Arc<Proxy>, SocketAddr) {
    let proxy = Arc::new(Proxy::new(upstream, ProxyMode::Pass));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(Arc::clone(&proxy).serve(listener));
    (proxy, addr)
}

async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(message).await?;
    let mut got = vec![0u8; message.len()];
    stream.read_exact(&mut got).await?;
    Ok(got)
}

const SHORT: Duration = Duration::from_millis(300);

/// Scenario: pass, blackhole, pass on one open connection and on a new one.
/// Guarantees: frozen connections resume intact; blackholed new connections get no answer.
#[tokio::test]
async fn blackhole_freezes_open_connections_and_swallows_new_ones() {
    let (proxy, addr) = proxy_to(echo_upstream().await).await;
    let mut open = TcpStream::connect(addr).await.unwrap();
    assert_eq!(round_trip(&mut open, b"hello").await.unwrap(), b"hello");

    proxy.set_mode(ProxyMode::Blackhole);
    let frozen = tokio::time::timeout(SHORT, round_trip(&mut open, b"frozen")).await;
    assert!(frozen.is_err(), "a frozen connection answered");
    let mut swallowed = TcpStream::connect(addr).await.unwrap();
    assert!(
        tokio::time::timeout(SHORT, round_trip(&mut swallowed, b"x"))
            .await
            .is_err()
    );

    proxy.set_mode(ProxyMode::Pass);
    let mut resumed = vec![0u8; 6];
    tokio::time::timeout(Duration::from_secs(2), open.read_exact(&mut resumed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resumed, b"frozen");
    let stats = proxy.stats();
    assert_eq!((stats.blackholed, stats.mode.as_str()), (1, "pass"));
    assert!(stats.bytes_discarded >= 1);
}

/// Scenario: reset and cut while a connection is open, then a new connection in each mode.
/// Guarantees: open connections die (RST or EOF); new ones are closed at once.
#[tokio::test]
async fn reset_and_cut_kill_open_and_new_connections() {
    let (proxy, addr) = proxy_to(echo_upstream().await).await;
    let mut open = TcpStream::connect(addr).await.unwrap();
    assert_eq!(round_trip(&mut open, b"a").await.unwrap(), b"a");
    proxy.set_mode(ProxyMode::Reset);
    let mut buffer = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(2), open.read(&mut buffer))
        .await
        .unwrap();
    assert!(
        matches!(&read, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "expected a reset, got {read:?}"
    );
    let mut refused = TcpStream::connect(addr).await.unwrap();
    assert!(round_trip(&mut refused, b"b").await.is_err());

    proxy.set_mode(ProxyMode::Pass);
    let mut open = TcpStream::connect(addr).await.unwrap();
    assert_eq!(round_trip(&mut open, b"c").await.unwrap(), b"c");
    proxy.set_mode(ProxyMode::Cut);
    let read = tokio::time::timeout(Duration::from_secs(2), open.read(&mut buffer))
        .await
        .unwrap();
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "expected the connection closed, got {read:?}"
    );
    let stats = proxy.stats();
    assert_eq!(stats.killed, 2);
    assert!(stats.refused >= 1);
}

/// Scenario: slow:200 on an open connection.
/// Guarantees: a round trip takes at least the delay (one chunk each way).
#[tokio::test]
async fn slow_delays_every_chunk() {
    let (proxy, addr) = proxy_to(echo_upstream().await).await;
    let mut open = TcpStream::connect(addr).await.unwrap();
    proxy.set_mode(ProxyMode::Slow(200));
    let started = std::time::Instant::now();
    assert_eq!(round_trip(&mut open, b"slow").await.unwrap(), b"slow");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(proxy.stats().bytes_up, 4);
}

/// Scenario: the upstream is not listening.
/// Guarantees: the client's connection is reset, and the failure is counted.
#[tokio::test]
async fn unreachable_upstream_resets_the_client() {
    let gone = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let (proxy, addr) = proxy_to(gone).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    assert!(round_trip(&mut client, b"x").await.is_err());
    assert_eq!(proxy.stats().upstream_failures, 1);
}

#[test]
fn modes_round_trip() {
    for s in ["pass", "blackhole", "reset", "slow:250", "cut"] {
        assert_eq!(s.parse::<ProxyMode>().unwrap().spelling(), s);
    }
    assert!("slow:".parse::<ProxyMode>().is_err());
    assert!("drop".parse::<ProxyMode>().is_err());
}
