//! InitProducerId (key 22, v0–5): producer ids for idempotent producers.
//!
//! Any broker answers (clients send it to the least loaded one). Ids come from blocks the
//! controllers hand out (`AllocateProducerIds`, recorded as a `ProducerIds` record in the
//! metadata log, so no two brokers and no two incarnations of one broker ever share a block).
//! Each broker keeps its current block in an [`IdBlocks`] and asks for the next one through the
//! [`Authority`] when 90% of the current block is used, as Kafka's `RPCProducerIdManager` does,
//! so a request rarely waits for the controllers.
//!
//! # Expected flow
//! ```text
//! transactional_id = null, producer_id = -1, epoch = -1   -> a fresh id, epoch 0
//! transactional_id = null, producer_id = P,  epoch = E    -> P, E + 1      (v3+, KIP-360 bump)
//!                                     ... E + 1 = i16::MAX -> a fresh id, epoch 0 (epoch exhausted)
//! only one of producer_id / epoch set                     -> INVALID_REQUEST (42)
//! transactional_id = "" (empty)                           -> INVALID_REQUEST (42), as Kafka
//! transactional_id non-empty                              -> UNSUPPORTED_VERSION (35)
//! no id block available (no controller quorum)            -> COORDINATOR_LOAD_IN_PROGRESS (14)
//! ```
//!
//! # Guarantees
//! - Two requests never receive the same (id, epoch 0): ids come from one block at a time
//!   under a lock, and blocks are never reused (a block fetched but not used is lost, never
//!   handed out twice).
//!
//! # Caveats
//! - Transactions are out of scope. A non-null transactional id is answered with
//!   UNSUPPORTED_VERSION (35), the code Kafka clients treat as "the broker does not support
//!   this" (Java raises `UnsupportedVersionException`, librdkafka fails the producer with a
//!   fatal unsupported-feature error) rather than as a retriable coordinator problem.
//! - Kafka answers a non-transactional bump request with a fresh id; Ferry bumps the presented
//!   id's epoch, which the partitions then treat as a new epoch of the same producer (its
//!   sequences restart at 0, older epochs are fenced). Like Kafka for idempotent producers,
//!   the broker keeps no per-producer record to verify the presented epoch against.
//! - Error 14 is retriable: clients retry InitProducerId until a block arrives.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::authority::Authority;
use crate::controller::{Command, CommandResult, ProducerIdBlock};
use crate::metadata::{AdminError, NodeId};

/// Fetch the next block when fewer than this fraction (1/N) of the current block remains.
const PREFETCH_WHEN_REMAINING_BELOW_ONE_IN: i64 = 10;

/// The highest epoch handed out; a producer at this epoch gets a fresh id instead (Kafka
/// keeps `Short.MAX_VALUE` as a sentinel).
const MAX_EPOCH: i16 = i16::MAX - 1;

/// Answers InitProducerId.
pub(super) async fn handle(
    producer_ids: &Arc<ProducerIdAllocator>,
    request: InitProducerIdRequest,
    _version: i16,
) -> InitProducerIdResponse {
    let refused = |code: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    match request.transactional_id.as_ref().map(|t| t.0.is_empty()) {
        Some(true) => return refused(ResponseError::InvalidRequest),
        Some(false) => return refused(ResponseError::UnsupportedVersion),
        None => {}
    }
    let presented = (request.producer_id.0, request.producer_epoch);
    let (producer_id, epoch) = match presented {
        (-1, -1) => (None, 0),
        (id, epoch) if id >= 0 && (0..MAX_EPOCH).contains(&epoch) => (Some(id), epoch + 1),
        (id, epoch) if id >= 0 && epoch >= MAX_EPOCH => (None, 0),
        _ => return refused(ResponseError::InvalidRequest),
    };
    let producer_id = match producer_id {
        Some(id) => id,
        None => match producer_ids.next_id().await {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(error = %e, "no producer id block available");
                return refused(ResponseError::CoordinatorLoadInProgress);
            }
        },
    };
    InitProducerIdResponse::default()
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
}

/// The blocks of producer ids a broker holds (sans-IO): ids are taken from the front block;
/// the shell adds blocks it fetched.
#[derive(Debug, Default)]
pub struct IdBlocks {
    /// Unused ids, oldest block first; only the front block is drawn from.
    blocks: VecDeque<Range<i64>>,
    /// Whether a fetch of the next block is under way.
    fetching: bool,
}

