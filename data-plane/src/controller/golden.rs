//! Golden scripts for the controller's metadata state machine (test-only).
//!
//! Each script in `data-plane/tests/golden/controller/` drives one fresh
//! [`MetadataStateMachine`] through the quorum's byte interface ([`StateMachine::apply`] with
//! encoded [`Command`]s at raft indexes 1, 2, ...) and shows each command's result and the
//! records it wrote; `image` shows the state. The format is in [`crate::golden`].
//!
//! # Commands
//!
//! ```text
//! brokers <id>:<rack>...                              registers and unfences each (setup)
//! register <id> [rack=R] [incarnation=N] [cluster=C]   RegisterBroker (incarnation 1, ferry-test)
//! unfence|fence|shutdown|pids <id> [epoch=E]           the broker's command; E = its current epoch
//! unregister <id>                                       UnregisterBroker
//! create <name>[:P[:F]]... [assign=1,2/2,3] [validate]  CreateTopics (P, F empty = cluster default)
//! delete <name>...                                      DeleteTopics by name
//! grow <topic> <count> [assign=...] [validate]          CreatePartitions
//! config <topic> key=value... [-key]... [legacy] [validate]   AlterConfigs (-key deletes)
//! alter-isr <topic>-<p> isr=1,2 [broker= epoch= leader_epoch= partition_epoch=]
//!                                                       AlterPartition, defaults from the image
//! elect                                                 ElectPreferredLeaders
//! feature <name> <level>                                SetFeatureLevel
//! noop                                                  NoOp
//! scram [+user:mech]... [-user:mech]... [iterations=N] [salt_bytes=N] [salted_bytes=N] [raw]
//!       AlterScramCredentials: + upserts, - deletes; mech is sha256, sha512 or a code. The
//!       driver derives the keys from a fixed salted password as the broker shell does
//!       (4096 iterations, 16-byte salt, the hash's length by default); `raw` skips that
//!       shell and puts the given values in the command as they are.
//! acl-create <binding>...                               CreateAcls, each binding written
//!       permission,principal,host,operation,resource_type,pattern,name (not validated first)
//! acl-delete <filter>...                                DeleteAcls, filters written like
//!       bindings where any field may be `any` and the pattern `match`
//! snapshot-restore                                      snapshots, restores a fresh machine
//! garbage                                               applies bytes that are not a command
//! garbage                                               applies bytes that are not a command
//! heartbeat <id> offset=N [epoch=E] [shutdown]          the pure heartbeat; changes nothing
//! image                                                 renders the image (topics by name)
//! ```
//!
//! # Output
//!
//! A command renders its result (`ok ...` or `error <Kafka error>: <message>`), then one
//! `+ ...` line per record written at its offset. Topic ids are shown as topic names. After
//! every command the image's invariants are checked.

use std::collections::BTreeMap;

use ferry_quorum::StateMachine;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::command::{ApiError, Command, CommandResult, ConfigOp, ScramDeletion, ScramUpsertion};
use super::heartbeat::heartbeat;
use super::image::MetadataImage;
use super::limits::Limits;
use super::records::{ConfigResource, LeaderChange, Listener, Record, StoredCredential};
use super::state_machine::{Delta, MetadataStateMachine};
use crate::golden::{self, Driver};
use crate::metadata::{NewTopic, NodeId, TopicId, TopicRef};
use crate::security::Principal;
use crate::security::acl::{AclBinding, AclFilter, PatternFilter};
use crate::security::scram::{ScramCredential, ScramMechanism};

/// The cluster id of every scripted cluster.
const CLUSTER: &str = "ferry-test";

/// Drives one state machine for one script.
struct ControllerDriver {
    /// The machine under test.
    machine: MetadataStateMachine,
    /// The raft index of the last applied entry.
    index: u64,
    /// Every topic name ever seen, by id (removed topics keep theirs, for rendering).
    names: BTreeMap<TopicId, String>,
}

