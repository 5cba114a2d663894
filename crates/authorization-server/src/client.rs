use oauth::{ClientId, ClientSecret, RedirectUri, Scope};
use subtle::ConstantTimeEq;

/// The one pre-registered confidential client. Its `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct RegisteredClient {
    pub id: ClientId,
    pub secret: ClientSecret,
    /// Compared with `redirect_uri` parameters by exact string match (RFC 9700 §2.1).
    pub redirect_uri: RedirectUri,
    pub scopes: Vec<Scope>,
}

impl RegisteredClient {
    /// True when `id` is this client and `secret` its secret. The secret is compared in constant
    /// time so response timing says nothing about how much of a guess was right.
    pub fn authenticate(&self, id: &str, secret: &str) -> bool {
        let secret_matches: bool = secret
            .as_bytes()
            .ct_eq(self.secret.expose().as_bytes())
            .into();
        self.id == *id && secret_matches
    }

    pub fn may_be_granted(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> RegisteredClient {
        RegisteredClient {
            id: ClientId::new("1234"),
            secret: ClientSecret::new("qwerty"),
            redirect_uri: RedirectUri::parse("http://localhost:8080/callback").unwrap(),
            scopes: vec![Scope::EpochTime],
        }
    }

    #[test]
    fn authenticates_only_the_exact_pair() {
        let client = client();
        assert!(client.authenticate("1234", "qwerty"));
        for (id, secret) in [
            ("1234", "qwert"),
            ("1234", "qwertyy"),
            ("123", "qwerty"),
            ("1234", ""),
        ] {
            assert!(!client.authenticate(id, secret), "{id}:{secret}");
        }
    }

    #[test]
    fn grants_only_registered_scopes() {
        assert!(client().may_be_granted(Scope::EpochTime));
        assert!(!client().may_be_granted(Scope::CurrentTime));
    }
}
