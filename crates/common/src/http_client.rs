use std::time::Duration;

/// The one outbound HTTP client of a service: keep-alive pooled connections, a timeout on every
/// call, redirects never followed (a redirect from the authorization server is data, not a hop).
pub fn build(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(1)))
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
}
