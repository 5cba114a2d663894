//! The service kit: what every service does the same way, and nothing about a particular service
//! or about the protocol itself (that is the `oauth` crate): configuration (the deployment's shared
//! settings read once), telemetry and error reporting, request ids, metrics and the middleware
//! stack, error answers, serving, the HTTP client.

pub mod api_error;
pub mod clock;
pub mod config;
pub mod deployment;
pub mod dev_certs;
pub mod error_reporting;
pub mod healthcheck;
pub mod http_client;
pub mod observability;
pub mod openapi;
pub mod peer;
pub mod request_id;
pub mod router;
pub mod secret_file;
pub mod server;
pub mod service;
pub mod signals;
pub mod telemetry;
pub mod tls;

pub use clock::{Clock, SystemClock};
