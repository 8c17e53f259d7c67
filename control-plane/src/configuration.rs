//! Configurations' broker properties: parsing the Java properties text users give
//! (`server.properties`, as MSK takes it), validating it against what Ferry's broker accepts,
//! and what a node finally runs with once a cluster's configuration and its own
//! `broker_config` are combined.
//!
//! Everything here is pure. The API calls [`parse_and_validate`] before storing a revision,
//! so a stored revision always starts; the reconciler calls [`node_config`] and
//! [`fingerprint`] to build assignments.
//!
//! # Precedence
//!
//! A node runs with the properties of its cluster's configuration revision, then the cluster
//! spec's `broker_config` on top (a name in both takes `broker_config`'s value). Controllers
//! get only the properties that concern them ([`concerns_controllers`]): the topic defaults
//! the active controller fills into CreateTopics (`num.partitions`,
//! `default.replication.factor`, `min.insync.replicas`, …). A change to broker-only settings
//! (`auto.create.topics.enable`, …) leaves their assignments, and so their processes, as
//! they are.
//!
//! # Properties format
//!
//! The subset of `java.util.Properties` that configuration files use: one `name=value` per
//! line; `#` or `!` starts a comment line; the separator is the first unescaped `=`, `:` or
//! whitespace; whitespace around names and before values is dropped; a line ending in an odd
//! number of `\` continues on the next; `\t`, `\n`, `\r`, `\f`, `\\`, `\=`, `\:`, `\#`, `\!`,
//! `\ ` and `\uXXXX` are escapes. A name given twice is an error (Java would silently keep the
//! last; in a reviewed configuration that is almost always a mistake).

use std::collections::BTreeMap;

use ferry_kafka_config::validate_broker_configs;

use crate::placement::Role;
use crate::spec::FieldViolation;

/// Longest `server_properties` text accepted, in bytes.
pub const SERVER_PROPERTIES_BYTES_MAX: usize = 100 * 1024;
/// Longest description accepted, in characters.
pub const DESCRIPTION_LEN_MAX: usize = 1024;

/// Broker configs Ferry sets itself for every node (from its placement); a configuration may
/// not set them.
const SET_BY_FERRY: &[&str] = &[
    "advertised.listeners",
    "broker.id",
    "broker.rack",
    "controller.listener.names",
    "controller.quorum.voters",
    "listeners",
    "log.dir",
    "log.dirs",
    "node.id",
    "process.roles",
];

/// Whether a property matters to controllers (see the module docs): the catalog says which
/// broker configs only brokers read; every other accepted config is also a default the
/// active controller applies (topic defaults filled into CreateTopics, the unclean election
/// default), so controllers get it too.
pub fn concerns_controllers(name: &str) -> bool {
    ferry_kafka_config::broker(name).is_none_or(|config| config.controllers)
}

/// One `name=value` of a properties text, with the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The line the entry starts on.
    pub line: usize,
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
}

/// Parses a properties text; every malformed line is one error, `line N: why`.
pub fn parse(text: &str) -> Result<Vec<Property>, Vec<String>> {
    let mut properties = Vec::new();
    let mut errors = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, raw)) = lines.next() {
        let line = index + 1;
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        // Join continuation lines: an odd number of trailing backslashes.
        let mut logical = trimmed.to_string();
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        match split_entry(&logical) {
            Ok((name, _)) if name.is_empty() => {
                errors.push(format!("line {line}: an entry without a name"));
            }
            Ok((name, value)) => properties.push(Property { line, name, value }),
            Err(why) => errors.push(format!("line {line}: {why}")),
        }
    }
    if errors.is_empty() {
        Ok(properties)
    } else {
        Err(errors)
    }
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1
}

