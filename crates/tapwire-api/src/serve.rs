//! The listener: HTTP/1.1 connections with a cap, timeouts and a clean shutdown.
//!
//! - At most [`ServeConfig::max_connections`] connections at once, long polls included;
//!   one more is answered `503 Service Unavailable` with `Retry-After` and closed, never
//!   left waiting in the backlog.
//! - A connection with no request in flight is closed [`ServeConfig::idle_timeout`] after
//!   it went idle (opened, or its last answer sent); once its next request has begun to
//!   arrive, the request head must be complete within [`ServeConfig::header_timeout`]
//!   (hyper enforces the same). Bodies have their own limit in [`crate::query`].
//! - Request heads are bounded by [`ServeConfig::max_header_bytes`] (hyper answers 431).
//! - With TLS ([`ServeConfig::tls`]), the handshake must finish within the header timeout;
//!   a failed or slow one is counted and the connection closed.
//! - Every refusal and every close for a timeout is counted in [`ServeStats`].
//!
//! [`raise_open_file_limit`] lifts the process's soft `RLIMIT_NOFILE` to its hard limit,
//! so the cap, not the descriptor table, is what a flood meets first.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Limits of the listener.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Connections open at once, long polls included.
    pub max_connections: usize,
    /// How long a connection may sit with no request.
    pub idle_timeout: Duration,
    /// How long a request head may take once it has begun to arrive.
    pub header_timeout: Duration,
    /// Largest request head, in bytes.
    pub max_header_bytes: usize,
    /// How long shutdown waits for requests in flight.
    pub drain_timeout: Duration,
    /// TLS, when the listener speaks it.
    pub tls: Option<Tls>,
}

/// A TLS acceptor for the listener.
#[derive(Clone)]
pub struct Tls(pub tokio_rustls::TlsAcceptor);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            max_connections: 16_384,
            idle_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            drain_timeout: Duration::from_secs(5),
            tls: None,
        }
    }
}

/// What the listener did, for the operator.
#[derive(Debug, Default)]
pub struct ServeStats {
    /// Connections accepted and served.
    pub accepted: AtomicU64,
    /// Connections answered 503 because the cap was reached.
    pub refused_at_cap: AtomicU64,
    /// Connections closed after sitting idle.
    pub closed_idle: AtomicU64,
    /// Connections closed because a request head took too long.
    pub closed_slow_header: AtomicU64,
    /// Connections open now.
    pub open: AtomicUsize,
    /// `accept` failures (e.g. out of descriptors).
    pub accept_errors: AtomicU64,
    /// TLS handshakes that failed or took too long.
    pub tls_failed: AtomicU64,
}

/// Sets the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft limit.
pub fn raise_open_file_limit() -> io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    }
    Ok(hard.max(soft))
}

/// The connection cap to use: the configured one, kept below the descriptor limit with
/// room for the store, the log and the answers to refused connections.
pub fn effective_cap(configured: usize, open_file_limit: u64) -> usize {
    let room = usize::try_from(open_file_limit.saturating_sub(256)).unwrap_or(usize::MAX);
    configured.min(room).max(1)
}

/// Activity of one connection, read by its watchdog.
#[derive(Debug)]
struct Activity {
    start: Instant,
    /// Nanoseconds after `start` when the connection last went idle.
    idle_since: AtomicU64,
    /// Nanoseconds after `start` of the first byte read since then (0 = none yet).
    first_byte: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            idle_since: AtomicU64::new(0),
            first_byte: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1)
    }

    fn read_some(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ = self.first_byte.compare_exchange(0, self.now(), Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    fn request_done(&self) {
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.idle_since.store(self.now(), Ordering::Relaxed);
            self.first_byte.store(0, Ordering::Relaxed);
        }
    }

    /// When the watchdog must look again, or why the connection must close now.
    fn verdict(&self, config: &ServeConfig) -> Result<Instant, Close> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Ok(Instant::now() + config.idle_timeout);
        }
        let at = |nanos: u64| self.start + Duration::from_nanos(nanos);
        let first = self.first_byte.load(Ordering::Relaxed);
        let deadline = if first == 0 {
            (at(self.idle_since.load(Ordering::Relaxed)) + config.idle_timeout, Close::Idle)
        } else {
            (at(first) + config.header_timeout, Close::SlowHeader)
        };
        if Instant::now() >= deadline.0 { Err(deadline.1) } else { Ok(deadline.0) }
    }
}

