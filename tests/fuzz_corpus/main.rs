//! Every file of every fuzz target's corpus (`fuzz/corpus/<target>/`: the committed seeds, and
//! whatever a local `cargo fuzz run` added) replayed through the target's own checks, as part of
//! `cargo test`: the invariants of docs/fuzzing.md hold for each, without a nightly build.

// The targets' checks fail by panicking, as a fuzz target must.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../fuzz/src/authorize.rs"]
mod authorize;
#[path = "../../fuzz/src/token_request.rs"]
mod token_request;
#[path = "../../fuzz/src/token_validation.rs"]
mod token_validation;

use std::path::Path;

/// Runs `run` on every file of the target's corpus; at least its committed seeds are there.
fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let input = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // A failed check names the input that broke it.
        if let Err(panic) = std::panic::catch_unwind(|| run(&input)) {
            eprintln!("{target}: {} fails", path.display());
            std::panic::resume_unwind(panic);
        }
        seeds += usize::from(name.starts_with("seed-"));
    }
    assert!(
        seeds >= 3,
        "{target}: only {seeds} seeds in {}",
        dir.display()
    );
}

#[test]
fn the_authorize_corpus_passes() {
    replay("authorize", authorize::run);
}

#[test]
fn the_token_request_corpus_passes() {
    replay("token_request", token_request::run);
}

#[test]
fn the_token_validation_corpus_passes() {
    replay("token_validation", token_validation::run);
}
