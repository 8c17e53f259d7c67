//! The payload header `produce` writes and `consume` checks.
//!
//! Every message starts with a fixed [`HEADER_LEN`]-byte header so that a consumer can check
//! per-partition order and gaps without any shared state with the producer:
//!
//! | bytes  | field                                                   |
//! |--------|---------------------------------------------------------|
//! | 0..4   | magic `FLD1`                                            |
//! | 4..8   | partition the producer sent it to (u32, little endian)  |
//! | 8..16  | run id, one per `produce` run (u64, little endian)      |
//! | 16..24 | sequence number within (run, partition), from 0 (u64)   |
//!
//! The rest of the message is a fixed fill pattern (the byte index mixed with a constant), so that
//! payloads are neither all-zero nor cheap to build per message, and a consumer can check them.

/// Length of the header at the start of every payload.
pub const HEADER_LEN: usize = 24;

/// Magic bytes that open every payload written by `ferry-load produce`.
const MAGIC: [u8; 4] = *b"FLD1";

/// The decoded payload header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Partition the producer addressed.
    pub partition: u32,
    /// Identifies one `produce` run.
    pub run: u64,
    /// Sequence number within (run, partition), starting at 0.
    pub sequence: u64,
}

impl Header {
    /// Writes the header into the first [`HEADER_LEN`] bytes of `buf`.
    ///
    /// Panics if `buf` is shorter than [`HEADER_LEN`]; callers size buffers from validated options.
    pub fn write(&self, buf: &mut [u8]) {
        buf[0..4].copy_from_slice(&MAGIC);
        buf[4..8].copy_from_slice(&self.partition.to_le_bytes());
        buf[8..16].copy_from_slice(&self.run.to_le_bytes());
        buf[16..24].copy_from_slice(&self.sequence.to_le_bytes());
    }

    /// Reads a header, or `None` if `buf` is too short or does not open with the magic.
    pub fn read(buf: &[u8]) -> Option<Header> {
        if buf.len() < HEADER_LEN || buf[0..4] != MAGIC {
            return None;
        }
        let u32_at = |at: usize| u32::from_le_bytes(buf[at..at + 4].try_into().unwrap_or([0; 4]));
        let u64_at = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().unwrap_or([0; 8]));
        Some(Header {
            partition: u32_at(4),
            run: u64_at(8),
            sequence: u64_at(16),
        })
    }
}

/// The fill byte at index `i` of a payload (for `i >= HEADER_LEN`).
fn fill_byte(i: usize) -> u8 {
    (i as u8).wrapping_mul(31) ^ 0x5a
}

/// Fills everything after the header with the fill pattern.
pub fn fill_body(buf: &mut [u8]) {
    for (i, byte) in buf.iter_mut().enumerate().skip(HEADER_LEN) {
        *byte = fill_byte(i);
    }
}

/// The expected fill pattern, kept so that checking a body is one `memcmp`.
#[derive(Debug, Default)]
pub struct BodyTemplate {
    bytes: Vec<u8>,
}

impl BodyTemplate {
    /// Whether the body (after the header) of `payload` holds the pattern [`fill_body`] writes.
    pub fn matches(&mut self, payload: &[u8]) -> bool {
        if payload.len() < HEADER_LEN {
            return false;
        }
        if payload.len() > self.bytes.len() {
            self.bytes = vec![0; payload.len()];
            fill_body(&mut self.bytes);
        }
        payload[HEADER_LEN..] == self.bytes[HEADER_LEN..payload.len()]
    }
}

/// Verifies the sequence of headers seen on one partition.
///
/// Within a run, sequence numbers must go up by exactly one; a new run must start at 0 (unless it
/// is the first run seen and `strict_start` is off, e.g. when the topic was trimmed by retention).
#[derive(Debug, Default)]
pub struct SequenceCheck {
    last: Option<(u64, u64)>,
    strict_start: bool,
}

impl SequenceCheck {
    /// A checker; with `strict_start`, the very first message must have sequence 0.
    pub fn new(strict_start: bool) -> SequenceCheck {
        SequenceCheck {
            last: None,
            strict_start,
        }
    }

    /// Records the next header; returns a description of the problem if it is out of order.
    pub fn observe(&mut self, header: Header) -> Result<(), String> {
        let result = match self.last {
            None if self.strict_start && header.sequence != 0 => Err(format!(
                "first message of run {:#x} has sequence {} (expected 0)",
                header.run, header.sequence
            )),
            None => Ok(()),
            Some((run, sequence)) if run == header.run => {
                if header.sequence == sequence + 1 {
                    Ok(())
                } else {
                    Err(format!(
                        "run {:#x}: sequence {} followed by {}",
                        run, sequence, header.sequence
                    ))
                }
            }
            Some(_) if header.sequence != 0 => Err(format!(
                "run {:#x} starts at sequence {} (expected 0)",
                header.run, header.sequence
            )),
            Some(_) => Ok(()),
        };
        self.last = Some((header.run, header.sequence));
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let header = Header {
            partition: 7,
            run: 0xdead_beef_0102_0304,
            sequence: 42,
        };
        let mut buf = vec![0u8; 64];
        header.write(&mut buf);
        fill_body(&mut buf);
        assert_eq!(Header::read(&buf), Some(header));
        let mut template = BodyTemplate::default();
        assert!(template.matches(&buf));
        assert!(
            template.matches(&buf[..30]),
            "shorter payloads share the pattern"
        );
        buf[40] ^= 1;
        assert!(!template.matches(&buf));
        assert!(!template.matches(&buf[..10]));
    }

    #[test]
    fn header_rejects_short_and_foreign_payloads() {
        assert_eq!(Header::read(b"FLD1"), None);
        assert_eq!(Header::read(&[0u8; 64]), None);
    }

    fn h(run: u64, sequence: u64) -> Header {
        Header {
            partition: 0,
            run,
            sequence,
        }
    }

    #[test]
    fn sequence_check_accepts_consecutive_runs() {
        let mut check = SequenceCheck::new(true);
        for header in [h(1, 0), h(1, 1), h(1, 2), h(2, 0), h(2, 1)] {
            assert_eq!(check.observe(header), Ok(()));
        }
    }

    #[test]
    fn sequence_check_flags_gaps_duplicates_and_bad_starts() {
        let mut check = SequenceCheck::new(true);
        assert!(check.observe(h(1, 1)).is_err(), "strict start");

        let mut check = SequenceCheck::new(false);
        assert_eq!(check.observe(h(1, 5)), Ok(()), "lenient start");
        assert!(check.observe(h(1, 7)).is_err(), "gap");
        assert!(check.observe(h(1, 7)).is_err(), "duplicate");
        assert!(check.observe(h(2, 3)).is_err(), "new run not from 0");
    }
}
