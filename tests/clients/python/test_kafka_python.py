"""kafka-python 3.x against a real `ferry node`.

kafka-python 3.x opens every connection with ApiVersions v4 and refuses to bootstrap if it
cannot decode the answer, so merely constructing a client here is a compatibility check.
The consumer here runs without a group (group_id=None) on explicitly assigned partitions;
consumer groups are tested in test_groups.py.
"""

from __future__ import annotations

import collections
import time

import kafka
import kafka.errors as errors
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from conftest import wait_until

NUM_MESSAGES = 1000
PARTITIONS = 3
CLIENT_TIMEOUT_MS = 15_000


def admin_client(node) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=node.bootstrap,
        client_id="ferry-test-admin",
        request_timeout_ms=CLIENT_TIMEOUT_MS,
    )


def producer_client(node, **overrides) -> KafkaProducer:
    config = dict(
        bootstrap_servers=node.bootstrap,
        client_id="ferry-test-producer",
        acks="all",
        # A plain producer; kafka-python 3.x's idempotent default is covered by
        # test_default_producer_config and test_idempotent_producer_keeps_order_without_duplicates.
        enable_idempotence=False,
        linger_ms=5,
        request_timeout_ms=CLIENT_TIMEOUT_MS,
        max_block_ms=CLIENT_TIMEOUT_MS,
    )
    config.update(overrides)
    return KafkaProducer(**config)