/// Splits one logical line into its unescaped name and value.
fn split_entry(logical: &str) -> Result<(String, String), String> {
    let mut name = String::new();
    let mut chars = logical.chars().peekable();
    // The name runs to the first unescaped separator.
    let mut separated = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => name.push(unescape(&mut chars)?),
            '=' | ':' => {
                separated = true;
                break;
            }
            c if c.is_whitespace() => {
                // Whitespace, then optionally one `=` or `:`.
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('=' | ':')) {
                    chars.next();
                }
                separated = true;
                break;
            }
            c => name.push(c),
        }
    }
    let mut value = String::new();
    if separated {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.push(unescape(&mut chars)?),
                c => value.push(c),
            }
        }
    }
    Ok((name, value.trim_end().to_string()))
}

/// The character an escape (after its backslash) stands for.
fn unescape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, String> {
    match chars.next() {
        Some('t') => Ok('\t'),
        Some('n') => Ok('\n'),
        Some('r') => Ok('\r'),
        Some('f') => Ok('\u{c}'),
        Some('u') => {
            let hex: String = chars.by_ref().take(4).collect();
            u32::from_str_radix(&hex, 16)
                .ok()
                .filter(|_| hex.len() == 4)
                .and_then(char::from_u32)
                .ok_or_else(|| format!("`\\u{hex}` is not a valid \\uXXXX escape"))
        }
        Some(c) => Ok(c),
        None => Ok('\\'),
    }
}

