use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;
use tracing::Instrument;

use crate::config::{ConfigError, Env};
use crate::observability::BodyTimeout;
use crate::tls::TlsAcceptor;

/// What one connection may cost the server, whatever the client does, and how many connections
/// one service holds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A connection with no request in flight, just accepted (its TLS handshake included) or kept
    /// alive after an answer, is closed unless a whole request head arrives within this time.
    /// hyper's header read timeout, which hyper restarts whenever a connection falls idle: one
    /// timer for both.
    pub idle_timeout: Duration,
    /// A request's body must have arrived whole within this time of its head, or the answer is
    /// 408 and the connection is closed (see [`crate::observability`]).
    pub body_timeout: Duration,
    /// Larger request heads are answered 431.
    pub max_head_bytes: usize,
    /// After shutdown is asked for, requests in flight get this long to finish.
    pub drain_timeout: Duration,
    /// Connections one service holds at once, all its listeners together; a connection over the
    /// cap is closed as soon as it is accepted.
    pub max_connections: usize,
    /// The same cap for the connections from one address (an IPv6 address counts as its /64).
    pub max_connections_per_address: usize,
}

/// The variables of [`Limits::from_env`]; a refusal's warning names the one that refused.
const IDLE_TIMEOUT_SECONDS: &str = "IDLE_TIMEOUT_SECONDS";
const BODY_TIMEOUT_SECONDS: &str = "BODY_TIMEOUT_SECONDS";
const MAX_CONNECTIONS: &str = "MAX_CONNECTIONS";
const MAX_CONNECTIONS_PER_ADDRESS: &str = "MAX_CONNECTIONS_PER_ADDRESS";

impl Default for Limits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_head_bytes: 16 * 1024,
            drain_timeout: Duration::from_secs(5),
            max_connections: default_max_connections(),
            // Room for the browsers behind one NAT (six connections each) and for a load test from
            // one machine (the bench at 64 holds about 150 on the authorization server).
            max_connections_per_address: 256,
        }
    }
}

impl Limits {
    /// `IDLE_TIMEOUT_SECONDS`, `BODY_TIMEOUT_SECONDS`, `MAX_CONNECTIONS` and
    /// `MAX_CONNECTIONS_PER_ADDRESS` (docs/configuration.md), each a positive number; the
    /// defaults of [`Limits::default`].
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let default = Self::default();
        let seconds =
            |var, default: Duration| env.seconds(var, default.as_secs()).map(Duration::from_secs);
        Ok(Self {
            idle_timeout: seconds(IDLE_TIMEOUT_SECONDS, default.idle_timeout)?,
            body_timeout: seconds(BODY_TIMEOUT_SECONDS, default.body_timeout)?,
            max_connections: env.positive(MAX_CONNECTIONS, default.max_connections)?,
            max_connections_per_address: env.positive(
                MAX_CONNECTIONS_PER_ADDRESS,
                default.max_connections_per_address,
            )?,
            ..default
        })
    }
}

/// A quarter of the open-file limit: the embedded default serves three services from one process,
/// and the last quarter is left for what they open themselves (their calls to each other, Redis,
/// files). At most 10,000, which bounds the memory idle connections hold (tens of KiB each with
/// TLS).
fn default_max_connections() -> usize {
    let quarter = (open_file_limit() / 4).clamp(1, 10_000);
    usize::try_from(quarter).unwrap_or(10_000)
}

/// The process's soft open-file limit (`ulimit -n`); 1024, the usual one, where it cannot be read.
fn open_file_limit() -> u64 {
    #[cfg(unix)]
    if let Ok((soft, _hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        return soft;
    }
    1024
}

/// A bound socket, how it speaks (plain HTTP, or HTTPS with `tls`) and what it serves.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<TlsAcceptor>,
    pub role: Role,
}

/// Which of the service's routes a listener answers; the others get the JSON 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every route (the default, and the embedded default's only kind).
    All,
    /// Every route but `/metrics`, which a [`Role::Metrics`] listener serves instead.
    Api,
    /// `/metrics` only: a port for the scraper, kept off the public route (`METRICS_LISTEN_ADDR`).
    Metrics,
}

impl Role {
    fn serves(self, path: &str) -> bool {
        match self {
            Role::All => true,
            Role::Api => path != METRICS_PATH,
            Role::Metrics => path == METRICS_PATH,
        }
    }
}