impl IdBlocks {
    /// Takes the next unused id, if any.
    pub fn take(&mut self) -> Option<i64> {
        while let Some(front) = self.blocks.front_mut() {
            if let Some(id) = front.next() {
                return Some(id);
            }
            self.blocks.pop_front();
        }
        None
    }

    /// Adds a block from the controllers.
    pub fn add(&mut self, block: ProducerIdBlock) {
        assert!(block.size > 0, "empty producer id block {block:?}");
        self.blocks
            .push_back(block.first..block.first + i64::from(block.size));
    }

    /// Whether the shell should start fetching the next block now: none is under way and
    /// fewer than a tenth of `block_size` ids remain.
    pub fn wants_prefetch(&self, block_size: i64) -> bool {
        let remaining: i64 = self.blocks.iter().map(|b| b.end - b.start).sum();
        !self.fetching && remaining * PREFETCH_WHEN_REMAINING_BELOW_ONE_IN < block_size
    }
}

/// The shell around [`IdBlocks`]: fetches blocks through the authority.
pub struct ProducerIdAllocator {
    /// Where blocks come from.
    authority: Arc<dyn Authority>,
    /// This broker, which the blocks are allocated to.
    node_id: NodeId,
    /// The blocks; an async lock, held across a fetch only when no id is left at all.
    blocks: tokio::sync::Mutex<IdBlocks>,
    /// Size of the last block received (for the prefetch threshold).
    block_size: std::sync::atomic::AtomicI64,
}

impl ProducerIdAllocator {
    /// An allocator with no block yet; the first request fetches one.
    pub fn new(authority: Arc<dyn Authority>, node_id: NodeId) -> Self {
        Self {
            authority,
            node_id,
            blocks: tokio::sync::Mutex::new(IdBlocks::default()),
            block_size: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// The next producer id: from the current block, else after fetching one (other requests
    /// wait on the lock meanwhile). Starts a background fetch when the blocks run low.
    pub async fn next_id(self: &Arc<Self>) -> Result<i64, AdminError> {
        let mut blocks = self.blocks.lock().await;
        let id = match blocks.take() {
            Some(id) => id,
            None => {
                let block = self.fetch_block().await?;
                blocks.add(block);
                blocks.take().expect("a fresh block has ids")
            }
        };
        let size = self.block_size.load(std::sync::atomic::Ordering::Relaxed);
        if blocks.wants_prefetch(size) {
            blocks.fetching = true;
            let this = self.clone();
            tokio::spawn(async move {
                let fetched = this.fetch_block().await;
                let mut blocks = this.blocks.lock().await;
                blocks.fetching = false;
                match fetched {
                    Ok(block) => blocks.add(block),
                    Err(e) => tracing::warn!(error = %e, "prefetching producer ids failed"),
                }
            });
        }
        Ok(id)
    }

    /// Asks the controllers for a block.
    async fn fetch_block(&self) -> Result<ProducerIdBlock, AdminError> {
        let command = Command::AllocateProducerIds {
            broker_id: self.node_id,
            broker_epoch: self.authority.broker_epoch(),
        };
        let block = match self.authority.execute(command).await? {
            CommandResult::AllocateProducerIds(Ok(block)) => block,
            CommandResult::AllocateProducerIds(Err(e)) => return Err(e.into_admin_error()),
            other => {
                return Err(AdminError::new(
                    ResponseError::UnknownServerError,
                    format!("unexpected answer to AllocateProducerIds: {other:?}"),
                ));
            }
        };
        self.block_size
            .store(i64::from(block.size), std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            first = block.first,
            size = block.size,
            "got a producer id block"
        );
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_taken_in_order_block_after_block_without_reuse() {
        let mut blocks = IdBlocks::default();
        assert_eq!(blocks.take(), None);
        blocks.add(ProducerIdBlock { first: 0, size: 2 });
        blocks.add(ProducerIdBlock {
            first: 1000,
            size: 2,
        });
        let taken: Vec<_> = std::iter::from_fn(|| blocks.take()).collect();
        assert_eq!(taken, vec![0, 1, 1000, 1001]);
        assert_eq!(blocks.take(), None);
    }

    #[test]
    fn prefetch_starts_when_under_a_tenth_remains_and_only_once() {
        let mut blocks = IdBlocks::default();
        blocks.add(ProducerIdBlock {
            first: 0,
            size: 100,
        });
        for _ in 0..91 {
            assert!(!blocks.wants_prefetch(100));
            blocks.take();
        }
        assert!(blocks.wants_prefetch(100));
        blocks.fetching = true;
        assert!(!blocks.wants_prefetch(100));
    }
}