/// Parses `text` and checks every entry with the catalog's checks, the ones `ferry node` runs
/// before applying it. Every problem is
/// one violation of `field`: `field` itself for a malformed line or a text too long,
/// `field[name]` for a name Ferry does not accept, a value it refuses, or a name given twice;
/// each description starts with `line N:`.
pub fn parse_and_validate(
    field: &str,
    text: &str,
) -> Result<BTreeMap<String, String>, Vec<FieldViolation>> {
    if text.len() > SERVER_PROPERTIES_BYTES_MAX {
        return Err(vec![FieldViolation::new(
            field,
            format!(
                "must be at most {SERVER_PROPERTIES_BYTES_MAX} bytes, not {}",
                text.len()
            ),
        )]);
    }
    let properties = match parse(text) {
        Ok(properties) => properties,
        Err(errors) => {
            return Err(errors
                .into_iter()
                .map(|e| FieldViolation::new(field, e))
                .collect());
        }
    };
    let mut violations = Vec::new();
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    for Property { line, name, value } in &properties {
        let key_field = format!("{field}[{name}]");
        if let Some(first) = first_line.get(name) {
            violations.push(FieldViolation::new(
                key_field,
                format!("line {line}: {name} is already set on line {first}"),
            ));
            continue;
        }
        first_line.insert(name.clone(), *line);
        if SET_BY_FERRY.contains(&name.as_str()) {
            violations.push(FieldViolation::new(
                key_field,
                format!(
                    "line {line}: {name} is set by Ferry for each node and cannot be configured"
                ),
            ));
            continue;
        }
        if let Err(why) = validate_broker_configs([(name.as_str(), value.as_str())]) {
            violations.push(FieldViolation::new(
                key_field,
                format!("line {line}: {why}"),
            ));
            continue;
        }
        map.insert(name.clone(), value.clone());
    }
    if violations.is_empty()
        && let Err(why) = validate_broker_configs(map.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    {
        violations.push(FieldViolation::new(field, why.to_string()));
    }
    if violations.is_empty() {
        Ok(map)
    } else {
        Err(violations)
    }
}

/// What a node of `role` runs with: `configuration` (the cluster's configuration revision's
/// properties), then `broker_config` on top; for controllers only what concerns them.
pub fn node_config(
    role: Role,
    configuration: &BTreeMap<String, String>,
    broker_config: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut config = configuration.clone();
    config.extend(broker_config.iter().map(|(k, v)| (k.clone(), v.clone())));
    if role == Role::Controller {
        config.retain(|name, _| concerns_controllers(name));
    }
    config
}

/// A stable fingerprint of a node's config: 16 hex digits of FNV-1a (64-bit) over its
/// `name=value` lines in name order. Equal configs have equal fingerprints on every build.
pub fn fingerprint(config: &BTreeMap<String, String>) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for (name, value) in config {
        for byte in name
            .bytes()
            .chain([b'='])
            .chain(value.bytes())
            .chain([b'\n'])
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn java_properties_parse() {
        let text = "# comment\n! also a comment\n\n  num.partitions = 5\nauto.create.topics.enable:false\n\
                    log.retention.ms 86400000\nlog.cleanup.policy=\\\n    delete\nkey\\ with\\=escapes=a\\tb\n";
        let parsed: Vec<(usize, String, String)> = parse(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.line, p.name, p.value))
            .collect();
        assert_eq!(
            parsed,
            vec![
                (4, "num.partitions".into(), "5".into()),
                (5, "auto.create.topics.enable".into(), "false".into()),
                (6, "log.retention.ms".into(), "86400000".into()),
                (7, "log.cleanup.policy".into(), "delete".into()),
                (9, "key with=escapes".into(), "a\tb".into()),
            ]
        );
        assert_eq!(parse("=5\nx=\\u12").unwrap_err().len(), 2);
    }

    #[test]
    fn validation_names_the_line_and_the_key() {
        assert_eq!(
            parse_and_validate(
                "server_properties",
                "num.partitions=5\n# ok\nauto.create.topics.enable=false\n"
            ),
            Ok(map(&[
                ("auto.create.topics.enable", "false"),
                ("num.partitions", "5")
            ]))
        );
        let text = "num.partitions=zero\nno.such.config=1\nbroker.id=7\nnum.partitions=3\n=x\n";
        // A malformed line hides the rest: nothing else is checked until the text parses.
        let bad = parse_and_validate("server_properties", text).unwrap_err();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].field, "server_properties");
        assert!(bad[0].description.starts_with("line 5:"), "{}", bad[0]);

        let text = "num.partitions=zero\nno.such.config=1\nbroker.id=7\nnum.partitions=3\n";
        let bad = parse_and_validate("server_properties", text).unwrap_err();
        let fields: Vec<(&str, &str)> = bad
            .iter()
            .map(|v| (v.field.as_str(), &v.description[..7]))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("server_properties[num.partitions]", "line 1:"),
                ("server_properties[no.such.config]", "line 2:"),
                ("server_properties[broker.id]", "line 3:"),
                ("server_properties[num.partitions]", "line 4:"),
            ]
        );
        assert!(bad[1].description.contains("unknown"), "{}", bad[1]);
        assert!(bad[2].description.contains("set by Ferry"), "{}", bad[2]);
        assert!(
            bad[3].description.contains("already set on line 1"),
            "{}",
            bad[3]
        );

        let long = "x".repeat(SERVER_PROPERTIES_BYTES_MAX + 1);
        assert_eq!(parse_and_validate("p", &long).unwrap_err()[0].field, "p");
    }

    #[test]
    fn broker_config_goes_on_top_and_controllers_get_what_concerns_them() {
        let configuration = map(&[
            ("num.partitions", "5"),
            ("auto.create.topics.enable", "false"),
        ]);
        let spec = map(&[("num.partitions", "7")]);
        assert_eq!(
            node_config(Role::Broker, &configuration, &spec),
            map(&[
                ("auto.create.topics.enable", "false"),
                ("num.partitions", "7")
            ])
        );
        assert_eq!(
            node_config(Role::Controller, &configuration, &spec),
            map(&[("num.partitions", "7")])
        );
    }

    #[test]
    fn fingerprints_follow_the_content() {
        let a = map(&[("num.partitions", "5")]);
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        assert_ne!(
            fingerprint(&a),
            fingerprint(&map(&[("num.partitions", "6")]))
        );
        assert_ne!(fingerprint(&a), fingerprint(&BTreeMap::new()));
        assert_eq!(fingerprint(&BTreeMap::new()).len(), 16);
    }
}
