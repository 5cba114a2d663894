//! Logging and error reporting, set up once per process.
//!
//! Every line written while a request is handled carries the fields of the request's span
//! (`service`, `request_id`, and `user_id` / `client_id` once known: see
//! [`crate::observability`]). With `LOG_FORMAT=json` they are written as top-level fields of one
//! flat JSON object per line — the counterpart of context variables blended into every record by a
//! logging filter. The text format (the default) is tracing's readable one, span fields included.
//!
//! Sentry is enabled only when `SENTRY_DSN` is set (see [`crate::error_reporting`]).

use std::collections::BTreeMap;
use std::fmt;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{ConfigError, Env};
use crate::error_reporting::{self, SentrySettings};

/// The text format's fields, `name=value` separated by spaces with the message first, as tracing
/// writes them, but with every control character escaped: a caller's text (a parameter name, a
/// request id, an upstream's error) cannot end the line and forge the next one, nor send a
/// terminal escape sequence. (JSON lines are escaped by JSON itself.)
fn text_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        if field.name() != "message" {
            write!(writer, "{field}=")?;
        }
        fmt::Write::write_fmt(&mut EscapeControls(writer), format_args!("{value:?}"))
    })
    .delimited(" ")
}

/// Writes on to `W` with each control character (CR, LF, ESC, …) as its Rust escape (`\n`,
/// `\u{1b}`), as the text arrives: no copy of a field's text is made.
struct EscapeControls<W>(W);

impl<W: fmt::Write> fmt::Write for EscapeControls<W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some((at, control)) = rest.char_indices().find(|(_, c)| c.is_control()) {
            self.0.write_str(&rest[..at])?;
            for escaped in control.escape_default() {
                self.0.write_char(escaped)?;
            }
            rest = &rest[at + control.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// The target of the log line written when a handler panics: the panic itself already reached
/// Sentry through the panic hook, so this line is not sent a second time.
pub const PANIC_TARGET: &str = "panic";

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

/// Keeps the process's telemetry alive: dropping it flushes the events still queued for Sentry.
/// Hold it until `main` returns.
#[must_use = "dropping the guard flushes and stops error reporting"]
pub struct Telemetry {
    sentry: Option<sentry::ClientInitGuard>,
}

impl Telemetry {
    /// Whether events are sent to Sentry.
    pub fn reports_errors(&self) -> bool {
        self.sentry.as_ref().is_some_and(|guard| guard.is_enabled())
    }
}

/// Installs the process's logging and error reporting, writing log lines to stdout.
///
/// `LOG_FORMAT` (`text`, the default, or `json`), `RUST_LOG` filtering (default `info`),
/// `SENTRY_DSN` / `SENTRY_ENVIRONMENT`. `service` names the lines written outside any request or
/// service span; `release` is the Sentry release (`name@version`).
pub fn init(env: &Env, service: &'static str, release: &str) -> Result<Telemetry, ConfigError> {
    init_with_writer(env, service, release, std::io::stdout)
}

/// [`init`] with log lines going to `writer` (tests capture them in memory).
pub fn init_with_writer<W>(
    env: &Env,
    service: &'static str,
    release: &str,
    writer: W,
) -> Result<Telemetry, ConfigError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let format: LogFormat = env.parse_or("LOG_FORMAT", LogFormat::Text)?;
    let filter_spec = env.get("RUST_LOG").unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_new(&filter_spec)
        .map_err(|err| ConfigError::new("RUST_LOG", filter_spec.clone(), err))?;
    let sentry_settings = SentrySettings::from_env(env)?;

    // The Sentry client first: the tracing layer and the HTTP layers look it up when built.
    let sentry = sentry_settings.map(|settings| error_reporting::init(settings, release));

    let fmt_layer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stdout().is_terminal())
            .fmt_fields(text_fields())
            .with_writer(writer)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines {
                default_service: service,
            })
            .with_writer(writer)
            .boxed(),
    };
    // `RUST_LOG` filters the log lines only: error reporting keeps its own level.
    let sentry_layer = sentry.is_some().then(|| {
        sentry::integrations::tracing::layer()
            .event_filter(sentry_event_filter)
            // Request spans are not Sentry transactions: performance tracing is not used.
            .span_filter(|_| false)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    // A second init (tests start several services in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(fmt_layer.with_filter(filter))
        .with(sentry_layer)
        .try_init();
    Ok(Telemetry { sentry })
}

/// An error line becomes a Sentry event (with the request's tags), the other lines breadcrumbs.
fn sentry_event_filter(metadata: &Metadata<'_>) -> sentry::integrations::tracing::EventFilter {
    use sentry::integrations::tracing::EventFilter;
    match *metadata.level() {
        Level::ERROR if metadata.target() != PANIC_TARGET => EventFilter::Event,
        Level::ERROR | Level::WARN | Level::INFO => EventFilter::Breadcrumb,
        _ => EventFilter::Ignore,
    }
}

/// One flat JSON object per line: `timestamp`, `level`, `service`, `request_id`, `user_id`,
/// `client_id`, `message`, then the event's other fields and those of its spans (root first; an
/// event's own field wins over a span's of the same name), then `target`.
///
/// Span fields are read from what the fmt layer keeps for each span with [`JsonFields`]: a JSON
/// object, updated when a field is recorded later (`record_user`).
pub struct JsonLines {
    /// The `service` of lines written outside any span that names one.
    pub default_service: &'static str,
}

/// Written first, in this order, when present.
const LEADING: [&str; 5] = ["service", "request_id", "user_id", "client_id", "message"];

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(formatted) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                if let Ok(Value::Object(span_fields)) =
                    serde_json::from_str::<Value>(&formatted.fields)
                {
                    fields.extend(span_fields);
                }
            }
        }
        let mut visitor = JsonVisitor(BTreeMap::new());
        event.record(&mut visitor);
        fields.extend(visitor.0);
        fields
            .entry("service")
            .or_insert_with(|| Value::from(self.default_service));

        let timestamp = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .map_err(|_| fmt::Error)?;
        let mut line = String::with_capacity(256);
        line.push('{');
        push_pair(&mut line, "timestamp", &Value::from(timestamp))?;
        push_pair(
            &mut line,
            "level",
            &Value::from(event.metadata().level().as_str()),
        )?;
        for name in LEADING {
            if let Some(value) = fields.remove(name) {
                push_pair(&mut line, name, &value)?;
            }
        }
        for (name, value) in &fields {
            push_pair(&mut line, name, value)?;
        }
        push_pair(&mut line, "target", &Value::from(event.metadata().target()))?;
        line.push('}');
        writeln!(writer, "{line}")
    }
}

