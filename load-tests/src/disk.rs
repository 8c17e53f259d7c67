//! The `disk` workload: the machine's own sequential-write rate, the baseline produce is judged by.
//!
//! Writes `bytes` in [`CHUNK_BYTES`] chunks to a new temporary file in `dir` (use the broker's data
//! directory to measure the same disk), times the writes alone ("page cache": the data reached the
//! kernel) and the writes plus one final `fsync` ("with final fsync": the data reached the
//! device), and deletes the file.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::report::{Rate, Report};
use crate::workload::Workload;

/// Size of each `write` call.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Largest volume the baseline will write (64 GiB), a guard against a mistyped `--bytes`.
pub const MAX_BYTES: u64 = 64 << 30;

/// Options of a disk baseline run.
#[derive(Debug, Clone)]
pub struct DiskOptions {
    /// Directory to write the temporary file in.
    pub dir: PathBuf,
    /// Bytes to write.
    pub bytes: u64,
}

/// The disk baseline workload.
pub struct Disk {
    options: DiskOptions,
    written: u64,
    file_len: u64,
}

impl Disk {
    /// A disk baseline workload.
    pub fn new(options: DiskOptions) -> Disk {
        Disk {
            options,
            written: 0,
            file_len: 0,
        }
    }
}

/// The chunk written repeatedly: a non-zero pattern, so no layer can treat it as a hole.
fn chunk() -> Vec<u8> {
    (0..CHUNK_BYTES).map(|i| (i % 251) as u8 + 1).collect()
}

impl Workload for Disk {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn prepare(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.options.bytes > 0, "nothing to write (0 bytes)");
        anyhow::ensure!(
            self.options.bytes <= MAX_BYTES,
            "refusing to write more than {MAX_BYTES} bytes"
        );
        anyhow::ensure!(
            self.options.dir.is_dir(),
            "{} is not a directory",
            self.options.dir.display()
        );
        Ok(())
    }

    fn execute(&mut self) -> anyhow::Result<Report> {
        let dir = &self.options.dir;
        let mut temp = tempfile::Builder::new()
            .prefix("ferry-load-disk-")
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        let data = chunk();
        let total = self.options.bytes;

        let start = Instant::now();
        let mut written = 0u64;
        while written < total {
            let len = (total - written).min(CHUNK_BYTES as u64) as usize;
            temp.as_file_mut()
                .write_all(&data[..len])
                .with_context(|| format!("writing {}", temp.path().display()))?;
            written += len as u64;
        }
        let writes_done = Instant::now();
        temp.as_file()
            .sync_all()
            .with_context(|| format!("fsync of {}", temp.path().display()))?;
        let synced = Instant::now();

        self.written = written;
        self.file_len = temp
            .as_file()
            .metadata()
            .with_context(|| format!("stat of {}", temp.path().display()))?
            .len();
        temp.close().context("deleting the temporary file")?;

        let write_time = writes_done - start;
        let total_time = synced - start;
        let mut report = Report::new("disk", 0, written, total_time);
        report.setting("dir", dir.display());
        report.setting("chunk_bytes", CHUNK_BYTES);
        report.rates = vec![
            Rate::new("page cache (no fsync)", written, write_time),
            Rate::new("with final fsync", written, total_time),
        ];
        Ok(report)
    }

    fn verify(&mut self, _report: &Report) -> anyhow::Result<Vec<String>> {
        let mut violations = Vec::new();
        if self.written != self.options.bytes || self.file_len != self.options.bytes {
            violations.push(format!(
                "asked to write {} bytes, wrote {}, file had {}",
                self.options.bytes, self.written, self.file_len
            ));
        }
        Ok(violations)
    }
}

/// The page-cache and with-fsync rates of a disk report, in MB/s.
pub fn rates(report: &Report) -> (f64, f64) {
    let rate = |i: usize| report.rates.get(i).map_or(0.0, |r| r.mb_per_sec);
    (rate(0), rate(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_has_no_zero_bytes() {
        let data = chunk();
        assert_eq!(data.len(), CHUNK_BYTES);
        assert!(data.iter().all(|b| *b != 0));
    }
}
