//! A real `redis-server` on a free loopback port, owned by one test: started, stopped and
//! restarted at will. The tests that use it are `#[ignore = "needs redis-server"]`: listed as
//! ignored by a plain `cargo test`, run by `cargo test -- --include-ignored` (as CI does), and
//! failing there when `redis-server` is missing.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    tls: Option<TlsFiles>,
    /// The one ACL user (the default user off) and its password, when there is one.
    user: Option<(String, String)>,
    /// The server's output, for the failure message when it does not come up.
    log: PathBuf,
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
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A Redis that speaks TLS only (`rediss://`), with a self-signed certificate for
    /// `127.0.0.1`.
    pub fn start_tls() -> Self {
        Self::start_with(Some(TlsFiles::generate()))
    }

    /// A Redis whose default user is off: only `user` with `password` gets in.
    pub fn start_with_user(user: &str, password: &str) -> Self {
        let mut server = Self::new(None);
        server.user = Some((user.to_owned(), password.to_owned()));
        server.run();
        server
    }

    fn start_with(tls: Option<TlsFiles>) -> Self {
        let mut server = Self::new(tls);
        server.run();
        server
    }

    fn new(tls: Option<TlsFiles>) -> Self {
        let installed = Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success());
        assert!(
            installed,
            "redis-server is not installed: `apt-get install redis-server`, or run without \
             --include-ignored to leave the Redis tests out"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::env::temp_dir().join(format!("redis-{}.log", uuid::Uuid::new_v4()));
        Self {
            port,
            child: None,
            tls,
            user: None,
            log,
        }
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
        if let Some((user, password)) = &self.user {
            command.args(["--user", "default", "off"]).args([
                "--user",
                user,
                "on",
                &format!(">{password}"),
                "~*",
                "+@all",
            ]);
        }
        let log = std::fs::File::create(&self.log).unwrap();
        let child = command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().unwrap());
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "redis-server did not come up on port {} ({}); its output:\n{}",
                self.port,
                exited.map_or("no answer in 10 s".to_owned(), |status| status.to_string()),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether a Redis (not any listener) answers on the port: `PING` gets `+PONG` (`-NOAUTH…`
    /// when the default user is off). A TLS-only server cannot be pinged in clear text; it
    /// answers once it accepts a connection.
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        if self.tls.is_some() {
            return true;
        }
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && (&reply == b"+PONG\r\n" || &reply == b"-NOAUTH")
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
        let _ = std::fs::remove_file(&self.log);
    }
}
