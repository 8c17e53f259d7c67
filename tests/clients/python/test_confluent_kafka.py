"""confluent-kafka (librdkafka) against a real `ferry node`.

confluent-kafka refuses to build a Consumer without `group.id`; these tests use explicit
`assign()` offsets with `enable.auto.commit=false`, so the group coordinator is only looked up
and never joined. Consumer groups are tested in test_groups.py.
"""

from __future__ import annotations

import collections
import time

import confluent_kafka
import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import wait_until

NUM_MESSAGES = 1000
PARTITIONS = 3
TIMEOUT_S = 15.0


def admin_client(node) -> AdminClient:
    return AdminClient({"bootstrap.servers": node.bootstrap, "client.id": "ferry-test-admin"})


def create_topic(admin: AdminClient, name: str, partitions: int) -> None:
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)],
        operation_timeout=TIMEOUT_S,
        request_timeout=TIMEOUT_S,
    )
    futures[name].result(timeout=TIMEOUT_S)


def topic_metadata(admin: AdminClient, name: str | None = None):
    return admin.list_topics(topic=name, timeout=TIMEOUT_S)


def produce(node, topic: str, messages, **config):
    """Produces (key, value) pairs; returns [(partition, offset, key, value)] in send order."""
    producer = Producer(
        {
            "bootstrap.servers": node.bootstrap,
            "client.id": "ferry-test-producer",
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": int(TIMEOUT_S * 2000),
            **config,
        }
    )
    results: list = [None] * len(messages)
    errors: list = []

    def on_delivery(index):
        def cb(err, msg):
            if err is not None:
                errors.append((index, err))
            else:
                results[index] = (msg.partition(), msg.offset(), msg.key(), msg.value())

        return cb

    for i, (key, value) in enumerate(messages):
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery(i))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(TIMEOUT_S * 2)
    assert remaining == 0, f"{remaining} messages not delivered within the timeout"
    return results, errors


def consume(node, topic: str, partitions: int, expected: int, timeout_s: float = 30.0):
    consumer = Consumer(
        {
            "bootstrap.servers": node.bootstrap,
            "client.id": "ferry-test-consumer",
            # Required by confluent-kafka, but only used for commits/subscribe, which we avoid.
            "group.id": "ferry-test-unused-group",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        records = []
        deadline = time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            records.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
        # Nothing beyond `expected` arrives.
        extra = consumer.poll(0.5)
        assert extra is None or extra.error() is not None, "unexpected extra record"
        watermarks = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT_S)
            for p in range(partitions)
        }
        by_time = consumer.offsets_for_times(
            [TopicPartition(topic, p, 0) for p in range(partitions)], timeout=TIMEOUT_S
        )
        return records, watermarks, by_time
    finally:
        consumer.close()


def test_client_versions():
    version = confluent_kafka.version()
    version = version[0] if isinstance(version, tuple) else version
    assert str(version).startswith("2."), version
    lib_version, _ = confluent_kafka.libversion()
    assert lib_version.startswith("2."), lib_version


