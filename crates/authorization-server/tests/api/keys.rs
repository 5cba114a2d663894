//! The rotatable key directory: what the JWKS publishes and which key signs, at every step of a
//! rotation, reloaded without a restart.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use authorization_server::{AuthorizationServer, Config};
use common::service::{Service, ServiceConfig};
use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey};
use rand::RngCore;

use crate::helpers::{json, redeem_form, spawn, TestServer};

pub struct KeyDir(pub PathBuf);

impl KeyDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("as-keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn add_key(&self, name: &str) {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let pem = ed25519_dalek::SigningKey::from_bytes(&seed)
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap();
        write_atomically(&self.0, name, pem.as_bytes());
    }

    pub fn activate(&self, name: &str) {
        write_atomically(&self.0, "ACTIVE", name.as_bytes());
    }

    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.0.join(name)).unwrap();
    }

    pub fn path(&self) -> String {
        self.0.display().to_string()
    }
}

/// What a rotation script does: write beside, then rename, so the server never reads half a file.
/// Writes beside, then renames; private to its owner, as a key file must be.
fn write_atomically(dir: &Path, name: &str, content: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let temporary = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temporary, content).unwrap();
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&temporary, dir.join(name)).unwrap();
}

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn published(server: &TestServer) -> Vec<String> {
    let jwks = json(server.get("/.well-known/jwks.json").await).await;
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn signing_kid(server: &TestServer) -> String {
    let code = server.code("epoch_time").await;
    let response = server.token(&redeem_form(&code)).await;
    let token = json(response).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    jsonwebtoken::decode_header(&token).unwrap().kid.unwrap()
}

/// The poll interval of the tests that poll: shorter than the server's idle timeout, so that a
/// jump of the clock by it does not close the client's kept-alive connections under it.
const POLL: Duration = Duration::from_secs(5);

/// A SIGHUP reaches every reloader of this process: the tests that send one and those that count
/// reloads take turns.
static RELOADS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A server polling `dir` every [`POLL`].
async fn spawn_polling(dir: &KeyDir) -> TestServer {
    let (path, poll) = (dir.path(), POLL.as_secs().to_string());
    spawn(&[
        ("SIGNING_KEYS_DIR", path.as_str()),
        ("SIGNING_KEYS_RELOAD_SECONDS", poll.as_str()),
    ])
    .await
}

/// Moves Tokio's clock by one [`POLL`], so that the reloader looks at the directory once.
async fn next_poll() {
    common::clock::advance_timers(POLL).await;
}

/// Waits until the JWKS has `count` keys: for a reload on SIGHUP, whose delivery is the kernel's,
/// not the clock's.
async fn wait_for_keys(server: &TestServer, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let kids = published(server).await;
        if kids.len() == count {
            return kids;
        }
        assert!(Instant::now() < deadline, "still {kids:?}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn every_rotation_step_is_picked_up_without_a_restart() {
    let _turn = RELOADS.lock().await;
    let dir = KeyDir::new();
    dir.add_key("one.pem");
    let server = spawn_polling(&dir).await;
    let first = published(&server).await;
    assert_eq!(
        first.len(),
        1,
        "a lone key is the active one without an ACTIVE file"
    );
    assert_eq!(signing_kid(&server).await, first[0]);

    // 1. publish the next key: both verify, the old one still signs
    dir.add_key("two.pem");
    dir.activate("one.pem");
    next_poll().await;
    let both = published(&server).await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(both[0], first[0], "the active key comes first");
    let next = both[1].clone();
    assert_eq!(signing_kid(&server).await, first[0]);

    // 2. switch signing to it
    dir.activate("two.pem");
    next_poll().await;
    assert_eq!(signing_kid(&server).await, next, "signing did not switch");
    assert_eq!(
        published(&server).await.len(),
        2,
        "the old key stays published"
    );

    // 3. retire the old key
    dir.remove("one.pem");
    next_poll().await;
    assert_eq!(published(&server).await, std::slice::from_ref(&next));
    assert_eq!(signing_kid(&server).await, next);
}

/// A key rewritten to another of the same size within one tick of the file system's clock (the
/// same modification time, set back here) is still a change.
#[tokio::test]
async fn a_key_replaced_by_one_of_the_same_size_and_time_is_picked_up() {
    let _turn = RELOADS.lock().await;
    let dir = KeyDir::new();
    dir.add_key("one.pem");
    let file = dir.0.join("one.pem");
    let before = std::fs::metadata(&file).unwrap();
    let server = spawn_polling(&dir).await;
    let first = published(&server).await;

    dir.add_key("one.pem");
    set_modified(&file, before.modified().unwrap());
    let after = std::fs::metadata(&file).unwrap();
    assert_eq!(after.len(), before.len());
    assert_eq!(after.modified().unwrap(), before.modified().unwrap());

    next_poll().await;
    let now = published(&server).await;
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, first, "the rewritten key was not picked up");
    assert_eq!(signing_kid(&server).await, now[0]);
    assert_eq!(key_reloads(&server, "reloaded").await, 1);
}

fn set_modified(file: &Path, at: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(file)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

/// `oauth_signing_key_reloads_total{result}` from the server's `/metrics`.
async fn key_reloads(server: &TestServer, result: &str) -> u64 {
    server
        .metric(&format!(
            "oauth_signing_key_reloads_total{{result=\"{result}\"}}"
        ))
        .await
}

#[tokio::test]
async fn a_broken_directory_keeps_the_current_keys() {
    let _turn = RELOADS.lock().await;
    let dir = KeyDir::new();
    dir.add_key("one.pem");
    dir.activate("one.pem");
    let server = spawn_polling(&dir).await;
    let before = published(&server).await;

    // Each step is one change of the directory, so each is exactly one failed reload.
    write_atomically(&dir.0, "broken.pem", b"not a key");
    next_poll().await;
    assert_eq!(key_reloads(&server, "failed").await, 1);
    assert_eq!(published(&server).await, before);
    assert_eq!(signing_kid(&server).await, before[0]);

    dir.activate("missing.pem");
    next_poll().await;
    assert_eq!(key_reloads(&server, "failed").await, 2);
    assert_eq!(signing_kid(&server).await, before[0]);
    assert_eq!(key_reloads(&server, "reloaded").await, 0);
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_at_once() {
    let _turn = RELOADS.lock().await;
    let dir = KeyDir::new();
    dir.add_key("one.pem");
    let path = dir.path();
    // polling every hour: only the signal can explain a prompt reload
    let server = spawn(&[
        ("SIGNING_KEYS_DIR", path.as_str()),
        ("SIGNING_KEYS_RELOAD_SECONDS", "3600"),
    ])
    .await;
    // the handler is installed when the server is built: no wait needed before the signal
    dir.add_key("two.pem");
    dir.activate("one.pem");
    // Sent by a call, not by a `kill` child: a forked child would hold every socket of this
    // process, other tests' listeners included, until it execs.
    nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGHUP).unwrap();
    wait_for_keys(&server, 2).await;
}

#[tokio::test]
async fn a_key_directory_that_does_not_load_stops_start_up() {
    let dir = KeyDir::new();
    dir.add_key("one.pem");
    dir.add_key("two.pem");
    let env = common::config::Env::from_pairs([("SIGNING_KEYS_DIR", dir.path())]);
    let config = Config::from_env(&env).unwrap();
    let clock = std::sync::Arc::new(common::SystemClock);
    let err = AuthorizationServer::router(config, clock)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("ACTIVE"), "two keys and no ACTIVE file: {err}");
}

/// A key file that others can read stops start-up, in a directory as alone, with the fix named.
#[test]
fn a_key_others_can_read_stops_start_up() {
    use std::os::unix::fs::PermissionsExt;
    let dir = KeyDir::new();
    dir.add_key("one.pem");
    let key = dir.0.join("one.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let clock = std::sync::Arc::new(common::SystemClock);
    let key_file = key.display().to_string();
    for (var, value) in [
        ("SIGNING_KEYS_DIR", dir.path()),
        ("SIGNING_KEY_FILE", key_file),
    ] {
        let env = common::config::Env::from_pairs([(var, value)]);
        let config = Config::from_env(&env).unwrap();
        let err = AuthorizationServer::router(config, clock.clone())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(var) && err.contains("chmod 600"), "{err}");
    }
}
