use jsonwebtoken::Algorithm;
use url::Url;

use crate::{ClientId, RedirectUri, Scope};

/// What all three services must agree on, read once by each (see the service kit's
/// `common::deployment`): a service never has its own copy of one of these settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// `ISSUER`: the authorization server's public URL without a trailing slash; every token's
    /// `iss` and every redirect's `iss` (RFC 9207), compared exactly.
    pub issuer: String,
    /// `CLIENT_ID`: the one registered client.
    pub client_id: ClientId,
    /// `REDIRECT_URI`: the client's registered callback.
    pub redirect_uri: RedirectUri,
    /// `RESOURCE_SERVER_PUBLIC_URL`: the base of every resource indicator (RFC 8707) and `aud`.
    pub resource_server_public_url: Url,
    /// `SIGNING_ALGORITHM`: the authorization server signs with it, the resource server accepts
    /// nothing else (RFC 8725 §3.1).
    pub signing_algorithm: Algorithm,
}

impl Deployment {
    /// The resource indicator of `scope`'s endpoint, which is also its tokens' `aud`.
    pub fn resource_uri(&self, scope: Scope) -> String {
        scope.resource_uri(&self.resource_server_public_url)
    }
}
