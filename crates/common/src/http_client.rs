//! The one outbound HTTP client of a service: hyper's HTTP/1 connections, made by hyper-rustls's
//! connector (rustls, hickory's resolver) and kept in [`pool`]. reqwest's own layers cost the
//! webapp ≈ 100,000 instructions a user call, most of it re-parsing URLs for a redirect layer that
//! never follows a redirect, and hyper-util's pooled client ≈ 10,000 a call more than its
//! connections need (docs/performance.md). Callers build their requests from URLs checked at start.
//!
//! Every call has a timeout and reads at most [`MAX_ANSWER_BYTES`] of its answer; redirects are
//! never followed (a redirect from the authorization server is data, not a hop). `https` peers are
//! verified against the compiled-in roots plus `extra_roots` (`TLS_CA_FILE`,
//! [`crate::tls::client_ca_certificates`]), TLS 1.2 at least; there is no way to skip that.

mod pool;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hickory_resolver::TokioResolver;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::CertificateDer;
use tokio::sync::OnceCell;
use tower::ServiceExt;

use crate::service::BoxError;
use pool::Pool;

/// How long a pooled connection may wait for its next call.
pub(crate) const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of an answer's body that is read unless the client says otherwise
/// ([`HttpClient::with_max_answer`]): a redirect, a token or a time is far smaller.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A request's body: the whole of it, in memory.
pub type RequestBody = Full<Bytes>;

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A peer's scheme and authority, parsed once, and the `Host` header its requests carry
/// (HTTP/1.1's origin form, RFC 9112 §3.2): a service that calls the same peers on every request
/// keeps one per peer and sends paths to it ([`HttpClient::send_to`]).
#[derive(Clone, Debug)]
pub struct Origin {
    scheme: Scheme,
    authority: Authority,
    host: HeaderValue,
}

impl Origin {
    /// The origin of an absolute URL.
    pub fn of(url: &Uri) -> Result<Self, CallError> {
        let (Some(scheme), Some(authority)) = (url.scheme(), url.authority()) else {
            return Err(CallError::Failed(
                "the request's URL is not absolute".to_owned(),
            ));
        };
        let host = authority.as_str().rsplit('@').next().unwrap_or_default();
        let host = HeaderValue::from_str(host).map_err(|err| CallError::Failed(err.to_string()))?;
        Ok(Self {
            scheme: scheme.clone(),
            authority: authority.clone(),
            host,
        })
    }
}

/// Why a call failed, without the URL (which may carry query parameters).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No connection could be made (refused, unknown name, TLS handshake refused…).
    #[error("no connection: {0}")]
    Connect(String),
    #[error("timed out")]
    TimedOut,
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The connection broke or the answer could not be read.
    #[error("{0}")]
    Failed(String),
}

/// Why a client could not be built: a trusted root that rustls refuses.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct BuildError(#[from] rustls::Error);

/// Where a name is resolved: DNS (hickory, as reqwest does: a `FROM scratch` image has no NSS
/// modules for glibc's resolver), or one address for every name (the healthcheck's loopback probe
/// that still verifies the certificate's name).
#[derive(Clone)]
pub enum Resolve {
    Dns,
    Pinned(SocketAddr),
}

type Connector = HttpsConnector<HttpConnector<Resolver>>;
type Connection = SendRequest<RequestBody>;

#[derive(Clone)]
pub struct HttpClient {
    connector: Connector,
    pool: Arc<Pool<Connection>>,
    timeout: Duration,
    max_answer: usize,
}

