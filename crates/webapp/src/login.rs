//! A login started in a browser (`GET /login/…`) and finished at `/callback`: what the callback
//! needs (the `state`, the PKCE verifier, the endpoint, the user, when it started) travels in one
//! encrypted and authenticated cookie bound to that user agent, so that the webapp keeps nothing
//! per pending login and an unauthenticated caller cannot make it hold anything.

use std::time::{Duration, SystemTime};

use cookie::{Cookie, CookieJar, Key, SameSite};
use http::header::COOKIE;
use http::HeaderMap;
use oauth::{Scope, UserName};
use serde::{Deserialize, Serialize};

/// How long a browser has to come back to `/callback`; the authorization server's codes live 30 s.
pub const LOGIN_TTL: Duration = Duration::from_secs(120);

/// A login waiting for its callback. `Debug` shows neither the state nor the verifier.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub verifier: String,
    pub scope: Scope,
    pub user: UserName,
    /// Milliseconds since the Unix epoch, from the injected clock.
    pub started_ms: u64,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("scope", &self.scope)
            .field("user", &self.user)
            .field("started_ms", &self.started_ms)
            .finish_non_exhaustive()
    }
}

impl PendingLogin {
    /// How long ago the login started: the browser's trip through the authorization server.
    pub fn age(&self, now: SystemTime) -> Duration {
        millis_since_epoch(now)
            .checked_sub(self.started_ms)
            .map_or(Duration::ZERO, Duration::from_millis)
    }
}

pub fn millis_since_epoch(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis().try_into().unwrap_or(u64::MAX))
}

/// Seals and opens the login cookie. The key is made at start-up: a restart forgets the logins in
/// progress, which last seconds.
pub struct LoginCookies {
    key: Key,
    /// `__Host-` prefixed and `Secure` when the redirect URI is `https` (RFC 6265bis §4.1.3.2):
    /// no other host or path can then set or shadow it.
    secure: bool,
}

impl LoginCookies {
    pub fn new(secure: bool) -> Option<Self> {
        Some(Self {
            key: Key::try_generate()?,
            secure,
        })
    }

    pub fn name(&self) -> &'static str {
        if self.secure {
            "__Host-oauth-login"
        } else {
            "oauth-login"
        }
    }

    /// The `Set-Cookie` value carrying `login`: `HttpOnly`, `SameSite=Lax` (the redirect back from
    /// the authorization server is a top-level GET, which Lax lets through), `Path=/`.
    pub fn seal(&self, login: &PendingLogin) -> String {
        // Strings and a unit enum: serializing cannot fail.
        let value = serde_json::to_string(login).unwrap_or_default();
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key)
            .add(self.attributes(Cookie::new(self.name(), value)));
        jar.get(self.name())
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// The `Set-Cookie` value that deletes the cookie: every callback uses it up.
    pub fn removal(&self) -> String {
        let mut cookie = self.attributes(Cookie::new(self.name(), ""));
        cookie.make_removal();
        cookie.to_string()
    }

    /// The pending login of this user agent, if it sent our cookie, the cookie is genuine (sealed
    /// with our key, under our name) and the login has not expired at `now`.
    pub fn open(&self, headers: &HeaderMap, now: SystemTime) -> Option<PendingLogin> {
        let jar = CookieJar::new();
        let login = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .filter(|cookie| cookie.name() == self.name())
            .find_map(|cookie| jar.private(&self.key).decrypt(cookie.into_owned()))
            .and_then(|cookie| serde_json::from_str::<PendingLogin>(cookie.value()).ok())?;
        (login.age(now) < LOGIN_TTL && login.started_ms <= millis_since_epoch(now)).then_some(login)
    }

    fn attributes(&self, cookie: Cookie<'static>) -> Cookie<'static> {
        let mut cookie = cookie;
        cookie.set_http_only(true);
        cookie.set_same_site(SameSite::Lax);
        cookie.set_path("/");
        cookie.set_secure(self.secure);
        cookie.set_max_age(Some(cookie::time::Duration::seconds(
            LOGIN_TTL.as_secs().try_into().unwrap_or(i64::MAX),
        )));
        cookie
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const START: u64 = 1_795_878_245_000;

    fn login() -> PendingLogin {
        PendingLogin {
            state: "st4te".to_owned(),
            verifier: "v".repeat(43),
            scope: Scope::EpochTime,
            user: UserName::parse("alice").unwrap(),
            started_ms: START,
        }
    }

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// The request headers of a browser sending back what `set_cookie` set.
    fn sent(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(pair).unwrap());
        headers
    }

    #[test]
    fn a_sealed_login_opens_with_the_same_key_until_it_expires() {
        let cookies = LoginCookies::new(false).unwrap();
        let set = cookies.seal(&login());
        assert!(set.starts_with("oauth-login="), "{set}");
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=120"] {
            assert!(set.contains(attribute), "{attribute}: {set}");
        }
        assert!(!set.contains("Secure"), "{set}");
        assert!(!set.contains("st4te"), "the cookie is encrypted: {set}");
        let headers = sent(&set);
        assert_eq!(cookies.open(&headers, at(START)), Some(login()));
        assert_eq!(cookies.open(&headers, at(START + 119_999)), Some(login()));
        assert_eq!(cookies.open(&headers, at(START + 120_000)), None, "expired");
        assert_eq!(
            cookies.open(&headers, at(START - 1)),
            None,
            "from the future"
        );
    }

    #[test]
    fn over_https_the_cookie_is_host_only_and_secure() {
        let cookies = LoginCookies::new(true).unwrap();
        let set = cookies.seal(&login());
        assert!(set.starts_with("__Host-oauth-login="), "{set}");
        assert!(set.contains("Secure"), "{set}");
        assert_eq!(cookies.open(&sent(&set), at(START)), Some(login()));
    }

    #[test]
    fn a_foreign_tampered_renamed_or_missing_cookie_opens_nothing() {
        let ours = LoginCookies::new(false).unwrap();
        let theirs = LoginCookies::new(false).unwrap();
        let foreign = theirs.seal(&login());
        assert_eq!(ours.open(&sent(&foreign), at(START)), None, "another key");

        let set = ours.seal(&login());
        let pair = set.split(';').next().unwrap();
        let (name, value) = pair.split_once('=').unwrap();
        let mut bytes = value.as_bytes().to_vec();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{name}={}", String::from_utf8(bytes).unwrap());
        assert_eq!(ours.open(&sent(&tampered), at(START)), None, "tampered");
        let renamed = format!("other-login={value}");
        assert_eq!(ours.open(&sent(&renamed), at(START)), None, "renamed");
        assert_eq!(ours.open(&HeaderMap::new(), at(START)), None, "missing");
        let garbage = "oauth-login=%%%; a=b";
        assert_eq!(ours.open(&sent(garbage), at(START)), None, "garbage");
    }

    #[test]
    fn the_removal_expires_the_cookie_at_once() {
        let cookies = LoginCookies::new(false).unwrap();
        let removal = cookies.removal();
        assert!(removal.starts_with("oauth-login=;"), "{removal}");
        assert!(removal.contains("Max-Age=0"), "{removal}");
    }

    #[test]
    fn debug_shows_neither_state_nor_verifier() {
        let shown = format!("{:?}", login());
        assert!(
            !shown.contains("st4te") && !shown.contains("vvvv"),
            "{shown}"
        );
    }
}
