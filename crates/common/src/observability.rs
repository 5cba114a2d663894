//! The middleware every service wraps its routes in, written once and read top to bottom
//! (outermost first):
//!
//! 1. a Sentry hub of the request's own ([`SentryLayer`]), so tags set during one request never
//!    reach another's events, with the request's method and path ([`SentryHttpLayer`]; the rest
//!    is scrubbed, see [`crate::error_reporting`]). Chosen per request: a request of a
//!    process with a Sentry client goes through these two layers, one of a process without skips
//!    them. So the stack does not depend on being built after [`crate::telemetry::init`], and a
//!    process that does not report does not copy every request's URL and headers for an event
//!    that never comes (≈ 86,000 instructions, 6 % of a full call, measured with callgrind);
//! 2. [`track`]: the request id, the request's span, its Sentry tags, the one "request handled"
//!    log line, the HTTP metrics, and a Sentry event for a 5xx answer nothing reported yet;
//! 3. a panic becomes a 500 JSON answer ([`CatchPanicLayer`]) instead of a dropped connection;
//! 4. [`read_request`]: the size limits (414, 413) and the body read whole before any handler
//!    runs, within its deadline (408).
//!
//! Plus the handler of `GET /metrics` (routed by [`crate::router`]): this service's registry in the
//! Prometheus text format. Each service (even three in one process) has its own registry, passed
//! around in its state: nothing is global.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::HttpBody;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::header::{CONNECTION, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use sentry::integrations::tower::{SentryHttpLayer, SentryLayer};
use sentry::{Hub, Scope};
use std::convert::Infallible;
use std::task::{Context, Poll};

use tower::layer::layer_fn;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use crate::api_error::json_error;
use crate::request_id::{RequestId, HEADER};
use crate::telemetry::PANIC_TARGET;
use oauth::{ErrorBody, ErrorCode};

/// Latency buckets in seconds, for incoming requests and upstream calls alike.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A service's telemetry handles: its name, its metrics registry (services register their own
/// metrics in it) and the HTTP metrics every service has.
#[derive(Clone)]
pub struct Observability {
    service: &'static str,
    registry: Registry,
    http: HttpMetrics,
}

impl Observability {
    /// A fresh registry holding the HTTP metrics.
    pub fn new(service: &'static str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http = HttpMetrics::register(&registry)?;
        Ok(Self {
            service,
            registry,
            http,
        })
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// `router` in the middleware stack of the module docs, outermost first.
    pub fn wrap(&self, router: Router) -> Router {
        router.layer(
            ServiceBuilder::new()
                .layer(layer_fn(sentry_when_reporting))
                .layer(axum::middleware::from_fn_with_state(self.clone(), track))
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(axum::middleware::from_fn(read_request)),
        )
    }
}

/// The Sentry layers around `inner`, on the requests of a process that has a Sentry client when
/// they arrive; the others go to `inner` alone. By hand: tower's `Steer` does this per request,
/// but holds a `PhantomData<Request>` that makes it `!Sync`, which axum's layers refuse.
#[derive(Clone)]
struct SentryWhenReporting<S> {
    reported: SentryService<SentryHttpService<S>>,
    inner: S,
}

type SentryService<S> =
    sentry::integrations::tower::SentryService<S, fn(&Request) -> Arc<Hub>, Arc<Hub>, Request>;
type SentryHttpService<S> = sentry::integrations::tower::SentryHttpService<S>;

fn sentry_when_reporting<S: Clone>(inner: S) -> SentryWhenReporting<S> {
    let reported = ServiceBuilder::new()
        .layer(SentryLayer::new(request_hub as fn(&Request) -> Arc<Hub>))
        // Not `SentryHttpLayer::new()`, which copies `send_default_pii` from the client bound
        // when it runs: the option is off in ours (crate::error_reporting) anyway.
        .layer(SentryHttpLayer::default())
        .service(inner.clone());
    SentryWhenReporting { reported, inner }
}

impl<S> Service<Request> for SentryWhenReporting<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = futures_util::future::Either<
        tower::util::Oneshot<SentryService<SentryHttpService<S>>, Request>,
        tower::util::Oneshot<S, Request>,
    >;

    /// Ready at once: `call` drives a clone of the chosen service from readiness to its answer.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if reports_errors() {
            futures_util::future::Either::Left(self.reported.clone().oneshot(request))
        } else {
            futures_util::future::Either::Right(self.inner.clone().oneshot(request))
        }
    }
}

