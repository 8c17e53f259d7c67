//! The pure part of a broker heartbeat: what the active controller answers and proposes.
//!
//! Session timing (KIP-631's `broker.session.timeout.ms`) belongs to the controller process;
//! this function only reads the committed image, so the answer is the same on any controller.
//! Following Kafka's `BrokerHeartbeatManager`:
//!
//! - a fenced broker whose metadata offset reached its broker epoch (the offset of its
//!   registration) is caught up, and the controller proposes [`Command::UnfenceBroker`];
//! - a broker that wants to shut down gets [`Command::ControlledShutdown`] proposed, and is told
//!   to shut down once it leads nothing (a fenced broker may stop at once).

use kafka_protocol::ResponseError;

use super::command::{ApiError, Command};
use super::image::MetadataImage;
use super::records::BrokerEpoch;
use crate::metadata::NodeId;

/// The heartbeat response, plus the command the active controller should propose (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    /// The broker's metadata offset has reached its registration offset.
    pub is_caught_up: bool,
    /// The broker is fenced in the committed image.
    pub is_fenced: bool,
    /// The broker may stop now.
    pub should_shut_down: bool,
    /// What to propose on the broker's behalf: an unfence or a controlled shutdown.
    pub propose: Option<Command>,
}

/// Answers a heartbeat of `broker_id` at `broker_epoch` that reports `metadata_offset`.
pub fn heartbeat(
    image: &MetadataImage,
    broker_id: NodeId,
    broker_epoch: BrokerEpoch,
    metadata_offset: u64,
    want_shut_down: bool,
) -> Result<Heartbeat, ApiError> {
    let broker = image.broker(broker_id).ok_or_else(|| {
        ApiError::new(
            ResponseError::BrokerIdNotRegistered,
            format!("Broker {broker_id} is not registered."),
        )
    })?;
    if broker.broker_epoch != broker_epoch {
        return Err(ApiError::new(
            ResponseError::StaleBrokerEpoch,
            format!(
                "Expected broker epoch {}, but got broker epoch {broker_epoch}",
                broker.broker_epoch
            ),
        ));
    }
    let is_caught_up = i64::try_from(metadata_offset).is_ok_and(|o| o >= broker_epoch);
    let (should_shut_down, propose) = if want_shut_down {
        let done =
            broker.fenced || (broker.in_controlled_shutdown && image.leader_count(broker_id) == 0);
        let propose = (!broker.fenced && !broker.in_controlled_shutdown).then_some(
            Command::ControlledShutdown {
                broker_id,
                broker_epoch,
            },
        );
        (done, propose)
    } else {
        let unfence = broker.fenced && is_caught_up;
        let propose = unfence.then_some(Command::UnfenceBroker {
            broker_id,
            broker_epoch,
        });
        (false, propose)
    };
    Ok(Heartbeat {
        is_caught_up,
        is_fenced: broker.fenced,
        should_shut_down,
        propose,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::testing::{Cluster, register};

    #[test]
    fn a_fenced_broker_is_unfenced_once_it_reaches_its_registration_offset() {
        let mut cluster = Cluster::new();
        cluster.run(register(1, Some("a")));
        let epoch = cluster.epoch(1);
        let behind = heartbeat(&cluster.image, 1, epoch, 0, false).unwrap();
        assert_eq!(
            (behind.is_caught_up, behind.is_fenced, behind.propose),
            (false, true, None)
        );
        let caught_up = heartbeat(&cluster.image, 1, epoch, epoch as u64, false).unwrap();
        let unfence = caught_up.propose.expect("an unfence to propose");
        cluster.run(unfence);
        let after = heartbeat(&cluster.image, 1, epoch, epoch as u64, false).unwrap();
        assert_eq!((after.is_fenced, after.propose), (false, None));
    }

    #[test]
    fn a_broker_that_wants_to_stop_is_told_to_once_it_leads_nothing() {
        let mut cluster = Cluster::with_brokers(&[(1, "a"), (2, "b")]);
        cluster.create("t", 2, 2);
        let epoch = cluster.epoch(1);
        let first = heartbeat(&cluster.image, 1, epoch, 10, true).unwrap();
        assert!(!first.should_shut_down);
        cluster.run(first.propose.expect("a controlled shutdown to propose"));
        let second = heartbeat(&cluster.image, 1, epoch, 10, true).unwrap();
        assert_eq!((second.should_shut_down, second.propose), (true, None));
    }

    #[test]
    fn a_stale_or_unknown_broker_gets_an_error() {
        let cluster = Cluster::with_brokers(&[(1, "a")]);
        let code = |r: Result<Heartbeat, ApiError>| r.unwrap_err().code;
        assert_eq!(
            code(heartbeat(&cluster.image, 1, 0, 0, false)),
            ResponseError::StaleBrokerEpoch.code()
        );
        assert_eq!(
            code(heartbeat(&cluster.image, 2, 1, 0, false)),
            ResponseError::BrokerIdNotRegistered.code()
        );
    }
}