const METRICS_PATH: &str = "/metrics";

impl From<TcpListener> for Listener {
    fn from(tcp: TcpListener) -> Self {
        Self {
            tcp,
            tls: None,
            role: Role::All,
        }
    }
}

/// The sockets one service serves on (most have one; the webapp may add a plain-HTTP one), and
/// what a connection on them may cost.
pub struct Listeners {
    pub sockets: Vec<Listener>,
    pub limits: Limits,
}

impl From<Listener> for Listeners {
    fn from(listener: Listener) -> Self {
        Self {
            sockets: vec![listener],
            limits: Limits::default(),
        }
    }
}

impl From<TcpListener> for Listeners {
    fn from(tcp: TcpListener) -> Self {
        Listener::from(tcp).into()
    }
}

/// Serves `router` on `listeners` under their [`Limits`] until `shutdown` completes, then
/// finishes the requests in flight. HTTP/1.1 only: every client here speaks it.
pub async fn serve(
    listeners: impl Into<Listeners>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Listeners { sockets, limits } = listeners.into();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(limits.max_head_bytes.max(8192));
    // Read by the middleware that reads every request's body (crate::observability).
    let router = router.layer(axum::Extension(BodyTimeout(limits.body_timeout)));
    let caps = Arc::new(Caps::new(&limits));
    let graceful = Arc::new(GracefulShutdown::new());
    let stop = tokio_util::sync::CancellationToken::new();
    let mut accepting = tokio::task::JoinSet::new();
    for listener in sockets {
        let accept = accept_loop(
            listener,
            router.clone(),
            http.clone(),
            limits,
            caps.clone(),
            graceful.clone(),
            stop.clone(),
        );
        // In the caller's span: a refusal's warning names its service.
        accepting.spawn(accept.in_current_span());
    }
    shutdown.await;
    stop.cancel();
    // Every listener is closed (and lets go of the shutdown helper) before the drain starts.
    accepting.join_all().await;
    let Ok(graceful) = Arc::try_unwrap(graceful) else {
        return Err(std::io::Error::other("an accept loop outlived the stop"));
    };
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the drain timeout; stopping anyway");
    }
    Ok(())
}

/// The JSON 404 for a route that this listener's role does not serve.
async fn only_routes_of(
    axum::extract::State(role): axum::extract::State<Role>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if role.serves(request.uri().path()) {
        next.run(request).await
    } else {
        crate::openapi::not_found().await.into_response()
    }
}

/// Accepts connections on one listener until `stop`; each is served in a task of its own,
/// watched by the graceful shutdown.
async fn accept_loop(
    listener: Listener,
    router: Router,
    http: hyper::server::conn::http1::Builder,
    limits: Limits,
    caps: Arc<Caps>,
    graceful: Arc<GracefulShutdown>,
    stop: tokio_util::sync::CancellationToken,
) {
    let Listener {
        tcp: listener,
        tls,
        role,
    } = listener;
    // A listener with a role answers the other routes 404: decided once here, per listener, so
    // a listener serving every route (the usual case) pays nothing per request.
    let router = match role {
        Role::All => router,
        Role::Api | Role::Metrics => {
            router.layer(axum::middleware::from_fn_with_state(role, only_routes_of))
        }
    };
    // The peer address is known to handlers (`ConnectInfo`): throttling is per address.
    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    let mut refusals = Refusals::default();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        // A slot is taken before anything else, a TLS handshake included; over a cap, the
        // connection is closed at once rather than left waiting.
        let slot = match caps.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(cap) => {
                drop(stream);
                refusals.note(cap, peer);
                continue;
            }
        };
        let Ok(service) = make_service.call(peer).await;
        let service = TowerToHyperService::new(service);
        let watcher = graceful.watcher();
        let Some(tls) = tls.clone() else {
            let connection = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                let _slot = slot;
                if let Err(err) = connection.await {
                    tracing::debug!(error = %err, %peer, "connection ended with an error");
                }
            });
            continue;
        };
        // The handshake runs in the connection's own task, never in the accept loop, and shares
        // the first request head's deadline (the idle timeout): one slow client holds one task
        // for at most that long.
        let mut http = http.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let started = Instant::now();
            let handshake =
                tokio::time::timeout(limits.idle_timeout, tls.acceptor().accept(stream));
            let stream = match handshake.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, %peer, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            http.header_read_timeout(limits.idle_timeout.saturating_sub(started.elapsed()));
            let connection = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, %peer, "connection ended with an error");
            }
        });
    }
}

