//! All groups and committed offsets of one `__consumer_offsets` partition.
//!
//! The broker that leads an offsets partition holds one [`Coordinator`] for it. Every call takes
//! `now` and returns the [`OffsetsRecord`]s to append (in order) together with the replies that
//! may be sent only once those records are replicated. The in-memory state is updated at once:
//! the leader's log is appended in the same order, and if the leader loses the partition its
//! coordinator is dropped and the next leader replays its own log ([`Coordinator::replay`]).
//!
//! # Offset validation (OffsetCommit)
//! - A commit with generation -1 and no member id is a *simple* commit (a consumer that assigns
//!   partitions itself); it is accepted only while the group has no members.
//! - Otherwise the member must exist (UNKNOWN_MEMBER_ID), its static instance must own it
//!   (FENCED_INSTANCE_ID), and the generation must be current (ILLEGAL_GENERATION). During
//!   CompletingRebalance the answer is REBALANCE_IN_PROGRESS, as assignments are not known yet.
//!
//! # Retention
//! The offsets of a group with no members expire `offsets.retention.minutes` after the group
//! became empty (for a group that never had members: after each commit); the expiry writes
//! tombstones, and a group left with neither members nor offsets is removed. Expiry is looked
//! for every `offsets.retention.check.interval.ms`, as in Kafka.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use kafka_protocol::ResponseError;

use super::records::{CommittedOffset, GroupRecord, MemberRecord, OffsetsRecord};
use super::state::{Effects, Group, GroupState, JoinRequest, Member};
use super::{Generation, GroupOptions, Millis, ReplyId};

/// What a call produced.
#[derive(Debug, Default)]
pub struct Output {
    /// Records to append to the offsets partition, in order.
    pub records: Vec<OffsetsRecord>,
    /// Replies to parked requests, to send once the records are replicated.
    pub effects: Effects,
}

impl Output {
    fn extend(&mut self, other: Output) {
        self.records.extend(other.records);
        self.effects.extend(other.effects);
    }
}

/// One result per partition of a request, in request order.
pub type PartitionResults = Vec<Result<(), ResponseError>>;

/// One partition's offset to commit.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetToCommit {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Leader epoch or -1.
    pub leader_epoch: i32,
    /// Client metadata (`None` is stored as empty).
    pub metadata: Option<String>,
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type, empty for groups that never had members.
    pub protocol_type: String,
    /// State name.
    pub state: GroupState,
}

/// The groups and offsets coordinated through one offsets partition.
#[derive(Debug)]
pub struct Coordinator {
    /// Settings.
    options: GroupOptions,
    /// Groups by id.
    groups: BTreeMap<String, Group>,
    /// Committed offsets by group, then (topic, partition).
    offsets: BTreeMap<String, BTreeMap<(String, i32), CommittedOffset>>,
    /// When offsets were last checked for expiry (`offsets.retention.check.interval.ms`).
    last_expiry_check: Option<Millis>,
}

impl Coordinator {
    /// An empty coordinator (before replaying the partition).
    pub fn new(options: GroupOptions) -> Self {
        Self {
            options,
            groups: BTreeMap::new(),
            offsets: BTreeMap::new(),
            last_expiry_check: None,
        }
    }

    /// Applies one record read back from the log while loading. Loaded groups with members
    /// come back Stable with their assignments, and their sessions start at `now`.
    pub fn replay(&mut self, record: OffsetsRecord, now: Millis) {
        match record {
            OffsetsRecord::Offset {
                group,
                topic,
                partition,
                value: Some(value),
            } => {
                self.groups
                    .entry(group.clone())
                    .or_insert_with(|| Group::new(group.clone(), now));
                self.offsets
                    .entry(group)
                    .or_default()
                    .insert((topic, partition), value);
            }
            OffsetsRecord::Offset {
                group,
                topic,
                partition,
                value: None,
            } => {
                if let Some(offsets) = self.offsets.get_mut(&group) {
                    offsets.remove(&(topic, partition));
                }
            }
            OffsetsRecord::Group {
                group,
                value: Some(value),
            } => {
                self.groups
                    .insert(group.clone(), restore_group(group, value, now));
            }
            OffsetsRecord::Group { group, value: None } => {
                self.groups.remove(&group);
                self.offsets.remove(&group);
            }
        }
    }

    /// The group, if known.
    pub fn group(&self, group_id: &str) -> Option<&Group> {
        self.groups.get(group_id)
    }