impl ControllerDriver {
    fn new() -> Self {
        Self {
            machine: MetadataStateMachine::new(CLUSTER, Limits::default()),
            index: 0,
            names: BTreeMap::new(),
        }
    }

    fn image(&self) -> std::sync::Arc<MetadataImage> {
        self.machine.log().image()
    }

    /// The broker's epoch given as `epoch=`, else its current one (0 if unknown).
    fn epoch(&self, command: &golden::Command, id: NodeId) -> Result<i64, String> {
        Ok(command
            .get("epoch")?
            .unwrap_or_else(|| self.image().broker(id).map_or(0, |b| b.broker_epoch)))
    }

    /// Applies encoded `bytes` at the next index; renders the result and the records.
    fn apply(&mut self, bytes: &[u8]) -> String {
        self.index += 1;
        let result = CommandResult::decode(&self.machine.apply(self.index, bytes))
            .expect("the machine answers a decodable result");
        let image = self.image();
        image.check().expect("the image is consistent");
        for topic in image.topics() {
            self.names.insert(topic.id, topic.name.clone());
        }
        let mut out = vec![render_result(&result)];
        let Delta::Records(batches) = self.machine.log().read_since(self.index - 1) else {
            panic!("the history reaches the previous index");
        };
        for (_, records) in batches {
            out.extend(
                records
                    .iter()
                    .map(|r| format!("+ {}", self.render_record(r))),
            );
        }
        out.join("\n")
    }

    fn name(&self, id: &TopicId) -> &str {
        self.names.get(id).map_or("?", String::as_str)
    }

