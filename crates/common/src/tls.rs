//! TLS on every hop (RFC 6749 §2.3.1, §3.1, §3.2; RFC 6750 §5.3): the certificate a service's
//! listener presents, reloaded without a restart, and the trust of every outbound client.
//!
//! One crypto provider for every TLS connection: ring. It is already in the tree (rustls and
//! rcgen use it) and links statically into the `FROM scratch` images. The access tokens' signatures
//! use AWS-LC instead (authorization-server/src/keys.rs), measured 2 to 8 times faster there;
//! whether TLS should follow is for a measurement of the TLS hops to say.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
/// A trusted root, as [`client_ca_certificates`] reads them.
pub use rustls::pki_types::CertificateDer;
use rustls::pki_types::PrivateKeyDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::{ConfigError, Env};

/// `TLS_CERT_FILE`: the PEM certificate chain a listener presents, leaf first.
pub const CERT_FILE: &str = "TLS_CERT_FILE";
/// `TLS_KEY_FILE`: its PEM private key (PKCS#8, PKCS#1 or SEC1), readable by its owner only.
pub const KEY_FILE: &str = "TLS_KEY_FILE";
/// `TLS_CA_FILE`: a PEM bundle trusted by every outbound call, beside the compiled-in roots.
pub const CA_FILE: &str = "TLS_CA_FILE";
/// `TLS_RELOAD_SECONDS`: how often the certificate files are checked for a change.
pub const RELOAD_SECONDS: &str = "TLS_RELOAD_SECONDS";

/// ALPN: HTTP/1.1 is what every listener speaks.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Where a listener's certificate and key are, when it serves HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub reload_every: Duration,
}

impl ServerTlsConfig {
    /// `Some` when both `TLS_CERT_FILE` and `TLS_KEY_FILE` are set; one without the other is an
    /// error naming the missing one.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let reload_every = Duration::from_secs(env.seconds(RELOAD_SECONDS, 5)?);
        match (env.get(CERT_FILE), env.get(KEY_FILE)) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(Self {
                cert_file: cert.into(),
                key_file: key.into(),
                reload_every,
            })),
            (Some(_), None) => Err(ConfigError::new(
                KEY_FILE,
                "",
                format!("required when {CERT_FILE} is set"),
            )),
            (None, Some(_)) => Err(ConfigError::new(
                CERT_FILE,
                "",
                format!("required when {KEY_FILE} is set"),
            )),
        }
    }
}

/// The PEM bundle of `TLS_CA_FILE`, read and parsed at start-up (`None` when unset).
pub fn client_ca_certificates(env: &Env) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let Some(path) = env.get(CA_FILE) else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(&path).map_err(|err| ConfigError::new(CA_FILE, &path, err))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| ConfigError::new(CA_FILE, &path, err))?;
    if certificates.is_empty() {
        return Err(ConfigError::new(CA_FILE, path, "no PEM certificate in it"));
    }
    Ok(certificates)
}

#[derive(Debug, thiserror::Error)]
#[error("{var} {path}: {reason}")]
pub struct TlsError {
    var: &'static str,
    path: String,
    reason: String,
}

impl TlsError {
    fn new(var: &'static str, path: &Path, reason: impl std::fmt::Display) -> Self {
        Self {
            var,
            path: path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}

/// The server side of a listener: TLS 1.2 and 1.3 only, ALPN `http/1.1`, the certificate swapped
/// in place on reload (connections already open keep theirs).
#[derive(Clone)]
pub struct TlsAcceptor {
    acceptor: tokio_rustls::TlsAcceptor,
    certificate: Arc<CurrentCertificate>,
    /// The files' fingerprint from before they were read: a change made since is reloaded.
    loaded: u64,
}

impl TlsAcceptor {
    /// Loads the certificate and key; refuses a key that does not match the certificate or that
    /// others can read.
    pub fn load(config: &ServerTlsConfig) -> Result<Self, TlsError> {
        let loaded = crate::signals::files_fingerprint(&[&config.cert_file, &config.key_file]);
        let certificate = Arc::new(CurrentCertificate(RwLock::new(Arc::new(
            load_certified_key(&config.cert_file, &config.key_file)?,
        ))));
        let mut server_config = rustls::ServerConfig::builder_with_protocol_versions(&[
            &rustls::version::TLS13,
            &rustls::version::TLS12,
        ])
        .with_no_client_auth()
        .with_cert_resolver(certificate.clone());
        server_config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server_config)),
            certificate,
            loaded,
        })
    }

    pub fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// Reloads the certificate and key whenever their files change (checked every
    /// `reload_every`) and on SIGHUP; a pair that does not load keeps the current one. Stops when
    /// every clone of this acceptor is dropped. Call within a Tokio runtime.
    pub fn spawn_reloader(&self, config: ServerTlsConfig) {
        let (cert_file, key_file) = (config.cert_file.clone(), config.key_file.clone());
        crate::signals::spawn_reloader(
            &self.certificate,
            config.reload_every,
            self.loaded,
            move || crate::signals::files_fingerprint(&[&cert_file, &key_file]),
            move |certificate: &CurrentCertificate| match load_certified_key(
                &config.cert_file,
                &config.key_file,
            ) {
                Ok(key) => {
                    certificate.replace(key);
                    tracing::info!(cert = %config.cert_file.display(), "TLS certificate reloaded");
                }
                Err(err) => tracing::error!(
                    error = %err,
                    "TLS certificate not reloaded; keeping the current one"
                ),
            },
        );
    }
}