/// The connections one service holds: at most [`Limits::max_connections`] in all, and
/// [`Limits::max_connections_per_address`] from one address.
struct Caps {
    total: Arc<Semaphore>,
    per_address: usize,
    /// The connections of each address that has one: an address leaves with its last connection,
    /// so there are never more entries than connections.
    addresses: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place under the [`Caps`], given back when it is dropped with the connection's
/// task.
struct Slot {
    caps: Arc<Caps>,
    address: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Caps {
    fn new(limits: &Limits) -> Self {
        Self {
            // More would make `Semaphore::new` panic; no process holds that many sockets anyway.
            total: Arc::new(Semaphore::new(
                limits.max_connections.min(Semaphore::MAX_PERMITS),
            )),
            per_address: limits.max_connections_per_address,
            addresses: Mutex::default(),
        }
    }

    /// A slot for a connection from `peer`, or the variable of the cap that refuses it.
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, &'static str> {
        let permit = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| MAX_CONNECTIONS)?;
        let address = crate::peer::source(peer);
        let mut addresses = self.addresses();
        let count = addresses.get(&address).copied().unwrap_or(0);
        if count >= self.per_address {
            return Err(MAX_CONNECTIONS_PER_ADDRESS);
        }
        addresses.insert(address, count + 1);
        Ok(Slot {
            caps: self.clone(),
            address,
            _permit: permit,
        })
    }

    fn addresses(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Nothing panics while holding it: a poisoned map is still a consistent one.
        self.addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Entry::Occupied(mut count) = self.caps.addresses().entry(self.address) {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
    }
}

/// The connections one listener refused, reported in one line at most every 10 s: a flood of
/// connections would otherwise write a line each.
#[derive(Default)]
struct Refusals {
    since_warning: u64,
    warned_at: Option<Instant>,
}

impl Refusals {
    fn note(&mut self, cap: &'static str, peer: SocketAddr) {
        self.since_warning += 1;
        if self
            .warned_at
            .is_some_and(|at| at.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        tracing::warn!(
            refused = self.since_warning,
            cap,
            last_address = %peer.ip(),
            "connections refused over a cap"
        );
        self.since_warning = 0;
        self.warned_at = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::body::Bytes;
    use axum::routing::{get, post};
    use futures_util::FutureExt;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpSocket, TcpStream};

    use super::*;
    use crate::observability::{Observability, MAX_BODY_BYTES, MAX_URI_BYTES};

    /// A handler that reads the body, then waits on something else (as the webapp on an upstream).
    const SLOW_HANDLER: Duration = Duration::from_millis(600);

    /// The pace of a body sent byte by byte.
    const DRIP: Duration = Duration::from_millis(20);

    async fn start(limits: Limits) -> SocketAddr {
        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/echo",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .route(
                "/slow",
                post(|body: Bytes| async move {
                    tokio::time::sleep(SLOW_HANDLER).await;
                    body.len().to_string()
                }),
            );
        let router = Observability::new("limits-test").unwrap().wrap(router);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let listeners = Listeners {
            sockets: vec![listener.into()],
            limits,
        };
        tokio::spawn(serve(listeners, router, std::future::pending()));
        addr
    }

    const LOOPBACK: [u8; 4] = [127, 0, 0, 1];
    /// Another client address: all of 127.0.0.0/8 is loopback.
    const OTHER_LOOPBACK: [u8; 4] = [127, 0, 0, 2];