/// Whether the process has an enabled Sentry client (`SENTRY_DSN`, [`crate::telemetry::init`]).
fn reports_errors() -> bool {
    Hub::main()
        .client()
        .is_some_and(|client| client.is_enabled())
}

/// The largest request body any endpoint accepts (the biggest legitimate one, a token request, is
/// well under 1 KiB).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The longest request target (path and query) accepted.
pub const MAX_URI_BYTES: usize = 4 * 1024;

/// How long a request's body may take to arrive whole once its head has: set on every request
/// by [`crate::server`] from its `Limits`; a request without it has no deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyTimeout(pub Duration);

/// Before any handler runs, as JSON: 414 for an over-long URI, 413 for a body over the limit
/// (declared or not), 408 for a body that has not arrived within its [`BodyTimeout`]. The body is
/// read whole here, so a slow client cannot hold a handler, and the deadline never cuts a handler
/// that waits on something else (the webapp on its upstreams).
async fn read_request(request: Request, next: Next) -> Response {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return refuse(
            StatusCode::URI_TOO_LONG,
            format!("the request target is longer than {MAX_URI_BYTES} bytes"),
        );
    }
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let timeout = request
        .extensions()
        .get::<BodyTimeout>()
        .map_or(Duration::MAX, |timeout| timeout.0);
    let (parts, body) = request.into_parts();
    let reading = Limited::new(body, MAX_BODY_BYTES).collect();
    match tokio::time::timeout(timeout, reading).await {
        Ok(Ok(body)) => {
            next.run(Request::from_parts(parts, body.to_bytes().into()))
                .await
        }
        Ok(Err(err)) if err.is::<LengthLimitError>() => too_large(),
        Ok(Err(_)) => refuse(
            StatusCode::BAD_REQUEST,
            "the request body could not be read".to_owned(),
        ),
        Err(_) => {
            let description =
                format!("the request body did not arrive within {timeout:?} of its head");
            let mut response = refuse(StatusCode::REQUEST_TIMEOUT, description);
            // The rest of the body is not read: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

fn too_large() -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

fn refuse(status: StatusCode, description: String) -> Response {
    json_error(
        status,
        ErrorBody::new(ErrorCode::InvalidRequest, description),
    )
}

/// A Sentry hub for one request: the process's client and an empty scope, so an event carries
/// only this request's tags and breadcrumbs (not those of start-up, nor of another service of the
/// all-in-one process). The client is looked up per request, not when the stack is built.
fn request_hub(_request: &Request) -> Arc<Hub> {
    Arc::new(Hub::new(Hub::main().client(), Arc::new(Scope::default())))
}

/// `http_requests_total{route,method,status}` and `http_request_duration_seconds{route,method}`.
#[derive(Clone)]
struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["route", "method", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from receiving an HTTP request to its answer",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }

    fn observe(&self, route: &str, method: &str, status: StatusCode, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, method, status.as_str()])
            .inc();
        self.duration
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
    }
}

