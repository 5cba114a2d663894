//! The authorization server over HTTP, on 127.0.0.1:0: what a client sees on the wire.

// Tests fail by panicking: unwrap is how a test says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod authorize;
mod helpers;
mod keys;
mod limits;
mod metadata;
mod openapi;
mod redis;
mod redis_server;
mod token;
