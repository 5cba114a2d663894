//! The hostile-load proof (docs/security.md): attacks on the embedded default from one loopback address
//! while a legitimate loop calls the webapp from another, each scenario with bounds that fail the
//! run. `scripts/attack-proof.sh` starts the server and runs `attack all`.
//!
//! `cargo run -p attack -- --help`

mod cli;
mod error;
mod http;
mod legit;
mod oauth;
mod report;
mod rss;
mod scenarios;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::report::Report;
use crate::scenarios::Ctx;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = match Ctx::new(&cli.target) {
        Ok(ctx) => ctx,
        Err(err) => {
            eprintln!("attack: {err}");
            return ExitCode::from(2);
        }
    };
    let reports = run(&ctx, &cli.command).await;
    println!("\n{}", report::markdown(&reports));
    if let Some(path) = &cli.json {
        if let Err(err) = report::write_json(path, &reports) {
            eprintln!("attack: {err}");
            return ExitCode::FAILURE;
        }
    }
    let failed: Vec<&str> = reports
        .iter()
        .filter(|report| !report.passed)
        .map(|report| report.scenario)
        .collect();
    if failed.is_empty() {
        println!("attack: every bound held");
        ExitCode::SUCCESS
    } else {
        eprintln!("attack: FAILED: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}

/// Runs the chosen scenarios in order, printing each one's line as it ends.
async fn run(ctx: &Ctx, command: &Command) -> Vec<Report> {
    let mut reports = Vec::new();
    let mut record = |report: Report| {
        println!("{}", report.line());
        reports.push(report);
    };
    match command {
        Command::AuthorizeFlood(args) => record(ctx.run(args).await),
        Command::JunkClientAuth(args) => record(ctx.run(args).await),
        Command::SlowConnections(args) => record(ctx.run(args).await),
        Command::KeyRotation(args) => record(ctx.run(args).await),
        // The junk run goes first: the heap a flood frees would absorb its growth unseen in RSS.
        Command::All(all) => {
            record(ctx.run(&all.junk).await);
            record(ctx.run(&all.flood).await);
            record(ctx.run(&all.slow).await);
            record(ctx.run(&all.rotation).await);
        }
    }
    reports
}
