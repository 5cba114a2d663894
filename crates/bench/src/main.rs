//! The performance benchmark: the full user call through the webapp, the authorization server
//! alone, the resource server alone and the server stack's own ceiling (a trivial route behind
//! the same hyper + axum + middleware), measured by one load generator in one run, so that the
//! results hold as ratios on a noisy shared machine. Peak RSS and CPU time per operation of each
//! service come from `/proc`. Prints a table and writes the same figures as JSON.
//!
//! `cargo run --release -p bench -- --help`

mod cli;
mod flows;
mod load;
mod proc;
mod report;
mod run;
mod services;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    if cfg!(debug_assertions) {
        eprintln!("bench: warning: an unoptimised build; run with `cargo run --release -p bench`");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("bench: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench: {err}");
            ExitCode::FAILURE
        }
    }
}
