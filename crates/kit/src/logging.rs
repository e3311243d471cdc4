//! dapr/kit's log format on top of `tracing`.
//!
//! Text lines look like logrus' `TextFormatter` output that upstream prints:
//! `time="2026-01-02T03:04:05.123456789Z" level=info msg="hello" instance=host scope=dapr.sentry type=log ver=1.0`
//! (time, level and msg first, the rest sorted by key). With `--log-as-json` each line is one JSON
//! object with the same keys. An event may carry a `scope` field to override the binary's scope;
//! the `fatal` field marks the error that stops the process (rendered as `level=fatal`).

use std::{
    collections::BTreeMap,
    fmt::{self, Write as _},
    fs::OpenOptions,
    sync::Mutex,
    time::SystemTime,
};

use dapr_flags::groups::LogArgs;
use tracing::{Event, Level, Subscriber, field::Field};
use tracing_subscriber::{
    EnvFilter,
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer, writer::BoxMakeWriter},
    registry::LookupSpan,
};

/// Why logging could not be set up (each is fatal at start, as upstream).
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid value for --log-level: {0}")]
    InvalidLevel(String),
    #[error("failed to open log file {path:?}: {source}")]
    OpenFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("a global logger is already installed")]
    AlreadyInstalled,
}

/// Upstream's log levels (`--log-level`, case-insensitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl LogLevel {
    pub fn parse(s: &str) -> Result<Self, LogError> {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Ok(Self::Debug),
            "info" => Ok(Self::Info),
            "warn" => Ok(Self::Warn),
            "error" => Ok(Self::Error),
            "fatal" => Ok(Self::Fatal),
            _ => Err(LogError::InvalidLevel(s.to_owned())),
        }
    }

    fn directive(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error | Self::Fatal => "error",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Fatal => "fatal",
        }
    }
}

/// Dependencies whose debug output would drown ours; they stay at `info` even with `--log-level=debug`.
const QUIET_DEPENDENCIES: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tower",
    "rustls",
    "tonic",
    "axum",
];

/// Dependencies whose routine info/warn lines (e.g. openraft on every peer reconnect) are noise
/// next to ours; only their errors are logged, whatever the level.
const LOUD_DEPENDENCIES: &[&str] = &["openraft"];

/// Installs the global subscriber for a binary whose default scope is `scope` (e.g. `dapr.sentry`).
pub fn init(args: &LogArgs, scope: &'static str) -> Result<LogLevel, LogError> {
    let level = LogLevel::parse(&args.log_level)?;
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::new(directives),
        _ => {
            let mut f = EnvFilter::new(level.directive());
            for dep in LOUD_DEPENDENCIES {
                if let Ok(d) = format!("{dep}=error").parse() {
                    f = f.add_directive(d);
                }
            }
            if level == LogLevel::Debug {
                for dep in QUIET_DEPENDENCIES {
                    if let Ok(d) = format!("{dep}=info").parse() {
                        f = f.add_directive(d);
                    }
                }
            }
            f
        }
    };
    let writer = if args.log_file.is_empty() {
        BoxMakeWriter::new(std::io::stdout)
    } else {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&args.log_file)
            .map_err(|source| LogError::OpenFile {
                path: args.log_file.clone(),
                source,
            })?;
        BoxMakeWriter::new(Mutex::new(file))
    };
    let format = DaprFormat::new(scope, args.log_as_json);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .event_format(format)
        .try_init()
        .map_err(|_| LogError::AlreadyInstalled)?;
    Ok(level)
}

/// The event formatter producing dapr/kit's text or JSON lines.
#[derive(Clone, Debug)]
pub struct DaprFormat {
    scope: &'static str,
    json: bool,
    instance: String,
}

impl DaprFormat {
    pub fn new(scope: &'static str, json: bool) -> Self {
        Self {
            scope,
            json,
            instance: hostname(),
        }
    }

