//! One classic group's membership state machine.
//!
//! A [`Group`] moves between the states Kafka names (`Empty`, `PreparingRebalance`,
//! `CompletingRebalance`, `Stable`, `Dead`). Requests come in as method calls with the current
//! time; JoinGroup and SyncGroup requests that must wait for the rest of the group are *parked*
//! under the caller's [`ReplyId`] and answered later through [`Effects::replies`], when the
//! rebalance completes, when the leader hands in the assignment, or when [`Group::tick`] notices
//! a deadline. Nothing here reads the clock or does I/O.
//!
//! # Expected flow (one rebalance)
//! ```text
//! Empty --join--> PreparingRebalance --all known members joined, or rebalance timeout-->
//!   CompletingRebalance (generation+1; leader gets the member list) --leader's SyncGroup-->
//!   Stable (everyone gets its assignment; the group is persisted)
//! ```
//! A member joining, leaving, changing its protocols, or missing its session deadline sends a
//! Stable or CompletingRebalance group back to PreparingRebalance; members then learn it from
//! REBALANCE_IN_PROGRESS on their heartbeat and join again.
//!
//! # Guarantees
//! - A generation has one leader and one protocol, supported by every member.
//! - Every parked request is answered exactly once (a reply, or an error when it is fenced, the
//!   member is removed, or the group is unloaded).
//! - `persist` is set whenever the durable part (generation, protocol, leader, members and
//!   assignments) changed, so the shell writes a group metadata record before answering.
//!
//! # Caveats
//! - A member's session is kept alive while its JoinGroup or SyncGroup is parked (the request
//!   itself is the sign of life), as Kafka does; a member that never rejoins is removed at the
//!   rebalance timeout.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::{Generation, GroupOptions, Millis, ReplyId};

/// Where a group is in its rebalance cycle (Kafka's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupState {
    /// No members; may still own committed offsets.
    Empty,
    /// Waiting for the members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Removed (deleted or expired); answers COORDINATOR_NOT_AVAILABLE until forgotten.
    Dead,
}

impl GroupState {
    /// The name Kafka reports in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A member of the group.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Assigned by the coordinator (`<client_id>-<uuid>`).
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address as reported in DescribeGroups.
    pub client_host: String,
    /// How long the group waits for this member to rejoin during a rebalance.
    pub rebalance_timeout_ms: i32,
    /// How long the member may go without a heartbeat.
    pub session_timeout_ms: i32,
    /// The protocols it supports, most preferred first, each with its subscription metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// Its assignment in the current generation (empty until the leader syncs).
    pub assignment: Bytes,
    /// Its parked JoinGroup, if any.
    pub awaiting_join: Option<ReplyId>,
    /// Its parked SyncGroup, if any.
    pub awaiting_sync: Option<ReplyId>,
    /// The session expires at this time unless a request comes first.
    pub session_deadline: Millis,
}

impl Member {
    /// The subscription metadata for `protocol`, if the member supports it.
    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m)
    }

    fn keep_alive(&mut self, now: Millis) {
        self.session_deadline = now + i64::from(self.session_timeout_ms);
    }
}

