"""confluent-kafka's AdminClient (librdkafka) against a real `ferry node`: the everyday admin
calls beyond creating and deleting topics.

Covered: list_topics / describe_topics, describe_cluster, describe_configs for a topic and for
the broker, incremental_alter_configs on the broker (and its effect on a topic without an override), refusals of read-only and unknown broker configs, delete_records
(then consumers below the new start are out of range and the earliest offset moved), and
list_offsets with OffsetSpec.max_timestamp().

The node is shared by the module (conftest's ferry_node), so every test that changes a
broker config puts it back in a `finally`.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

TIMEOUT_S = 15.0


def admin_client(node) -> AdminClient:
    return AdminClient({"bootstrap.servers": node.bootstrap, "client.id": "ferry-test-admin"})


def create_topic(admin: AdminClient, name: str, partitions: int = 1, config=None) -> None:
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=TIMEOUT_S,
        request_timeout=TIMEOUT_S,
    )
    futures[name].result(timeout=TIMEOUT_S)


def produce(node, topic: str, values, timestamps=None, **config) -> list:
    """Produces values to partition 0 (acks=all); returns (offset, error) per value."""
    producer = Producer(
        {
            "bootstrap.servers": node.bootstrap,
            "client.id": "ferry-test-admin-producer",
            "acks": "all",
            "linger.ms": 0,
            "retries": 0,
            "message.timeout.ms": int(TIMEOUT_S * 1000),
            **config,
        }
    )
    results: list = [None] * len(values)

    def on_delivery(index):
        def cb(err, msg):
            results[index] = (None, err) if err is not None else (msg.offset(), None)

        return cb

    for i, value in enumerate(values):
        kwargs = {"timestamp": timestamps[i]} if timestamps else {}
        producer.produce(topic, value=value, partition=0, on_delivery=on_delivery(i), **kwargs)
        producer.flush(TIMEOUT_S)  # one batch per message: offsets and timestamps stay apart
    assert producer.flush(TIMEOUT_S) == 0
    return results


def broker_id(admin: AdminClient) -> str:
    cluster = admin.describe_cluster(request_timeout=TIMEOUT_S).result(timeout=TIMEOUT_S)
    return str(cluster.nodes[0].id)


def describe_configs(admin: AdminClient, resource_type, name: str) -> dict:
    resource = ConfigResource(resource_type, name)
    futures = admin.describe_configs([resource], request_timeout=TIMEOUT_S)
    return futures[resource].result(timeout=TIMEOUT_S)


def alter_broker_config(
    admin: AdminClient, broker: str, name: str, value: str | None, validate_only=False
):
    """Sets (or with None deletes) a dynamic config of one broker. (librdkafka sends a BROKER
    resource to the broker it names, so it cannot address the cluster-wide default "";
    cli/tests/integration/admin.rs and data-plane/tests/integration/admin_api.rs cover that one.)"""
    op = AlterConfigOpType.SET if value is not None else AlterConfigOpType.DELETE
    resource = ConfigResource(
        ResourceType.BROKER,
        broker,
        incremental_configs=[ConfigEntry(name, value, incremental_operation=op)],
    )
    futures = admin.incremental_alter_configs(
        [resource], request_timeout=TIMEOUT_S, validate_only=validate_only
    )
    return futures[resource].result(timeout=TIMEOUT_S)


def test_list_and_describe_topics(ferry_node, topic_name):
    admin = admin_client(ferry_node)
    create_topic(admin, topic_name, partitions=3)
    listed = admin.list_topics(timeout=TIMEOUT_S)
    assert topic_name in listed.topics
    assert len(listed.topics[topic_name].partitions) == 3

    futures = admin.describe_topics(TopicCollection([topic_name]), request_timeout=TIMEOUT_S)
    description = futures[topic_name].result(timeout=TIMEOUT_S)
    assert description.name == topic_name
    assert description.is_internal is False
    assert [p.id for p in description.partitions] == [0, 1, 2]
    node = int(broker_id(admin))
    for partition in description.partitions:
        assert partition.leader.id == node
        assert [r.id for r in partition.replicas] == [node]
        assert [r.id for r in partition.isr] == [node]

    missing = admin.describe_topics(TopicCollection(["no-such-topic-xyz"]), request_timeout=TIMEOUT_S)
    with pytest.raises(KafkaException) as info:
        missing["no-such-topic-xyz"].result(timeout=TIMEOUT_S)
    assert info.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, info.value


def test_describe_cluster(ferry_node):
    admin = admin_client(ferry_node)
    cluster = admin.describe_cluster(
        include_authorized_operations=True, request_timeout=TIMEOUT_S
    ).result(timeout=TIMEOUT_S)
    assert cluster.cluster_id == ferry_node.cluster_id
    assert len(cluster.nodes) == 1
    host, port = ferry_node.bootstrap.rsplit(":", 1)
    assert (cluster.nodes[0].host, cluster.nodes[0].port) == (host, int(port))
    assert cluster.controller is not None and cluster.controller.id == cluster.nodes[0].id


def test_describe_configs_for_a_topic_and_the_broker(ferry_node, topic_name):
    admin = admin_client(ferry_node)
    create_topic(admin, topic_name, config={"retention.ms": "3600000"})
    topic = describe_configs(admin, ResourceType.TOPIC, topic_name)
    assert topic["retention.ms"].value == "3600000"
    assert topic["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert topic["segment.bytes"].value == "1073741824"
    assert topic["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value

    broker = describe_configs(admin, ResourceType.BROKER, broker_id(admin))
    assert broker["log.retention.ms"].value == "604800000"
    assert broker["log.retention.ms"].is_read_only is False
    assert broker["num.partitions"].is_read_only is True
    assert broker["node.id"].value == broker_id(admin)
    assert broker["node.id"].source == ConfigSource.STATIC_BROKER_CONFIG.value


def test_incremental_alter_configs_changes_a_broker_default_at_once(ferry_node, topic_name):
    admin = admin_client(ferry_node)
    create_topic(admin, topic_name)
    node = broker_id(admin)
    try:
        # validate_only changes nothing.
        alter_broker_config(admin, node, "message.max.bytes", "1000", validate_only=True)
        topic = describe_configs(admin, ResourceType.TOPIC, topic_name)
        assert topic["max.message.bytes"].value == "1048588"

        alter_broker_config(admin, node, "message.max.bytes", "1000")
        topic = describe_configs(admin, ResourceType.TOPIC, topic_name)
        assert topic["max.message.bytes"].value == "1000"
        assert topic["max.message.bytes"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
        broker = describe_configs(admin, ResourceType.BROKER, node)
        assert broker["message.max.bytes"].value == "1000"
        assert broker["message.max.bytes"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value

        # The broker enforces it without a restart: a 3,000-byte message is now too large.
        results = produce(ferry_node, topic_name, [b"x" * 3000, b"small"])
        assert results[0][1] is not None and results[0][1].code() == KafkaError.MSG_SIZE_TOO_LARGE
        assert results[1] == (0, None), results
    finally:
        alter_broker_config(admin, node, "message.max.bytes", None)
    topic = describe_configs(admin, ResourceType.TOPIC, topic_name)
    assert topic["max.message.bytes"].value == "1048588"
    assert topic["max.message.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert produce(ferry_node, topic_name, [b"x" * 3000])[0][1] is None


@pytest.mark.parametrize(
    "name,value,code",
    [
        ("num.partitions", "3", KafkaError.INVALID_REQUEST),
        ("no.such.config", "1", KafkaError.INVALID_CONFIG),
        ("log.retention.ms", "soon", KafkaError.INVALID_CONFIG),
    ],
)
def test_bad_broker_config_changes_are_refused(ferry_node, name, value, code):
    admin = admin_client(ferry_node)
    node = broker_id(admin)
    before = describe_configs(admin, ResourceType.BROKER, node)
    with pytest.raises(KafkaException) as info:
        alter_broker_config(admin, node, name, value)
    assert info.value.args[0].code() == code, info.value
    after = describe_configs(admin, ResourceType.BROKER, node)
    assert {n: (e.value, e.source) for n, e in after.items()} == {
        n: (e.value, e.source) for n, e in before.items()
    }


def test_delete_records_moves_the_earliest_offset(ferry_node, topic_name):
    admin = admin_client(ferry_node)
    create_topic(admin, topic_name)
    results = produce(ferry_node, topic_name, [f"m{i}".encode() for i in range(10)])
    assert [offset for offset, _ in results] == list(range(10))

    futures = admin.delete_records([TopicPartition(topic_name, 0, 6)], request_timeout=TIMEOUT_S)
    deleted = futures[TopicPartition(topic_name, 0)].result(timeout=TIMEOUT_S)
    assert deleted.low_watermark == 6

    offsets = admin.list_offsets(
        {TopicPartition(topic_name, 0): OffsetSpec.earliest()}, request_timeout=TIMEOUT_S
    )
    assert offsets[TopicPartition(topic_name, 0)].result(timeout=TIMEOUT_S).offset == 6

    # A consumer asking for offset 0 is out of range: with auto.offset.reset=error it is told.
    consumer = Consumer(
        {
            "bootstrap.servers": ferry_node.bootstrap,
            "group.id": f"unused-{topic_name}",
            "enable.auto.commit": False,
            "auto.offset.reset": "error",
        }
    )
    try:
        consumer.assign([TopicPartition(topic_name, 0, 0)])
        deadline = time.monotonic() + TIMEOUT_S
        error = None
        while error is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is not None:
                error = msg.error()
            assert msg is None or msg.error() is not None, "no record below the log start"
        assert error is not None and error.code() == KafkaError._AUTO_OFFSET_RESET, error
    finally:
        consumer.close()

    beyond = admin.delete_records([TopicPartition(topic_name, 0, 99)], request_timeout=TIMEOUT_S)
    with pytest.raises(KafkaException) as info:
        beyond[TopicPartition(topic_name, 0)].result(timeout=TIMEOUT_S)
    assert info.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE, info.value


def test_list_offsets_max_timestamp(ferry_node, topic_name):
    admin = admin_client(ferry_node)
    create_topic(admin, topic_name)
    now = int(time.time() * 1000)
    # The newest timestamp is on the middle record, so max-timestamp is not simply "latest".
    timestamps = [now - 30_000, now - 1_000, now - 20_000]
    produce(ferry_node, topic_name, [b"a", b"b", b"c"], timestamps=timestamps)
    tp = TopicPartition(topic_name, 0)

    def offsets(spec):
        result = admin.list_offsets({tp: spec}, request_timeout=TIMEOUT_S)[tp]
        return result.result(timeout=TIMEOUT_S)

    newest = offsets(OffsetSpec.max_timestamp())
    assert (newest.offset, newest.timestamp) == (1, now - 1_000)
    assert offsets(OffsetSpec.latest()).offset == 3
    assert offsets(OffsetSpec.earliest()).offset == 0
    assert offsets(OffsetSpec.for_timestamp(now - 25_000)).offset == 1