    fn render_record(&self, record: &Record) -> String {
        match record {
            Record::RegisterBroker {
                broker_id,
                incarnation_id,
                broker_epoch,
                rack,
                fenced,
                ..
            } => format!(
                "register broker={broker_id} incarnation={} epoch={broker_epoch} rack={} \
                 fenced={fenced}",
                incarnation_id.as_u128() >> 32,
                rack.as_deref().unwrap_or("-")
            ),
            Record::UnregisterBroker {
                broker_id,
                broker_epoch,
            } => format!("unregister broker={broker_id} epoch={broker_epoch}"),
            Record::FenceBroker {
                broker_id,
                broker_epoch,
            } => format!("fence broker={broker_id} epoch={broker_epoch}"),
            Record::UnfenceBroker {
                broker_id,
                broker_epoch,
            } => format!("unfence broker={broker_id} epoch={broker_epoch}"),
            Record::BrokerControlledShutdown {
                broker_id,
                broker_epoch,
            } => format!("controlled-shutdown broker={broker_id} epoch={broker_epoch}"),
            Record::Topic { name, .. } => format!("topic {name}"),
            Record::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
            } => format!(
                "partition {}-{partition} replicas={} isr={} leader={leader} \
                 leader_epoch={leader_epoch} partition_epoch={partition_epoch}",
                self.name(topic_id),
                list(replicas),
                list(isr)
            ),
            Record::PartitionChange {
                topic_id,
                partition,
                isr,
                leader,
                replicas,
            } => {
                let mut line = format!("change {}-{partition}", self.name(topic_id));
                if let Some(isr) = isr {
                    line += &format!(" isr={}", list(isr));
                }
                match leader {
                    LeaderChange::Unchanged => {}
                    LeaderChange::None => line += " leader=none",
                    LeaderChange::Broker(id) => line += &format!(" leader={id}"),
                }
                if let Some(replicas) = replicas {
                    line += &format!(" replicas={}", list(replicas));
                }
                line
            }
            Record::RemoveTopic { topic_id } => format!("remove-topic {}", self.name(topic_id)),
            Record::Config {
                resource,
                name,
                value,
            } => format!(
                "config {} {name}={}",
                render_resource(resource),
                value.as_deref().unwrap_or("<deleted>")
            ),
            Record::ProducerIds {
                broker_id,
                broker_epoch,
                next_producer_id,
            } => format!(
                "producer-ids broker={broker_id} epoch={broker_epoch} next={next_producer_id}"
            ),
            Record::FeatureLevel { name, level } => format!("feature {name}={level}"),
            Record::ScramCredential {
                name,
                mechanism,
                credential,
            } => format!("scram {name} {}", render_credential(*mechanism, credential)),
            Record::RemoveScramCredential { name, mechanism } => {
                format!("remove-scram {name} {mechanism}")
            }
            Record::Acl { binding } => format!("acl {binding}"),
            Record::RemoveAcl { binding } => format!("remove-acl {binding}"),
            Record::NoOp => "noop".to_string(),
        }
    }

    fn render_image(&self) -> String {
        let image = self.image();
        let mut out = vec![format!("offset={}", image.offset())];
        for broker in image.brokers() {
            let mut line = format!(
                "broker {} epoch={} rack={} {}",
                broker.broker_id,
                broker.broker_epoch,
                broker.rack.as_deref().unwrap_or("-"),
                if broker.fenced { "fenced" } else { "unfenced" }
            );
            if broker.in_controlled_shutdown {
                line += " shutting-down";
            }
            out.push(line);
        }
        let mut topics: Vec<_> = image.topics().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        for topic in topics {
            out.push(format!("topic {}", topic.name));
            for (i, p) in topic.partitions.iter().enumerate() {
                let leader = if p.leader < 0 {
                    "none".to_string()
                } else {
                    p.leader.to_string()
                };
                out.push(format!(
                    "  {}-{i} replicas={} isr={} leader={leader} leader_epoch={} \
                     partition_epoch={}",
                    topic.name,
                    list(&p.replicas),
                    list(&p.isr),
                    p.leader_epoch,
                    p.partition_epoch
                ));
            }
            let resource = ConfigResource::Topic(topic.name.clone());
            for (name, value) in image.configs(&resource).into_iter().flatten() {
                out.push(format!("  config {name}={value}"));
            }
        }
        if image.next_producer_id() > 0 {
            out.push(format!("next-producer-id={}", image.next_producer_id()));
        }
        for (user, credentials) in image.scram_users() {
            for (mechanism, credential) in credentials {
                out.push(format!(
                    "scram {user} {}",
                    render_credential(*mechanism, credential)
                ));
            }
        }
        for binding in image.acls() {
            out.push(format!("acl {binding}"));
        }
        let (undecodable, _) = image.undecodable_entries();
        if undecodable > 0 {
            out.push(format!("undecodable-entries={undecodable}"));
        }
        out.join("\n")
    }

    /// Builds the [`Command`] a script line names, or `None` for commands that apply nothing.
    fn command(&self, command: &golden::Command) -> Result<Option<Command>, String> {
        let id = || -> Result<NodeId, String> {
            command
                .arg(0, "broker id")?
                .parse()
                .map_err(|_| "bad broker id".to_string())
        };
        Ok(Some(match command.name.as_str() {
            "register" => {
                let id = id()?;
                Command::RegisterBroker {
                    broker_id: id,
                    incarnation_id: incarnation(id, command.get("incarnation")?.unwrap_or(1)),
                    listeners: vec![Listener {
                        name: "PLAINTEXT".into(),
                        host: format!("broker-{id}"),
                        port: 9092,
                        security_protocol: "PLAINTEXT".into(),
                    }],
                    rack: command.get("rack")?,
                    cluster_id: command.get("cluster")?.unwrap_or_else(|| CLUSTER.into()),
                }
            }
            "unfence" | "fence" | "shutdown" | "pids" => {
                let broker_id = id()?;
                let broker_epoch = self.epoch(command, broker_id)?;
                match command.name.as_str() {
                    "unfence" => Command::UnfenceBroker {
                        broker_id,
                        broker_epoch,
                    },
                    "fence" => Command::FenceBroker {
                        broker_id,
                        broker_epoch,
                    },
                    "shutdown" => Command::ControlledShutdown {
                        broker_id,
                        broker_epoch,
                    },
                    _ => Command::AllocateProducerIds {
                        broker_id,
                        broker_epoch,
                    },
                }
            }
            "unregister" => Command::UnregisterBroker { broker_id: id()? },
            "create" => {
                let assignments = assignments(command)?;
                let specs: Vec<&String> = command
                    .positional
                    .iter()
                    .filter(|p| *p != "validate")
                    .collect();
                let topics = specs
                    .iter()
                    .map(|spec| {
                        let mut parts = spec.split(':');
                        let name = parts.next().unwrap_or_default().to_string();
                        let count = |s: Option<&str>| {
                            s.filter(|s| !s.is_empty())
                                .map(|s| s.parse().map_err(|_| format!("bad count in {spec}")))
                                .transpose()
                        };
                        Ok(NewTopic {
                            name,
                            num_partitions: count(parts.next())?,
                            replication_factor: count(parts.next())?.map(|f: i32| f as i16),
                            assignments: assignments.clone(),
                            configs: vec![],
                        })
                    })
                    .collect::<Result<_, String>>()?;
                Command::CreateTopics {
                    topics,
                    validate_only: command.flag("validate"),
                }
            }
            "delete" => Command::DeleteTopics {
                topics: command
                    .positional
                    .iter()
                    .cloned()
                    .map(TopicRef::Name)
                    .collect(),
            },
            "grow" => Command::CreatePartitions {
                topic: command.arg(0, "topic")?.to_string(),
                new_total_count: command
                    .arg(1, "count")?
                    .parse()
                    .map_err(|_| "bad count".to_string())?,
                assignments: assignments(command)?,
                validate_only: command.flag("validate"),
            },
            "config" => {
                let mut changes: Vec<(String, ConfigOp)> = command
                    .named
                    .iter()
                    .map(|(k, v)| (k.clone(), ConfigOp::Set(v.clone())))
                    .collect();
                changes.extend(
                    command
                        .positional
                        .iter()
                        .filter_map(|p| p.strip_prefix('-'))
                        .map(|k| (k.to_string(), ConfigOp::Delete)),
                );
                Command::AlterConfigs {
                    resource: ConfigResource::Topic(command.arg(0, "topic")?.to_string()),
                    changes,
                    incremental: !command.flag("legacy"),
                    validate_only: command.flag("validate"),
                }
            }
            "alter-isr" => {
                let spec = command.arg(0, "<topic>-<partition>")?;
                let (topic, partition) = spec
                    .rsplit_once('-')
                    .and_then(|(t, p)| Some((t, p.parse::<i32>().ok()?)))
                    .ok_or_else(|| format!("{spec}: not <topic>-<partition>"))?;
                let image = self.image();
                let found = image.topic_by_name(topic);
                let current = found.and_then(|t| t.partitions.get(partition as usize));
                let broker_id = command
                    .get("broker")?
                    .unwrap_or_else(|| current.map_or(0, |p| p.leader));
                Command::AlterPartition {
                    broker_id,
                    broker_epoch: self.epoch(command, broker_id)?,
                    topic_id: found.map_or(Uuid::nil(), |t| t.id),
                    partition,
                    leader_epoch: command
                        .get("leader_epoch")?
                        .unwrap_or_else(|| current.map_or(0, |p| p.leader_epoch)),
                    partition_epoch: command
                        .get("partition_epoch")?
                        .unwrap_or_else(|| current.map_or(0, |p| p.partition_epoch)),
                    new_isr: command.list("isr")?.ok_or("alter-isr needs isr=")?,
                }
            }
            "elect" => Command::ElectPreferredLeaders,
            "feature" => Command::SetFeatureLevel {
                name: command.arg(0, "feature name")?.to_string(),
                level: command
                    .arg(1, "level")?
                    .parse()
                    .map_err(|_| "bad level".to_string())?,
            },
            "noop" => Command::NoOp,
            "scram" => scram_command(command)?,
            "acl-create" => Command::CreateAcls {
                bindings: command
                    .positional
                    .iter()
                    .map(|b| parse_binding(b))
                    .collect::<Result<_, _>>()?,
            },
            "acl-delete" => Command::DeleteAcls {
                filters: command
                    .positional
                    .iter()
                    .map(|f| parse_filter(f))
                    .collect::<Result<_, _>>()?,
            },
            _ => return Ok(None),
        }))
    }
}

