//! The authorization server over HTTP, on 127.0.0.1:0: what a client sees on the wire.

mod authorize;
mod helpers;
mod metadata;
mod token;