/// A method as a label: the standard ones by name, anything else as `other`, so a caller cannot
/// grow the number of series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: binds a request id to the request (as an extension, as the span every log line of
/// the request is written in, and as a tag of its Sentry scope), logs one line per request,
/// counts it, and echoes the id in the response. A 5xx answer that nothing reported to Sentry
/// while the request ran (an error log line or a panic would have) is reported here.
pub async fn track(
    State(observability): State<Observability>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let service = observability.service;
    let request_id = RequestId::from_headers(request.headers());
    let method = method_label(request.method());
    // The route pattern, not the path: bounded, and free of anything the caller put in the URL.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_owned();
    let span = tracing::info_span!(
        "request",
        service,
        request_id = request_id.as_str(),
        user_id = tracing::field::Empty,
        client_id = tracing::field::Empty,
    );
    Hub::with_active(|hub| {
        hub.configure_scope(|scope| {
            scope.set_tag("service", service);
            scope.set_tag("request_id", request_id.as_str());
            scope.set_transaction(Some(&format!("{method} {route}")));
        })
    });
    request.extensions_mut().insert(request_id.clone());

    let mut response = next.run(request).instrument(span.clone()).await;

    let status = response.status();
    let elapsed = started.elapsed();
    observability.http.observe(&route, method, status, elapsed);
    span.in_scope(|| {
        tracing::info!(
            method,
            route,
            status = status.as_u16(),
            // whole microseconds, so the line shows 1.065 rather than 1.0650040000000001
            latency_ms = elapsed.as_micros() as f64 / 1000.0,
            "request handled"
        );
        if status.is_server_error() {
            Hub::with_active(|hub| {
                if hub.last_event_id().is_none() {
                    hub.capture_message(
                        &format!("{method} {route} answered {status}"),
                        sentry::Level::Error,
                    );
                }
            });
        }
    });
    if let Some(value) = request_id.header_value() {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

/// The answer to a request whose handler panicked. The panic hook has already reported it (with a
/// backtrace) to Sentry when Sentry is on; this line is for the logs.
fn panic_response(_payload: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!(target: PANIC_TARGET, "the handler panicked; answered 500");
    json_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorBody::new(ErrorCode::ServerError, "internal error"),
    )
}

/// This service's metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "The service's metrics in the Prometheus text exposition format.",
         content_type = "text/plain; version=0.0.4", body = String),
    )
)]
pub(crate) async fn metrics(State(registry): State<Registry>) -> Response {
    let mut text = String::new();
    match TextEncoder::new().encode_utf8(&registry.gather(), &mut text) {
        Ok(()) => (
            [(
                CONTENT_TYPE,
                HeaderValue::from_static(prometheus::TEXT_FORMAT),
            )],
            text,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "cannot encode the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tower::ServiceExt;

    fn app() -> Router {
        let observability = Observability::new("test").unwrap();
        let registry = observability.registry().clone();
        observability.wrap(
            Router::new()
                .route("/ok", get(|| async { "ok" }))
                .route("/boom", get(boom))
                .route("/metrics", get(metrics).with_state(registry)),
        )
    }

    #[allow(clippy::panic)]
    async fn boom() -> &'static str {
        panic!("boom")
    }

    async fn call(router: &Router, uri: &str, request_id: Option<&str>) -> Response {
        let mut request = http::Request::builder().uri(uri);
        if let Some(id) = request_id {
            request = request.header(&HEADER, id);
        }
        router
            .clone()
            .oneshot(request.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_request_id_is_echoed_or_made() {
        let router = app();
        let response = call(&router, "/ok", Some("abc-1")).await;
        assert_eq!(response.headers()[&HEADER], "abc-1");
        let response = call(&router, "/ok", Some("bad id")).await;
        let made = response.headers()[&HEADER].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(made).is_ok());
    }

    #[tokio::test]
    async fn a_panic_is_a_500_json_answer_and_requests_are_counted() {
        let router = app();
        let response = call(&router, "/boom", None).await;
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert!(response.headers().contains_key(&HEADER));
        assert!(body(response).await.contains("server_error"));
        call(&router, "/ok", None).await;
        call(&router, "/nowhere", None).await;

        let response = call(&router, "/metrics", None).await;
        assert_eq!(response.headers()[CONTENT_TYPE], prometheus::TEXT_FORMAT);
        let text = body(response).await;
        for expected in [
            r#"http_requests_total{method="GET",route="/boom",status="500"} 1"#,
            r#"http_requests_total{method="GET",route="/ok",status="200"} 1"#,
            r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
            r#"http_request_duration_seconds_count{method="GET",route="/ok"} 1"#,
            "# TYPE http_request_duration_seconds histogram",
        ] {
            assert!(text.contains(expected), "{expected} in\n{text}");
        }
    }

    /// Keeps the tags of the events it is given.
    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<std::collections::BTreeMap<String, String>>>);

    impl sentry::Transport for Recorder {
        fn send_envelope(&self, envelope: sentry::Envelope) {
            if let Some(event) = envelope.event() {
                self.0.lock().unwrap().push(event.tags.clone());
            }
        }
    }

    /// The stack built and serving before the process has a Sentry client (a service built before
    /// `telemetry::init`) reports to the client bound later. The requests run on one worker thread
    /// as in a service, whose own hub was made before the client existed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_client_bound_after_the_stack_is_built_gets_the_events() {
        let router = app();
        let on_worker =
            |router: Router, uri, id| tokio::spawn(async move { call(&router, uri, id).await });
        on_worker(router.clone(), "/ok", None).await.unwrap();
        let recorder = Arc::new(Recorder::default());
        Hub::main().bind_client(Some(Arc::new(sentry::Client::from(
            sentry::ClientOptions {
                dsn: "https://public@sentry.invalid/1".parse().ok(),
                transport: Some(Arc::new(recorder.clone())),
                ..Default::default()
            },
        ))));
        let response = on_worker(router, "/boom", Some("late-client"))
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        let events = recorder.0.lock().unwrap().clone();
        assert!(
            events
                .iter()
                .any(
                    |tags| tags.get("request_id").map(String::as_str) == Some("late-client")
                        && tags.get("service").map(String::as_str) == Some("test")
                ),
            "{events:?}"
        );
    }

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
