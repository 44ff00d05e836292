//! The server holds under abuse (issue 16, item 6), over real TCP connections to
//! `serve_with` on 127.0.0.1: a slow head is cut off after the header read timeout, a
//! trickling body after the body read timeout, requests over the concurrency bound are
//! shed with 503 and `Retry-After`, connections over the connection limits are refused
//! while open ones are served, and an oversize head is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestBackend;
use ebill_api::{
    ApiConfig, Backend, NodeMetrics, Rejection, Role, ServerLimits, TxOutcome, TxStatus, router,
    router_with, serve_with,
};
use ebill_store::Store;
use ebill_types::dev::{self, DEV_GENESIS_TIME_MS};
use ebill_types::{Genesis, SignedTx, Tx, TxBody, TxId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// Bound on anything a test waits for; the limits under test are far shorter.
const PATIENCE: Duration = Duration::from_secs(30);

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    async fn start(app: axum::Router, limits: ServerLimits) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(listener, app, limits, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        timeout(PATIENCE, task).await.unwrap().unwrap().unwrap();
    }
}

/// A response as read off the wire.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap();
        v["error"]["code"].as_str().unwrap_or("").to_owned()
    }
}

/// Reads one response; `None` if the connection closes before a whole one.
async fn read_response<R: AsyncRead + Unpin>(s: &mut R) -> Option<Response> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(len);
    Some(Response {
        status,
        headers,
        body,
    })
}