    /// Handles a JoinGroup (creating the group on first use).
    pub fn join(
        &mut self,
        now: Millis,
        group_id: &str,
        request: JoinRequest,
        reply: ReplyId,
        new_member_id: impl FnOnce() -> String,
    ) -> Output {
        let group = self
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id, now));
        let effects = group.join(now, &self.options, request, reply, new_member_id);
        self.finish(group_id, effects)
    }

    /// Handles a SyncGroup.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        now: Millis,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: Generation,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
        reply: ReplyId,
    ) -> Result<Output, ResponseError> {
        let group = self
            .groups
            .get_mut(group_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        let effects = group.sync(
            now,
            member_id,
            instance,
            generation,
            protocol,
            assignments,
            reply,
        );
        Ok(self.finish(group_id, effects))
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(
        &mut self,
        now: Millis,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: Generation,
    ) -> Result<(), ResponseError> {
        self.groups
            .get_mut(group_id)
            .ok_or(ResponseError::UnknownMemberId)?
            .heartbeat(now, member_id, instance, generation)
    }

    /// Handles a LeaveGroup: one result per (member id, instance id).
    pub fn leave(
        &mut self,
        now: Millis,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> (PartitionResults, Output) {
        let Some(group) = self.groups.get_mut(group_id) else {
            let unknown = members
                .iter()
                .map(|_| Err(ResponseError::UnknownMemberId))
                .collect();
            return (unknown, Output::default());
        };
        let mut effects = Effects::default();
        let mut results = Vec::with_capacity(members.len());
        for (member_id, instance) in members {
            let (result, more) = group.leave(now, &self.options, member_id, instance.as_deref());
            results.push(result);
            effects.extend(more);
        }
        (results, self.finish(group_id, effects))
    }

    /// Adds the group metadata record when the effects ask for it.
    fn finish(&mut self, group_id: &str, effects: Effects) -> Output {
        let mut records = Vec::new();
        if effects.persist {
            let group = &self.groups[group_id];
            records.push(group_record(group));
        }
        Output { records, effects }
    }

    /// Checks that `member_id` at `generation` may commit offsets for `group_id`.
    pub fn validate_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: Generation,
    ) -> Result<(), ResponseError> {
        let Some(group) = self.groups.get(group_id) else {
            return if generation < 0 && member_id.is_empty() {
                Ok(())
            } else {
                // A member of a group the coordinator does not know (lost, or never joined).
                Err(ResponseError::IllegalGeneration)
            };
        };
        if group.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if generation < 0 && member_id.is_empty() && instance.is_none() {
            return if group.members.is_empty() {
                Ok(())
            } else {
                Err(ResponseError::UnknownMemberId)
            };
        }
        group.check_member(member_id, instance)?;
        if generation != group.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        if group.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Commits offsets after [`Self::validate_commit`]; one result per offset, and the records.
    pub fn commit(
        &mut self,
        now: Millis,
        group_id: &str,
        offsets: Vec<OffsetToCommit>,
    ) -> (PartitionResults, Vec<OffsetsRecord>) {
        self.groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id, now));
        let stored = self.offsets.entry(group_id.to_string()).or_default();
        let mut results = Vec::with_capacity(offsets.len());
        let mut records = Vec::new();
        for o in offsets {
            let metadata = o.metadata.unwrap_or_default();
            if metadata.len() > self.options.offset_metadata_max_bytes {
                results.push(Err(ResponseError::OffsetMetadataTooLarge));
                continue;
            }
            let value = CommittedOffset {
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata,
                commit_timestamp: now,
            };
            stored.insert((o.topic.clone(), o.partition), value.clone());
            records.push(OffsetsRecord::Offset {
                group: group_id.to_string(),
                topic: o.topic,
                partition: o.partition,
                value: Some(value),
            });
            results.push(Ok(()));
        }
        (results, records)
    }

    /// The committed offset of each asked partition (`None` when there is none), or of every
    /// committed partition when `partitions` is `None`.
    pub fn fetch(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Vec<((String, i32), Option<CommittedOffset>)> {
        let stored = self.offsets.get(group_id);
        match partitions {
            Some(wanted) => wanted
                .into_iter()
                .map(|tp| {
                    let value = stored.and_then(|s| s.get(&tp)).cloned();
                    (tp, value)
                })
                .collect(),
            None => stored
                .into_iter()
                .flatten()
                .map(|(tp, v)| (tp.clone(), Some(v.clone())))
                .collect(),
        }
    }

    /// Every group held here, dead ones included, sorted by id (the metrics read it).
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// The committed offsets of `group_id` as (topic, partition, offset), sorted by topic and
    /// partition; nothing for a group without offsets.
    pub fn committed(&self, group_id: &str) -> impl Iterator<Item = (&str, i32, i64)> {
        self.offsets
            .get(group_id)
            .into_iter()
            .flatten()
            .map(|((topic, partition), value)| (topic.as_str(), *partition, value.offset))
    }

    /// Every group that is not dead, sorted by id.
    pub fn list(&self) -> Vec<GroupListing> {
        self.groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect()
    }

    /// Deletes an empty group and its offsets (DeleteGroups).
    pub fn delete_group(&mut self, now: Millis, group_id: &str) -> Result<Output, ResponseError> {
        let group = self
            .groups
            .get_mut(group_id)
            .filter(|g| g.state != GroupState::Dead)
            .ok_or(ResponseError::GroupIdNotFound)?;
        if !group.members.is_empty() || group.state != GroupState::Empty {
            return Err(ResponseError::NonEmptyGroup);
        }
        let effects = group.into_dead(now);
        self.groups.remove(group_id);
        let mut records = tombstones(group_id, self.offsets.remove(group_id));
        records.push(OffsetsRecord::Group {
            group: group_id.to_string(),
            value: None,
        });
        Ok(Output { records, effects })
    }

    /// Deletes committed offsets of partitions the group is not subscribed to (OffsetDelete):
    /// one result per partition, and the tombstones.
    pub fn delete_offsets(
        &mut self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<(PartitionResults, Vec<OffsetsRecord>), ResponseError> {
        let group = self
            .groups
            .get(group_id)
            .filter(|g| g.state != GroupState::Dead)
            .ok_or(ResponseError::GroupIdNotFound)?;
        if group
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != "consumer")
            && !group.members.is_empty()
        {
            return Err(ResponseError::NonEmptyGroup);
        }
        let subscribed = subscribed_topics(group);
        let stored = self.offsets.entry(group_id.to_string()).or_default();
        let mut results = Vec::with_capacity(partitions.len());
        let mut records = Vec::new();
        for (topic, partition) in partitions {
            if subscribed.as_ref().is_none_or(|s| s.contains(&topic)) && !group.members.is_empty() {
                results.push(Err(ResponseError::GroupSubscribedToTopic));
                continue;
            }
            if stored.remove(&(topic.clone(), partition)).is_some() {
                records.push(OffsetsRecord::Offset {
                    group: group_id.to_string(),
                    topic,
                    partition,
                    value: None,
                });
            }
            results.push(Ok(()));
        }
        Ok((results, records))
    }

    /// Applies the passage of time to every group, then expires offsets and empty groups.
    pub fn tick(&mut self, now: Millis) -> Output {
        let mut output = Output::default();
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in &ids {
            let effects = self
                .groups
                .get_mut(id)
                .expect("listed")
                .tick(now, &self.options);
            output.extend(self.finish(id, effects));
        }
        let interval = self.options.offsets_retention_check_interval_ms;
        if self
            .last_expiry_check
            .is_none_or(|last| now.saturating_sub(last) >= interval)
        {
            self.last_expiry_check = Some(now);
            output.records.extend(self.expire(now));
        }
        output
    }

    /// The earliest time [`Self::tick`] may change a group's membership.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.groups.values().filter_map(Group::next_deadline).min()
    }

    /// Offset retention: see the module docs.
    fn expire(&mut self, now: Millis) -> Vec<OffsetsRecord> {
        let retention = self.options.offsets_retention_ms;
        let mut records = Vec::new();
        let mut dead = Vec::new();
        for (id, group) in &self.groups {
            if group.state != GroupState::Empty {
                continue;
            }
            let had_members = group.protocol_type.is_some();
            let stored = self.offsets.entry(id.clone()).or_default();
            let expired: Vec<(String, i32)> = stored
                .iter()
                .filter(|(_, v)| {
                    let base = if had_members {
                        group.state_timestamp
                    } else {
                        v.commit_timestamp
                    };
                    // Timestamps are read back from the log, where a client could write
                    // any i64 (until produce to internal topics was refused): saturating, a
                    // commit before any representable time is older than any retention, and
                    // one in the far future stays. (Kafka's Java wraps, so such an offset
                    // would never expire there.)
                    now.saturating_sub(base) >= retention
                })
                .map(|(tp, _)| tp.clone())
                .collect();
            for (topic, partition) in expired {
                stored.remove(&(topic.clone(), partition));
                records.push(OffsetsRecord::Offset {
                    group: id.clone(),
                    topic,
                    partition,
                    value: None,
                });
            }
            if stored.is_empty() && now.saturating_sub(group.state_timestamp) >= retention {
                dead.push(id.clone());
            }
        }
        for id in dead {
            self.groups.remove(&id);
            self.offsets.remove(&id);
            records.push(OffsetsRecord::Group {
                group: id,
                value: None,
            });
        }
        records
    }

    /// Answers every parked request with `error` and forgets everything (the broker stopped
    /// leading the partition).
    pub fn unload(&mut self, error: ResponseError) -> Effects {
        let mut effects = Effects::default();
        for group in self.groups.values_mut() {
            effects.extend(group.abort_parked(error));
        }
        self.groups.clear();
        self.offsets.clear();
        effects
    }
}

