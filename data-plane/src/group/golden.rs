//! Golden scripts for one classic group's state machine (test-only).
//!
//! Each script in `data-plane/tests/golden/group/` drives one fresh [`Group`] (id `g`,
//! created at time 0) with JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the passage of
//! time, and shows the replies, whether the group must be persisted, and its state. The format
//! is in [`crate::golden`].
//!
//! # Commands
//!
//! Time is logical: `at=T` (milliseconds) sets the clock for a command and later ones; it never
//! goes back. Every JoinGroup and SyncGroup gets the next reply id `#n`.
//!
//! ```text
//! options initial_delay=MS                 group.initial.rebalance.delay.ms (scripts start at 0)
//! join <member|-> [new=ID] [protocols=range,...] [instance=I] [lax] [type=T]
//!      [session=MS] [rebalance=MS] [at=T]  JoinGroup; `-` is the empty member id, `new=` the id
//!                                          the coordinator hands out, `lax` an old client that
//!                                          does not need MEMBER_ID_REQUIRED
//! sync <member> gen=N [instance=I] [assign=a:x,b:y] [at=T]   SyncGroup (`assign=` the leader's)
//! heartbeat <member> gen=N [instance=I] [at=T]              Heartbeat
//! leave <member|-> [instance=I] [at=T]                      LeaveGroup
//! tick at=T                                                 the passage of time
//! dead [at=T]                                               the group is removed
//! group                                                     renders the whole group
//! ```
//!
//! # Output
//!
//! A command renders its direct answer (`ok`, `error <Kafka error>`, or `parked #n` for a
//! request left waiting), then each reply in the effects (`reply #n join <member>: ...`,
//! `reply #n sync <member>: ...`), `persist` if the durable state changed, and a summary line:
//! `state=<state> gen=<generation> leader=<id> members=[...]`.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::state::{Effects, Group, JoinRequest, Reply};
use super::{GroupOptions, Millis, ReplyId};
use crate::golden::{self, Driver};

/// Session timeout of scripted members unless `session=` says otherwise.
const SESSION_MS: i32 = 10_000;
/// Rebalance timeout of scripted members unless `rebalance=` says otherwise.
const REBALANCE_MS: i32 = 30_000;

/// Drives one group for one script.
struct GroupDriver {
    /// The group under test.
    group: Group,
    /// Broker options; the initial rebalance delay starts at 0.
    options: GroupOptions,
    /// The logical clock.
    now: Millis,
    /// The last reply id handed out.
    reply: ReplyId,
    /// What each reply id was for (`join a`), for rendering.
    labels: BTreeMap<ReplyId, String>,
}

impl GroupDriver {
    fn new() -> Self {
        Self {
            group: Group::new("g", 0),
            options: GroupOptions {
                initial_rebalance_delay_ms: 0,
                ..GroupOptions::default()
            },
            now: 0,
            reply: 0,
            labels: BTreeMap::new(),
        }
    }

    /// Moves the clock to `at=`, if given.
    fn advance(&mut self, command: &golden::Command) -> Result<(), String> {
        if let Some(at) = command.get::<Millis>("at")? {
            if at < self.now {
                return Err(format!("at={at} is before the clock ({})", self.now));
            }
            self.now = at;
        }
        Ok(())
    }

    /// The next reply id, labelled `what`.
    fn next_reply(&mut self, what: String) -> ReplyId {
        self.reply += 1;
        self.labels.insert(self.reply, what);
        self.reply
    }

    /// `answer`, then the effects, then the summary.
    fn render(&self, answer: Option<String>, effects: &Effects) -> String {
        let mut out: Vec<String> = answer.into_iter().collect();
        for (id, reply) in &effects.replies {
            let label = self.labels.get(id).map_or("?", String::as_str);
            out.push(format!("reply #{id} {label}: {}", render_reply(reply)));
        }
        if effects.persist {
            out.push("persist".to_string());
        }
        out.push(self.summary());
        out.join("\n")
    }

    fn summary(&self) -> String {
        let members: Vec<&str> = self.group.members.keys().map(String::as_str).collect();
        format!(
            "state={} gen={} leader={} members=[{}]",
            self.group.state.name(),
            self.group.generation,
            self.group.leader.as_deref().unwrap_or("-"),
            members.join(",")
        )
    }

    fn render_group(&self) -> String {
        let g = &self.group;
        let mut out = vec![format!(
            "state={} since={} gen={} type={} protocol={} leader={}",
            g.state.name(),
            g.state_timestamp,
            g.generation,
            g.protocol_type.as_deref().unwrap_or("-"),
            g.protocol.as_deref().unwrap_or("-"),
            g.leader.as_deref().unwrap_or("-")
        )];
        for m in g.members.values() {
            let protocols: Vec<&str> = m.protocols.iter().map(|(p, _)| p.as_str()).collect();
            let mut line = format!(
                "member {} instance={} protocols=[{}] assignment={} session-deadline={}",
                m.member_id,
                m.group_instance_id.as_deref().unwrap_or("-"),
                protocols.join(","),
                bytes(&m.assignment),
                m.session_deadline
            );
            if let Some(id) = m.awaiting_join {
                line += &format!(" awaiting-join=#{id}");
            }
            if let Some(id) = m.awaiting_sync {
                line += &format!(" awaiting-sync=#{id}");
            }
            out.push(line);
        }
        for (id, until) in &g.pending_members {
            out.push(format!("pending {id} until={until}"));
        }
        if let Some(deadline) = g.rebalance_deadline {
            out.push(format!("rebalance-deadline={deadline}"));
        }
        if let Some(deadline) = g.next_deadline() {
            out.push(format!("next-deadline={deadline}"));
        }
        out.join("\n")
    }