/// The certificate every new handshake gets.
#[derive(Debug)]
struct CurrentCertificate(RwLock<Arc<CertifiedKey>>);

impl CurrentCertificate {
    fn replace(&self, key: CertifiedKey) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
    }
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

fn load_certified_key(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert_file)
        .map_err(|err| TlsError::new(CERT_FILE, cert_file, err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::new(CERT_FILE, cert_file, err))?;
    if chain.is_empty() {
        return Err(TlsError::new(
            CERT_FILE,
            cert_file,
            "no PEM certificate in it",
        ));
    }
    crate::secret_file::check_private(key_file)
        .map_err(|err| TlsError::new(KEY_FILE, key_file, err))?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|err| TlsError::new(KEY_FILE, key_file, err))?;
    let signing_key = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|err| TlsError::new(KEY_FILE, key_file, err))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|err| {
        TlsError::new(
            KEY_FILE,
            key_file,
            format!("does not match {CERT_FILE}: {err}"),
        )
    })?;
    Ok(certified)
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::net::SocketAddr;
    use std::os::unix::fs::PermissionsExt;

    use axum::routing::get;
    use axum::Router;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::http_client::{CallError, HttpClient, Resolve};
    use crate::server::{serve, Limits, Listener, Listeners};

    /// A development CA of the test's own.
    fn new_ca() -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
    }

    /// A directory with `cert.pem` (a leaf for localhost and 127.0.0.1 signed by `ca`),
    /// `key.pem` (mode 0600) and `ca.pem`.
    struct Files(PathBuf);

    impl Files {
        fn new(ca: &CertifiedIssuer<'static, KeyPair>) -> Self {
            let dir = std::env::temp_dir().join(format!("tls-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir(&dir).unwrap();
            let files = Self(dir);
            files.issue(ca);
            files
        }

        /// Writes a fresh leaf from `ca`, each file replaced in one rename.
        fn issue(&self, ca: &CertifiedIssuer<'static, KeyPair>) {
            let key = KeyPair::generate().unwrap();
            let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
            let leaf = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, ca)
                .unwrap();
            self.write("key.pem", &key.serialize_pem(), 0o600);
            self.write("cert.pem", &leaf.pem(), 0o644);
            self.write("ca.pem", &ca.pem(), 0o644);
        }

        fn write(&self, name: &str, content: &str, mode: u32) {
            let temporary = self.0.join(format!(".{name}.tmp"));
            std::fs::write(&temporary, content).unwrap();
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode)).unwrap();
            std::fs::rename(temporary, self.0.join(name)).unwrap();
        }

        fn config(&self) -> ServerTlsConfig {
            ServerTlsConfig {
                cert_file: self.0.join("cert.pem"),
                key_file: self.0.join("key.pem"),
                // Long enough that only a test moving the clock sees a reload by polling.
                reload_every: Duration::from_secs(60),
            }
        }

        fn ca_file(&self) -> String {
            self.0.join("ca.pem").display().to_string()
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    async fn start(config: &ServerTlsConfig, limits: Limits) -> SocketAddr {
        let acceptor = TlsAcceptor::load(config).unwrap();
        acceptor.spawn_reloader(config.clone());
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let router = Router::new().route("/healthz", get(|| async { "ok" }));
        let listener = Listener {
            tcp,
            tls: Some(acceptor),
            role: crate::server::Role::All,
        };
        let listeners = Listeners {
            sockets: vec![listener],
            limits,
        };
        tokio::spawn(serve(listeners, router, std::future::pending()));
        addr
    }

    /// A client trusting the compiled-in roots and `ca_file`, reaching `localhost` at `addr`.
    fn client(ca_file: &str, addr: SocketAddr) -> HttpClient {
        let env = Env::from_pairs([(CA_FILE, ca_file.to_owned())]);
        let roots = client_ca_certificates(&env).unwrap();
        HttpClient::with_resolve(Duration::from_secs(5), &roots, Resolve::Pinned(addr)).unwrap()
    }

    async fn healthz(client: &HttpClient, addr: SocketAddr) -> Result<u16, CallError> {
        let url = format!("https://localhost:{}/healthz", addr.port());
        let request = http::Request::get(url).body(Default::default()).unwrap();
        Ok(client.send(request).await?.status.as_u16())
    }

    /// Calls `/healthz` until it is answered, which it has to be within `seconds`.
    async fn served_within(client: &HttpClient, addr: SocketAddr, seconds: u64, late: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
        while healthz(client, addr).await.is_err() {
            assert!(std::time::Instant::now() < deadline, "{late}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn https_is_served_to_a_client_that_trusts_the_ca() {
        let files = Files::new(&new_ca());
        let addr = start(&files.config(), Limits::default()).await;
        let client = client(&files.ca_file(), addr);
        assert_eq!(healthz(&client, addr).await.unwrap(), 200);
    }

    /// TLS 1.3 and 1.2, nothing older (rustls speaks nothing older either), and ALPN `http/1.1`
    /// even when the client prefers h2.
    #[tokio::test]
    async fn tls_1_3_and_1_2_with_alpn_http_1_1() {
        let files = Files::new(&new_ca());
        let addr = start(&files.config(), Limits::default()).await;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(files.0.join("ca.pem")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let mut config = rustls::ClientConfig::builder_with_protocol_versions(&[version])
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let stream = connector.connect(name, tcp).await.unwrap();
            let (_, session) = stream.get_ref();
            assert_eq!(session.protocol_version(), Some(version.version));
            assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]));
        }
    }

    /// The webapp's case: one router on an HTTPS listener and a plain-HTTP one at once.
    #[tokio::test]
    async fn one_service_serves_https_and_plain_http_side_by_side() {
        let files = Files::new(&new_ca());
        let tls = Listener {
            tcp: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            tls: Some(TlsAcceptor::load(&files.config()).unwrap()),
            role: crate::server::Role::All,
        };
        let plain = Listener::from(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
        let (tls_addr, plain_addr) = (
            tls.tcp.local_addr().unwrap(),
            plain.tcp.local_addr().unwrap(),
        );
        let router = Router::new().route("/healthz", get(|| async { "ok" }));
        let stop = tokio_util::sync::CancellationToken::new();
        let listeners = Listeners {
            sockets: vec![tls, plain],
            limits: Limits::default(),
        };
        let server = tokio::spawn(serve(listeners, router, stop.clone().cancelled_owned()));
        assert_eq!(
            healthz(&client(&files.ca_file(), tls_addr), tls_addr)
                .await
                .unwrap(),
            200
        );
        let answer = reqwest::get(format!("http://{plain_addr}/healthz"))
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        // one stop closes both
        stop.cancel();
        server.await.unwrap().unwrap();
        assert!(tokio::net::TcpStream::connect(tls_addr).await.is_err());
        assert!(tokio::net::TcpStream::connect(plain_addr).await.is_err());
    }

    #[tokio::test]
    async fn clear_text_http_to_a_tls_port_gets_no_answer() {
        let files = Files::new(&new_ca());
        let addr = start(&files.config(), Limits::default()).await;
        let plain = reqwest::get(format!("http://{addr}/healthz")).await;
        assert!(plain.is_err(), "{plain:?}");
    }

    #[tokio::test]
    async fn a_client_that_trusts_another_ca_is_refused() {
        let files = Files::new(&new_ca());
        let addr = start(&files.config(), Limits::default()).await;
        let other = Files::new(&new_ca());
        let refused = healthz(&client(&other.ca_file(), addr), addr).await;
        assert!(refused.is_err(), "{refused:?}");
        // and the compiled-in roots alone do not know a private CA
        let roots_only =
            HttpClient::with_resolve(Duration::from_secs(5), &[], Resolve::Pinned(addr)).unwrap();
        assert!(healthz(&roots_only, addr).await.is_err());
    }

    #[tokio::test]
    async fn a_client_that_never_starts_its_handshake_is_cut_off() {
        let files = Files::new(&new_ca());
        let limits = Limits {
            idle_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let addr = start(&files.config(), limits).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        // a TLS record header and then nothing more
        stream.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        crate::clock::advance_timers(limits.idle_timeout).await;
        let mut buffer = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buffer)).await;
        assert!(read.is_ok(), "the server kept the silent connection open");
    }

    /// The cap is taken before the handshake: a connection that never starts one holds its slot,
    /// and the next is closed at once.
    #[tokio::test]
    async fn a_tls_listener_refuses_a_connection_over_its_cap_before_any_handshake() {
        let files = Files::new(&new_ca());
        let limits = Limits {
            max_connections: 1,
            ..Limits::default()
        };
        let addr = start(&files.config(), limits).await;
        let silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut refused = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(500), refused.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");

        drop(silent);
        let client = client(&files.ca_file(), addr);
        served_within(&client, addr, 2, "the slot was not given back").await;
    }

    #[tokio::test]
    async fn a_renewed_certificate_is_served_without_a_restart() {
        let files = Files::new(&new_ca());
        let config = files.config();
        let addr = start(&config, Limits::default()).await;
        let next_ca = new_ca();
        files.issue(&next_ca);
        crate::clock::advance_timers(config.reload_every).await;
        // Only a client of the new CA: it succeeds once the reload has happened.
        let client = client(&files.ca_file(), addr);
        let answer = healthz(&client, addr).await;
        assert_eq!(answer.ok(), Some(200), "still the old certificate");
    }

    /// With a poll of an hour, only the signal can explain the new certificate.
    #[tokio::test]
    async fn sighup_reloads_the_certificate_at_once() {
        let files = Files::new(&new_ca());
        let config = ServerTlsConfig {
            reload_every: Duration::from_secs(3600),
            ..files.config()
        };
        // the handler is installed by the time the reloader is spawned
        let addr = start(&config, Limits::default()).await;
        files.issue(&new_ca());
        let client = client(&files.ca_file(), addr);
        assert!(
            healthz(&client, addr).await.is_err(),
            "reloaded without the signal"
        );
        // Sent by a call, not by a `kill` child: a forked child would hold every socket of this
        // process, other tests' listeners included, until it execs.
        nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGHUP).unwrap();
        served_within(&client, addr, 10, "no reload on SIGHUP").await;
    }

    #[test]
    fn files_that_do_not_make_a_certificate_stop_start_up() {
        let files = Files::new(&new_ca());
        let config = files.config();
        let error = |config: &ServerTlsConfig| match TlsAcceptor::load(config) {
            Ok(_) => panic!("{config:?} loaded"),
            Err(err) => err,
        };

        let missing = ServerTlsConfig {
            cert_file: files.0.join("absent.pem"),
            ..config.clone()
        };
        assert_eq!(error(&missing).var, CERT_FILE);

        files.write("empty.pem", "", 0o644);
        let empty = ServerTlsConfig {
            cert_file: files.0.join("empty.pem"),
            ..config.clone()
        };
        assert_eq!(error(&empty).var, CERT_FILE);

        // a key of another certificate
        let other = Files::new(&new_ca());
        let mismatched = ServerTlsConfig {
            key_file: other.0.join("key.pem"),
            ..config.clone()
        };
        let err = error(&mismatched);
        assert_eq!(err.var, KEY_FILE);
        assert!(err.reason.contains("does not match"), "{err}");

        // a key others can read
        std::fs::set_permissions(&config.key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = error(&config);
        assert_eq!(err.var, KEY_FILE);
        assert!(err.reason.contains("chmod 600"), "{err}");
    }

    #[test]
    fn the_certificate_and_the_key_come_together() {
        let pairs = Env::from_vars;
        assert_eq!(ServerTlsConfig::from_env(&pairs(&[])), Ok(None));
        let both = ServerTlsConfig::from_env(&pairs(&[(CERT_FILE, "c"), (KEY_FILE, "k")]));
        assert!(both.unwrap().is_some());
        let err = ServerTlsConfig::from_env(&pairs(&[(CERT_FILE, "c")])).unwrap_err();
        assert_eq!(err.var, KEY_FILE);
        let err = ServerTlsConfig::from_env(&pairs(&[(KEY_FILE, "k")])).unwrap_err();
        assert_eq!(err.var, CERT_FILE);
        let err = client_ca_certificates(&pairs(&[(CA_FILE, "/nonexistent.pem")])).unwrap_err();
        assert_eq!(err.var, CA_FILE);
    }

    /// The `healthcheck` subcommand verifies the certificate like every other client.
    #[test]
    fn the_healthcheck_speaks_tls_and_verifies() {
        let files = Files::new(&new_ca());
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let addr = runtime.block_on(start(&files.config(), Limits::default()));
        let trusting = Env::from_pairs([(CA_FILE, files.ca_file())]);
        assert_eq!(
            crate::healthcheck::probe(&trusting, addr, true),
            std::process::ExitCode::SUCCESS
        );
        let untrusting = Env::from_pairs(Vec::<(&str, String)>::new());
        assert_eq!(
            crate::healthcheck::probe(&untrusting, addr, true),
            std::process::ExitCode::FAILURE
        );
        assert_eq!(
            crate::healthcheck::probe(&trusting, addr, false),
            std::process::ExitCode::FAILURE,
            "plain HTTP to the TLS port"
        );
    }
}
