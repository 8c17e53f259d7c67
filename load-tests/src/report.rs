//! Reports: throughput arithmetic, HDR latency percentiles, and their human and JSON renderings.
//!
//! Units: MB is 10^6 bytes (as in Kafka's own perf tools); latencies are microseconds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency the histograms track; larger values are clamped to it (60 s).
pub const MAX_TRACKED_LATENCY_US: u64 = 60_000_000;

/// Significant decimal digits the latency histograms keep.
const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// A new, empty latency histogram in microseconds.
pub fn latency_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; failure here is a programming error.
    Histogram::new_with_bounds(1, MAX_TRACKED_LATENCY_US, LATENCY_SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// Bytes per second expressed in MB/s (10^6 bytes).
pub fn mb_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    per_sec(bytes, elapsed) / 1e6
}

/// Count per second; zero when no time elapsed.
pub fn per_sec(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// Latency percentiles of one run, in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// 50th percentile.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest sample (clamped to [`MAX_TRACKED_LATENCY_US`]).
    pub max_us: u64,
}

impl LatencySummary {
    /// Summarises a histogram; `None` when it holds no samples.
    pub fn from_histogram(histogram: &Histogram<u64>) -> Option<LatencySummary> {
        if histogram.is_empty() {
            return None;
        }
        Some(LatencySummary {
            count: histogram.len(),
            mean_us: histogram.mean(),
            p50_us: histogram.value_at_quantile(0.50),
            p90_us: histogram.value_at_quantile(0.90),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
        })
    }
}

impl LatencySummary {
    /// One table line: the percentiles in microseconds.
    pub fn to_line(&self) -> String {
        format!(
            "p50 {} us  p90 {} us  p99 {} us  p99.9 {} us  max {} us  mean {:.0} us  (n={})",
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            self.mean_us,
            self.count
        )
    }
}

/// A latency distribution with a name, for reports that measure more than one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedLatency {
    /// What was measured.
    pub name: String,
    /// Its percentiles.
    pub latency: LatencySummary,
}

impl NamedLatency {
    /// The summary of `histogram` under `name`; `None` when it holds no samples.
    pub fn new(name: impl Into<String>, histogram: &Histogram<u64>) -> Option<NamedLatency> {
        LatencySummary::from_histogram(histogram).map(|latency| NamedLatency {
            name: name.into(),
            latency,
        })
    }
}

/// A throughput figure for part of a run (e.g. the disk baseline with and without fsync).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    /// What was measured.
    pub name: String,
    /// Bytes moved.
    pub bytes: u64,
    /// Time taken.
    pub elapsed_secs: f64,
    /// Bytes per second in MB/s.
    pub mb_per_sec: f64,
}

impl Rate {
    /// A named rate of `bytes` over `elapsed`.
    pub fn new(name: impl Into<String>, bytes: u64, elapsed: Duration) -> Rate {
        Rate {
            name: name.into(),
            bytes,
            elapsed_secs: elapsed.as_secs_f64(),
            mb_per_sec: mb_per_sec(bytes, elapsed),
        }
    }
}

/// The outcome of one workload run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Workload name (`produce`, `consume`, `disk`).
    pub workload: String,
    /// The settings the run used, by name, so a report can be reproduced.
    pub settings: BTreeMap<String, String>,
    /// Messages moved (0 for the disk baseline); for the controller workloads, operations
    /// completed (failover trials, topics created, partitions in the image).
    pub messages: u64,
    /// Payload bytes moved.
    pub bytes: u64,
    /// Measured time.
    pub elapsed_secs: f64,
    /// Messages per second.
    pub msgs_per_sec: f64,
    /// Payload MB (10^6 bytes) per second.
    pub mb_per_sec: f64,
    /// Latency percentiles, for workloads that measure latency.
    pub latency: Option<LatencySummary>,
    /// Further latency distributions by name (e.g. the parts of a failover).
    pub latencies: Vec<NamedLatency>,
    /// Further throughput figures.
    pub rates: Vec<Rate>,
    /// Errors seen while running.
    pub errors: u64,
    /// What verification found wrong; empty when the run verified.
    pub violations: Vec<String>,
}

impl Report {
    /// A report of `messages` and `bytes` moved in `elapsed`.
    pub fn new(workload: &str, messages: u64, bytes: u64, elapsed: Duration) -> Report {
        Report {
            workload: workload.to_string(),
            settings: BTreeMap::new(),
            messages,
            bytes,
            elapsed_secs: elapsed.as_secs_f64(),
            msgs_per_sec: per_sec(messages, elapsed),
            mb_per_sec: mb_per_sec(bytes, elapsed),
            latency: None,
            latencies: Vec::new(),
            rates: Vec::new(),
            errors: 0,
            violations: Vec::new(),
        }
    }

    /// Adds a setting to show beside the numbers.
    pub fn setting(&mut self, name: &str, value: impl ToString) {
        self.settings.insert(name.to_string(), value.to_string());
    }

    /// Whether the run verified (no violations).
    pub fn verified(&self) -> bool {
        self.violations.is_empty()
    }

