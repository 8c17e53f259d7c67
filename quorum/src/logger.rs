//! A `slog` drain that forwards raft-rs's log records to `tracing`, under the target
//! `ferry_quorum::raft`, so raft's messages land in the same subscriber as everything else.
//!
//! raft-rs logs through `slog` and takes a `slog::Logger` in `RawNode::new`. Records are
//! formatted only when `tracing` has that level enabled.

use std::fmt::Write as _;

use slog::{Drain, KV as _, Level, OwnedKVList, Record};

/// Forwards slog records to tracing events.
pub struct TracingDrain;

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        macro_rules! forward {
            ($level:expr) => {
                if tracing::enabled!(target: "ferry_quorum::raft", $level) {
                    let text = format_record(record, values);
                    tracing::event!(target: "ferry_quorum::raft", $level, "{text}");
                }
            };
        }
        match record.level() {
            Level::Critical | Level::Error => forward!(tracing::Level::ERROR),
            Level::Warning => forward!(tracing::Level::WARN),
            Level::Info => forward!(tracing::Level::INFO),
            Level::Debug => forward!(tracing::Level::DEBUG),
            Level::Trace => forward!(tracing::Level::TRACE),
        }
        Ok(())
    }
}

/// A logger for `RawNode::new` that forwards to tracing.
pub fn tracing_logger() -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!())
}

/// A logger that drops everything (for simulations, where raft's logging would dominate).
pub fn discard_logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

/// Formats `message key=value ...` from a record and its logger's values.
fn format_record(record: &Record<'_>, values: &OwnedKVList) -> String {
    let mut out = KvText(format!("{}", record.msg()));
    // Serializing into a String cannot fail; ignore the impossible error.
    let _ = record.kv().serialize(record, &mut out);
    let _ = values.serialize(record, &mut out);
    out.0
}

/// Collects key-value pairs as ` key=value` text.
struct KvText(String);

impl slog::Serializer for KvText {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}