/// True once the peer has closed: a read returns end of file (or an error) before
/// `PATIENCE`; anything read first is skipped.
async fn closed_by_server<R: AsyncRead + Unpin>(s: &mut R) -> bool {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

async fn get(s: &mut TcpStream, path: &str) -> Option<Response> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    read_response(s).await
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

fn limits() -> ServerLimits {
    ServerLimits::default()
}

#[tokio::test]
async fn a_head_sent_one_byte_a_second_is_cut_off_after_the_header_timeout() {
    let server = Server::start(
        router(TestBackend::new()),
        ServerLimits {
            header_read_timeout_ms: 2_000,
            ..limits()
        },
    )
    .await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\nUser-Agent: slow\r\n\r\n";
    let (mut rd, mut wr) = connect(server.addr).await.into_split();
    let closed = tokio::spawn(async move {
        let mut chunk = [0u8; 4096];
        let n = rd.read(&mut chunk).await.unwrap_or(0);
        (Instant::now(), chunk[..n].to_vec())
    });
    let started = Instant::now();
    let mut sent = 0;
    for b in request {
        if closed.is_finished() || wr.write_all(&[*b]).await.is_err() {
            break;
        }
        sent += 1;
        sleep(Duration::from_secs(1)).await;
    }
    let (at, got) = timeout(PATIENCE, closed).await.unwrap().unwrap();
    assert!(
        got.is_empty(),
        "the server answered: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(sent < request.len(), "the whole head went through");
    let after = at - started;
    assert!(
        after >= Duration::from_millis(2_000),
        "closed after {after:?}, before the timeout"
    );

    // A client that sends its head at once is served.
    let mut s = connect(server.addr).await;
    assert_eq!(get(&mut s, "/healthz").await.unwrap().status, 200);
    drop(s);
    server.shutdown().await;
}

/// A body declared over the route's limit is refused at once, not after the body read
/// timeout: otherwise it holds a concurrency slot for that long without sending a byte.
#[tokio::test]
async fn a_body_declared_over_the_limit_is_refused_at_once() {
    let server = Server::start(
        router(TestBackend::new()),
        ServerLimits {
            body_read_timeout_ms: 60_000,
            ..limits()
        },
    )
    .await;
    for (path, declared_bytes) in [
        ("/v1/txs", ebill_api::limits::MAX_TX_BODY_BYTES + 1),
        ("/v1/verify", 10_000_000),
        ("/v1/txs/batch", ebill_api::limits::MAX_BATCH_BODY_BYTES + 1),
    ] {
        let mut s = connect(server.addr).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: {declared_bytes}\r\n\r\n{{"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        // Far sooner than the 60 s body timeout.
        let resp = timeout(Duration::from_secs(10), read_response(&mut s))
            .await
            .expect("no answer before the body timeout")
            .unwrap();
        assert_eq!(resp.status, 413, "{path}: {resp:?}");
        assert_eq!(resp.code(), "body_too_large", "{path}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_trickling_body_is_cut_off_with_408_and_the_connection_closed() {
    let server = Server::start(
        router(TestBackend::new()),
        ServerLimits {
            body_read_timeout_ms: 1_500,
            ..limits()
        },
    )
    .await;
    let mut s = connect(server.addr).await;
    s.write_all(
        b"POST /v1/verify HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
          Content-Length: 200\r\n\r\n{",
    )
    .await
    .unwrap();
    let (mut rd, mut wr) = s.into_split();
    let trickle = tokio::spawn(async move {
        // One byte a second, far fewer than announced; stops when the server hangs up.
        for _ in 0..60 {
            sleep(Duration::from_secs(1)).await;
            if wr.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let resp = timeout(PATIENCE, read_response(&mut rd))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status, 408, "{resp:?}");
    assert_eq!(resp.code(), "body_timeout");
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(
        closed_by_server(&mut rd).await,
        "the connection stayed open"
    );
    trickle.abort();
    server.shutdown().await;
}

/// A backend whose `submit` reports that it was entered and then waits for the test
/// to open the gate: requests stay in flight exactly as long as the test wants.
struct GatedBackend {
    inner: Arc<TestBackend>,
    entered: Mutex<std_mpsc::Sender<()>>,
    gate: Mutex<std_mpsc::Receiver<()>>,
}

impl Backend for GatedBackend {
    fn genesis(&self) -> &Genesis {
        self.inner.genesis()
    }
    fn store(&self) -> &Arc<dyn Store> {
        self.inner.store()
    }
    fn submit(&self, txs: Vec<SignedTx>) -> Vec<Result<TxId, Rejection>> {
        let _ = self.entered.lock().unwrap().send(());
        let _ = self.gate.lock().unwrap().recv_timeout(PATIENCE);
        self.inner.submit(txs)
    }
    fn watch(&self, id: TxId) -> oneshot::Receiver<TxOutcome> {
        self.inner.watch(id)
    }
    fn tx_status(&self, id: &TxId) -> TxStatus {
        self.inner.tx_status(id)
    }
    fn role(&self) -> Role {
        self.inner.role()
    }
    fn peers(&self) -> usize {
        self.inner.peers()
    }
    fn syncing(&self) -> bool {
        self.inner.syncing()
    }
    fn metrics(&self) -> NodeMetrics {
        self.inner.metrics()
    }
}

fn issue(number: u64) -> SignedTx {
    Tx {
        nonce: 0,
        body: TxBody::IssueBill(dev::sample_bill(number, 1250, DEV_GENESIS_TIME_MS)),
    }
    .sign_unit(dev::DEV_CHAIN_ID, &dev::dev_issuer_key())
}

fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_concurrency_bound_the_answer_is_503_with_retry_after() {
    let (entered_tx, entered) = std_mpsc::channel();
    let (open_gate, gate) = std_mpsc::channel();
    let backend = Arc::new(GatedBackend {
        inner: TestBackend::new(),
        entered: Mutex::new(entered_tx),
        gate: Mutex::new(gate),
    });
    let server = Server::start(
        router_with(backend, ApiConfig::default()),
        ServerLimits {
            max_concurrent_requests: 2,
            retry_after_s: 7,
            ..limits()
        },
    )
    .await;

    // Two submissions that stay inside `submit` until the gate opens.
    let mut held = Vec::new();
    for n in 1..=2 {
        let mut s = connect(server.addr).await;
        s.write_all(&post("/v1/txs", &serde_json::to_vec(&issue(n)).unwrap()))
            .await
            .unwrap();
        held.push(s);
    }
    let both_entered =
        tokio::task::spawn_blocking(move || (0..2).all(|_| entered.recv_timeout(PATIENCE).is_ok()))
            .await
            .unwrap();
    assert!(both_entered, "the submissions did not reach the backend");

    // A third request is shed at once, on a new connection or an open one.
    let mut s = connect(server.addr).await;
    let resp = timeout(PATIENCE, get(&mut s, "/healthz"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status, 503, "{resp:?}");
    assert_eq!(resp.code(), "overloaded");
    assert_eq!(resp.header("retry-after"), Some("7"));

    // Once the two are answered, requests are served again.
    open_gate.send(()).unwrap();
    open_gate.send(()).unwrap();
    for s in &mut held {
        let resp = timeout(PATIENCE, read_response(s)).await.unwrap().unwrap();
        assert_eq!(resp.status, 202, "{resp:?}");
    }
    let resp = timeout(PATIENCE, get(&mut s, "/healthz"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status, 200, "{resp:?}");
    drop((s, held));
    server.shutdown().await;
}

#[tokio::test]
async fn over_the_connection_limit_new_connections_are_refused_and_open_ones_served() {
    let server = Server::start(
        router(TestBackend::new()),
        ServerLimits {
            max_connections: 2,
            ..limits()
        },
    )
    .await;
    let mut a = connect(server.addr).await;
    let mut b = connect(server.addr).await;
    // Served, so both are counted.
    assert_eq!(get(&mut a, "/healthz").await.unwrap().status, 200);
    assert_eq!(get(&mut b, "/healthz").await.unwrap().status, 200);

    // A third is answered 503 too_many_connections and closed, without its request
    // being served.
    let mut c = connect(server.addr).await;
    let _ = c
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await;
    if let Some(resp) = read_response(&mut c).await {
        assert_eq!(resp.status, 503, "{resp:?}");
        assert_eq!(resp.code(), "too_many_connections");
        assert_eq!(resp.header("retry-after"), Some("1"));
    }
    assert!(closed_by_server(&mut c).await);

    // The open ones are still served.
    assert_eq!(get(&mut a, "/healthz").await.unwrap().status, 200);
    assert_eq!(get(&mut b, "/healthz").await.unwrap().status, 200);

    // Once one closes, its slot is free again (the server sees the close when it
    // reads end of file, so a new connection may be refused until then).
    drop(a);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut d = connect(server.addr).await;
        if let Some(resp) = get(&mut d, "/healthz").await
            && resp.status == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never freed");
        tokio::task::yield_now().await;
    }
    drop(b);
    server.shutdown().await;
}

#[tokio::test]
async fn the_per_address_limit_leaves_other_addresses_served() {
    let server = Server::start(
        router(TestBackend::new()),
        ServerLimits {
            max_connections_per_ip: 1,
            ..limits()
        },
    )
    .await;
    let mut a = connect_from("127.0.0.1", server.addr).await;
    assert_eq!(get(&mut a, "/healthz").await.unwrap().status, 200);
    let mut again = connect_from("127.0.0.1", server.addr).await;
    let refused = get(&mut again, "/healthz").await;
    assert!(
        refused.as_ref().is_none_or(|r| r.status == 503),
        "{refused:?}"
    );
    let mut other = connect_from("127.0.0.2", server.addr).await;
    assert_eq!(get(&mut other, "/healthz").await.unwrap().status, 200);
    assert_eq!(get(&mut a, "/healthz").await.unwrap().status, 200);
    drop((a, again, other));
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversize_head_is_refused_with_431() {
    let server = Server::start(router(TestBackend::new()), limits()).await;
    let mut s = connect(server.addr).await;
    let big = "x".repeat(ServerLimits::default().max_header_bytes + 1);
    let req = format!("GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: {big}\r\n\r\n");
    let _ = s.write_all(req.as_bytes()).await;
    let resp = timeout(PATIENCE, read_response(&mut s))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status, 431, "{resp:?}");
    let mut s = connect(server.addr).await;
    let many: String = (0..ServerLimits::default().max_headers + 1)
        .map(|i| format!("X-H{i}: 1\r\n"))
        .collect();
    let req = format!("GET /healthz HTTP/1.1\r\nHost: test\r\n{many}\r\n");
    let _ = s.write_all(req.as_bytes()).await;
    let resp = timeout(PATIENCE, read_response(&mut s))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status, 431, "{resp:?}");
    server.shutdown().await;
}

#[test]
fn unusable_limits_are_refused() {
    let bad = ServerLimits {
        max_header_bytes: 1024,
        ..limits()
    };
    assert_eq!(bad.validate().unwrap_err().name, "max_header_bytes");
    let bad = ServerLimits {
        max_concurrent_requests: 0,
        ..limits()
    };
    assert_eq!(bad.validate().unwrap_err().name, "max_concurrent_requests");
    assert!(limits().validate().is_ok());
}