def consume_all(node, topic: str, partitions: int, expected: int, timeout_s: float = 30.0):
    """Reads `expected` records from the start of every partition of `topic`, with no group."""
    consumer = KafkaConsumer(
        bootstrap_servers=node.bootstrap,
        client_id="ferry-test-consumer",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=CLIENT_TIMEOUT_MS + 5_000,
        fetch_max_wait_ms=200,
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records = []
        deadline = time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        # A short extra poll must not return anything more (no duplicates beyond `expected`).
        for batch in consumer.poll(timeout_ms=300).values():
            records.extend(batch)
        return records
    finally:
        consumer.close()


def test_client_version_is_3x():
    assert kafka.__version__.startswith("3."), kafka.__version__


def test_bootstrap_with_apiversions_v4(ferry_node):
    admin = admin_client(ferry_node)
    try:
        # The client negotiated versions with the broker (a decode failure would have raised)
        # and inferred a modern broker version from the ApiVersions answer.
        version = admin._manager.broker_version
        assert version >= (2, 4), version
        assert isinstance(admin.list_topics(), list)
    finally:
        admin.close()


def test_create_produce_consume_list_delete(ferry_node, topic_name):
    admin = admin_client(ferry_node)
    try:
        admin.create_topics(
            {topic_name: {"num_partitions": PARTITIONS, "replication_factor": 1}},
            timeout_ms=CLIENT_TIMEOUT_MS,
        )
        wait_until(lambda: topic_name in admin.list_topics(), what=f"{topic_name} listed")
        described = admin.describe_topics([topic_name])
        assert len(described) == 1 and described[0]["error_code"] == 0, described
        assert len(described[0]["partitions"]) == PARTITIONS, described

        producer = producer_client(ferry_node)
        try:
            futures = []
            for i in range(NUM_MESSAGES):
                key = f"key-{i % 37}".encode()
                value = f"value-{i}".encode()
                futures.append((key, value, producer.send(topic_name, key=key, value=value)))
            producer.flush(timeout=30)
            sent = collections.defaultdict(list)  # partition -> [(offset, key, value)]
            for key, value, fut in futures:
                md = fut.get(timeout=30)
                assert md.topic == topic_name
                assert 0 <= md.partition < PARTITIONS
                sent[md.partition].append((md.offset, key, value))
        finally:
            producer.close(timeout=10)

        assert sum(len(v) for v in sent.values()) == NUM_MESSAGES
        # The default partitioner hashes keys: 37 distinct keys must land on more than one partition.
        assert len(sent) > 1, "all keyed messages landed on one partition"
        for p, rows in sent.items():
            offsets = [o for o, _, _ in rows]
            assert offsets == list(range(len(rows))), f"partition {p}: offsets not dense from 0"

        records = consume_all(ferry_node, topic_name, PARTITIONS, NUM_MESSAGES)
        assert len(records) == NUM_MESSAGES, f"consumed {len(records)} of {NUM_MESSAGES}"
        got = collections.defaultdict(list)
        for r in records:
            got[r.partition].append((r.offset, r.key, r.value))
        for p in range(PARTITIONS):
            # Same records, same order, same offsets as acknowledged to the producer.
            assert got[p] == sorted(sent[p]), f"partition {p} differs"
        values = sorted(v for r in got.values() for _, _, v in r)
        assert values == sorted(f"value-{i}".encode() for i in range(NUM_MESSAGES))

        # Per-key order: records of one key keep their send order.
        by_key = collections.defaultdict(list)
        for p in range(PARTITIONS):
            for _, key, value in got[p]:
                by_key[key].append(int(value.decode().split("-")[1]))
        for key, seq in by_key.items():
            assert seq == sorted(seq), f"key {key!r} out of order"

        assert topic_name in admin.list_topics()
        admin.delete_topics([topic_name], timeout_ms=CLIENT_TIMEOUT_MS)
        wait_until(lambda: topic_name not in admin.list_topics(), what=f"{topic_name} deleted")
    finally:
        admin.close()


def test_create_existing_topic_fails(ferry_node, topic_name):
    admin = admin_client(ferry_node)
    try:
        admin.create_topics({topic_name: {"num_partitions": 1, "replication_factor": 1}})
        with pytest.raises(errors.TopicAlreadyExistsError):
            admin.create_topics({topic_name: {"num_partitions": 1, "replication_factor": 1}})
        admin.delete_topics([topic_name])
    finally:
        admin.close()


@pytest.mark.parametrize("bad_name", ["bad topic!", "x" * 250, ".."])
def test_create_invalid_topic_name_fails(ferry_node, bad_name):
    admin = admin_client(ferry_node)
    try:
        spec = {bad_name: {"num_partitions": 1, "replication_factor": 1}}
        # The broker (not the client) rejects the name: INVALID_TOPIC_EXCEPTION (17) ...
        raw = admin.create_topics(spec, raise_errors=False)
        assert [t["error_code"] for t in raw["topics"]] == [17], raw
        # ... which kafka-python raises as InvalidTopicError.
        with pytest.raises(errors.InvalidTopicError):
            admin.create_topics(spec)
        assert bad_name not in admin.list_topics()
    finally:
        admin.close()


def test_message_larger_than_max_message_bytes_is_rejected_by_broker(ferry_node, topic_name):
    admin = admin_client(ferry_node)
    admin.create_topics({topic_name: {"num_partitions": 1, "replication_factor": 1}})
    admin.close()
    # The client must let the record through (its own limit is max_request_size), so that the
    # broker's max.message.bytes (default 1048588) is what rejects it.
    producer = producer_client(
        ferry_node, max_request_size=8 * 1024 * 1024, batch_size=16384, retries=0, linger_ms=0
    )
    try:
        big = b"x" * (1048588 + 10_000)
        fut = producer.send(topic_name, key=b"big", value=big)
        with pytest.raises(errors.MessageSizeTooLargeError):
            fut.get(timeout=30)
        # The partition is still usable afterwards, and the rejected record was not written.
        md = producer.send(topic_name, key=b"small", value=b"ok").get(timeout=30)
        assert md.offset == 0, md
    finally:
        producer.close(timeout=10)
    records = consume_all(ferry_node, topic_name, 1, 1, timeout_s=15)
    assert [(r.key, r.value) for r in records] == [(b"small", b"ok")]


def test_default_producer_config(ferry_node, topic_name):
    """A KafkaProducer with kafka-python 3.x defaults (idempotence on by default: InitProducerId
    and sequence numbers)."""
    producer = KafkaProducer(
        bootstrap_servers=ferry_node.bootstrap,
        request_timeout_ms=CLIENT_TIMEOUT_MS,
        max_block_ms=CLIENT_TIMEOUT_MS,
    )
    try:
        md = producer.send(topic_name, b"default-config").get(timeout=30)
        assert md.offset == 0
    finally:
        producer.close(timeout=10)


def test_idempotent_producer_keeps_order_without_duplicates(ferry_node, topic_name):
    """enable_idempotence=True: every record once, in send order per partition."""
    admin = admin_client(ferry_node)
    try:
        admin.create_topics({topic_name: {"num_partitions": PARTITIONS, "replication_factor": 1}})
    finally:
        admin.close()
    producer = producer_client(ferry_node, enable_idempotence=True)
    sent = collections.defaultdict(list)
    try:
        futures = []
        for i in range(NUM_MESSAGES):
            value = f"idem-{i}".encode()
            futures.append((value, producer.send(topic_name, value=value, partition=i % PARTITIONS)))
        for value, fut in futures:
            md = fut.get(timeout=30)
            sent[md.partition].append((md.offset, value))
    finally:
        producer.close(timeout=10)
    records = consume_all(ferry_node, topic_name, PARTITIONS, NUM_MESSAGES)
    got = collections.defaultdict(list)
    for r in records:
        got[r.partition].append((r.offset, r.value))
    for p in range(PARTITIONS):
        assert sorted(sent[p]) == sent[p], "acknowledged offsets follow the send order"
        assert got[p] == sent[p], f"partition {p} holds exactly what was acknowledged, in order"
