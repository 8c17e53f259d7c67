//! The catalog's own checks: it is well formed, every default is a valid value, synonyms map
//! both ways, and bad values are refused with a sentence naming the config.

use super::*;

#[test]
fn names_are_sorted_and_unique_and_topic_names_are_unique() {
    let names: Vec<&str> = CATALOG.iter().map(|c| c.name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted);
    let mut topic_names: Vec<&str> = CATALOG.iter().filter_map(|c| c.topic_name()).collect();
    let count = topic_names.len();
    topic_names.sort();
    topic_names.dedup();
    assert_eq!(topic_names.len(), count, "a topic name is claimed twice");
}

#[test]
fn every_default_matches_its_type_and_validates() {
    for config in CATALOG {
        match (config.default, config.kind) {
            (DefaultValue::None, _) => {
                assert!(
                    config.mode == Mode::Fixed || config.mode == Mode::Ignored,
                    "{config}: only fixed and ignored configs go without a default"
                );
                continue;
            }
            (DefaultValue::Bool(_), Type::Boolean) => {}
            (DefaultValue::Int(_), Type::Int | Type::Short | Type::Long) => {}
            (DefaultValue::Text(_), Type::String | Type::List) => {}
            (default, kind) => panic!("{config}: default {default:?} is not a {kind:?}"),
        }
        let value = config.default_value().unwrap();
        assert_eq!(config.validate(&value), Ok(()), "{config}");
        if config.is_broker() && config.mode != Mode::Fixed {
            assert_eq!(validate_broker(config.name, &value), Ok(config), "{config}");
        }
        if let Some(topic_name) = config.topic_name() {
            assert!(validate_topic(topic_name, &value).is_ok(), "{config}");
        }
    }
    assert_eq!(validate_broker_configs([]), Ok(()));
}

#[test]
fn a_synonym_maps_both_ways() {
    let broker_side = broker("log.retention.ms").unwrap();
    assert_eq!(broker_side.topic_name(), Some("retention.ms"));
    assert_eq!(synonym_of_topic("retention.ms"), Some(broker_side));
    let topic_side = topic("retention.ms").unwrap();
    assert_eq!(topic_side.name, "retention.ms");
    assert_eq!(
        (topic_side.kind, topic_side.default),
        (Type::Long, DefaultValue::Int(WEEK_MS))
    );
    // A broker-only config has no topic form, and a topic config is no broker config.
    assert_eq!(broker("num.partitions").unwrap().topic_name(), None);
    assert!(topic("num.partitions").is_none());
    assert!(broker("retention.ms").is_none());
    // Every synonym pair resolves from either end to the same row.
    for config in broker_configs() {
        if let Some(topic_name) = config.topic_name() {
            assert_eq!(synonym_of_topic(topic_name), Some(config));
        }
    }
}

#[test]
fn bad_values_give_a_sentence_naming_the_config() {
    let cases = [
        ("num.partitions", "0", "must be at least 1"),
        ("num.partitions", "many", "not an integer"),
        ("log.segment.bytes", "13", "must be at least 14"),
        (
            "log.segment.bytes",
            "4294967296",
            "must be at most 2147483647",
        ),
        (
            "default.replication.factor",
            "40000",
            "must be at most 32767",
        ),
        ("auto.create.topics.enable", "yes", "must be true or false"),
        (
            "log.cleanup.policy",
            "delete,compact",
            "compaction is not supported yet",
        ),
        ("log.cleanup.policy", "shred", "must be delete"),
        (
            "log.message.timestamp.type",
            "Now",
            "must be CreateTime or LogAppendTime",
        ),
        (
            "compression.type",
            "gzip",
            "as the producer compressed them",
        ),
        ("no.such.config", "1", "unknown broker configuration"),
        ("node.id", "7", "set by Ferry"),
    ];
    for (name, value, reason) in cases {
        let err = validate_broker(name, value).unwrap_err();
        assert_eq!((err.name.as_str(), err.value.as_str()), (name, value));
        assert!(err.reason.contains(reason), "{name}={value}: {err}");
        assert!(err.to_string().starts_with(&format!(
            "invalid value {value:?} for configuration {name}: "
        )));
    }
    // Checked as a topic config, the message names the topic config.
    let err = validate_topic("retention.ms", "soon").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value \"soon\" for configuration retention.ms: not an integer"
    );
    let err = validate_topic("retention.hours", "1").unwrap_err();
    assert_eq!(err.reason, "unknown topic configuration");
}

#[test]
fn orders_between_configs_count_defaults() {
    assert_eq!(
        validate_broker_configs([("group.min.session.timeout.ms", "1000")]),
        Ok(())
    );
    let err = validate_broker_configs([("group.min.session.timeout.ms", "2000000")]).unwrap_err();
    assert_eq!(err.name, "group.min.session.timeout.ms");
    assert!(
        err.reason
            .contains("group.max.session.timeout.ms (1800000)"),
        "{err}"
    );
    assert_eq!(
        validate_broker_configs([
            ("group.min.session.timeout.ms", "2000000"),
            ("group.max.session.timeout.ms", "3000000"),
        ]),
        Ok(())
    );
}

#[test]
fn constants_read_the_table() {
    const IDLE: i64 = default_int("connections.max.idle.ms");
    assert_eq!(IDLE, 600_000);
    assert_eq!(
        broker("max.connections.per.ip").unwrap().default_int(),
        1000
    );
    assert_eq!(topic_configs().len(), 13);
}
