//! End-to-end tests: the resource server on 127.0.0.1:0, fed keys by a fake authorization server
//! (a local axum app serving a JWKS), called over HTTP.

// clippy.toml allows these in `#[test]` functions; the helpers of a test binary are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod endpoints;
mod expiry;
mod helpers;
mod keys;
mod openapi;
mod refusals;