impl HttpClient {
    pub fn new(
        timeout: Duration,
        extra_roots: &[CertificateDer<'static>],
    ) -> Result<Self, BuildError> {
        Self::with_resolve(timeout, extra_roots, Resolve::Dns)
    }

    pub fn with_resolve(
        timeout: Duration,
        extra_roots: &[CertificateDer<'static>],
        resolve: Resolve,
    ) -> Result<Self, BuildError> {
        let mut http = HttpConnector::new_with_resolver(Resolver {
            resolve,
            dns: Arc::new(OnceCell::new()),
        });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout.min(Duration::from_secs(1))));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(extra_roots)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            connector,
            // Under the servers' idle timeout (IDLE_TIMEOUT_SECONDS, 10 s by default): a connection
            // is not reused once the server may be closing it (it stays open until the server
            // closes it, or the pool drops it when next looked at). A request written on a
            // connection that the server is closing at that moment fails; one that the closing
            // connection had not written is sent again on a new one.
            pool: Arc::new(Pool::new(POOL_IDLE_TIMEOUT)),
            timeout,
            max_answer: MAX_ANSWER_BYTES,
        })
    }

    /// The same client reading at most `bytes` of an answer's body.
    pub fn with_max_answer(mut self, bytes: usize) -> Self {
        self.max_answer = bytes;
        self
    }

    /// Sends `request` (to an absolute URL) and reads its whole answer, all within the client's
    /// timeout.
    pub async fn send(&self, request: Request<RequestBody>) -> Result<Answer, CallError> {
        let (mut parts, body) = request.into_parts();
        let origin = Origin::of(&parts.uri)?;
        parts.uri = Uri::from(
            parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        self.send_to(&origin, Request::from_parts(parts, body))
            .await
    }

    /// Sends `request`, whose URL is a path and query (origin form), to `origin`, and reads its
    /// whole answer, all within the client's timeout.
    pub async fn send_to(
        &self,
        origin: &Origin,
        request: Request<RequestBody>,
    ) -> Result<Answer, CallError> {
        tokio::time::timeout(self.timeout, self.call(origin, request))
            .await
            .unwrap_or(Err(CallError::TimedOut))
    }

    async fn call(
        &self,
        origin: &Origin,
        mut request: Request<RequestBody>,
    ) -> Result<Answer, CallError> {
        if request.uri().scheme().is_some() || request.uri().authority().is_some() {
            return Err(CallError::Failed(
                "a request to an origin names a path, not a URL".to_owned(),
            ));
        }
        // HTTP/1.1's origin form and its Host header (RFC 9112 §3.2), as hyper-util's client
        // writes them.
        request
            .headers_mut()
            .entry(header::HOST)
            .or_insert_with(|| origin.host.clone());
        let (connection, response) = match self.idle(origin).await {
            Some(mut connection) => match connection.try_send_request(request).await {
                Ok(response) => (connection, response),
                // The connection closed before the request was written: once more on a new one.
                Err(mut err) => match err.take_message() {
                    Some(request) => Box::pin(self.send_on_new(origin, request)).await?,
                    None => return Err(CallError::Failed(failure(err.error()))),
                },
            },
            // Boxed: the connector's and the handshake's futures are large, and would otherwise
            // be part of every call's future, which the server's layers move (memcpy) again and
            // again.
            None => Box::pin(self.send_on_new(origin, request)).await?,
        };
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, self.max_answer)
            .collect()
            .await
            .map_err(|err| {
                if err.is::<LengthLimitError>() {
                    CallError::TooLarge(self.max_answer)
                } else {
                    CallError::Failed(format!("reading the answer failed: {}", failure(&*err)))
                }
            })?
            .to_bytes();
        // Read to its end, so the connection can carry the next call (unless it is closing).
        if !connection.is_closed() {
            self.pool.put(
                &origin.scheme,
                &origin.authority,
                connection,
                Instant::now(),
            );
        }
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// An idle connection to this origin that is ready for a request, if the pool has one.
    async fn idle(&self, origin: &Origin) -> Option<Connection> {
        while let Some(mut connection) =
            self.pool
                .take(&origin.scheme, &origin.authority, Instant::now())
        {
            if connection.ready().await.is_ok() {
                return Some(connection);
            }
        }
        None
    }

    /// Opens a connection to this origin (TCP, then TLS for `https`) and sends `request` on it.
    async fn send_on_new(
        &self,
        origin: &Origin,
        request: Request<RequestBody>,
    ) -> Result<(Connection, Response<Incoming>), CallError> {
        let address = Uri::builder()
            .scheme(origin.scheme.clone())
            .authority(origin.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|err| CallError::Connect(err.to_string()))?;
        let io = self
            .connector
            .clone()
            .oneshot(address)
            .await
            .map_err(|err| CallError::Connect(failure(&*err)))?;
        let (mut connection, driver) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|err| CallError::Connect(failure(&err)))?;
        // The connection's own task: it ends when the connection closes (by either side, or when
        // the pool drops its last handle).
        tokio::spawn(async move {
            if let Err(err) = driver.await {
                tracing::debug!(error = %failure(&err), "an upstream connection failed");
            }
        });
        let response = connection
            .send_request(request)
            .await
            .map_err(|err| CallError::Failed(failure(&err)))?;
        Ok((connection, response))
    }
}

/// TLS 1.2 and 1.3 with ring (the workspace's one provider, [`crate::tls`]), the compiled-in
/// webpki roots plus `extra_roots` (hyper-rustls sets ALPN to HTTP/1.1).
fn tls_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for root in extra_roots {
        roots.add(root.clone())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(config)
}