fn tombstones(
    group_id: &str,
    offsets: Option<BTreeMap<(String, i32), CommittedOffset>>,
) -> Vec<OffsetsRecord> {
    offsets
        .into_iter()
        .flatten()
        .map(|((topic, partition), _)| OffsetsRecord::Offset {
            group: group_id.to_string(),
            topic,
            partition,
            value: None,
        })
        .collect()
}

/// The group metadata record of `group`'s current generation.
fn group_record(group: &Group) -> OffsetsRecord {
    let protocol = group.protocol.clone().unwrap_or_default();
    let value = GroupRecord {
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        generation: group.generation,
        protocol: group.protocol.clone(),
        leader: group.leader.clone(),
        state_timestamp: group.state_timestamp,
        members: group
            .members
            .values()
            .map(|m| MemberRecord {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                subscription: m.metadata(&protocol).cloned().unwrap_or_default(),
                assignment: m.assignment.clone(),
            })
            .collect(),
    };
    OffsetsRecord::Group {
        group: group.id.clone(),
        value: Some(value),
    }
}

/// Rebuilds a group from its last metadata record.
fn restore_group(id: String, value: GroupRecord, now: Millis) -> Group {
    let mut group = Group::new(id, value.state_timestamp.max(0));
    group.generation = value.generation;
    group.protocol_type = (!value.protocol_type.is_empty()).then_some(value.protocol_type);
    group.protocol = value.protocol.clone();
    group.leader = value.leader;
    let protocol = value.protocol.unwrap_or_default();
    for m in value.members {
        let member = Member {
            member_id: m.member_id.clone(),
            group_instance_id: m.group_instance_id,
            client_id: m.client_id,
            client_host: m.client_host,
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            session_timeout_ms: m.session_timeout_ms,
            protocols: vec![(protocol.clone(), m.subscription)],
            assignment: m.assignment,
            awaiting_join: None,
            awaiting_sync: None,
            session_deadline: now + i64::from(m.session_timeout_ms),
        };
        group.members.insert(m.member_id, member);
    }
    if !group.members.is_empty() {
        group.state = GroupState::Stable;
    }
    group
}