    async fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((from, 0))).unwrap();
        socket.connect(addr).await.unwrap()
    }

    /// Sends `GET /healthz` on `stream` and returns the answer: empty when the server closed it.
    async fn healthz(stream: &mut TcpStream) -> String {
        let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        if stream.write_all(request).await.is_err() {
            return String::new();
        }
        let mut answer = Vec::new();
        let mut buffer = [0u8; 1024];
        while !answer.ends_with(b"\r\n\r\nok") {
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer));
            match read.await.unwrap() {
                Ok(0) | Err(_) => break,
                Ok(read) => answer.extend_from_slice(&buffer[..read]),
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    }

    fn is_ok(answer: &str) -> bool {
        answer.starts_with("HTTP/1.1 200 OK")
    }

    /// A served connection from `from`, once a slot is free (it has to be within 2 s).
    async fn served_connection(from: [u8; 4], addr: SocketAddr) -> TcpStream {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let mut stream = connect_from(from, addr).await;
            if is_ok(&healthz(&mut stream).await) {
                return stream;
            }
            assert!(Instant::now() < deadline, "no slot was given back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the server closed `stream` without a word, at once: long before any timeout.
    async fn closed_at_once(stream: &mut TcpStream) -> bool {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut byte)).await;
        matches!(read, Ok(Ok(0) | Err(_)))
    }

    /// What the server sends on `stream` until it closes it, which it has to within 3 s; an error
    /// for a reset.
    async fn until_closed(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<String> {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut answer));
        read.await.expect("the server kept the connection open")?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    fn body_timeout(millis: u64) -> Limits {
        Limits {
            body_timeout: Duration::from_millis(millis),
            ..Limits::default()
        }
    }

    fn idle_timeout(millis: u64) -> Limits {
        Limits {
            idle_timeout: Duration::from_millis(millis),
            ..Limits::default()
        }
    }

    /// Caps under test, with an idle timeout that cannot explain a closed connection.
    fn caps(max_connections: usize, max_connections_per_address: usize) -> Limits {
        Limits {
            max_connections,
            max_connections_per_address,
            idle_timeout: Duration::from_secs(30),
            ..Limits::default()
        }
    }

    /// With a metrics listener, `/metrics` is answered there and only there (JSON 404 elsewhere),
    /// and the API only on the API listener.
    #[tokio::test]
    async fn a_metrics_listener_takes_metrics_off_the_api_port() {
        let observability = Observability::new("roles-test").unwrap();
        let router = crate::router::service_router(Default::default(), &observability);
        let bind = || async { TcpListener::bind("127.0.0.1:0").await.unwrap() };
        let (api, metrics) = (bind().await, bind().await);
        let (api_addr, metrics_addr) = (api.local_addr().unwrap(), metrics.local_addr().unwrap());
        let listeners = Listeners {
            sockets: vec![
                Listener {
                    tcp: api,
                    tls: None,
                    role: Role::Api,
                },
                Listener {
                    tcp: metrics,
                    tls: None,
                    role: Role::Metrics,
                },
            ],
            limits: Limits::default(),
        };
        tokio::spawn(serve(listeners, router, std::future::pending()));
        let status = |addr: SocketAddr, path: &'static str| async move {
            reqwest::get(format!("http://{addr}{path}"))
                .await
                .unwrap()
                .status()
                .as_u16()
        };
        assert_eq!(status(api_addr, "/healthz").await, 200);
        assert_eq!(status(api_addr, "/metrics").await, 404);
        assert_eq!(status(metrics_addr, "/metrics").await, 200);
        assert_eq!(status(metrics_addr, "/healthz").await, 404);
        let body: serde_json::Value = reqwest::get(format!("http://{api_addr}/metrics"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["error"], "not_found");
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_headers_is_cut_off() {
        let addr = start(idle_timeout(300)).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        crate::clock::advance_timers(Duration::from_millis(300)).await;
        let mut buffer = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buffer)).await;
        assert!(read.is_ok(), "the server kept the slow connection open");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(250), "{waited:?}");
        assert!(!String::from_utf8_lossy(&buffer).contains("200 OK"));
    }

    #[tokio::test]
    async fn a_body_sent_byte_by_byte_is_cut_off_at_its_deadline() {
        let addr = start(body_timeout(400)).await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n";
        writer.write_all(head.as_bytes()).await.unwrap();
        let started = tokio::time::Instant::now();
        let drip = tokio::spawn(async move {
            while writer.write_all(b"a").await.is_ok() {
                tokio::time::sleep(DRIP).await;
            }
        });
        // meanwhile another connection is served
        let fine = reqwest::get(format!("http://{addr}/healthz"))
            .await
            .unwrap();
        assert_eq!(fine.status(), 200);

        // Tokio's clock moved a byte at a time, until the server answers and closes.
        while reader.readable().now_or_never().is_none() {
            assert!(started.elapsed() < Duration::from_secs(2), "never cut off");
            crate::clock::advance_timers(DRIP).await;
        }
        let cut_after = started.elapsed();
        let answer = until_closed(&mut reader).await;
        assert!(
            cut_after >= Duration::from_millis(350) && cut_after < Duration::from_millis(1500),
            "{cut_after:?}"
        );
        // A byte that reaches the closed socket resets it, which may lose the answer.
        if let Ok(answer) = answer {
            assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        }
        drip.abort();
    }

    #[tokio::test]
    async fn a_body_that_stalls_is_answered_408_json_and_its_connection_closed() {
        let addr = start(body_timeout(300)).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc";
        stream.write_all(request.as_bytes()).await.unwrap();
        crate::clock::advance_timers(Duration::from_millis(300)).await;
        let answer = until_closed(&mut stream).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("connection: close"), "{answer}");
        assert!(answer.contains(r#""error":"invalid_request""#), "{answer}");
    }

    /// The body's deadline is for the body: a handler may wait longer once it has it.
    #[tokio::test]
    async fn a_handler_that_waits_past_the_body_deadline_is_not_cut() {
        let limits = body_timeout(200);
        assert!(SLOW_HANDLER > limits.body_timeout);
        let addr = start(limits).await;
        let request = reqwest::Client::new()
            .post(format!("http://{addr}/slow"))
            .body("abc")
            .send();
        let answer = tokio::spawn(request);
        // Tokio's clock moved in steps past the handler's wait, the body's deadline long gone.
        let started = tokio::time::Instant::now();
        while !answer.is_finished() {
            assert!(started.elapsed() < SLOW_HANDLER * 3, "no answer");
            crate::clock::advance_timers(limits.body_timeout / 2).await;
        }
        let answer = answer.await.unwrap().unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), "3");
    }

    /// hyper restarts its header read timeout whenever a connection falls idle: that timer is the
    /// idle timeout.
    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_not_before() {
        let addr = start(idle_timeout(500)).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        assert!(is_ok(&healthz(&mut stream).await));
        crate::clock::advance_timers(Duration::from_millis(300)).await;
        let answer = healthz(&mut stream).await;
        assert!(is_ok(&answer), "closed before the idle timeout: {answer:?}");

        let idle_since = tokio::time::Instant::now();
        crate::clock::advance_timers(Duration::from_millis(500)).await;
        assert_eq!(until_closed(&mut stream).await.unwrap(), "");
        let idle = idle_since.elapsed();
        assert!(
            idle >= Duration::from_millis(400) && idle < Duration::from_millis(1500),
            "{idle:?}"
        );
    }

    #[tokio::test]
    async fn over_the_per_address_cap_a_new_connection_is_closed_at_once() {
        let addr = start(caps(100, 3)).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut stream = connect_from(LOOPBACK, addr).await;
            assert!(is_ok(&healthz(&mut stream).await));
            held.push(stream);
        }
        let mut fourth = connect_from(LOOPBACK, addr).await;
        assert!(closed_at_once(&mut fourth).await);
        let mut other = connect_from(OTHER_LOOPBACK, addr).await;
        assert!(is_ok(&healthz(&mut other).await));

        // Closed connections give their slots back, no more and no less.
        drop(held);
        let mut again = Vec::new();
        for _ in 0..3 {
            again.push(served_connection(LOOPBACK, addr).await);
        }
        assert!(closed_at_once(&mut connect_from(LOOPBACK, addr).await).await);
    }

    #[tokio::test]
    async fn over_the_service_cap_a_new_connection_is_closed_at_once() {
        let addr = start(caps(2, 100)).await;
        let mut first = connect_from(LOOPBACK, addr).await;
        assert!(is_ok(&healthz(&mut first).await));
        let mut second = connect_from(OTHER_LOOPBACK, addr).await;
        assert!(is_ok(&healthz(&mut second).await));
        for from in [LOOPBACK, OTHER_LOOPBACK] {
            assert!(closed_at_once(&mut connect_from(from, addr).await).await);
        }
        drop(first);
        let _third = served_connection(OTHER_LOOPBACK, addr).await;
    }

    #[test]
    fn slots_are_given_back_and_the_address_map_empties() {
        let caps = Arc::new(Caps::new(&caps(3, 2)));
        let [a, b, c] = ["192.0.2.1", "192.0.2.2", "192.0.2.3"].map(|ip| ip.parse().unwrap());
        let slots = [caps.admit(a).unwrap(), caps.admit(a).unwrap()];
        assert_eq!(caps.admit(a).err(), Some(MAX_CONNECTIONS_PER_ADDRESS));
        assert_eq!(
            caps.total.available_permits(),
            1,
            "a refusal holds no permit"
        );
        let last = caps.admit(b).unwrap();
        assert_eq!(caps.admit(c).err(), Some(MAX_CONNECTIONS));
        assert_eq!(caps.addresses().len(), 2);
        drop((slots, last));
        assert!(caps.addresses().is_empty());
        assert_eq!(caps.total.available_permits(), 3);
    }

    #[test]
    fn an_ipv6_address_counts_as_its_64_and_a_mapped_ipv4_address_as_itself() {
        let caps = Arc::new(Caps::new(&caps(10, 1)));
        let admit = |ip: &str| caps.admit(ip.parse().unwrap());
        let _v6 = admit("2001:db8:1:2:aaaa::1").unwrap();
        assert!(admit("2001:db8:1:2:bbbb::2").is_err());
        let _other_64 = admit("2001:db8:1:3::1").unwrap();
        let _v4 = admit("192.0.2.1").unwrap();
        assert!(admit("::ffff:192.0.2.1").is_err());
        let _other_v4 = admit("192.0.2.2").unwrap();
    }

    #[test]
    fn limits_are_read_from_the_environment() {
        let env = Env::from_pairs([
            (MAX_CONNECTIONS, "100".to_owned()),
            (IDLE_TIMEOUT_SECONDS, "30".to_owned()),
        ]);
        let limits = Limits::from_env(&env).unwrap();
        assert_eq!(limits.max_connections, 100);
        assert_eq!(limits.max_connections_per_address, 256);
        assert_eq!(limits.idle_timeout, Duration::from_secs(30));
        assert_eq!(limits.body_timeout, Duration::from_secs(10));
        for var in [
            MAX_CONNECTIONS,
            MAX_CONNECTIONS_PER_ADDRESS,
            IDLE_TIMEOUT_SECONDS,
            BODY_TIMEOUT_SECONDS,
        ] {
            let err = Limits::from_env(&Env::from_pairs([(var, "0".to_owned())])).unwrap_err();
            assert_eq!(err.var, var);
        }
        let defaults = Limits::default();
        assert!((1..=10_000).contains(&defaults.max_connections));
        // Our own clients let go of a pooled connection before a server of ours closes it.
        assert!(crate::http_client::POOL_IDLE_TIMEOUT < defaults.idle_timeout);
    }

    #[tokio::test]
    async fn an_oversized_request_head_is_431() {
        let addr = start(Limits::default()).await;
        let response = reqwest::Client::new()
            .get(format!("http://{addr}/healthz"))
            .header(
                "x-padding",
                "a".repeat(Limits::default().max_head_bytes + 1024),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 431);
    }

    #[tokio::test]
    async fn an_overlong_uri_is_414_json() {
        let addr = start(Limits::default()).await;
        let query = "a".repeat(MAX_URI_BYTES);
        let response = reqwest::get(format!("http://{addr}/healthz?q={query}"))
            .await
            .unwrap();
        assert_eq!(response.status(), 414);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
    }

    #[tokio::test]
    async fn an_oversized_body_is_413_declared_or_not() {
        let addr = start(Limits::default()).await;
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/echo");
        let declared = client
            .post(&url)
            .body(vec![b'a'; MAX_BODY_BYTES + 1])
            .send()
            .await
            .unwrap();
        assert_eq!(declared.status(), 413);
        assert_eq!(declared.headers()["cache-control"], "no-store");
        let body: serde_json::Value = declared.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");

        // no Content-Length: a chunked body is cut at the same limit
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        for _ in 0..(MAX_BODY_BYTES / 1024 + 2) {
            let chunk = format!("400\r\n{}\r\n", "a".repeat(1024));
            if stream.write_all(chunk.as_bytes()).await.is_err() {
                break; // the server may answer and close before the end
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
        let mut answer = vec![0u8; 64];
        let read = stream.read(&mut answer).await.unwrap();
        let status_line = String::from_utf8_lossy(&answer[..read]).to_string();
        assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");

        let fine = client
            .post(&url)
            .body(vec![b'a'; 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(fine.status(), 200);
    }
}