impl Driver for ControllerDriver {
    fn run(&mut self, command: &golden::Command) -> Result<String, String> {
        if let Some(built) = self.command(command)? {
            return Ok(self.apply(&built.encode()));
        }
        match command.name.as_str() {
            "brokers" => {
                let mut ids = Vec::new();
                for spec in &command.positional {
                    let (id, rack) = spec
                        .split_once(':')
                        .ok_or_else(|| format!("{spec}: not <id>:<rack>"))?;
                    let id: NodeId = id.parse().map_err(|_| format!("{spec}: bad id"))?;
                    for line in [
                        format!("register {id} rack={rack}"),
                        format!("unfence {id}"),
                    ] {
                        let step = golden::Command::parse(&line);
                        let built = self.command(&step)?.expect("a broker command");
                        let out = self.apply(&built.encode());
                        assert!(out.starts_with("ok"), "{line}: {out}");
                    }
                    ids.push(id);
                }
                Ok(format!("ok brokers={} offset={}", list(&ids), self.index))
            }
            "garbage" => Ok(self.apply(b"garbage")),
            "snapshot-restore" => {
                let snapshot = self.machine.snapshot();
                let mut fresh = MetadataStateMachine::new(CLUSTER, Limits::default());
                fresh.restore(&snapshot)?;
                assert_eq!(
                    *fresh.log().image(),
                    *self.image(),
                    "the restored image differs"
                );
                self.machine = fresh;
                Ok(format!("ok restored offset={}", self.image().offset()))
            }
            "image" => Ok(self.render_image()),
            "heartbeat" => {
                let id: NodeId = command
                    .arg(0, "broker id")?
                    .parse()
                    .map_err(|_| "bad broker id".to_string())?;
                let offset = command.get("offset")?.ok_or("heartbeat needs offset=")?;
                let result = heartbeat(
                    &self.image(),
                    id,
                    self.epoch(command, id)?,
                    offset,
                    command.flag("shutdown"),
                );
                Ok(match result {
                    Err(e) => render_error(&e),
                    Ok(h) => {
                        let propose = match h.propose {
                            None => "none",
                            Some(Command::UnfenceBroker { .. }) => "unfence",
                            Some(Command::ControlledShutdown { .. }) => "controlled-shutdown",
                            Some(other) => panic!("a heartbeat proposes {other:?}"),
                        };
                        format!(
                            "caught-up={} fenced={} shut-down={} propose={propose}",
                            h.is_caught_up, h.is_fenced, h.should_shut_down
                        )
                    }
                })
            }
            other => Err(format!("unknown command {other:?}")),
        }
    }
}

