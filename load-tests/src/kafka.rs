//! Small rdkafka helpers shared by the workloads: client configs, topic creation, watermarks.

use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

/// How long a metadata, admin or offsets request may take before the run gives up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client config for `bootstrap` with the extra `name=value` pairs applied last.
pub fn client_config(bootstrap: &str, extra: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (name, value) in extra {
        config.set(name, value);
    }
    config
}

/// Parses a `name=value` client setting.
pub fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

/// A consumer used only for metadata and offsets (no group, never subscribes).
pub fn metadata_consumer(bootstrap: &str) -> anyhow::Result<BaseConsumer> {
    client_config(bootstrap, &[])
        .set("enable.auto.commit", "false")
        .create()
        .context("creating a metadata client")
}

/// Number of partitions of `topic`, or `None` if the broker does not know it.
pub fn partition_count(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Option<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .with_context(|| format!("fetching metadata for topic {topic}"))?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    if found.error().is_some() || found.partitions().is_empty() {
        return Ok(None);
    }
    Ok(Some(found.partitions().len() as i32))
}

/// Creates `topic` with `partitions` partitions (replication factor 1) unless it exists, and
/// returns its partition count, which differs from `partitions` when the topic already existed.
pub fn ensure_topic(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<i32> {
    let consumer = metadata_consumer(bootstrap)?;
    if let Some(count) = partition_count(&consumer, topic)? {
        return Ok(count);
    }
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap, &[])
        .create()
        .context("creating an admin client")?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
    let results = futures::executor::block_on(admin.create_topics([&new_topic], &options))
        .with_context(|| format!("creating topic {topic}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating topic {name}: {code}"),
        }
    }
    // Metadata may lag creation briefly; poll for it within the request timeout.
    let deadline = std::time::Instant::now() + REQUEST_TIMEOUT;
    loop {
        if let Some(count) = partition_count(&consumer, topic)? {
            return Ok(count);
        }
        if std::time::Instant::now() >= deadline {
            bail!("topic {topic} was created but does not appear in metadata");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The (low, high) watermark offsets of every partition `0..partitions` of `topic`.
pub fn watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<Vec<(i64, i64)>> {
    (0..partitions)
        .map(|partition| {
            consumer
                .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
                .with_context(|| format!("fetching offsets of {topic}-{partition}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse() {
        assert_eq!(
            parse_setting("linger.ms=5"),
            Ok(("linger.ms".to_string(), "5".to_string()))
        );
        assert_eq!(
            parse_setting("a=b=c"),
            Ok(("a".to_string(), "b=c".to_string()))
        );
        assert!(parse_setting("novalue").is_err());
        assert!(parse_setting("=x").is_err());
    }
}