def test_create_produce_consume_list_delete(ferry_node, topic_name):
    admin = admin_client(ferry_node)
    create_topic(admin, topic_name, PARTITIONS)
    md = topic_metadata(admin, topic_name)
    assert topic_name in md.topics
    tmd = md.topics[topic_name]
    assert tmd.error is None, tmd.error
    assert sorted(tmd.partitions) == list(range(PARTITIONS))
    broker_ids = set(md.brokers)
    assert broker_ids == {1}, md.brokers
    for p in tmd.partitions.values():
        assert p.leader == 1 and p.replicas == [1] and p.isrs == [1], p

    messages = [(f"key-{i % 41}".encode(), f"value-{i}".encode()) for i in range(NUM_MESSAGES)]
    sent, errors = produce(ferry_node, topic_name, messages)
    assert errors == []
    assert None not in sent
    per_partition = collections.defaultdict(list)
    for row in sent:
        per_partition[row[0]].append(row)
    assert len(per_partition) > 1, "all keyed messages landed on one partition"
    for p, rows in per_partition.items():
        # Offsets acknowledged per partition are dense from 0, in send order.
        assert [r[1] for r in rows] == list(range(len(rows))), f"partition {p}"

    records, watermarks, by_time = consume(ferry_node, topic_name, PARTITIONS, NUM_MESSAGES)
    assert len(records) == NUM_MESSAGES, f"consumed {len(records)} of {NUM_MESSAGES}"
    got = collections.defaultdict(list)
    for row in records:
        got[row[0]].append(row)
    for p in range(PARTITIONS):
        assert got[p] == per_partition[p], f"partition {p} differs"
        # ListOffsets: earliest 0, latest = number of records in the partition.
        assert watermarks[p] == (0, len(per_partition[p])), (p, watermarks[p])
    for tp in by_time:
        # ListOffsets by timestamp: every record is newer than t=0, so the answer is offset 0
        # (or end-of-log for an empty partition).
        assert tp.error is None, tp
        expected = 0 if per_partition[tp.partition] else -1
        assert tp.offset == expected, tp

    assert topic_name in topic_metadata(admin).topics
    futures = admin.delete_topics([topic_name], operation_timeout=TIMEOUT_S, request_timeout=TIMEOUT_S)
    futures[topic_name].result(timeout=TIMEOUT_S)
    wait_until(lambda: topic_name not in topic_metadata(admin).topics, what="topic deleted")


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_round_trip(ferry_node, topic_name, compression):
    admin = admin_client(ferry_node)
    create_topic(admin, topic_name, 1)
    messages = [(f"k{i}".encode(), (f"payload-{i}-" * 20).encode()) for i in range(200)]
    sent, errors = produce(
        ferry_node, topic_name, messages, **{"compression.type": compression, "linger.ms": 50}
    )
    assert errors == []
    records, watermarks, _ = consume(ferry_node, topic_name, 1, len(messages))
    assert [(k, v) for _, _, k, v in records] == messages
    assert [o for _, o, _, _ in records] == list(range(len(messages)))
    assert watermarks[0] == (0, len(messages))


def test_create_existing_topic_fails(ferry_node, topic_name):
    admin = admin_client(ferry_node)
    create_topic(admin, topic_name, 1)
    with pytest.raises(KafkaException) as info:
        create_topic(admin, topic_name, 1)
    assert info.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, info.value


def test_create_invalid_topic_name_fails(ferry_node):
    admin = admin_client(ferry_node)
    with pytest.raises(KafkaException) as info:
        create_topic(admin, "no/slashes allowed", 1)
    assert info.value.args[0].code() == KafkaError.TOPIC_EXCEPTION, info.value


def test_message_larger_than_max_message_bytes_is_rejected_by_broker(ferry_node, topic_name):
    admin = admin_client(ferry_node)
    create_topic(admin, topic_name, 1)
    big = b"x" * (1048588 + 10_000)
    # Client-side limits raised so that the broker's max.message.bytes is what rejects it.
    sent, errors = produce(
        ferry_node,
        topic_name,
        [(b"big", big), (b"small", b"ok")],
        **{"message.max.bytes": 8 * 1024 * 1024, "linger.ms": 0, "retries": 0,
           "max.in.flight.requests.per.connection": 1},
    )
    assert [(i, e.code()) for i, e in errors] == [(0, KafkaError.MSG_SIZE_TOO_LARGE)], errors
    assert sent[1] is not None and sent[1][1] == 0, sent[1]
    records, _, _ = consume(ferry_node, topic_name, 1, 1, timeout_s=15)
    assert [(k, v) for _, _, k, v in records] == [(b"small", b"ok")]


def test_idempotent_producer_keeps_order_without_duplicates(ferry_node, topic_name):
    """enable.idempotence=true (InitProducerId, sequence numbers, up to 5 requests in flight
    per partition): every message once, in send order, at the offset it was acknowledged at."""
    admin = admin_client(ferry_node)
    create_topic(admin, topic_name, PARTITIONS)
    messages = [(f"k{i}".encode(), f"idem-{i}".encode()) for i in range(NUM_MESSAGES)]
    results, errors = produce(
        ferry_node,
        topic_name,
        messages,
        **{"enable.idempotence": True, "max.in.flight.requests.per.connection": 5},
    )
    assert errors == []
    records, _, _ = consume(ferry_node, topic_name, PARTITIONS, NUM_MESSAGES)
    assert sorted(records) == sorted(results), "read back exactly what was acknowledged"
    for p in range(PARTITIONS):
        acked = [r for r in results if r[0] == p]
        assert [r[1] for r in acked] == sorted(r[1] for r in acked), "offsets follow send order"
        assert [r for r in records if r[0] == p] == acked