/// `sha256`, `sha512` or a raw Kafka code.
fn mechanism_code(text: &str) -> Result<i8, String> {
    match text {
        "sha256" => Ok(ScramMechanism::Sha256.code()),
        "sha512" => Ok(ScramMechanism::Sha512.code()),
        code => code
            .parse()
            .map_err(|_| format!("{code}: not sha256, sha512 or a code")),
    }
}

/// Builds an AlterScramCredentials from `+user:mech` and `-user:mech` words.
fn scram_command(command: &golden::Command) -> Result<Command, String> {
    let iterations: u32 = command.get("iterations")?.unwrap_or(4096);
    let salt_bytes: usize = command.get("salt_bytes")?.unwrap_or(16);
    let salted_bytes: Option<usize> = command.get("salted_bytes")?;
    let raw = command.flag("raw");
    let mut deletions = Vec::new();
    let mut upsertions = Vec::new();
    for word in command.positional.iter().filter(|w| *w != "raw") {
        let (sign, rest) = word.split_at(word.len().min(1));
        let (name, mechanism) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("{word}: not +user:mech or -user:mech"))?;
        let mechanism = mechanism_code(mechanism)?;
        let name = name.to_string();
        match sign {
            "-" => deletions.push(ScramDeletion { name, mechanism }),
            "+" => {
                let salt: Vec<u8> = (0..salt_bytes).map(|i| i as u8).collect();
                let known = ScramMechanism::from_code(mechanism);
                let length = salted_bytes.unwrap_or(known.map_or(32, |m| m.digest_bytes()));
                let salted = vec![0x5a; length];
                let credential = if raw {
                    Ok(StoredCredential {
                        salt,
                        stored_key: salted.clone(),
                        server_key: salted,
                        iterations,
                    })
                } else {
                    // What the broker shell does before proposing.
                    match known {
                        None => Err(ApiError::new(
                            ResponseError::UnsupportedSaslMechanism,
                            format!("Unknown SCRAM mechanism {mechanism}"),
                        )),
                        Some(m) => ScramCredential::derive(m, &salted, &salt, iterations)
                            .map(|c| StoredCredential::from_credential(&c))
                            .map_err(|e| {
                                ApiError::new(ResponseError::UnacceptableCredential, e.to_string())
                            }),
                    }
                };
                upsertions.push(ScramUpsertion {
                    name,
                    mechanism,
                    credential,
                });
            }
            _ => return Err(format!("{word}: not +user:mech or -user:mech")),
        }
    }
    Ok(Command::AlterScramCredentials {
        deletions,
        upsertions,
    })
}

