//! The `Workload` trait every load test implements, and the runner that drives one.
//!
//! A workload is prepared (untimed set-up: create the topic, record offsets), executed (the timed
//! part, producing a [`Report`]) and verified (checks against the system under test, whose
//! findings land in [`Report::violations`]). Timings never fail a run; verification does.

use crate::report::Report;

/// A load test: prepare, execute (timed), verify.
pub trait Workload {
    /// Short name used in reports and logs.
    fn name(&self) -> &'static str;

    /// Untimed set-up before [`Workload::execute`].
    fn prepare(&mut self) -> anyhow::Result<()>;

    /// The timed run. Must be bounded by both a count and a time limit.
    fn execute(&mut self) -> anyhow::Result<Report>;

    /// Checks the outcome; returns what is wrong (empty when the run verified).
    fn verify(&mut self, report: &Report) -> anyhow::Result<Vec<String>>;
}

/// Runs a workload through prepare, execute and verify. Errors are operational failures (could
/// not connect, could not write); verification failures are returned inside the report.
pub fn run(workload: &mut dyn Workload) -> anyhow::Result<Report> {
    tracing::info!(workload = workload.name(), "preparing");
    workload.prepare()?;
    tracing::info!(workload = workload.name(), "executing");
    let mut report = workload.execute()?;
    tracing::info!(workload = workload.name(), "verifying");
    let mut violations = workload.verify(&report)?;
    report.violations.append(&mut violations);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Records the order of calls and reports a fixed violation list.
    struct Scripted {
        calls: Vec<&'static str>,
        violations: Vec<String>,
    }

    impl Workload for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        fn prepare(&mut self) -> anyhow::Result<()> {
            self.calls.push("prepare");
            Ok(())
        }
        fn execute(&mut self) -> anyhow::Result<Report> {
            self.calls.push("execute");
            Ok(Report::new("scripted", 1, 1, Duration::from_secs(1)))
        }
        fn verify(&mut self, _report: &Report) -> anyhow::Result<Vec<String>> {
            self.calls.push("verify");
            Ok(self.violations.clone())
        }
    }

    #[test]
    fn run_calls_in_order_and_collects_violations() {
        let mut workload = Scripted {
            calls: Vec::new(),
            violations: vec!["lost 1 message".to_string()],
        };
        let report = run(&mut workload).unwrap();
        assert_eq!(workload.calls, ["prepare", "execute", "verify"]);
        assert!(!report.verified());
        assert_eq!(report.violations, ["lost 1 message"]);
    }
}
