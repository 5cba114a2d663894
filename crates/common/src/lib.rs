//! What the three services share. Nothing here knows about a particular service: the access-token
//! claims are the contract between the authorization server and the resource server, the
//! resource answers the one between the resource server and the webapp, the rest is
//! plumbing (configuration, telemetry and error reporting, request ids, metrics and the middleware
//! stack, error bodies, serving, the HTTP client).

pub mod claims;
pub mod clock;
pub mod config;
pub mod dev_certs;
pub mod error_body;
pub mod error_reporting;
pub mod healthcheck;
pub mod http_client;
pub mod observability;
pub mod openapi;
pub mod peer;
pub mod request_id;
pub mod resource;
pub mod router;
pub mod scope;
pub mod secret_file;
pub mod server;
pub mod service;
pub mod signals;
pub mod telemetry;
pub mod tls;
pub mod user;

pub use claims::AccessTokenClaims;
pub use clock::{Clock, SystemClock};
pub use error_body::ErrorBody;
pub use scope::Scope;
pub use user::UserName;