/// The topics a consumer group's members subscribe to, from their ConsumerProtocol
/// subscriptions (`version i16, topics [string], …`); `None` if one cannot be read (then every
/// topic counts as subscribed, which is the safe answer for OffsetDelete).
fn subscribed_topics(group: &Group) -> Option<Vec<String>> {
    let protocol = group.protocol.as_deref()?;
    let mut topics = Vec::new();
    for member in group.members.values() {
        let mut buf: &[u8] = member.metadata(protocol)?;
        if buf.remaining() < 6 {
            return None;
        }
        let _version = buf.get_i16();
        let count = buf.get_i32();
        for _ in 0..count.max(0) {
            if buf.remaining() < 2 {
                return None;
            }
            let len = buf.get_i16().max(0) as usize;
            if buf.remaining() < len {
                return None;
            }
            topics.push(String::from_utf8_lossy(&buf[..len]).into_owned());
            buf.advance(len);
        }
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::state::Reply;

    const DAY: i64 = 24 * 60 * 60 * 1000;

    fn coordinator() -> Coordinator {
        Coordinator::new(GroupOptions {
            initial_rebalance_delay_ms: 0,
            offsets_retention_ms: 7 * DAY,
            offsets_retention_check_interval_ms: 1,
            ..GroupOptions::default()
        })
    }

    fn subscription(topics: &[&str]) -> Bytes {
        let mut b = vec![0u8, 0];
        b.extend((topics.len() as i32).to_be_bytes());
        for t in topics {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
        }
        b.extend((-1i32).to_be_bytes());
        Bytes::from(b)
    }

    /// Makes `member` the only member of `group`, Stable at generation 1.
    fn stable_member(c: &mut Coordinator, group: &str, member: &str, topics: &[&str]) {
        let request = JoinRequest {
            member_id: String::new(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/h".into(),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), subscription(topics))],
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            require_known_member_id: false,
        };
        let out = c.join(0, group, request, 1, || member.to_string());
        assert!(matches!(out.effects.replies[0].1, Reply::Join(ref r) if r.error.is_none()));
        let out = c
            .sync(0, group, member, None, 1, (None, None), vec![], 2)
            .unwrap();
        assert_eq!(out.records.len(), 1, "the stable generation is written");
    }

    fn commit(c: &mut Coordinator, now: Millis, group: &str, topic: &str, offset: i64) {
        let (results, records) = c.commit(
            now,
            group,
            vec![OffsetToCommit {
                topic: topic.into(),
                partition: 0,
                offset,
                leader_epoch: -1,
                metadata: None,
            }],
        );
        assert_eq!(results, vec![Ok(())]);
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn simple_commits_need_an_empty_group_and_member_commits_a_current_generation() {
        let mut c = coordinator();
        assert_eq!(c.validate_commit("simple", "", None, -1), Ok(()));
        stable_member(&mut c, "g", "m", &["t"]);
        assert_eq!(c.validate_commit("g", "m", None, 1), Ok(()));
        assert_eq!(
            c.validate_commit("g", "m", None, 0),
            Err(ResponseError::IllegalGeneration)
        );
        assert_eq!(
            c.validate_commit("g", "other", None, 1),
            Err(ResponseError::UnknownMemberId)
        );
        assert_eq!(
            c.validate_commit("g", "", None, -1),
            Err(ResponseError::UnknownMemberId),
            "no simple commits into a group with members"
        );
    }

    #[test]
    fn committed_offsets_are_fetched_and_survive_a_replay() {
        let mut c = coordinator();
        stable_member(&mut c, "g", "m", &["t"]);
        commit(&mut c, 5, "g", "t", 42);
        let fetched = c.fetch("g", Some(vec![("t".into(), 0), ("t".into(), 1)]));
        assert_eq!(fetched[0].1.as_ref().map(|o| o.offset), Some(42));
        assert_eq!(fetched[1].1, None);

        // Replaying what was written rebuilds the same offsets and a Stable group.
        let mut log = vec![];
        let mut fresh = coordinator();
        stable_member(&mut fresh, "g", "m", &["t"]);
        log.push(group_record(fresh.group("g").unwrap()));
        log.extend(
            fresh
                .commit(
                    5,
                    "g",
                    vec![OffsetToCommit {
                        topic: "t".into(),
                        partition: 0,
                        offset: 42,
                        leader_epoch: 3,
                        metadata: Some("x".into()),
                    }],
                )
                .1,
        );
        let mut loaded = coordinator();
        for r in log {
            loaded.replay(r, 100);
        }
        assert_eq!(
            loaded.fetch("g", None)[0].1.as_ref().unwrap().leader_epoch,
            3
        );
        assert_eq!(loaded.group("g").unwrap().state, GroupState::Stable);
        assert_eq!(loaded.heartbeat(101, "g", "m", None, 1), Ok(()));
    }

    #[test]
    fn deleting_a_group_with_members_is_refused_and_changes_nothing() {
        let mut c = coordinator();
        stable_member(&mut c, "g", "m", &["t"]);
        commit(&mut c, 1, "g", "t", 7);
        assert_eq!(
            c.delete_group(2, "g").err(),
            Some(ResponseError::NonEmptyGroup)
        );
        assert_eq!(c.fetch("g", None).len(), 1);
        assert_eq!(
            c.delete_group(2, "nope").err(),
            Some(ResponseError::GroupIdNotFound)
        );
        let (_, _) = c.leave(3, "g", &[("m".into(), None)]);
        let out = c.delete_group(4, "g").unwrap();
        assert_eq!(
            out.records.len(),
            2,
            "an offset tombstone and a group tombstone"
        );
        assert!(c.list().is_empty());
    }

    #[test]
    fn offset_delete_refuses_subscribed_topics() {
        let mut c = coordinator();
        stable_member(&mut c, "g", "m", &["t"]);
        commit(&mut c, 1, "g", "t", 7);
        commit(&mut c, 1, "g", "old", 3);
        let (results, records) = c
            .delete_offsets("g", vec![("t".into(), 0), ("old".into(), 0)])
            .unwrap();
        assert_eq!(
            results,
            vec![Err(ResponseError::GroupSubscribedToTopic), Ok(())]
        );
        assert_eq!(records.len(), 1);
        assert_eq!(c.fetch("g", None).len(), 1);
    }

    #[test]
    fn offsets_of_an_empty_group_expire_after_retention_with_tombstones() {
        let mut c = coordinator();
        stable_member(&mut c, "g", "m", &["t"]);
        commit(&mut c, 1, "g", "t", 7);
        c.leave(10, "g", &[("m".into(), None)]);
        assert!(
            c.tick(10 + 7 * DAY - 1).records.is_empty(),
            "kept within retention"
        );
        let out = c.tick(10 + 7 * DAY);
        assert_eq!(
            out.records.len(),
            2,
            "offset tombstone, then group tombstone"
        );
        assert!(c.fetch("g", None).is_empty());
        assert!(c.list().is_empty());
    }

    #[test]
    fn expiry_is_checked_once_per_check_interval() {
        let mut c = Coordinator::new(GroupOptions {
            offsets_retention_ms: 1000,
            offsets_retention_check_interval_ms: 600_000,
            ..GroupOptions::default()
        });
        commit(&mut c, 0, "simple", "t", 1);
        assert!(c.tick(10).records.is_empty(), "checked at 10: nothing due");
        assert!(
            c.tick(5_000).records.is_empty(),
            "due, but the next check is at 600010"
        );
        assert_eq!(
            c.tick(600_010).records.len(),
            2,
            "offset and group tombstones"
        );
    }

    #[test]
    fn offsets_loaded_with_extreme_commit_timestamps_expire_without_overflow() {
        // fuzz/artifacts/group_record/commit-timestamp-overflow: an offset commit record read
        // back from `__consumer_offsets` with a commit timestamp so far in the past that
        // `now - commit_timestamp` overflowed in the expiry check.
        let now = 1_700_000_000_000;
        let mut c = coordinator();
        for (topic, commit_timestamp) in [("past", i64::MIN), ("future", i64::MAX)] {
            c.replay(
                OffsetsRecord::Offset {
                    group: "simple".into(),
                    topic: topic.into(),
                    partition: 0,
                    value: Some(CommittedOffset {
                        offset: 1,
                        leader_epoch: -1,
                        metadata: String::new(),
                        commit_timestamp,
                    }),
                },
                now,
            );
        }
        let out = c.tick(now);
        assert_eq!(
            out.records,
            vec![OffsetsRecord::Offset {
                group: "simple".into(),
                topic: "past".into(),
                partition: 0,
                value: None,
            }],
            "a commit before any representable time is past retention; one after it is not"
        );
        assert_eq!(c.fetch("simple", None).len(), 1);
    }

    #[test]
    fn offsets_of_a_group_with_members_never_expire() {
        let mut c = coordinator();
        stable_member(&mut c, "g", "m", &["t"]);
        commit(&mut c, 1, "g", "t", 7);
        for day in 1..10 {
            assert_eq!(c.heartbeat(day * DAY, "g", "m", None, 1), Ok(()));
            // Sessions are kept alive by heartbeats right before each tick.
            c.tick(day * DAY);
        }
        assert_eq!(c.fetch("g", None).len(), 1);
    }

    #[test]
    fn unloading_answers_parked_requests_not_coordinator() {
        let mut c = coordinator();
        let request = JoinRequest {
            member_id: String::new(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/h".into(),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), subscription(&["t"]))],
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            require_known_member_id: false,
        };
        stable_member(&mut c, "g", "a", &["t"]);
        c.join(1, "g", request, 9, || "b".into());
        let effects = c.unload(ResponseError::NotCoordinator);
        assert_eq!(effects.replies.len(), 1);
        assert!(c.list().is_empty());
    }
}
