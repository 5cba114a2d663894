//! The protocol: the types and rules the three services agree on, without any HTTP or
//! configuration plumbing. The access-token claims are the contract between the authorization
//! server and the resource server, the resource answers the one between the resource server and
//! the webapp; error codes, scopes, user names and the client's identity are the vocabulary of all
//! three.

pub mod claims;
pub mod client;
pub mod error_body;
pub mod error_code;
pub mod form;
pub mod resource;
pub mod scope;
pub mod user;

pub use claims::AccessTokenClaims;
pub use client::{ClientId, ClientSecret, RedirectUri};
pub use error_body::ErrorBody;
pub use error_code::ErrorCode;
pub use scope::Scope;
pub use user::UserName;
