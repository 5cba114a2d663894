use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{ConfigError, Env};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err("expected text or json"),
        }
    }
}

/// Installs the global log subscriber: `LOG_FORMAT` (`text`, the default, or `json`) and
/// `RUST_LOG` filtering (default `info`).
pub fn init(env: &Env) -> Result<(), ConfigError> {
    let format: LogFormat = env.parse_or("LOG_FORMAT", LogFormat::Text)?;
    let filter_spec = env.get("RUST_LOG").unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_new(&filter_spec)
        .map_err(|err| ConfigError::new("RUST_LOG", filter_spec.clone(), err))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    // A second init (tests start several services in one process) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    Ok(())
}