    /// A human-readable table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "== {} ==", self.workload);
        if !self.settings.is_empty() {
            let settings: Vec<String> = self
                .settings
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            let _ = writeln!(out, "  settings     {}", settings.join(" "));
        }
        if self.messages > 0 {
            let _ = writeln!(out, "  messages     {}", self.messages);
        }
        // Workloads that move no bytes (the controller ones) count operations, not throughput.
        if self.bytes > 0 {
            let _ = writeln!(
                out,
                "  bytes        {} ({:.1} MB)",
                self.bytes,
                self.bytes as f64 / 1e6
            );
        }
        let _ = writeln!(out, "  elapsed      {:.3} s", self.elapsed_secs);
        if self.bytes > 0 {
            if self.messages > 0 {
                let _ = writeln!(out, "  throughput   {:.0} msgs/s", self.msgs_per_sec);
            }
            let _ = writeln!(out, "  throughput   {:.1} MB/s", self.mb_per_sec);
        }
        if let Some(latency) = &self.latency {
            let _ = writeln!(out, "  latency      {}", latency.to_line());
        }
        for named in &self.latencies {
            let _ = writeln!(out, "  {}", named.name);
            let _ = writeln!(out, "               {}", named.latency.to_line());
        }
        for rate in &self.rates {
            let _ = writeln!(
                out,
                "  {:<28} {:.1} MB/s ({:.3} s)",
                rate.name, rate.mb_per_sec, rate.elapsed_secs
            );
        }
        let _ = writeln!(out, "  errors       {}", self.errors);
        if self.verified() {
            let _ = writeln!(out, "  verified     yes");
        } else {
            let _ = writeln!(
                out,
                "  verified     NO ({} problems)",
                self.violations.len()
            );
            for violation in self.violations.iter().take(MAX_VIOLATIONS_SHOWN) {
                let _ = writeln!(out, "    - {violation}");
            }
            if self.violations.len() > MAX_VIOLATIONS_SHOWN {
                let _ = writeln!(
                    out,
                    "    ... and {} more",
                    self.violations.len() - MAX_VIOLATIONS_SHOWN
                );
            }
        }
        out
    }
}

/// How many violations the table lists before summarising the rest.
const MAX_VIOLATIONS_SHOWN: usize = 10;

/// A measured ratio, optionally checked against a goal (e.g. produce MB/s ÷ disk MB/s ≥ 0.5).
/// Goals are reported, never enforced: timings do not fail a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratio {
    /// What is divided by what.
    pub name: String,
    /// The measured ratio.
    pub value: f64,
    /// The smallest ratio the goal asks for; `None` for informational ratios.
    pub goal: Option<f64>,
    /// Whether `value >= goal`; `None` without a goal.
    pub met: Option<bool>,
}

impl Ratio {
    /// The ratio `numerator / denominator` against `goal`; zero when the denominator is zero.
    pub fn new(
        name: impl Into<String>,
        numerator: f64,
        denominator: f64,
        goal: Option<f64>,
    ) -> Ratio {
        let value = if denominator > 0.0 {
            numerator / denominator
        } else {
            0.0
        };
        Ratio {
            name: name.into(),
            value,
            goal,
            met: goal.map(|goal| value >= goal),
        }
    }

    /// One table line.
    pub fn to_line(&self) -> String {
        let verdict = match (self.goal, self.met) {
            (Some(goal), Some(met)) => {
                format!(
                    "(goal >= {goal:.2}: {})",
                    if met { "met" } else { "MISSED" }
                )
            }
            _ => "(informational)".to_string(),
        };
        format!("  {:<52} {:>6.2}  {verdict}", self.name, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_math() {
        let report = Report::new("produce", 2_000, 2_048_000, Duration::from_secs(2));
        assert_eq!(report.msgs_per_sec, 1_000.0);
        assert_eq!(report.mb_per_sec, 1.024);
        assert_eq!(per_sec(10, Duration::ZERO), 0.0);
        assert_eq!(mb_per_sec(10, Duration::ZERO), 0.0);
    }

    #[test]
    fn latency_percentiles() {
        let mut histogram = latency_histogram();
        for us in 1..=1000 {
            histogram.saturating_record(us);
        }
        histogram.saturating_record(MAX_TRACKED_LATENCY_US * 10);
        let summary = LatencySummary::from_histogram(&histogram).unwrap();
        assert_eq!(summary.count, 1001);
        assert_eq!(summary.p50_us, 501);
        assert_eq!(summary.p90_us, 901);
        assert_eq!(summary.p99_us, 991);
        assert_eq!(summary.p999_us, 1000);
        // Clamped to the tracked range (within the histogram's precision).
        let max = MAX_TRACKED_LATENCY_US as f64;
        assert!((summary.max_us as f64 - max).abs() / max < 0.001);
        assert_eq!(LatencySummary::from_histogram(&latency_histogram()), None);
    }

    #[test]
    fn ratios() {
        let ratio = Ratio::new("produce / disk", 50.0, 100.0, Some(0.5));
        assert_eq!(ratio.met, Some(true));
        assert_eq!(ratio.value, 0.5);
        assert!(ratio.to_line().contains("goal >= 0.50: met"));
        let missed = Ratio::new("consume / produce", 150.0, 100.0, Some(2.0));
        assert_eq!(missed.met, Some(false));
        assert!(missed.to_line().contains("MISSED"));
        assert_eq!(Ratio::new("x", 1.0, 0.0, Some(0.5)).value, 0.0);
        let info = Ratio::new("produce / page cache", 1.0, 4.0, None);
        assert_eq!(info.met, None);
        assert!(info.to_line().contains("informational"));
    }

    #[test]
    fn table_and_json_show_violations() {
        let mut report = Report::new("consume", 10, 10_240, Duration::from_secs(1));
        report.setting("topic", "t");
        assert!(report.to_table().contains("verified     yes"));
        report.violations.push("partition 0: gap".to_string());
        let table = report.to_table();
        assert!(table.contains("NO (1 problems)"), "{table}");
        assert!(table.contains("partition 0: gap"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["messages"], 10);
        assert_eq!(json["settings"]["topic"], "t");
        assert_eq!(json["violations"][0], "partition 0: gap");
    }
}