    /// Renders one record; `fields` holds the event's own fields (message excluded).
    fn render(
        &self,
        out: &mut impl fmt::Write,
        time: SystemTime,
        level: &str,
        message: &str,
        mut fields: BTreeMap<String, String>,
    ) -> fmt::Result {
        let scope = fields
            .remove("scope")
            .unwrap_or_else(|| self.scope.to_owned());
        let time = rfc3339_nano(time);
        let fixed = [
            ("instance", self.instance.clone()),
            ("scope", scope),
            ("type", "log".to_owned()),
            ("ver", crate::VERSION.to_owned()),
        ];
        for (k, v) in fixed {
            fields.entry(k.to_owned()).or_insert(v);
        }
        if self.json {
            let mut obj = serde_json::Map::new();
            obj.insert("time".into(), time.into());
            obj.insert("level".into(), level.into());
            obj.insert("msg".into(), message.into());
            for (k, v) in fields {
                obj.insert(k, v.into());
            }
            let line = serde_json::Value::Object(obj).to_string();
            writeln!(out, "{line}")
        } else {
            write!(
                out,
                "time={} level={level} msg={}",
                quote(&time),
                quote(message)
            )?;
            for (k, v) in &fields {
                write!(out, " {k}={}", quote(v))?;
            }
            writeln!(out)
        }
    }
}

impl<S, N> FormatEvent<S, N> for DaprFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut visitor = FieldCollector::default();
        event.record(&mut visitor);
        let fatal = visitor.fields.remove("fatal").is_some();
        let level = if fatal {
            "fatal"
        } else {
            logrus_level(*event.metadata().level())
        };
        self.render(
            &mut writer,
            SystemTime::now(),
            level,
            &visitor.message,
            visitor.fields,
        )
    }
}

fn logrus_level(level: Level) -> &'static str {
    match level {
        Level::TRACE | Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warning",
        Level::ERROR => "error",
    }
}

#[derive(Default)]
struct FieldCollector {
    message: String,
    fields: BTreeMap<String, String>,
}

impl tracing::field::Visit for FieldCollector {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.fields
                .insert(field.name().to_owned(), value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        if field.name() == "message" {
            self.message = s;
        } else {
            self.fields.insert(field.name().to_owned(), s);
        }
    }
}

/// logrus quotes a value unless every character is in `[A-Za-z0-9-._/@^+]`.
fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if plain {
        value.to_owned()
    } else {
        format!("{value:?}")
    }
}

/// RFC 3339 with nanoseconds and trailing zeros trimmed, as Go's `time.RFC3339Nano`.
fn rfc3339_nano(time: SystemTime) -> String {
    let full = humantime::format_rfc3339_nanos(time).to_string();
    // full = "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"
    match full.strip_suffix('Z').and_then(|s| s.split_once('.')) {
        Some((secs, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                format!("{secs}Z")
            } else {
                format!("{secs}.{frac}Z")
            }
        }
        None => full,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn render(json: bool, fields: &[(&str, &str)]) -> String {
        let format = DaprFormat {
            scope: "dapr.sentry",
            json,
            instance: "host-1".into(),
        };
        let mut out = String::new();
        let time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        let fields = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        format
            .render(
                &mut out,
                time,
                "info",
                "Sentry shut down gracefully",
                fields,
            )
            .unwrap();
        out
    }

    #[test]
    fn text_lines_follow_logrus_layout() {
        let line = render(false, &[("addr", "127.0.0.1:50001"), ("count", "3")]);
        assert_eq!(
            line,
            format!(
                "time=\"2023-11-14T22:13:20.5Z\" level=info msg=\"Sentry shut down gracefully\" \
                 addr=\"127.0.0.1:50001\" count=3 instance=host-1 scope=dapr.sentry type=log ver={}\n",
                crate::VERSION
            )
        );
    }

    #[test]
    fn json_lines_carry_upstreams_keys() {
        let line = render(true, &[("scope", "dapr.sentry.ca")]);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["time"], "2023-11-14T22:13:20.5Z");
        assert_eq!(v["level"], "info");
        assert_eq!(v["msg"], "Sentry shut down gracefully");
        assert_eq!(v["scope"], "dapr.sentry.ca");
        assert_eq!(v["type"], "log");
        assert_eq!(v["instance"], "host-1");
        assert_eq!(v["ver"], crate::VERSION);
    }

    #[test]
    fn log_levels_parse_case_insensitively_and_reject_others() {
        assert_eq!(LogLevel::parse("DEBUG").unwrap(), LogLevel::Debug);
        assert_eq!(LogLevel::parse("fatal").unwrap(), LogLevel::Fatal);
        assert_eq!(
            LogLevel::parse("verbose").unwrap_err().to_string(),
            "invalid value for --log-level: verbose"
        );
    }

    #[test]
    fn whole_seconds_have_no_fraction() {
        assert_eq!(
            rfc3339_nano(UNIX_EPOCH + Duration::from_secs(60)),
            "1970-01-01T00:01:00Z"
        );
    }
}
