//! The webapp served on loopback against fake upstreams written here: a fake authorization server
//! that checks what the webapp sends (PKCE, resource, login_hint, Basic credentials, request id)
//! and a fake resource server that checks the bearer token.

// Test support code (the fakes, the harness) fails loudly, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;
mod fakes;
mod flow;
mod openapi;
mod requests;