/// `permission,principal,host,operation,resource_type,pattern,name`, typed but not validated.
fn parse_binding(text: &str) -> Result<AclBinding, String> {
    let fields: Vec<&str> = text.splitn(7, ',').collect();
    let [
        permission,
        principal,
        host,
        operation,
        resource_type,
        pattern,
        name,
    ] = fields[..]
    else {
        return Err(format!("{text}: not a binding"));
    };
    let (principal_type, principal_name) = principal.split_once(':').unwrap_or((principal, ""));
    Ok(AclBinding {
        resource_type: resource_type.parse()?,
        resource_name: name.to_string(),
        pattern_type: pattern.parse()?,
        principal: Principal {
            principal_type: principal_type.to_string(),
            name: principal_name.to_string(),
        },
        host: host.to_string(),
        operation: operation.parse()?,
        permission: permission.parse()?,
    })
}

/// Like [`parse_binding`], with `any` for any field and `match` for the pattern.
fn parse_filter(text: &str) -> Result<AclFilter, String> {
    let fields: Vec<&str> = text.splitn(7, ',').collect();
    let [
        permission,
        principal,
        host,
        operation,
        resource_type,
        pattern,
        name,
    ] = fields[..]
    else {
        return Err(format!("{text}: not a filter"));
    };
    fn any<T: std::str::FromStr<Err = String>>(text: &str) -> Result<Option<T>, String> {
        (text != "any").then(|| text.parse()).transpose()
    }
    let text_or_any = |text: &str| (text != "any").then(|| text.to_string());
    Ok(AclFilter {
        resource_type: any(resource_type)?,
        resource_name: text_or_any(name),
        pattern: match pattern {
            "any" => PatternFilter::Any,
            "match" => PatternFilter::Match,
            exact => PatternFilter::Exact(exact.parse()?),
        },
        principal: text_or_any(principal),
        host: text_or_any(host),
        operation: any(operation)?,
        permission: any(permission)?,
    })
}

/// A credential's shape: never its keys.
fn render_credential(mechanism: ScramMechanism, credential: &StoredCredential) -> String {
    format!(
        "{mechanism} iterations={} salt_bytes={}",
        credential.iterations,
        credential.salt.len()
    )
}

