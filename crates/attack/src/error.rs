//! Errors that stop a scenario from running at all (as opposed to a broken bound, which is a
//! finding in its report): a message with the context it happened in.

use std::fmt::Display;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub trait Context<T> {
    /// The error, prefixed with what was being done.
    fn context(self, what: impl Display) -> Result<T, Error>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context(self, what: impl Display) -> Result<T, Error> {
        self.map_err(|err| format!("{what}: {err}").into())
    }
}
