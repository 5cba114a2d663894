//! The one outbound HTTP client of a service: hyper-util's pooled client (the one under reqwest)
//! with rustls and hickory's resolver. reqwest's own layers cost the webapp ≈ 100,000
//! instructions a user call, most of it re-parsing URLs for a redirect layer that never follows a
//! redirect (docs/performance.md). Callers build their requests from URLs checked at start.
//!
//! Every call has a timeout and reads at most [`MAX_ANSWER_BYTES`] of its answer; redirects are
//! never followed (a redirect from the authorization server is data, not a hop). `https` peers are
//! verified against the compiled-in roots plus `extra_roots` (`TLS_CA_FILE`,
//! [`crate::tls::client_ca_certificates`]), TLS 1.2 at least; there is no way to skip that.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hickory_resolver::TokioResolver;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use tokio::sync::OnceCell;

use crate::service::BoxError;

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

#[derive(Clone)]
pub struct HttpClient {
    inner: hyper_util::client::legacy::Client<HttpsConnector<HttpConnector<Resolver>>, RequestBody>,
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
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(extra_roots)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let inner = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            // Under the servers' idle timeout (IDLE_TIMEOUT_SECONDS, 10 s by default): a connection
            // is dropped here before the server closes it. A request written on a connection that
            // the server is closing at that moment fails; hyper retries only one it had not written.
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(https);
        Ok(Self {
            inner,
            timeout,
            max_answer: MAX_ANSWER_BYTES,
        })
    }

    /// The same client reading at most `bytes` of an answer's body.
    pub fn with_max_answer(mut self, bytes: usize) -> Self {
        self.max_answer = bytes;
        self
    }

    /// Sends `request` and reads its whole answer, all within the client's timeout.
    pub async fn send(&self, request: Request<RequestBody>) -> Result<Answer, CallError> {
        let call = async {
            let response = self.inner.request(request).await.map_err(|err| {
                if err.is_connect() {
                    CallError::Connect(failure(&err))
                } else {
                    CallError::Failed(failure(&err))
                }
            })?;
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
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or(Err(CallError::TimedOut))
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