/// The incarnation id of broker `id`'s `n`th start.
fn incarnation(id: NodeId, n: u128) -> Uuid {
    Uuid::from_u128((n << 32) | id as u128)
}

/// `assign=1,2,3/2,3,1`: replicas per partition.
fn assignments(command: &golden::Command) -> Result<Vec<Vec<NodeId>>, String> {
    let Some(value) = command.named.get("assign") else {
        return Ok(vec![]);
    };
    value
        .split('/')
        .map(|p| {
            p.split(',')
                .map(|id| id.parse().map_err(|_| format!("assign={value}: bad id")))
                .collect()
        })
        .collect()
}

fn list(ids: &[NodeId]) -> String {
    let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
    format!("[{}]", ids.join(","))
}

fn render_resource(resource: &ConfigResource) -> String {
    match resource {
        ConfigResource::Broker(id) => format!("broker:{id}"),
        ConfigResource::Cluster => "cluster".to_string(),
        ConfigResource::Topic(name) => format!("topic:{name}"),
    }
}

fn render_error(error: &ApiError) -> String {
    let name = ResponseError::try_from_code(error.code)
        .map_or_else(|| format!("code {}", error.code), |e| format!("{e:?}"));
    format!("error {name}: {}", error.message)
}

fn render_unit(result: &Result<(), ApiError>) -> String {
    match result {
        Ok(()) => "ok".to_string(),
        Err(e) => render_error(e),
    }
}

fn render_result(result: &CommandResult) -> String {
    match result {
        CommandResult::RegisterBroker(Ok(epoch)) => format!("ok epoch={epoch}"),
        CommandResult::AllocateProducerIds(Ok(block)) => {
            format!("ok first={} size={}", block.first, block.size)
        }
        CommandResult::AlterPartition(Ok(p)) => format!(
            "ok isr={} leader_epoch={} partition_epoch={}",
            list(&p.isr),
            p.leader_epoch,
            p.partition_epoch
        ),
        CommandResult::RegisterBroker(Err(e))
        | CommandResult::AllocateProducerIds(Err(e))
        | CommandResult::AlterPartition(Err(e)) => render_error(e),
        CommandResult::UnfenceBroker(r)
        | CommandResult::FenceBroker(r)
        | CommandResult::ControlledShutdown(r)
        | CommandResult::UnregisterBroker(r)
        | CommandResult::CreatePartitions(r)
        | CommandResult::AlterConfigs(r)
        | CommandResult::SetFeatureLevel(r) => render_unit(r),
        CommandResult::CreateTopics(results) => results
            .iter()
            .map(|r| match r {
                Ok(topic) => format!(
                    "created {} partitions={}",
                    topic.name,
                    topic.partitions.len()
                ),
                Err(e) => render_error(e),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        CommandResult::DeleteTopics(results) => results
            .iter()
            .map(|r| match r {
                Ok((name, _)) => format!("deleted {name}"),
                Err(e) => render_error(e),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        CommandResult::ElectPreferredLeaders(moved) => format!("ok moved={moved}"),
        CommandResult::AlterScramCredentials(results) => results
            .iter()
            .map(|(user, r)| format!("{user}: {}", render_unit(r)))
            .collect::<Vec<_>>()
            .join("\n"),
        CommandResult::CreateAcls(results) => results
            .iter()
            .map(render_unit)
            .collect::<Vec<_>>()
            .join("\n"),
        CommandResult::DeleteAcls(Err(e)) => render_error(e),
        CommandResult::DeleteAcls(Ok(matched)) => matched
            .iter()
            .enumerate()
            .flat_map(|(i, bindings)| {
                let head = format!("filter {i}: deleted {}", bindings.len());
                std::iter::once(head).chain(bindings.iter().map(|b| format!("  {b}")))
            })
            .collect::<Vec<_>>()
            .join("\n"),
        CommandResult::NoOp => "ok".to_string(),
    }
}

#[test]
fn controller_scripts() {
    golden::run_dir("controller", || Box::new(ControllerDriver::new()));
}
