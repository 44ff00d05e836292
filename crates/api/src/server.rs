//! The HTTP server in front of the routes, and what keeps it standing under abuse.
//!
//! [`serve_with`] accepts connections itself (axum's `serve` has none of these knobs)
//! and runs each on hyper's HTTP/1 connection builder:
//!
//! - **Connections**: at most [`ServerLimits::max_connections`] open at once, and at most
//!   [`ServerLimits::max_connections_per_ip`] from one address. A connection over either
//!   limit is accepted and closed at once, after one non-blocking write of a
//!   `503 too_many_connections` answer; open connections are served as before.
//! - **Slow clients**: a connection must deliver a request's whole head within
//!   [`ServerLimits::header_read_timeout_ms`] of starting to wait for it (hyper's header
//!   read timeout), so a slowloris sending one byte a second is cut off, and an idle
//!   keep-alive connection is closed after the same time. A request's body must arrive
//!   within [`ServerLimits::body_read_timeout_ms`] of its head: past that the answer is
//!   `408 body_timeout` and the connection is closed.
//! - **Heads**: at most [`ServerLimits::max_header_bytes`] of request head and
//!   [`ServerLimits::max_headers`] header lines (hyper answers 431 past either).
//! - **Load shedding**: at most [`ServerLimits::max_concurrent_requests`] requests are
//!   being answered at once (tower's `ConcurrencyLimit` behind `LoadShed`); one more is
//!   answered at once `503 overloaded` with `Retry-After:`
//!   [`ServerLimits::retry_after_s`], instead of queueing.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tower::{BoxError, ServiceBuilder};

use crate::error::{ApiError, codes};

/// hyper refuses a read buffer smaller than this (it panics), so a smaller
/// [`ServerLimits::max_header_bytes`] is refused by [`ServerLimits::validate`].
pub const MIN_HEADER_BYTES: usize = 8192;

/// How long the accept loop pauses after an accept error other than a connection's
/// own (out of file descriptors, say), so that it does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Limits of the HTTP server. [`ServerLimits::default`] holds the defaults the node
/// uses; each is a key of the node config's `[http]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one IP address.
    pub max_connections_per_ip: usize,
    /// Most requests being answered at once; more are shed with 503.
    pub max_concurrent_requests: usize,
    /// How long a connection may take to send a request's head, counted from when the
    /// server starts waiting for it (so also the most a keep-alive connection idles).
    pub header_read_timeout_ms: u64,
    /// How long a request's body may take to arrive, counted from its head.
    pub body_read_timeout_ms: u64,
    /// Most bytes of a request's head (request line and headers); at least
    /// [`MIN_HEADER_BYTES`].
    pub max_header_bytes: usize,
    /// Most header lines in a request.
    pub max_headers: usize,
    /// The `Retry-After` of a shed request or a refused connection, seconds.
    pub retry_after_s: u64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_ip: 256,
            max_concurrent_requests: 512,
            header_read_timeout_ms: 5_000,
            body_read_timeout_ms: 10_000,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            retry_after_s: 1,
        }
    }
}

/// A limit that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("http.{name}: {reason}")]
pub struct LimitError {
    /// The limit's name (its key in the `[http]` table).
    pub name: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

impl ServerLimits {
    /// Refuses limits that would stop the server from serving anything, or that hyper
    /// does not take.
    pub fn validate(&self) -> Result<(), LimitError> {
        let positive = [
            ("max_connections", self.max_connections as u64),
            ("max_connections_per_ip", self.max_connections_per_ip as u64),
            (
                "max_concurrent_requests",
                self.max_concurrent_requests as u64,
            ),
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            ("max_headers", self.max_headers as u64),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(LimitError {
                    name,
                    reason: "must be more than 0".into(),
                });
            }
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return Err(LimitError {
                name: "max_header_bytes",
                reason: format!(
                    "{} is below the smallest head buffer hyper takes, {MIN_HEADER_BYTES}",
                    self.max_header_bytes
                ),
            });
        }
        Ok(())
    }
}

/// The instant by which a request's body must have arrived; set on each request by the
/// server, read by the body extractors ([`crate::extract`]).
#[derive(Clone, Copy, Debug)]
pub struct BodyReadDeadline(pub Instant);

/// Open connections, in total and by address.
#[derive(Debug)]
struct Connections {
    open: Mutex<OpenConnections>,
    max_total: usize,
    max_per_ip: usize,
}

#[derive(Debug, Default)]
struct OpenConnections {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// One open connection, counted until dropped.
#[derive(Debug)]
struct ConnectionSlot {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, OpenConnections> {
        // Counters changed in one step each: a panic cannot leave them half updated.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection from `ip`, unless a limit is reached.
    fn open(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut open = self.lock();
        let from_ip = open.by_ip.get(&ip).copied().unwrap_or(0);
        if open.total >= self.max_total || from_ip >= self.max_per_ip {
            return None;
        }
        open.total += 1;
        open.by_ip.insert(ip, from_ip + 1);
        Some(ConnectionSlot {
            connections: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.connections.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_ip.remove(&self.ip);
            }
        }
    }
}

/// The answer to a request over [`ServerLimits::max_concurrent_requests`] (or, never
/// expected, another failure of the layers).
fn shed_answer(retry_after_s: u64) -> impl Fn(BoxError) -> std::future::Ready<Response> + Clone {
    move |err: BoxError| {
        let resp = if err.is::<tower::load_shed::error::Overloaded>() {
            let mut resp = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::OVERLOADED,
                "the node is answering as many requests as it may; retry later",
            )
            .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
            resp
        } else {
            ApiError::internal("the request layers", &err).into_response()
        };
        std::future::ready(resp)
    }
}

/// The fixed answer written to a connection over a connection limit.
fn refusal_bytes(retry_after_s: u64) -> Vec<u8> {
    let body = format!(
        r#"{{"error":{{"code":"{}","message":"the node has as many connections open as it may; retry later"}}}}"#,
        codes::TOO_MANY_CONNECTIONS
    );
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: {retry_after_s}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Closes a connection over a limit: one non-blocking write of the 503, then close. A
/// client that does not read it loses nothing it could use.
fn refuse(stream: TcpStream, answer: &[u8], peer: SocketAddr) {
    let _ = stream.try_write(answer);
    tracing::debug!(%peer, "connection refused: over the connection limit");
    drop(stream);
}

/// True for accept errors that concern one connection only (it went away before it
/// was accepted).
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves; then stops
/// accepting, lets each connection finish the request it is answering, and returns
/// once all are closed (an idle or slow one is closed at once or by its timeout).
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    limits
        .validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, ?limits, "HTTP API listening");
    let body_timeout = Duration::from_millis(limits.body_read_timeout_ms);
    let service = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(shed_answer(limits.retry_after_s)))
        .load_shed()
        .concurrency_limit(limits.max_concurrent_requests)
        .map_request(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut()
                .insert(BodyReadDeadline(Instant::now() + body_timeout));
            req
        })
        .service(router);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .max_buf_size(limits.max_header_bytes)
        .max_headers(limits.max_headers)
        .keep_alive(true);
    let connections = Arc::new(Connections {
        open: Mutex::default(),
        max_total: limits.max_connections,
        max_per_ip: limits.max_connections_per_ip,
    });
    let refusal = refusal_bytes(limits.retry_after_s);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = connections.open(peer.ip()) else {
            refuse(stream, &refusal, peer);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let per_conn = tower::ServiceExt::map_request(
            service.clone(),
            move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(crate::web::PeerAddr(peer));
                req
            },
        );
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(per_conn));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    tracing::info!(%addr, "HTTP API stopped");
    Ok(())
}
