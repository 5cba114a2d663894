//! The three real services on 127.0.0.1:0, driven from outside as a user and as an attacker would.

// Tests fail by panicking: unwrap is how a test says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;
mod faults;
mod flow;
mod metrics;
mod rotation;
mod system;
mod tls;