    fn join(&mut self, command: &golden::Command) -> Result<String, String> {
        let member = member_arg(command)?;
        let new_id: String = command.get("new")?.unwrap_or_else(|| "new".to_string());
        let protocols: Vec<String> = command
            .list("protocols")?
            .unwrap_or_else(|| vec!["range".to_string()]);
        let request = JoinRequest {
            member_id: member.clone(),
            group_instance_id: command.get("instance")?,
            client_id: "client".to_string(),
            client_host: "/127.0.0.1".to_string(),
            protocol_type: command.get("type")?.unwrap_or_else(|| "consumer".into()),
            protocols: protocols
                .iter()
                .map(|p| (p.clone(), Bytes::from(format!("sub-{p}"))))
                .collect(),
            session_timeout_ms: command.get("session")?.unwrap_or(SESSION_MS),
            rebalance_timeout_ms: command.get("rebalance")?.unwrap_or(REBALANCE_MS),
            require_known_member_id: !command.flag("lax"),
        };
        let label = if member.is_empty() { &new_id } else { &member };
        let reply = self.next_reply(format!("join {label}"));
        let effects = self
            .group
            .join(self.now, &self.options, request, reply, || new_id.clone());
        Ok(self.render(parked(&effects, reply), &effects))
    }

    fn sync(&mut self, command: &golden::Command) -> Result<String, String> {
        let member = command.arg(0, "member id")?.to_string();
        let generation = command.get("gen")?.ok_or("sync needs gen=")?;
        let assignments = command
            .list::<String>("assign")?
            .unwrap_or_default()
            .into_iter()
            .map(|pair| {
                let (id, assignment) = pair
                    .split_once(':')
                    .ok_or_else(|| format!("assign: {pair} is not <member>:<assignment>"))?;
                Ok((id.to_string(), Bytes::from(assignment.to_string())))
            })
            .collect::<Result<_, String>>()?;
        let instance: Option<String> = command.get("instance")?;
        let reply = self.next_reply(format!("sync {member}"));
        let effects = self.group.sync(
            self.now,
            &member,
            instance.as_deref(),
            generation,
            (None, None),
            assignments,
            reply,
        );
        Ok(self.render(parked(&effects, reply), &effects))
    }
}

impl Driver for GroupDriver {
    fn run(&mut self, command: &golden::Command) -> Result<String, String> {
        self.advance(command)?;
        match command.name.as_str() {
            "options" => {
                if let Some(delay) = command.get("initial_delay")? {
                    self.options.initial_rebalance_delay_ms = delay;
                }
                Ok("ok".to_string())
            }
            "join" => self.join(command),
            "sync" => self.sync(command),
            "heartbeat" => {
                let member = command.arg(0, "member id")?;
                let generation = command.get("gen")?.ok_or("heartbeat needs gen=")?;
                let instance: Option<String> = command.get("instance")?;
                let result =
                    self.group
                        .heartbeat(self.now, member, instance.as_deref(), generation);
                Ok(self.render(Some(render_result(result)), &Effects::default()))
            }
            "leave" => {
                let member = member_arg(command)?;
                let instance: Option<String> = command.get("instance")?;
                let (result, effects) =
                    self.group
                        .leave(self.now, &self.options, &member, instance.as_deref());
                Ok(self.render(Some(render_result(result)), &effects))
            }
            "tick" => {
                let effects = self.group.tick(self.now, &self.options);
                Ok(self.render(None, &effects))
            }
            "dead" => {
                let effects = self.group.into_dead(self.now);
                Ok(self.render(None, &effects))
            }
            "group" => Ok(self.render_group()),
            other => Err(format!("unknown command {other:?}")),
        }
    }
}

/// The first argument as a member id, `-` for the empty one.
fn member_arg(command: &golden::Command) -> Result<String, String> {
    let member = command.arg(0, "member id (or -)")?;
    Ok(if member == "-" {
        String::new()
    } else {
        member.to_string()
    })
}

/// `parked #n` when the effects hold no reply to `reply`.
fn parked(effects: &Effects, reply: ReplyId) -> Option<String> {
    (!effects.replies.iter().any(|(id, _)| *id == reply)).then(|| format!("parked #{reply}"))
}

fn render_result(result: Result<(), ResponseError>) -> String {
    match result {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("error {e:?}"),
    }
}

fn bytes(b: &Bytes) -> String {
    if b.is_empty() {
        "-".to_string()
    } else {
        String::from_utf8_lossy(b).into_owned()
    }
}

fn render_reply(reply: &Reply) -> String {
    match reply {
        Reply::Join(r) => match r.error {
            Some(e) if r.member_id.is_empty() => format!("error {e:?}"),
            Some(e) => format!("error {e:?} member={}", r.member_id),
            None => {
                let members: Vec<&str> = r.members.iter().map(|(id, _, _)| id.as_str()).collect();
                format!(
                    "member={} gen={} protocol={} leader={} members=[{}]",
                    r.member_id,
                    r.generation,
                    r.protocol_name.as_deref().unwrap_or("-"),
                    r.leader,
                    members.join(",")
                )
            }
        },
        Reply::Sync(r) => match r.error {
            Some(e) => format!("error {e:?}"),
            None => format!("assignment={}", bytes(&r.assignment)),
        },
    }
}

#[test]
fn group_scripts() {
    golden::run_dir("group", || Box::new(GroupDriver::new()));
}
