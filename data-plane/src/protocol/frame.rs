//! Size-prefixed framing of the Kafka byte stream.
//!
//! ```text
//! +----------------+---------------------------+
//! | size: i32 (BE) | payload: `size` bytes     |
//! +----------------+---------------------------+
//! ```
//!
//! The decoder looks at the 4-byte prefix first and refuses a frame whose declared size is
//! negative or above the configured maximum (Kafka's `socket.request.max.bytes`) before a single
//! byte of it is buffered, so a hostile or broken peer cannot make the broker allocate memory by
//! announcing a large frame.

use bytes::{Buf, Bytes, BytesMut};

/// Length of the size prefix in front of every frame.
pub const SIZE_PREFIX_BYTES: usize = 4;

/// Kafka's default for `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// Why a stream could not be split into frames. The connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The peer announced a frame larger than the configured maximum.
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// Declared size of the frame.
        size: i64,
        /// The configured maximum.
        max: usize,
    },
    /// The peer announced a negative frame size.
    #[error("negative frame size {0}")]
    NegativeSize(i32),
}

/// Splits a byte stream into frames, with a bound on frame size.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    /// Largest payload accepted, in bytes.
    max_frame_bytes: usize,
}

impl FrameDecoder {
    /// A decoder refusing payloads larger than `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        Self { max_frame_bytes }
    }

    /// Checks a size prefix without consuming anything; returns the payload size.
    pub fn check_prefix(&self, prefix: [u8; SIZE_PREFIX_BYTES]) -> Result<usize, FrameError> {
        let size = i32::from_be_bytes(prefix);
        if size < 0 {
            return Err(FrameError::NegativeSize(size));
        }
        let size = size as usize;
        if size > self.max_frame_bytes {
            return Err(FrameError::TooLarge {
                size: size as i64,
                max: self.max_frame_bytes,
            });
        }
        Ok(size)
    }

    /// Takes one complete frame's payload off the front of `buf`, if one is there.
    ///
    /// Returns `Ok(None)` when more bytes are needed; the caller reads more and calls again.
    /// The error is returned as soon as the 4-byte prefix is visible.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if buf.len() < SIZE_PREFIX_BYTES {
            return Ok(None);
        }
        let prefix = [buf[0], buf[1], buf[2], buf[3]];
        let size = self.check_prefix(prefix)?;
        if buf.len() < SIZE_PREFIX_BYTES + size {
            return Ok(None);
        }
        buf.advance(SIZE_PREFIX_BYTES);
        Ok(Some(buf.split_to(size).freeze()))
    }

    /// Bytes still missing before the frame at the front of `buf` is complete (0 if unknown).
    ///
    /// Lets the reader reserve exactly what an accepted frame needs.
    pub fn missing_bytes(&self, buf: &BytesMut) -> usize {
        if buf.len() < SIZE_PREFIX_BYTES {
            return SIZE_PREFIX_BYTES - buf.len();
        }
        let prefix = [buf[0], buf[1], buf[2], buf[3]];
        match self.check_prefix(prefix) {
            Ok(size) => (SIZE_PREFIX_BYTES + size).saturating_sub(buf.len()),
            Err(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payload: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&(payload.len() as i32).to_be_bytes());
        buf.extend_from_slice(payload);
        buf
    }

    #[test]
    fn splits_complete_frames_and_waits_for_partial_ones() {
        let decoder = FrameDecoder::new(1024);
        let mut buf = framed(b"hello");
        buf.extend_from_slice(&framed(b"world")[..6]);
        assert_eq!(
            decoder.decode(&mut buf).unwrap().unwrap(),
            Bytes::from_static(b"hello")
        );
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        assert_eq!(decoder.missing_bytes(&buf), 3);
        buf.extend_from_slice(b"rld");
        assert_eq!(
            decoder.decode(&mut buf).unwrap().unwrap(),
            Bytes::from_static(b"world")
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn refuses_an_oversized_frame_from_its_prefix_alone() {
        let decoder = FrameDecoder::new(16);
        // Only the prefix has arrived; the refusal must not wait for (or buffer) the body.
        let mut buf = BytesMut::from(&(1_000_000_000i32).to_be_bytes()[..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(FrameError::TooLarge {
                size: 1_000_000_000,
                max: 16
            })
        );
        assert_eq!(decoder.missing_bytes(&buf), 0);
    }

    #[test]
    fn refuses_a_negative_size() {
        let decoder = FrameDecoder::new(16);
        let mut buf = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert_eq!(decoder.decode(&mut buf), Err(FrameError::NegativeSize(-1)));
    }

    #[test]
    fn accepts_a_frame_of_exactly_the_maximum() {
        let decoder = FrameDecoder::new(4);
        let mut buf = framed(b"abcd");
        assert_eq!(
            decoder.decode(&mut buf).unwrap().unwrap(),
            Bytes::from_static(b"abcd")
        );
    }
}
