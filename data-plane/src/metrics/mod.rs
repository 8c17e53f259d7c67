//! What a node reports at `/metrics` on its admin port.
//!
//! A node builds one [`Registry`] at start ([`crate::node`]), registers what its roles report,
//! and serves it beside the admin gRPC service. Each role's metrics live in one module here,
//! which names every family it registers:
//! - [`broker`]: the Kafka listener and request handlers (requests, errors and latency per
//!   API, connections, per-topic traffic) and the scrape-time partition gauges.
//! - [`controller`]: a controller's raft numbers and the cluster counts of the active
//!   controller's metadata image.
//! - [`groups`]: the consumer groups coordinated here (states, members, committed offsets and
//!   lag), read at scrape time.
//!
//! Node metrics carry no cluster or node labels: the scraper's service discovery adds them.
//! The hot path only touches handles built ahead (per API) or cached (per topic), so counting
//! a request is a few atomic adds.

pub mod broker;
pub mod controller;
pub mod groups;

pub use ferry_telemetry::metrics::Registry;

/// Helpers for the metric modules' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::fmt::Write as _;

    /// `family type label,label` for every family in `text`, in encoding order; label names
    /// come from the family's first sample (histograms without their `le`).
    pub(crate) fn family_names(text: &str) -> String {
        let mut out = String::new();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(rest) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let (family, kind) = rest.split_once(' ').unwrap();
            let sample = lines[i + 1..].iter().find(|l| !l.starts_with('#')).unwrap();
            let labels: Vec<&str> = sample
                .split_once('{')
                .map(|(_, rest)| rest.split_once('}').unwrap().0)
                .into_iter()
                .flat_map(|labels| labels.split(','))
                .filter_map(|label| label.split_once('=').map(|(name, _)| name))
                .filter(|name| *name != "le")
                .collect();
            let line = format!("{family} {kind} {}", labels.join(","));
            writeln!(out, "{}", line.trim_end()).unwrap();
        }
        out
    }

    /// Checks `text` (every family with one sample at least) against the reviewed list
    /// `src/metrics/<file>` (`UPDATE_GOLDEN=1` rewrites it; review the diff): the same families,
    /// types and labels, a help text for each, and no counter named `..._total` before the
    /// encoder adds the suffix.
    pub(crate) fn assert_names_match(text: &str, file: &str) {
        assert!(!text.contains("_total_total"), "{text}");
        let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!(families, helps, "every family has a help text");
        let actual = family_names(text);
        let path = crate::golden::manifest_dir().join("src/metrics").join(file);
        if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            actual,
            expected,
            "the metric names changed: run with UPDATE_GOLDEN=1 and review the diff of {}",
            path.display()
        );
    }
}
