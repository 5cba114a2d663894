//! A real `redis-server` on a free loopback port, owned by one test: started, stopped and
//! restarted at will. Without the binary the Redis tests skip, saying so; under CI they fail.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    tls: Option<TlsFiles>,
}

/// A self-signed certificate for `127.0.0.1` and its key, in a directory of their own.
pub struct TlsFiles {
    dir: PathBuf,
}

impl TlsFiles {
    fn generate() -> Self {
        let dir = std::env::temp_dir().join(format!("redis-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir).unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
        Self { dir }
    }

    /// The certificate, which is its own CA.
    pub fn ca_file(&self) -> String {
        self.dir.join("cert.pem").display().to_string()
    }

    fn key_file(&self) -> String {
        self.dir.join("key.pem").display().to_string()
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RedisServer {
    /// `None` (with the reason printed) when `redis-server` is not installed, outside CI.
    pub fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// A Redis that speaks TLS only (`rediss://`), with a self-signed certificate for
    /// `127.0.0.1`.
    pub fn start_tls() -> Option<Self> {
        Self::start_with(Some(TlsFiles::generate()))
    }

    fn start_with(tls: Option<TlsFiles>) -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is not installed; .ci/run must install it"
            );
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            port,
            child: None,
            tls,
        };
        server.run();
        Some(server)
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA file that makes a client trust this Redis's certificate, when it speaks TLS.
    pub fn ca_file(&self) -> Option<String> {
        self.tls.as_ref().map(TlsFiles::ca_file)
    }

    fn run(&mut self) {
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => command.args(["--port", &port]),
            Some(tls) => command.args(["--port", "0", "--tls-port", &port]).args([
                "--tls-cert-file",
                &tls.ca_file(),
                "--tls-key-file",
                &tls.key_file(),
                "--tls-ca-cert-file",
                &tls.ca_file(),
                "--tls-auth-clients",
                "no",
            ]),
        };
        let child = command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
