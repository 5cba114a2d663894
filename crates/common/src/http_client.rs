use std::time::Duration;

/// The one outbound HTTP client of a service: keep-alive pooled connections, a timeout on every
/// call, redirects never followed (a redirect from the authorization server is data, not a hop).
/// `https` peers are verified against the compiled-in roots plus `extra_roots` (`TLS_CA_FILE`,
/// [`crate::tls::client_ca_certificates`]), TLS 1.2 at least; there is no way to skip that.
pub fn build(
    timeout: Duration,
    extra_roots: &[reqwest::Certificate],
) -> reqwest::Result<reqwest::Client> {
    builder(timeout, extra_roots).build()
}

/// How long a pooled connection may wait for its next call.
pub(crate) const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// [`build`] before its last step, for a caller that adds to it (the healthcheck pins an address).
pub fn builder(timeout: Duration, extra_roots: &[reqwest::Certificate]) -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder();
    for root in extra_roots {
        builder = builder.add_root_certificate(root.clone());
    }
    builder
        .min_tls_version(reqwest::tls::Version::TLS_1_2)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(1)))
        .redirect(reqwest::redirect::Policy::none())
        // Under the servers' idle timeout (IDLE_TIMEOUT_SECONDS, 10 s by default): a connection is
        // dropped here before the server closes it. A request written on a connection that the
        // server is closing at that moment fails; hyper retries only one it had not yet written.
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true)
}

/// Why a request failed: the error's sources (an unknown issuer, a refused connection, a
/// timeout…), without the error's own text, which names the URL and so may carry query
/// parameters.
pub fn failure(err: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
    while let Some(err) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&err.to_string());
        source = err.source();
    }
    if text.is_empty() {
        text = "request failed".to_owned();
    }
    text
}
