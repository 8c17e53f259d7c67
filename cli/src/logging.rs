//! Where a `ferry` process's logs go.
//!
//! Every command logs with `tracing`, filtered by `FERRY_LOG` (an `EnvFilter`, default `info`),
//! as text or, with `FERRY_LOG_FORMAT=json`, one JSON object per line for a log collector.
//! Servers run under a supervisor that keeps their stderr (systemd, the agent's `node.log`),
//! so they log to stderr. `ferry dev` is different: it runs a control plane and three agents in
//! one terminal, where a user needs the banner, the URLs and the token, not every component's
//! INFO lines. So by default it writes its log to a file in its data directory and lets only
//! errors through to the terminal; `--verbose` streams the log to stderr as well. The nodes
//! its agents start are separate processes and log to their own `node.log` files.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The environment variable holding the log filter.
pub const LOG_ENV: &str = "FERRY_LOG";

/// The environment variable choosing the format: `text` (the default) or `json`.
pub const LOG_FORMAT_ENV: &str = "FERRY_LOG_FORMAT";

/// The level when `FERRY_LOG` is unset or invalid.
const DEFAULT_FILTER: &str = "info";

/// What reaches the terminal when `ferry dev` logs to its file without `--verbose`.
const QUIET_TERMINAL_FILTER: &str = "error";

/// A log file this large when `ferry dev` starts is moved aside (to `<name>.1`, replacing an
/// older one), so a long-lived dev directory keeps at most twice this much log.
pub const ROTATE_AT_BYTES: u64 = 64 << 20;

/// The file `ferry dev` logs to, in its data directory.
pub const DEV_LOG_FILE: &str = "ferry-dev.log";

/// Where logs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSink {
    /// Everything that passes `FERRY_LOG` to stderr.
    Stderr,
    /// Everything that passes `FERRY_LOG` to `path`; errors (or, with `stream`, everything) to
    /// stderr too.
    File {
        /// The log file, created owner-only, appended to.
        path: PathBuf,
        /// Also stream the whole log to stderr.
        stream: bool,
    },
}

/// The log file of a `ferry dev` over `data_dir`.
pub fn dev_log_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DEV_LOG_FILE)
}

/// How each log line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// tracing's human-readable lines.
    Text,
    /// One JSON object per line (timestamp, level, target, fields, spans).
    Json,
}

impl LogFormat {
    /// The format `FERRY_LOG_FORMAT` asks for.
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var(LOG_FORMAT_ENV) {
            Err(_) => Ok(Self::Text),
            Ok(value) => Self::parse(&value),
        }
    }

    fn parse(value: &str) -> anyhow::Result<Self> {
        match value {
            "" | "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => anyhow::bail!("{LOG_FORMAT_ENV}={other:?}: expected text or json"),
        }
    }
}

/// Installs the global subscriber for `sink`. Call once, before anything logs.
pub fn init(sink: &LogSink) -> anyhow::Result<()> {
    let format = LogFormat::from_env()?;
    match sink {
        LogSink::Stderr => {
            tracing_subscriber::registry()
                .with(layer(format, std::io::stderr, filter(), true))
                .init();
        }
        LogSink::File { path, stream } => {
            let file = Arc::new(open_rotated(path)?);
            let terminal = if *stream {
                filter()
            } else {
                EnvFilter::new(QUIET_TERMINAL_FILTER)
            };
            tracing_subscriber::registry()
                .with(layer(format, file, filter(), false))
                .with(layer(format, std::io::stderr, terminal, true))
                .init();
        }
    }
    Ok(())
}

/// A formatting layer writing to `writer` through `filter`; colours only where `ansi` and the
/// format is text.
fn layer<S, W>(
    format: LogFormat,
    writer: W,
    filter: EnvFilter,
    ansi: bool,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Text => fmt.with_ansi(ansi).with_filter(filter).boxed(),
        LogFormat::Json => fmt.json().with_filter(filter).boxed(),
    }
}

/// `FERRY_LOG`, or the default level.
fn filter() -> EnvFilter {
    EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

/// Opens `path` for appending (owner-only, its directory created owner-only), after moving it
/// aside if it has grown past [`ROTATE_AT_BYTES`].
fn open_rotated(path: &Path) -> anyhow::Result<File> {
    if let Some(dir) = path.parent() {
        crate::secret::create_dir_all(dir)?;
    }
    if std::fs::metadata(path).is_ok_and(|m| m.len() > ROTATE_AT_BYTES) {
        let mut aside = path.as_os_str().to_owned();
        aside.push(".1");
        std::fs::rename(path, &aside)
            .with_context(|| format!("moving the log {} aside", path.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening the log file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_log_is_moved_aside_and_a_small_one_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs").join(DEV_LOG_FILE);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"kept\n").unwrap();
        drop(open_rotated(&path).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"kept\n");

        let big = File::create(&path).unwrap();
        big.set_len(ROTATE_AT_BYTES + 1).unwrap();
        drop(open_rotated(&path).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        let aside = dir.path().join("logs").join(format!("{DEV_LOG_FILE}.1"));
        assert_eq!(std::fs::metadata(aside).unwrap().len(), ROTATE_AT_BYTES + 1);
    }

    #[test]
    fn the_format_is_text_or_json_and_nothing_else() {
        assert_eq!(LogFormat::parse("").unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse("text").unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse("json").unwrap(), LogFormat::Json);
        let err = LogFormat::parse("xml").unwrap_err().to_string();
        assert!(
            err.contains("FERRY_LOG_FORMAT") && err.contains("xml"),
            "{err}"
        );
    }

    #[test]
    fn the_log_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEV_LOG_FILE);
        drop(open_rotated(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