fn push_pair(line: &mut String, name: &str, value: &Value) -> fmt::Result {
    if !line.ends_with('{') {
        line.push(',');
    }
    let name = serde_json::to_string(name).map_err(|_| fmt::Error)?;
    let value = serde_json::to_string(value).map_err(|_| fmt::Error)?;
    line.push_str(&name);
    line.push(':');
    line.push_str(&value);
    Ok(())
}

/// An event's fields as JSON values; `Debug`/`Display` values (`?x`, `%x`) become strings.
struct JsonVisitor(BTreeMap<String, Value>);

impl Visit for JsonVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Value::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(buffer: &Buffer) -> Vec<Value> {
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// CR, LF and ESC in a caller's text cannot forge a line or reach a terminal, whether they
    /// come as a field, the message or a span field.
    #[test]
    fn text_lines_escape_control_characters() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .fmt_fields(text_fields())
                .with_writer(move || writer.clone()),
        );
        let forged = "x\n2026-11-30T00:00:00Z  INFO FAKE=1\r\u{1b}[2J";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = %forged);
            let _entered = span.enter();
            tracing::info!(param = %forged, user = forged, "refused {forged}");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\r') && !text.contains('\u{1b}'), "{text:?}");
        assert_eq!(text.matches("x\\n2026").count(), 4, "{text}");
        assert!(text.contains("param=x\\n"), "{text}");
    }

    #[test]
    fn span_fields_are_top_level_fields_of_every_line() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(JsonFields::new())
                .event_format(JsonLines {
                    default_service: "process",
                })
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside");
            let span = tracing::info_span!(
                "request",
                service = "webapp",
                request_id = "r-1",
                user_id = tracing::field::Empty,
            );
            let _entered = span.enter();
            tracing::info!(status = 200u16, "before");
            span.record("user_id", "alice");
            let inner = tracing::info_span!("inner", step = "token");
            inner.in_scope(|| tracing::warn!(detail = %"a \"quoted\"\nline", "inside"));
        });
        let lines = lines(&buffer);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0]["service"], "process");
        assert_eq!(lines[0]["message"], "outside");
        assert_eq!(lines[0]["level"], "INFO");
        assert!(lines[0]["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["service"], "webapp");
        assert_eq!(lines[1]["request_id"], "r-1");
        assert_eq!(lines[1]["status"], 200);
        assert!(lines[1].get("user_id").is_none());
        assert_eq!(lines[2]["user_id"], "alice");
        assert_eq!(lines[2]["step"], "token");
        assert_eq!(lines[2]["detail"], "a \"quoted\"\nline");
        assert_eq!(lines[2]["level"], "WARN");
        assert!(lines[2]["target"].as_str().unwrap().starts_with("common"));
    }
}