/// Why a call failed: the error and its sources (an unknown issuer, a refused connection…); hyper's
/// errors do not name the URL.
fn failure(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

/// [`Resolve`] as the connector's DNS service.
#[derive(Clone)]
struct Resolver {
    resolve: Resolve,
    /// Built on first use, inside the runtime, as hickory wants.
    dns: Arc<OnceCell<TokioResolver>>,
}

impl tower::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let dns = match this.resolve {
                Resolve::Pinned(address) => return Ok(vec![address].into_iter()),
                Resolve::Dns => this.dns.get_or_try_init(new_resolver).await?,
            };
            let addresses: Vec<SocketAddr> = dns
                .lookup_ip(name.as_str())
                .await?
                .into_iter()
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            Ok(addresses.into_iter())
        })
    }
}

/// The system's resolver settings (`/etc/resolv.conf`, `/etc/hosts`), IPv4 and IPv6 looked up
/// together, as reqwest configures hickory.
async fn new_resolver() -> Result<TokioResolver, BoxError> {
    let mut builder = TokioResolver::builder_tokio()?;
    builder.options_mut().ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;

    /// A server on a free loopback port answering `ok` to everything, with the request's `Host`
    /// and target in `x-seen`, closing each connection after its first answer when `close` is
    /// set; it counts the connections it accepted.
    async fn server(close: bool) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let answer = service_fn(|request: Request<Incoming>| async move {
                    let host = request.headers().get(header::HOST).cloned();
                    let seen = format!("{host:?} {}", request.uri());
                    Response::builder()
                        .header("x-seen", seen)
                        .body(Full::new(Bytes::from_static(b"ok")))
                });
                tokio::spawn(
                    http1::Builder::new()
                        .keep_alive(!close)
                        .serve_connection(TokioIo::new(stream), answer),
                );
            }
        });
        (addr, accepted)
    }

    fn client() -> HttpClient {
        HttpClient::new(Duration::from_secs(5), &[]).unwrap()
    }

    async fn get(client: &HttpClient, addr: SocketAddr) -> Result<Answer, CallError> {
        client
            .send(bare_get(&format!("http://{addr}/healthz")))
            .await
    }

    fn bare_get(target: &str) -> Request<RequestBody> {
        Request::get(target).body(RequestBody::default()).unwrap()
    }

    fn origin(addr: SocketAddr) -> Origin {
        Origin::of(&format!("http://{addr}").parse().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn calls_one_after_another_share_one_connection() {
        let (addr, accepted) = server(false).await;
        let client = client();
        for _ in 0..3 {
            let answer = get(&client, addr).await.unwrap();
            assert_eq!(
                (answer.status, &answer.body[..]),
                (StatusCode::OK, &b"ok"[..])
            );
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closes_is_not_used_again() {
        let (addr, accepted) = server(true).await;
        let client = client();
        for _ in 0..3 {
            assert_eq!(get(&client, addr).await.unwrap().status, StatusCode::OK);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_url_without_an_origin_is_refused_before_any_connection() {
        let err = client().send(bare_get("/healthz")).await.unwrap_err();
        assert!(matches!(err, CallError::Failed(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_path_goes_to_its_origin_in_origin_form_with_the_origins_host() {
        let (addr, _) = server(false).await;
        let answer = client()
            .send_to(&origin(addr), bare_get("/token?a=b%20c"))
            .await
            .unwrap();
        assert_eq!(
            answer.headers["x-seen"],
            format!("Some(\"{addr}\") /token?a=b%20c")
        );
        // a full URL's own origin is written the same way
        let answer = get(&client(), addr).await.unwrap();
        assert_eq!(
            answer.headers["x-seen"],
            format!("Some(\"{addr}\") /healthz")
        );
    }

    #[tokio::test]
    async fn a_url_sent_to_an_origin_is_refused_before_any_connection() {
        let (addr, accepted) = server(false).await;
        let err = client()
            .send_to(&origin(addr), bare_get("http://elsewhere.example/token"))
            .await
            .unwrap_err();
        assert!(matches!(err, CallError::Failed(_)), "{err:?}");
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_answer_over_the_limit_is_refused_and_its_connection_not_kept() {
        let (addr, accepted) = server(false).await;
        let client = client().with_max_answer(1);
        assert!(matches!(
            get(&client, addr).await,
            Err(CallError::TooLarge(1))
        ));
        let client = client.with_max_answer(2);
        assert_eq!(get(&client, addr).await.unwrap().status, StatusCode::OK);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }
}