/// A JoinGroup as the state machine needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinRequest {
    /// Empty on a member's first join.
    pub member_id: String,
    /// `group.instance.id` for static members.
    pub group_instance_id: Option<String>,
    /// The client's `client.id` (prefix of generated member ids).
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// `consumer` for consumers.
    pub protocol_type: String,
    /// Supported protocols, most preferred first, with subscription metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout (v1+; the session timeout before).
    pub rebalance_timeout_ms: i32,
    /// v4+: a first join is answered MEMBER_ID_REQUIRED with the new id.
    pub require_known_member_id: bool,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JoinResponse {
    /// NONE on success.
    pub error: Option<ResponseError>,
    /// The new generation (-1 on error).
    pub generation: Generation,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// The member id of the caller (also on MEMBER_ID_REQUIRED).
    pub member_id: String,
    /// For the leader only: every member with its metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResponse {
    fn error(error: ResponseError, member_id: &str) -> Self {
        Self {
            error: Some(error),
            generation: -1,
            member_id: member_id.to_string(),
            ..Self::default()
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncResponse {
    /// NONE on success.
    pub error: Option<ResponseError>,
    /// The group's protocol type (v5+).
    pub protocol_type: Option<String>,
    /// The chosen protocol (v5+).
    pub protocol_name: Option<String>,
    /// The member's assignment.
    pub assignment: Bytes,
}

impl SyncResponse {
    fn error(error: ResponseError) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }
}

/// A reply to a parked request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// To a JoinGroup.
    Join(JoinResponse),
    /// To a SyncGroup.
    Sync(SyncResponse),
}

/// What a call produced: replies to send and whether the group must be written to the log
/// before they are sent.
#[derive(Debug, Default, PartialEq)]
pub struct Effects {
    /// Replies to parked (or just-arrived) requests, in the order they were decided.
    pub replies: Vec<(ReplyId, Reply)>,
    /// The durable state of the group changed: write a group metadata record and send the
    /// replies only once it is replicated.
    pub persist: bool,
}

impl Effects {
    fn reply(&mut self, to: ReplyId, reply: Reply) {
        self.replies.push((to, reply));
    }

    /// Merges `other` into `self`, keeping order.
    pub fn extend(&mut self, other: Effects) {
        self.replies.extend(other.replies);
        self.persist |= other.persist;
    }
}

/// One classic group's membership.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The group id.
    pub id: String,
    /// Current state.
    pub state: GroupState,
    /// When the state last changed (offset expiry of an empty group counts from here).
    pub state_timestamp: Millis,
    /// Current generation; 0 before the first rebalance.
    pub generation: Generation,
    /// The protocol type all members share (`consumer`), once a member joined.
    pub protocol_type: Option<String>,
    /// The protocol chosen for the current generation.
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: Option<String>,
    /// Members by member id (sorted, for deterministic output).
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the time they are forgotten unless
    /// the client joins with them.
    pub pending_members: BTreeMap<String, Millis>,
    /// When PreparingRebalance ends even if members are missing.
    pub rebalance_deadline: Option<Millis>,
    /// The first rebalance of an empty group does not complete before this time
    /// (`group.initial.rebalance.delay.ms`), and the limit of extending it.
    pub initial_delay: Option<(Millis, Millis)>,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: impl Into<String>, now: Millis) -> Self {
        Self {
            id: id.into(),
            state: GroupState::Empty,
            state_timestamp: now,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            rebalance_deadline: None,
            initial_delay: None,
        }
    }

    /// The member id that `instance` is bound to, if it is a known static member.
    pub fn static_member(&self, instance: &str) -> Option<&str> {
        self.members
            .values()
            .find(|m| m.group_instance_id.as_deref() == Some(instance))
            .map(|m| m.member_id.as_str())
    }

    /// Checks that `member_id` is a member and, for static members, that `instance` still
    /// owns it.
    pub fn check_member(
        &self,
        member_id: &str,
        instance: Option<&str>,
    ) -> Result<(), ResponseError> {
        if let Some(instance) = instance
            && let Some(owner) = self.static_member(instance)
            && owner != member_id
        {
            return Err(ResponseError::FencedInstanceId);
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        Ok(())
    }

    /// Handles a JoinGroup; the reply is in the effects now or later.
    pub fn join(
        &mut self,
        now: Millis,
        options: &GroupOptions,
        request: JoinRequest,
        reply: ReplyId,
        new_member_id: impl FnOnce() -> String,
    ) -> Effects {
        let mut effects = Effects::default();
        let refuse = |effects: &mut Effects, error| {
            effects.reply(
                reply,
                Reply::Join(JoinResponse::error(error, &request.member_id)),
            );
        };
        if self.state == GroupState::Dead {
            refuse(&mut effects, ResponseError::CoordinatorNotAvailable);
            return effects;
        }
        if request.session_timeout_ms < options.min_session_timeout_ms
            || request.session_timeout_ms > options.max_session_timeout_ms
        {
            refuse(&mut effects, ResponseError::InvalidSessionTimeout);
            return effects;
        }
        if request.protocol_type.is_empty()
            || request.protocols.is_empty()
            || !self.supports(&request.protocol_type, &request.protocols)
        {
            refuse(&mut effects, ResponseError::InconsistentGroupProtocol);
            return effects;
        }
        if request.member_id.is_empty() {
            self.join_unknown(now, options, request, reply, new_member_id, &mut effects);
        } else {
            self.join_known(now, options, request, reply, &mut effects);
        }
        effects
    }

    /// Whether a member with these protocols may join: same protocol type, and at least one
    /// protocol every current member also supports.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return self
                .protocol_type
                .as_deref()
                .is_none_or(|t| t == protocol_type || self.state == GroupState::Empty);
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols
            .iter()
            .any(|(name, _)| self.members.values().all(|m| m.metadata(name).is_some()))
    }

    fn join_unknown(
        &mut self,
        now: Millis,
        options: &GroupOptions,
        request: JoinRequest,
        reply: ReplyId,
        new_member_id: impl FnOnce() -> String,
        effects: &mut Effects,
    ) {
        let member_id = new_member_id();
        if let Some(instance) = request.group_instance_id.clone()
            && let Some(old_id) = self.static_member(&instance).map(str::to_string)
        {
            self.replace_static_member(now, options, &old_id, member_id, request, reply, effects);
            return;
        }
        if self.members.len() + self.pending_members.len() >= options.max_size {
            effects.reply(
                reply,
                Reply::Join(JoinResponse::error(ResponseError::GroupMaxSizeReached, "")),
            );
            return;
        }
        if request.require_known_member_id && request.group_instance_id.is_none() {
            // KIP-394: the client must come back with this id, so a client that times out
            // and retries does not leave a ghost member behind.
            self.pending_members.insert(
                member_id.clone(),
                now + i64::from(request.session_timeout_ms),
            );
            effects.reply(
                reply,
                Reply::Join(JoinResponse::error(
                    ResponseError::MemberIdRequired,
                    &member_id,
                )),
            );
            return;
        }
        self.add_member(now, options, member_id, request, reply, effects);
    }

    fn join_known(
        &mut self,
        now: Millis,
        options: &GroupOptions,
        request: JoinRequest,
        reply: ReplyId,
        effects: &mut Effects,
    ) {
        let member_id = request.member_id.clone();
        if self.pending_members.remove(&member_id).is_some() {
            self.add_member(now, options, member_id, request, reply, effects);
            return;
        }
        if let Err(error) = self.check_member(&member_id, request.group_instance_id.as_deref()) {
            effects.reply(reply, Reply::Join(JoinResponse::error(error, &member_id)));
            return;
        }
        let member = self.members.get_mut(&member_id).expect("checked above");
        member.keep_alive(now);
        let unchanged = member.protocols == request.protocols;
        if let Some(previous) = member.awaiting_join.take() {
            // A retried join replaces the one parked earlier, which gets told to retry.
            effects.reply(
                previous,
                Reply::Join(JoinResponse::error(
                    ResponseError::RebalanceInProgress,
                    &member_id,
                )),
            );
        }
        member.protocols = request.protocols;
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        let rebalance = match self.state {
            GroupState::PreparingRebalance => {
                self.members
                    .get_mut(&member_id)
                    .expect("member")
                    .awaiting_join = Some(reply);
                self.maybe_complete_join(now, effects);
                return;
            }
            // The member just missed the join response, unless it changed its protocols.
            GroupState::CompletingRebalance => !unchanged,
            // A leader rejoining asks for a new assignment (its metadata changed).
            GroupState::Stable => !unchanged || is_leader,
            GroupState::Empty | GroupState::Dead => {
                unreachable!("a group with members is neither empty nor dead")
            }
        };
        if rebalance {
            self.members
                .get_mut(&member_id)
                .expect("member")
                .awaiting_join = Some(reply);
            self.prepare_rebalance(now, options, effects);
        } else {
            let response = self.join_response(&member_id);
            effects.reply(reply, Reply::Join(response));
        }
    }

    fn add_member(
        &mut self,
        now: Millis,
        options: &GroupOptions,
        member_id: String,
        request: JoinRequest,
        reply: ReplyId,
        effects: &mut Effects,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: request.group_instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            session_timeout_ms: request.session_timeout_ms,
            protocols: request.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(reply),
            awaiting_sync: None,
            session_deadline: now + i64::from(request.session_timeout_ms),
        };
        self.members.insert(member_id, member);
        match self.state {
            GroupState::PreparingRebalance => {
                if let Some((until, limit)) = self.initial_delay {
                    // A newcomer during the initial delay extends it, up to the limit.
                    let extended = (now + options.initial_rebalance_delay_ms).min(limit);
                    self.initial_delay = Some((until.max(extended), limit));
                }
                self.maybe_complete_join(now, effects);
            }
            _ => self.prepare_rebalance(now, options, effects),
        }
    }

    /// A static member rejoined with a new member id: the old id is fenced, and if the group
    /// is stable and the member's protocols are unchanged it keeps its assignment without a
    /// rebalance (KIP-345).
    #[allow(clippy::too_many_arguments)]
    fn replace_static_member(
        &mut self,
        now: Millis,
        options: &GroupOptions,
        old_id: &str,
        new_id: String,
        request: JoinRequest,
        reply: ReplyId,
        effects: &mut Effects,
    ) {
        let mut member = self.members.remove(old_id).expect("static member exists");
        let fenced = ResponseError::FencedInstanceId;
        if let Some(parked) = member.awaiting_join.take() {
            effects.reply(parked, Reply::Join(JoinResponse::error(fenced, old_id)));
        }
        if let Some(parked) = member.awaiting_sync.take() {
            effects.reply(parked, Reply::Sync(SyncResponse::error(fenced)));
        }
        let unchanged = member.protocols == request.protocols;
        member.member_id = new_id.clone();
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.protocols = request.protocols;
        member.keep_alive(now);
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        self.members.insert(new_id.clone(), member);
        match self.state {
            GroupState::Stable if unchanged => {
                effects.persist = true;
                let response = self.join_response(&new_id);
                effects.reply(reply, Reply::Join(response));
            }
            GroupState::PreparingRebalance => {
                self.members.get_mut(&new_id).expect("member").awaiting_join = Some(reply);
                self.maybe_complete_join(now, effects);
            }
            _ => {
                self.members.get_mut(&new_id).expect("member").awaiting_join = Some(reply);
                self.prepare_rebalance(now, options, effects);
            }
        }
    }

    /// Sends the group into PreparingRebalance: assignments of the current generation are
    /// void, so parked SyncGroups are told REBALANCE_IN_PROGRESS.
    fn prepare_rebalance(&mut self, now: Millis, options: &GroupOptions, effects: &mut Effects) {
        for member in self.members.values_mut() {
            if let Some(parked) = member.awaiting_sync.take() {
                effects.reply(
                    parked,
                    Reply::Sync(SyncResponse::error(ResponseError::RebalanceInProgress)),
                );
            }
        }
        let rebalance_timeout = self
            .members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0);
        if self.state == GroupState::Empty {
            let limit = now + rebalance_timeout.max(options.initial_rebalance_delay_ms);
            let until = (now + options.initial_rebalance_delay_ms).min(limit);
            self.initial_delay = Some((until, limit));
        }
        self.rebalance_deadline = Some(now + rebalance_timeout);
        self.transition(GroupState::PreparingRebalance, now);
        self.maybe_complete_join(now, effects);
    }

    /// Completes the join phase once every member has rejoined and no member id handed out
    /// with MEMBER_ID_REQUIRED is still expected, and the initial delay is over.
    fn maybe_complete_join(&mut self, now: Millis, effects: &mut Effects) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        if self.initial_delay.is_some_and(|(until, _)| now < until) {
            return;
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join.is_some())
            && self.pending_members.is_empty();
        if all_joined {
            self.complete_join(now, effects);
        }
    }

    /// Starts the next generation with the members that rejoined: picks the protocol and the
    /// leader and answers every parked JoinGroup.
    fn complete_join(&mut self, now: Millis, effects: &mut Effects) {
        self.initial_delay = None;
        self.rebalance_deadline = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.transition(GroupState::Empty, now);
            effects.persist = true;
            return;
        }
        self.protocol = Some(self.select_protocol());
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.transition(GroupState::CompletingRebalance, now);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let response = self.join_response(&id);
            let member = self.members.get_mut(&id).expect("member");
            member.assignment = Bytes::new();
            member.keep_alive(now);
            if let Some(parked) = member.awaiting_join.take() {
                effects.reply(parked, Reply::Join(response));
            }
        }
    }

    /// The protocol every member supports that most members prefer (each member votes for the
    /// first of its protocols that all support).
    fn select_protocol(&self) -> String {
        let first = self.members.values().next().expect("members");
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(name, _)| name)
            .filter(|name| self.members.values().all(|m| m.metadata(name).is_some()))
            .collect();
        assert!(
            !candidates.is_empty(),
            "join admits only members sharing a protocol with the group"
        );
        let mut votes: Vec<usize> = vec![0; candidates.len()];
        for member in self.members.values() {
            let vote = member
                .protocols
                .iter()
                .find_map(|(name, _)| candidates.iter().position(|c| *c == name))
                .expect("every member supports every candidate");
            votes[vote] += 1;
        }
        let best = votes.iter().copied().max().expect("candidates");
        let winner = votes.iter().position(|v| *v == best).expect("max exists");
        candidates[winner].clone()
    }

    fn join_response(&self, member_id: &str) -> JoinResponse {
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| {
                    let metadata = m.metadata(&protocol).cloned().unwrap_or_default();
                    (m.member_id.clone(), m.group_instance_id.clone(), metadata)
                })
                .collect()
        } else {
            vec![]
        };
        JoinResponse {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    /// Handles a SyncGroup. `assignments` is the leader's (empty from followers).
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        now: Millis,
        member_id: &str,
        instance: Option<&str>,
        generation: Generation,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
        reply: ReplyId,
    ) -> Effects {
        let mut effects = Effects::default();
        let refuse = |effects: &mut Effects, error| {
            effects.reply(reply, Reply::Sync(SyncResponse::error(error)));
        };
        if self.state == GroupState::Dead {
            refuse(&mut effects, ResponseError::CoordinatorNotAvailable);
            return effects;
        }
        if let Err(error) = self.check_member(member_id, instance) {
            refuse(&mut effects, error);
            return effects;
        }
        if generation != self.generation {
            refuse(&mut effects, ResponseError::IllegalGeneration);
            return effects;
        }
        let (protocol_type, protocol_name) = protocol;
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol.as_deref())
        {
            refuse(&mut effects, ResponseError::InconsistentGroupProtocol);
            return effects;
        }
        let member = self.members.get_mut(member_id).expect("checked");
        member.keep_alive(now);
        match self.state {
            GroupState::PreparingRebalance => {
                refuse(&mut effects, ResponseError::RebalanceInProgress);
            }
            GroupState::Stable => {
                let response = self.sync_response(member_id);
                effects.reply(reply, Reply::Sync(response));
            }
            GroupState::CompletingRebalance => {
                if let Some(previous) = member.awaiting_sync.replace(reply) {
                    // A retried sync replaces the one parked earlier.
                    let error = ResponseError::RebalanceInProgress;
                    effects.reply(previous, Reply::Sync(SyncResponse::error(error)));
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut given: BTreeMap<String, Bytes> = assignments.into_iter().collect();
                    for (id, member) in self.members.iter_mut() {
                        member.assignment = given.remove(id).unwrap_or_default();
                    }
                    self.transition(GroupState::Stable, now);
                    effects.persist = true;
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let response = self.sync_response(&id);
                        if let Some(parked) =
                            self.members.get_mut(&id).expect("m").awaiting_sync.take()
                        {
                            effects.reply(parked, Reply::Sync(response));
                        }
                    }
                }
            }
            GroupState::Empty | GroupState::Dead => unreachable!("the member exists"),
        }
        effects
    }

    fn sync_response(&self, member_id: &str) -> SyncResponse {
        SyncResponse {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self.members[member_id].assignment.clone(),
        }
    }

    /// Handles a Heartbeat: keeps the session alive and tells the member whether to rejoin.
    pub fn heartbeat(
        &mut self,
        now: Millis,
        member_id: &str,
        instance: Option<&str>,
        generation: Generation,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        self.check_member(member_id, instance)?;
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        self.members
            .get_mut(member_id)
            .expect("checked")
            .keep_alive(now);
        match self.state {
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Handles one member of a LeaveGroup (by member id, or by instance id from v3 when the
    /// member id is empty).
    pub fn leave(
        &mut self,
        now: Millis,
        options: &GroupOptions,
        member_id: &str,
        instance: Option<&str>,
    ) -> (Result<(), ResponseError>, Effects) {
        let mut effects = Effects::default();
        if self.state == GroupState::Dead {
            return (Err(ResponseError::CoordinatorNotAvailable), effects);
        }
        let member_id = match (member_id, instance) {
            ("", Some(instance)) => match self.static_member(instance) {
                Some(id) => id.to_string(),
                None => return (Err(ResponseError::UnknownMemberId), effects),
            },
            (id, _) => id.to_string(),
        };
        if self.pending_members.remove(&member_id).is_some() {
            self.maybe_complete_join(now, &mut effects);
            return (Ok(()), effects);
        }
        if let Err(error) = self.check_member(&member_id, instance) {
            return (Err(error), effects);
        }
        self.remove_member(now, options, &member_id, &mut effects);
        (Ok(()), effects)
    }

    /// Removes a member (left, session expired, or missing at the rebalance deadline), answers
    /// its parked requests with UNKNOWN_MEMBER_ID, and rebalances the rest.
    fn remove_member(
        &mut self,
        now: Millis,
        options: &GroupOptions,
        member_id: &str,
        effects: &mut Effects,
    ) {
        let Some(member) = self.members.remove(member_id) else {
            return;
        };
        if let Some(parked) = member.awaiting_join {
            effects.reply(
                parked,
                Reply::Join(JoinResponse::error(
                    ResponseError::UnknownMemberId,
                    member_id,
                )),
            );
        }
        if let Some(parked) = member.awaiting_sync {
            effects.reply(
                parked,
                Reply::Sync(SyncResponse::error(ResponseError::UnknownMemberId)),
            );
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, options, effects)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now, effects),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Applies the passage of time: expires sessions and MEMBER_ID_REQUIRED ids, ends the
    /// initial delay, and ends a rebalance at its deadline without the missing members.
    pub fn tick(&mut self, now: Millis, options: &GroupOptions) -> Effects {
        let mut effects = Effects::default();
        self.pending_members.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.awaiting_join.is_none() && m.awaiting_sync.is_none() && m.session_deadline <= now
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            self.remove_member(now, options, &id, &mut effects);
        }
        if self.state == GroupState::PreparingRebalance {
            if self.rebalance_deadline.is_some_and(|d| d <= now)
                && self.initial_delay.is_none_or(|(until, _)| until <= now)
            {
                let missing: Vec<String> = self
                    .members
                    .values()
                    .filter(|m| m.awaiting_join.is_none())
                    .map(|m| m.member_id.clone())
                    .collect();
                for id in &missing {
                    self.members.remove(id);
                }
                self.pending_members.clear();
                self.complete_join(now, &mut effects);
            } else {
                self.maybe_complete_join(now, &mut effects);
            }
        }
        effects
    }

    /// Answers every parked request with `error` (the group is being unloaded or deleted).
    pub fn abort_parked(&mut self, error: ResponseError) -> Effects {
        let mut effects = Effects::default();
        for member in self.members.values_mut() {
            if let Some(parked) = member.awaiting_join.take() {
                effects.reply(
                    parked,
                    Reply::Join(JoinResponse::error(error, &member.member_id)),
                );
            }
            if let Some(parked) = member.awaiting_sync.take() {
                effects.reply(parked, Reply::Sync(SyncResponse::error(error)));
            }
        }
        effects
    }

    /// Marks the group removed.
    pub fn into_dead(&mut self, now: Millis) -> Effects {
        let effects = self.abort_parked(ResponseError::CoordinatorNotAvailable);
        self.members.clear();
        self.pending_members.clear();
        self.transition(GroupState::Dead, now);
        effects
    }

    fn transition(&mut self, to: GroupState, now: Millis) {
        let allowed = match to {
            GroupState::PreparingRebalance => self.state != GroupState::Dead,
            GroupState::CompletingRebalance => self.state == GroupState::PreparingRebalance,
            GroupState::Stable => self.state == GroupState::CompletingRebalance,
            GroupState::Empty => self.state == GroupState::PreparingRebalance,
            GroupState::Dead => true,
        };
        assert!(
            allowed,
            "group {}: no transition {:?} -> {to:?}",
            self.id, self.state
        );
        self.state = to;
        self.state_timestamp = now;
    }

    /// The earliest time [`Group::tick`] may change something, for the shell's timer.
    pub fn next_deadline(&self) -> Option<Millis> {
        let sessions = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.awaiting_sync.is_none())
            .map(|m| m.session_deadline);
        sessions
            .chain(self.pending_members.values().copied())
            .chain(self.rebalance_deadline)
            .chain(self.initial_delay.map(|(until, _)| until))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: i32 = 10_000;
    const REBALANCE: i32 = 30_000;

    fn options() -> GroupOptions {
        GroupOptions {
            initial_rebalance_delay_ms: 0,
            ..GroupOptions::default()
        }
    }

    fn join_request(member_id: &str, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            member_id: member_id.to_string(),
            group_instance_id: None,
            client_id: "client".to_string(),
            client_host: "/127.0.0.1".to_string(),
            protocol_type: "consumer".to_string(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from(format!("sub-{p}"))))
                .collect(),
            session_timeout_ms: SESSION,
            rebalance_timeout_ms: REBALANCE,
            require_known_member_id: true,
        }
    }

    fn join_reply(effects: &Effects, to: ReplyId) -> &JoinResponse {
        match effects.replies.iter().find(|(id, _)| *id == to) {
            Some((_, Reply::Join(r))) => r,
            other => panic!("no join reply to {to}: {other:?} in {effects:?}"),
        }
    }

    fn sync_reply(effects: &Effects, to: ReplyId) -> &SyncResponse {
        match effects.replies.iter().find(|(id, _)| *id == to) {
            Some((_, Reply::Sync(r))) => r,
            other => panic!("no sync reply to {to}: {other:?} in {effects:?}"),
        }
    }

    /// Joins a new member through MEMBER_ID_REQUIRED; returns its id and the effects of the
    /// second join.
    fn join_new(group: &mut Group, now: Millis, name: &str, reply: ReplyId) -> (String, Effects) {
        let first = group.join(now, &options(), join_request("", &["range"]), reply, || {
            name.to_string()
        });
        let response = join_reply(&first, reply);
        assert_eq!(response.error, Some(ResponseError::MemberIdRequired));
        assert_eq!(response.member_id, name);
        let second = group.join(
            now,
            &options(),
            join_request(name, &["range"]),
            reply + 1,
            || unreachable!("known member"),
        );
        (name.to_string(), second)
    }

    #[test]
    fn first_join_without_member_id_is_answered_member_id_required() {
        let mut group = Group::new("g", 0);
        let effects = group.join(0, &options(), join_request("", &["range"]), 1, || {
            "m-1".into()
        });
        let reply = join_reply(&effects, 1);
        assert_eq!(reply.error, Some(ResponseError::MemberIdRequired));
        assert_eq!(reply.member_id, "m-1");
        assert!(
            group.members.is_empty(),
            "not a member until it joins with the id"
        );
        assert_eq!(group.state, GroupState::Empty);
    }

    #[test]
    fn a_lone_member_becomes_leader_and_gets_its_assignment_after_sync() {
        let mut group = Group::new("g", 0);
        let (m, effects) = join_new(&mut group, 0, "m-1", 1);
        let join = join_reply(&effects, 2);
        assert_eq!(join.error, None);
        assert_eq!(join.generation, 1);
        assert_eq!(join.leader, m);
        assert_eq!(join.protocol_name.as_deref(), Some("range"));
        assert_eq!(join.members.len(), 1, "the leader sees the members");
        assert_eq!(group.state, GroupState::CompletingRebalance);

        let effects = group.sync(
            0,
            &m,
            None,
            1,
            (None, None),
            vec![(m.clone(), Bytes::from("a"))],
            3,
        );
        assert!(
            effects.persist,
            "a completed generation is written before answering"
        );
        assert_eq!(sync_reply(&effects, 3).assignment, Bytes::from("a"));
        assert_eq!(group.state, GroupState::Stable);
    }

    #[test]
    fn initial_rebalance_delay_holds_the_first_generation_until_it_passes() {
        let options = GroupOptions {
            initial_rebalance_delay_ms: 3000,
            ..GroupOptions::default()
        };
        let mut group = Group::new("g", 0);
        let mut request = join_request("", &["range"]);
        request.require_known_member_id = false;
        let effects = group.join(0, &options, request.clone(), 1, || "a".into());
        assert!(
            effects.replies.is_empty(),
            "parked during the initial delay"
        );
        let effects = group.join(1000, &options, request, 2, || "b".into());
        assert!(effects.replies.is_empty(), "a newcomer extends the delay");
        assert!(
            group.tick(3500, &options).replies.is_empty(),
            "extended to 4000"
        );
        let effects = group.tick(4000, &options);
        assert_eq!(join_reply(&effects, 1).generation, 1);
        assert_eq!(join_reply(&effects, 2).generation, 1);
        assert_eq!(
            join_reply(&effects, 1).members.len(),
            2,
            "a leads: smallest id"
        );
    }

    #[test]
    fn a_second_member_triggers_a_rebalance_that_the_first_learns_from_its_heartbeat() {
        let mut group = Group::new("g", 0);
        let (a, _) = join_new(&mut group, 0, "a", 1);
        group.sync(0, &a, None, 1, (None, None), vec![], 3);
        let (b, effects) = join_new(&mut group, 100, "b", 10);
        assert!(
            effects.replies.iter().all(|(id, _)| *id != 11),
            "b waits for a"
        );
        assert_eq!(group.state, GroupState::PreparingRebalance);
        assert_eq!(
            group.heartbeat(200, &a, None, 1),
            Err(ResponseError::RebalanceInProgress)
        );
        let effects = group.join(
            300,
            &options(),
            join_request(&a, &["range"]),
            20,
            || unreachable!(),
        );
        assert_eq!(join_reply(&effects, 20).generation, 2);
        assert_eq!(
            join_reply(&effects, 20).leader,
            a,
            "the leader stays leader"
        );
        assert_eq!(join_reply(&effects, 11).members, vec![]);
        assert_eq!(join_reply(&effects, 11).member_id, b);
    }

    #[test]
    fn a_follower_sync_waits_for_the_leader_and_gets_its_own_assignment() {
        let mut group = Group::new("g", 0);
        let mut request = join_request("", &["range"]);
        request.require_known_member_id = false;
        group.join(0, &options(), request.clone(), 1, || "a".into());
        // a alone completes generation 1 at once; b's join starts generation 2.
        group.join(0, &options(), request, 2, || "b".into());
        let effects = group.join(
            0,
            &options(),
            join_request("a", &["range"]),
            3,
            || unreachable!(),
        );
        assert_eq!(join_reply(&effects, 3).generation, 2);
        let effects = group.sync(1, "b", None, 2, (None, None), vec![], 4);
        assert!(effects.replies.is_empty(), "parked until the leader syncs");
        let assignments = vec![
            ("a".into(), Bytes::from("pa")),
            ("b".into(), Bytes::from("pb")),
        ];
        let effects = group.sync(2, "a", None, 2, (None, None), assignments, 5);
        assert_eq!(sync_reply(&effects, 4).assignment, Bytes::from("pb"));
        assert_eq!(sync_reply(&effects, 5).assignment, Bytes::from("pa"));
    }

    #[test]
    fn stale_generation_and_unknown_member_are_refused() {
        let mut group = Group::new("g", 0);
        let (a, _) = join_new(&mut group, 0, "a", 1);
        group.sync(0, &a, None, 1, (None, None), vec![], 3);
        assert_eq!(
            group.heartbeat(1, &a, None, 0),
            Err(ResponseError::IllegalGeneration)
        );
        assert_eq!(
            group.heartbeat(1, "nobody", None, 1),
            Err(ResponseError::UnknownMemberId)
        );
        let effects = group.sync(1, &a, None, 7, (None, None), vec![], 9);
        assert_eq!(
            sync_reply(&effects, 9).error,
            Some(ResponseError::IllegalGeneration)
        );
        assert_eq!(group.state, GroupState::Stable, "state unchanged");
    }

    #[test]
    fn protocol_is_one_all_members_support_chosen_by_vote() {
        let mut group = Group::new("g", 0);
        let mut a = join_request("", &["roundrobin", "range"]);
        a.require_known_member_id = false;
        let mut b = join_request("", &["range", "roundrobin"]);
        b.require_known_member_id = false;
        let mut c = join_request("", &["range"]);
        c.require_known_member_id = false;
        group.join(0, &options(), a, 1, || "a".into());
        group.join(0, &options(), b, 2, || "b".into());
        group.join(
            0,
            &options(),
            join_request("a", &["roundrobin", "range"]),
            3,
            || unreachable!(),
        );
        assert_eq!(
            group.protocol.as_deref(),
            Some("roundrobin"),
            "tie goes to a's first"
        );
        group.join(0, &options(), c, 4, || "c".into());
        group.join(
            0,
            &options(),
            join_request("a", &["roundrobin", "range"]),
            5,
            || unreachable!(),
        );
        let effects = group.join(
            0,
            &options(),
            join_request("b", &["range", "roundrobin"]),
            6,
            || unreachable!(),
        );
        assert_eq!(
            join_reply(&effects, 6).protocol_name.as_deref(),
            Some("range")
        );
    }

    #[test]
    fn a_member_without_a_common_protocol_is_refused() {
        let mut group = Group::new("g", 0);
        join_new(&mut group, 0, "a", 1);
        let effects = group.join(
            0,
            &options(),
            join_request("", &["cooperative-sticky"]),
            9,
            || "x".into(),
        );
        assert_eq!(
            join_reply(&effects, 9).error,
            Some(ResponseError::InconsistentGroupProtocol)
        );
        let mut other_type = join_request("", &["range"]);
        other_type.protocol_type = "connect".into();
        let effects = group.join(0, &options(), other_type, 10, || "y".into());
        assert_eq!(
            join_reply(&effects, 10).error,
            Some(ResponseError::InconsistentGroupProtocol)
        );
    }

    #[test]
    fn session_timeout_outside_the_broker_bounds_is_refused() {
        let mut group = Group::new("g", 0);
        let mut request = join_request("", &["range"]);
        request.session_timeout_ms = 1000;
        let effects = group.join(0, &options(), request, 1, || "a".into());
        assert_eq!(
            join_reply(&effects, 1).error,
            Some(ResponseError::InvalidSessionTimeout)
        );
    }

    #[test]
    fn a_member_that_stops_heartbeating_is_removed_and_the_group_rebalances() {
        let mut group = Group::new("g", 0);
        let mut request = join_request("", &["range"]);
        request.require_known_member_id = false;
        group.join(0, &options(), request.clone(), 1, || "a".into());
        group.join(0, &options(), request, 2, || "b".into());
        group.join(
            0,
            &options(),
            join_request("a", &["range"]),
            3,
            || unreachable!(),
        );
        group.sync(0, "a", None, 2, (None, None), vec![], 4);
        group.sync(0, "b", None, 2, (None, None), vec![], 5);
        assert_eq!(group.state, GroupState::Stable);
        assert_eq!(group.heartbeat(9_000, "a", None, 2), Ok(()));
        assert!(group.tick(9_999, &options()).replies.is_empty());
        group.tick(10_000, &options());
        assert!(!group.members.contains_key("b"), "b's session expired");
        assert_eq!(group.state, GroupState::PreparingRebalance);
        let effects = group.join(
            10_100,
            &options(),
            join_request("a", &["range"]),
            6,
            || unreachable!(),
        );
        assert_eq!(join_reply(&effects, 6).generation, 3);
    }

    #[test]
    fn members_missing_at_the_rebalance_deadline_are_dropped() {
        let mut group = Group::new("g", 0);
        let mut request = join_request("", &["range"]);
        request.require_known_member_id = false;
        group.join(0, &options(), request.clone(), 1, || "a".into());
        group.join(0, &options(), request.clone(), 2, || "b".into());
        group.join(
            0,
            &options(),
            join_request("a", &["range"]),
            3,
            || unreachable!(),
        );
        group.sync(0, "a", None, 2, (None, None), vec![], 4);
        group.join(100, &options(), request, 5, || "c".into());
        group.join(
            100,
            &options(),
            join_request("a", &["range"]),
            6,
            || unreachable!(),
        );
        // b keeps heartbeating (told to rejoin) but never rejoins.
        let rejoin = Err(ResponseError::RebalanceInProgress);
        assert_eq!(group.heartbeat(20_100, "b", None, 2), rejoin);
        assert!(
            group
                .tick(100 + i64::from(REBALANCE) - 1, &options())
                .replies
                .is_empty()
        );
        let effects = group.tick(100 + i64::from(REBALANCE), &options());
        assert_eq!(join_reply(&effects, 6).generation, 3);
        assert_eq!(group.members.keys().collect::<Vec<_>>(), vec!["a", "c"]);
    }

    #[test]
    fn leaving_rebalances_the_rest_and_the_last_leaving_empties_the_group() {
        let mut group = Group::new("g", 0);
        let mut request = join_request("", &["range"]);
        request.require_known_member_id = false;
        group.join(0, &options(), request.clone(), 1, || "a".into());
        group.join(0, &options(), request, 2, || "b".into());
        group.join(
            0,
            &options(),
            join_request("a", &["range"]),
            3,
            || unreachable!(),
        );
        group.sync(0, "a", None, 2, (None, None), vec![], 4);
        let (result, _) = group.leave(5, &options(), "b", None);
        assert_eq!(result, Ok(()));
        assert_eq!(group.state, GroupState::PreparingRebalance);
        let (result, _) = group.leave(6, &options(), "nobody", None);
        assert_eq!(result, Err(ResponseError::UnknownMemberId));
        let (_, effects) = group.leave(7, &options(), "a", None);
        assert_eq!(group.state, GroupState::Empty);
        assert!(effects.persist, "the empty generation is written");
        assert_eq!(group.state_timestamp, 7);
    }

    #[test]
    fn a_static_member_rejoining_keeps_its_assignment_and_fences_its_old_id() {
        let mut group = Group::new("g", 0);
        let mut request = join_request("", &["range"]);
        request.group_instance_id = Some("i-1".into());
        let effects = group.join(0, &options(), request.clone(), 1, || "old".into());
        assert_eq!(
            join_reply(&effects, 1).error,
            None,
            "static members skip MEMBER_ID_REQUIRED"
        );
        group.sync(
            0,
            "old",
            Some("i-1"),
            1,
            (None, None),
            vec![("old".into(), Bytes::from("x"))],
            2,
        );
        let effects = group.join(50, &options(), request, 3, || "new".into());
        let reply = join_reply(&effects, 3);
        assert_eq!((reply.generation, reply.member_id.as_str()), (1, "new"));
        assert_eq!(group.state, GroupState::Stable, "no rebalance");
        assert_eq!(
            group.heartbeat(60, "old", Some("i-1"), 1),
            Err(ResponseError::FencedInstanceId)
        );
        let effects = group.sync(70, "new", Some("i-1"), 1, (None, None), vec![], 4);
        assert_eq!(sync_reply(&effects, 4).assignment, Bytes::from("x"));
        let (result, _) = group.leave(80, &options(), "", Some("i-1"));
        assert_eq!(result, Ok(()), "v3+ leaves by instance id");
    }

    #[test]
    fn a_rejoin_during_completing_rebalance_voids_parked_syncs() {
        let mut group = Group::new("g", 0);
        let mut request = join_request("", &["range"]);
        request.require_known_member_id = false;
        group.join(0, &options(), request.clone(), 1, || "a".into());
        group.join(0, &options(), request, 2, || "b".into());
        group.join(
            0,
            &options(),
            join_request("a", &["range"]),
            3,
            || unreachable!(),
        );
        group.sync(0, "b", None, 2, (None, None), vec![], 4);
        let effects = group.join(
            1,
            &options(),
            join_request("b", &["roundrobin", "range"]),
            5,
            || unreachable!(),
        );
        assert_eq!(
            sync_reply(&effects, 4).error,
            Some(ResponseError::RebalanceInProgress)
        );
        assert_eq!(group.state, GroupState::PreparingRebalance);
    }

    #[test]
    fn unanswered_member_id_required_ids_are_forgotten_after_the_session_timeout() {
        let mut group = Group::new("g", 0);
        group.join(0, &options(), join_request("", &["range"]), 1, || {
            "ghost".into()
        });
        assert_eq!(group.pending_members.len(), 1);
        group.tick(i64::from(SESSION), &options());
        assert!(group.pending_members.is_empty());
    }

    #[test]
    fn a_dead_group_refuses_everything() {
        let mut group = Group::new("g", 0);
        group.into_dead(1);
        let effects = group.join(2, &options(), join_request("", &["range"]), 1, || {
            "a".into()
        });
        assert_eq!(
            join_reply(&effects, 1).error,
            Some(ResponseError::CoordinatorNotAvailable)
        );
    }
}