#[derive(Debug, Clone, Copy)]
enum Close {
    Idle,
    SlowHeader,
}

/// A stream that tells its [`Activity`] when bytes arrive.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read_some();
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

const AT_CAP: &str = "The server has reached its connection limit; retry shortly.\n";

/// Answers a connection over the cap and closes it. What the client sent meanwhile is
/// read and dropped (for at most a second), so closing does not reset the connection
/// before the client has read the answer.
async fn refuse(mut stream: TcpStream) {
    use tokio::io::AsyncReadExt;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{AT_CAP}",
        AT_CAP.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(head.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => left = left.saturating_sub(n),
            }
        }
        io::Result::Ok(())
    })
    .await;
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets
/// requests in flight finish (up to [`ServeConfig::drain_timeout`]) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ServeConfig,
    stats: Arc<ServeStats>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let config = Arc::new(config);
    let mut last_cap_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            stats.refused_at_cap.fetch_add(1, Ordering::Relaxed);
            if last_cap_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                last_cap_warning = Some(Instant::now());
                tracing::warn!(cap = config.max_connections, %peer, "connection limit reached; answering 503");
            }
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let (router, config, stats, mut stop) = (router.clone(), config.clone(), stats.clone(), stop_rx.clone());
        tokio::spawn(async move {
            match &config.tls {
                None => serve_connection(stream, peer, router, &config, &stats, &mut stop).await,
                Some(Tls(acceptor)) => match tokio::time::timeout(config.header_timeout, acceptor.accept(stream)).await
                {
                    Ok(Ok(tls)) => serve_connection(tls, peer, router, &config, &stats, &mut stop).await,
                    Ok(Err(e)) => {
                        stats.tls_failed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    }
                    Err(_) => {
                        stats.tls_failed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%peer, "TLS handshake took too long");
                    }
                },
            }
            stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(
        config.drain_timeout,
        permits.acquire_many(u32::try_from(config.max_connections).unwrap_or(u32::MAX)),
    )
    .await;
    if drained.is_err() {
        tracing::warn!(open = stats.open.load(Ordering::Relaxed), "shutdown: connections still open after drain");
    }
    Ok(())
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    peer: std::net::SocketAddr,
    router: Router,
    config: &ServeConfig,
    stats: &ServeStats,
    stop: &mut watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched { inner: stream, activity: activity.clone() });
    let counted = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let (router, activity) = (router.clone(), counted.clone());
        activity.request_started();
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        async move {
            let resp = router.oneshot(req.map(axum::body::Body::new)).await;
            activity.request_done();
            resp
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_buf_size(config.max_header_bytes.max(8192))
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let wake = match activity.verdict(config) {
            Ok(at) => at,
            Err(why) if !closing => {
                match why {
                    Close::Idle => stats.closed_idle.fetch_add(1, Ordering::Relaxed),
                    Close::SlowHeader => stats.closed_slow_header.fetch_add(1, Ordering::Relaxed),
                };
                // Nothing is in flight: there is nothing to wait for.
                return;
            }
            Err(_) => Instant::now() + config.drain_timeout,
        };
        tokio::select! {
            _ = conn.as_mut() => return,
            () = tokio::time::sleep_until(wake.into()) => {}
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        assert_eq!(effective_cap(16_384, 1024), 768);
        assert_eq!(effective_cap(100, 1_048_576), 100);
        assert_eq!(effective_cap(100, 10), 1);
    }

    #[test]
    fn idle_and_slow_heads_have_deadlines() {
        let config = ServeConfig {
            idle_timeout: Duration::from_millis(30),
            header_timeout: Duration::from_millis(10),
            ..ServeConfig::default()
        };
        let a = Activity::new();
        assert!(a.verdict(&config).is_ok());
        a.read_some();
        std::thread::sleep(Duration::from_millis(15));
        assert!(matches!(a.verdict(&config), Err(Close::SlowHeader)));
        a.request_started();
        assert!(a.verdict(&config).is_ok(), "a request in flight is never idle");
        a.request_done();
        std::thread::sleep(Duration::from_millis(35));
        assert!(matches!(a.verdict(&config), Err(Close::Idle)));
    }
}
