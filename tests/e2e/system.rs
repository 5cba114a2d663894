use std::net::SocketAddr;
use std::sync::Arc;

use authorization_server::AuthorizationServer;
use common::config::Env;
use common::server::{Listener, Listeners};
use common::service::{Service, ServiceConfig};
use common::tls::{ServerTlsConfig, TlsAcceptor};
use common::{Clock, SystemClock};
use resource_server::ResourceServer;
use test_client::{ClientIdentity, Pkce, TestClient};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use webapp::Webapp;

/// The PKCE verifier of [`System::code_for`]'s codes, so that [`System::redeem`] needs the code
/// alone.
const VERIFIER: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio";

/// The three services, each on its own ephemeral loopback port, configured as in compose:
/// public URLs equal to the internal ones, everything else at its default.
pub struct System {
    pub webapp: String,
    pub authorization_server: String,
    pub resource_server: String,
    pub http: reqwest::Client,
    vars: Vec<(&'static str, String)>,
    /// What every service reads the time from.
    clock: Arc<dyn Clock>,
    stops: Vec<(&'static str, CancellationToken)>,
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Starts `S` on `listener` with `vars` on `clock`, over HTTPS when they name a certificate.
fn start<S: Service>(
    listener: TcpListener,
    vars: &[(&'static str, String)],
    clock: &Arc<dyn Clock>,
) -> CancellationToken {
    let env = Env::from_pairs(vars.iter().cloned());
    let config = S::Config::from_env(&env).unwrap();
    let tls = ServerTlsConfig::from_env(&env)
        .unwrap()
        .map(|tls| TlsAcceptor::load(&tls).unwrap());
    let listener = Listeners::from(Listener {
        tcp: listener,
        tls,
        role: common::server::Role::All,
    });
    let stop = CancellationToken::new();
    let shutdown = stop.clone().cancelled_owned();
    let clock = clock.clone();
    // `Service::serve` with the clock given instead of the system's.
    tokio::spawn(async move {
        let router = S::router(config, clock).unwrap();
        common::server::serve(listener, router, shutdown)
            .await
            .unwrap()
    });
    stop
}

impl System {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts all three; `extra` settings apply to every service.
    pub async fn start_with(extra: &[(&'static str, &str)]) -> Self {
        Self::start_scheme("http", extra, Arc::new(SystemClock)).await
    }

    /// Starts all three on `clock`, which the test moves instead of waiting.
    pub async fn start_on(clock: Arc<dyn Clock>) -> Self {
        Self::start_scheme("http", &[], clock).await
    }

    /// Starts all three over HTTPS with `cert_file` and `key_file` (a certificate for
    /// 127.0.0.1), every service trusting the CA of `ca_file` (`TLS_CA_FILE`), and so does
    /// [`System::http`].
    pub async fn start_tls(cert_file: &str, key_file: &str, ca_file: &str) -> Self {
        let tls = [
            ("TLS_CERT_FILE", cert_file),
            ("TLS_KEY_FILE", key_file),
            ("TLS_CA_FILE", ca_file),
        ];
        let mut system = Self::start_scheme("https", &tls, Arc::new(SystemClock)).await;
        let ca = reqwest::Certificate::from_pem(&std::fs::read(ca_file).unwrap()).unwrap();
        system.http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .add_root_certificate(ca)
            .build()
            .unwrap();
        system
    }

    async fn start_scheme(
        scheme: &str,
        extra: &[(&'static str, &str)],
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (webapp_listener, webapp) = listener().await;
        let (as_listener, authorization_server) = listener().await;
        let (rs_listener, resource_server) = listener().await;
        let mut system =
            Self::configure(scheme, webapp, authorization_server, resource_server, extra);
        system.clock = clock;
        let (vars, clock) = (&system.vars, &system.clock);
        let stops = [
            ("as", start::<AuthorizationServer>(as_listener, vars, clock)),
            ("rs", start::<ResourceServer>(rs_listener, vars, clock)),
            ("webapp", start::<Webapp>(webapp_listener, vars, clock)),
        ];
        system.stops.extend(stops);
        system
    }

    /// Starts the webapp and the authorization server; nothing listens at the resource server's
    /// address.
    pub async fn start_without_resource_server() -> Self {
        let (webapp_listener, webapp) = listener().await;
        let (as_listener, authorization_server) = listener().await;
        let (rs_listener, resource_server) = listener().await;
        drop(rs_listener);
        let mut system =
            Self::configure("http", webapp, authorization_server, resource_server, &[]);
        let (vars, clock) = (&system.vars, &system.clock);
        let stops = [
            ("as", start::<AuthorizationServer>(as_listener, vars, clock)),
            ("webapp", start::<Webapp>(webapp_listener, vars, clock)),
        ];
        system.stops.extend(stops);
        system
    }

    fn configure(
        scheme: &str,
        webapp: SocketAddr,
        authorization_server: SocketAddr,
        resource_server: SocketAddr,
        extra: &[(&'static str, &str)],
    ) -> Self {
        let as_url = format!("{scheme}://{authorization_server}");
        let rs_url = format!("{scheme}://{resource_server}");
        let mut vars = vec![
            ("ISSUER", as_url.clone()),
            ("AUTHORIZATION_SERVER_URL", as_url.clone()),
            ("RESOURCE_SERVER_PUBLIC_URL", rs_url.clone()),
            ("RESOURCE_SERVER_URL", rs_url.clone()),
            ("JWKS_REFETCH_INTERVAL_SECONDS", "1".to_owned()),
        ];
        // CI runs the suite a second time with the codes in Redis: behaviour must not change.
        if let Ok(url) = std::env::var("REDIS_URL") {
            vars.push(("REDIS_URL", url));
        }
        vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        Self {
            webapp: format!("{scheme}://{webapp}"),
            authorization_server: as_url,
            resource_server: rs_url,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            vars,
            clock: Arc::new(SystemClock),
            stops: Vec::new(),
        }
    }

    /// Stops the authorization server and starts a new one (with a new signing key) on the same
    /// address.
    pub async fn restart_authorization_server(&mut self) {
        let index = self
            .stops
            .iter()
            .position(|(name, _)| *name == "as")
            .unwrap();
        let (_, stop) = self.stops.remove(index);
        stop.cancel();
        let addr = self
            .authorization_server
            .split_once("://")
            .map_or("", |(_, addr)| addr)
            .to_owned();
        // The old server lets go of the port once its connections have closed: within its
        // graceful drain, or this fails.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(&addr).await {
                Ok(listener) => break listener,
                Err(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(err) => panic!("{addr} still taken 10 s after the stop: {err}"),
            }
        };
        let server = start::<AuthorizationServer>(listener, &self.vars, &self.clock);
        self.stops.push(("as", server));
    }

    pub async fn get(&self, url: String) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    /// A client other than our webapp, over [`System::http`].
    pub fn client(&self) -> TestClient {
        TestClient::new(
            self.http.clone(),
            &self.authorization_server,
            ClientIdentity::default(),
        )
    }

    /// Runs the authorization code flow by hand, as a client other than our webapp would, and
    /// returns the access token.
    pub async fn token_for(&self, scope: &str, user: &str) -> String {
        self.client().code_and_token(scope, user).await.unwrap()
    }

    /// The first half of [`System::token_for`]: an authorization code, bound to [`VERIFIER`].
    pub async fn code_for(&self, scope: &str, user: &str) -> String {
        let pkce = Pkce::from_verifier(VERIFIER);
        self.client().code(scope, user, "s", &pkce).await.unwrap()
    }

    /// Presents `code` (from [`System::code_for`]) at the token endpoint; the answer's status.
    pub async fn redeem(&self, code: &str) -> u16 {
        let form = test_client::token_form(&ClientIdentity::default(), code, VERIFIER);
        let response = self.client().token(&form).await.unwrap();
        response.status().as_u16()
    }

    pub async fn call_resource(&self, path: &str, user: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.resource_server))
            .query(&[("user", user)])
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

impl Drop for System {
    fn drop(&mut self) {
        for (_, stop) in &self.stops {
            stop.cancel();
        }
    }
}
