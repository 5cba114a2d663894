//! The command line: where the services are, which addresses attack and call, and each
//! scenario's size and bounds.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "attack",
    about = "Hostile load against the embedded default, with a legitimate loop and bounds",
    long_about = "Hostile load against the embedded default (oauth-time on 127.0.0.1:8080-8082): \
        the attacks come from --source while a legitimate loop calls the webapp from \
        --legit-source for the whole of each attack. Each scenario prints a line of figures and \
        fails (non-zero exit, a message per broken bound) when a bound does not hold."
)]
pub struct Cli {
    #[command(flatten)]
    pub target: Target,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Target {
    /// The server process: its RSS (VmRSS) is sampled every 100 ms.
    #[arg(long)]
    pub pid: u32,
    /// The attacker's address: every attack socket is bound to it.
    #[arg(long, default_value = "127.0.0.2")]
    pub source: IpAddr,
    /// The legitimate loop's address (and the key-rotation scenario's real client).
    #[arg(long, default_value = "127.0.0.1")]
    pub legit_source: IpAddr,
    /// Concurrent legitimate calls, alternating /epoch_time and /current_time.
    #[arg(long, default_value_t = 2)]
    pub legit_concurrency: usize,
    /// Pause of each legitimate worker between two calls: a user's pace, not a second flood
    /// through the webapp (whose own address a per-address limit also counts).
    #[arg(long, default_value_t = 100)]
    pub legit_pause_ms: u64,
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub webapp: String,
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub authorization_server: String,
    #[arg(long, default_value = "http://127.0.0.1:8082")]
    pub resource_server: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Valid /authorize requests at full speed, never redeemed: RSS stays bounded.
    AuthorizeFlood(FloodArgs),
    /// Lock the attacker out of the real client, then junk client ids: the lock holds and RSS
    /// does not grow.
    JunkClientAuth(JunkArgs),
    /// Connections that trickle a request body: each is closed within the request deadline.
    SlowConnections(SlowArgs),
    /// A signing-key rotation: a token signed by the retired key stops validating in time.
    KeyRotation(RotationArgs),
    /// Every scenario: junk-client-auth first (a flood's freed heap would hide its growth), then
    /// authorize-flood, slow-connections and key-rotation.
    All(AllArgs),
}

#[derive(Debug, Args)]
pub struct AllArgs {
    #[command(flatten)]
    pub flood: FloodArgs,
    #[command(flatten)]
    pub junk: JunkArgs,
    #[command(flatten)]
    pub slow: SlowArgs,
    #[command(flatten)]
    pub rotation: RotationArgs,
}

#[derive(Debug, Args)]
pub struct FloodArgs {
    #[arg(long, default_value_t = 60)]
    pub flood_seconds: u64,
    /// Concurrent keep-alive connections of the flood.
    #[arg(long, default_value_t = 64)]
    pub flood_connections: usize,
    /// Bound on the server's RSS during the flood, 2 s after it and once the codes expired.
    #[arg(long, default_value_t = 64.0)]
    pub max_rss_mib: f64,
    /// The authorization codes' lifetime (AUTHORIZATION_CODE_TTL_SECONDS).
    #[arg(long, default_value_t = 30)]
    pub code_ttl_seconds: u64,
    /// Skip the RSS measure once the flood's codes have expired (saves the code TTL).
    #[arg(long)]
    pub no_expiry_wait: bool,
}

#[derive(Debug, Args)]
pub struct JunkArgs {
    /// Failed client authentications with distinct random client ids.
    #[arg(long, default_value_t = 100_000)]
    pub junk_count: u64,
    /// Source addresses the junk comes from, from 127.1.0.0 on (its control from 127.2.0.0 on),
    /// each sending its share on
    /// connections of its own: at 20,000 sources each stays under the throttle's 5 free failures,
    /// so every junk request reaches the secret check and is recorded, and the throttle's table
    /// (10,000 entries) fills and makes room over and over. 1: all from the attacker's address.
    #[arg(long, default_value_t = 20_000)]
    pub junk_sources: u32,
    #[arg(long, default_value_t = 64)]
    pub junk_concurrency: usize,
    /// Length of each junk client id (the whole form must stay under the 16 KiB body limit).
    #[arg(long, default_value_t = 16_000)]
    pub junk_id_bytes: usize,
    /// The lock on the real client id is checked after every so many junk requests.
    #[arg(long, default_value_t = 5_000)]
    pub probe_every: u64,
    /// Fail the real client id until the throttle's lock lasts at least this long (its wait
    /// doubles per failure): the whole junk run must fit in it.
    #[arg(long, default_value_t = 32)]
    pub min_lock_seconds: u64,
    /// Bound on the RSS growth during the junk run.
    #[arg(long, default_value_t = 4.0)]
    pub max_rss_growth_mib: f64,
}

#[derive(Debug, Args)]
pub struct SlowArgs {
    #[arg(long, default_value_t = 2_000)]
    pub slow_connections: usize,
    /// Time between two bytes of the trickled body.
    #[arg(long, default_value_t = 500)]
    pub slow_byte_interval_ms: u64,
    /// Every slow connection must be closed by the server within this time (the whole-request
    /// deadline, 10 s, plus a margin).
    #[arg(long, default_value_t = 15)]
    pub slow_deadline_seconds: u64,
}

#[derive(Debug, Args)]
pub struct RotationArgs {
    /// The server's SIGNING_KEYS_DIR.
    #[arg(long, value_name = "DIR")]
    pub keys_dir: PathBuf,
    #[arg(long, default_value = "scripts/rotate-signing-key.sh")]
    pub rotate_script: PathBuf,
    /// Wait between publishing the new key and signing with it (the script's PUBLISH_WAIT).
    #[arg(long, default_value_t = 5)]
    pub publish_wait_seconds: u64,
    /// Wait between signing with the new key and retiring the old one (the script's RETIRE_WAIT).
    #[arg(long, default_value_t = 10)]
    pub retire_wait_seconds: u64,
    /// A token signed by the retired key must be refused within this time of the retirement:
    /// JWKS max-age 5 + refetch interval 2 + key reload 1 + margin 2.
    #[arg(long, default_value_t = 10)]
    pub retire_bound_seconds: u64,
}
