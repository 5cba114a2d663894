use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::Service;

use crate::tls::TlsAcceptor;

/// What one connection may cost the server, whatever the client does.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A client must finish its TLS handshake and send its whole request head within this time
    /// (a slow client cannot hold a connection forever).
    pub header_read_timeout: Duration,
    /// Larger request heads are answered 431.
    pub max_head_bytes: usize,
    /// After shutdown is asked for, requests in flight get this long to finish.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_head_bytes: 16 * 1024,
            drain_timeout: Duration::from_secs(5),
        }
    }
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

/// The sockets one service serves on (most have one; the webapp may add a plain-HTTP one).
pub struct Listeners(pub Vec<Listener>);

impl From<Listener> for Listeners {
    fn from(listener: Listener) -> Self {
        Self(vec![listener])
    }
}

impl From<TcpListener> for Listeners {
    fn from(tcp: TcpListener) -> Self {
        Self(vec![tcp.into()])
    }
}

/// Serves `router` on `listeners` until `shutdown` completes, then finishes the requests in
/// flight.
pub async fn serve(
    listeners: impl Into<Listeners>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(listeners, router, shutdown, Limits::default()).await
}

/// [`serve`] with explicit [`Limits`]. HTTP/1.1 only: every client here speaks it.
pub async fn serve_with_limits(
    listeners: impl Into<Listeners>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_head_bytes.max(8192));
    let graceful = Arc::new(GracefulShutdown::new());
    let stop = tokio_util::sync::CancellationToken::new();
    let mut accepting = tokio::task::JoinSet::new();
    for listener in listeners.into().0 {
        accepting.spawn(accept_loop(
            listener,
            router.clone(),
            http.clone(),
            limits,
            graceful.clone(),
            stop.clone(),
        ));
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
        let Ok(service) = make_service.call(peer).await;
        let service = TowerToHyperService::new(service);
        let watcher = graceful.watcher();
        let Some(tls) = tls.clone() else {
            let connection = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!(error = %err, %peer, "connection ended with an error");
                }
            });
            continue;
        };
        // The handshake runs in the connection's own task, never in the accept loop, and shares
        // the request head's deadline: one slow client holds one task for at most that long.
        let mut http = http.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let handshake =
                tokio::time::timeout(limits.header_read_timeout, tls.acceptor().accept(stream));
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
            http.header_read_timeout(limits.header_read_timeout.saturating_sub(started.elapsed()));
            let connection = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, %peer, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::body::Bytes;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::observability::{Observability, MAX_BODY_BYTES, MAX_URI_BYTES};

    async fn start(limits: Limits) -> SocketAddr {
        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/echo",
                post(|body: Bytes| async move { body.len().to_string() }),
            );
        let router = Observability::new("limits-test").unwrap().wrap(router);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_with_limits(
            listener,
            router,
            std::future::pending(),
            limits,
        ));
        addr
    }

    /// With a metrics listener, `/metrics` is answered there and only there (JSON 404 elsewhere),
    /// and the API only on the API listener.
    #[tokio::test]
    async fn a_metrics_listener_takes_metrics_off_the_api_port() {
        let router = Observability::new("roles-test")
            .unwrap()
            .wrap(Router::new().route("/healthz", get(|| async { "ok" })));
        let bind = || async { TcpListener::bind("127.0.0.1:0").await.unwrap() };
        let (api, metrics) = (bind().await, bind().await);
        let (api_addr, metrics_addr) = (api.local_addr().unwrap(), metrics.local_addr().unwrap());
        let listeners = Listeners(vec![
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
        ]);
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
        let limits = Limits {
            header_read_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let addr = start(limits).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        let mut buffer = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buffer)).await;
        assert!(read.is_ok(), "the server kept the slow connection open");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(250), "{waited:?}");
        assert!(!String::from_utf8_lossy(&buffer).contains("200 OK"));
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
