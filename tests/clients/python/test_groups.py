"""Consumer groups against a real `ferry node`: kafka-python and confluent-kafka consumers, and
the confluent-kafka AdminClient's group operations.

Each test produces numbered messages, consumes them in a group with commits, and checks what
the broker's group coordinator reports. Waits are bounded polls (they only turn a hang into a
failure); nothing asserts a duration. The node keeps Kafka's default
`group.initial.rebalance.delay.ms` (3 s), so each first rebalance takes about that long.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, ConsumerGroupState, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition

from conftest import wait_until

PARTITIONS = 4
MESSAGES = 200
TIMEOUT_S = 60.0


def admin_client(node) -> AdminClient:
    return AdminClient({"bootstrap.servers": node.bootstrap, "client.id": "ferry-test-admin"})


def create_topic(node, name: str) -> None:
    admin = admin_client(node)
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)],
        operation_timeout=TIMEOUT_S,
        request_timeout=TIMEOUT_S,
    )
    futures[name].result(timeout=TIMEOUT_S)


def produce(node, topic: str, count: int) -> list[str]:
    producer = Producer({"bootstrap.servers": node.bootstrap, "acks": "all", "linger.ms": 5})
    payloads = [f"m-{i}" for i in range(count)]
    failures = []

    def delivered(err, _msg):
        if err is not None:
            failures.append(err)

    for p in payloads:
        producer.produce(topic, key=p.encode(), value=p.encode(), on_delivery=delivered)
    assert producer.flush(TIMEOUT_S) == 0, "every message delivered"
    assert not failures, failures
    return payloads


def consume_group_confluent(node, topic: str, group: str, expected: int, assignor: str) -> dict:
    """Consumes until `expected` distinct messages, committing each synchronously."""
    consumer = Consumer(
        {
            "bootstrap.servers": node.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": assignor,
            "session.timeout.ms": 10000,
        }
    )
    consumer.subscribe([topic])
    seen: dict[str, int] = {}
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(seen) < expected:
            assert time.monotonic() < deadline, f"consumed {len(seen)}/{expected} in {TIMEOUT_S}s"
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            value = msg.value().decode()
            seen[value] = seen.get(value, 0) + 1
            consumer.commit(message=msg, asynchronous=False)
    finally:
        consumer.close()
    return seen


def test_confluent_consumer_group_commits_and_resumes(ferry_node, topic_name):
    create_topic(ferry_node, topic_name)
    first = produce(ferry_node, topic_name, MESSAGES)
    group = f"{topic_name}-g"
    seen = consume_group_confluent(ferry_node, topic_name, group, len(first), "range")
    assert sorted(seen) == sorted(first)
    assert set(seen.values()) == {1}

    # A new consumer in the same group starts from the committed offsets: it reads only what
    # was produced after the commits.
    produce_more = Producer({"bootstrap.servers": ferry_node.bootstrap, "acks": "all"})
    for i in range(20):
        produce_more.produce(topic_name, value=f"late-{i}".encode())
    assert produce_more.flush(TIMEOUT_S) == 0
    again = consume_group_confluent(ferry_node, topic_name, group, 20, "cooperative-sticky")
    assert sorted(again) == sorted(f"late-{i}" for i in range(20))


def test_kafka_python_consumer_group(ferry_node, topic_name):
    create_topic(ferry_node, topic_name)
    payloads = produce(ferry_node, topic_name, MESSAGES)
    group = f"{topic_name}-kp"
    consumer = KafkaConsumer(
        topic_name,
        bootstrap_servers=ferry_node.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=int(TIMEOUT_S * 1000),
        session_timeout_ms=10000,
    )
    seen = []
    try:
        for msg in consumer:
            seen.append(msg.value.decode())
            if len(seen) == len(payloads):
                break
        consumer.commit()
        committed = {
            p: consumer.committed(KpTopicPartition(topic_name, p)) for p in range(PARTITIONS)
        }
    finally:
        consumer.close()
    assert sorted(seen) == sorted(payloads)
    assert sum(committed.values()) == len(payloads), committed

    # The committed offsets are visible through another client library.
    reader = Consumer({"bootstrap.servers": ferry_node.bootstrap, "group.id": group})
    try:
        offsets = reader.committed(
            [TopicPartition(topic_name, p) for p in range(PARTITIONS)], timeout=TIMEOUT_S
        )
    finally:
        reader.close()
    assert sum(tp.offset for tp in offsets) == len(payloads)


def test_admin_client_lists_describes_and_deletes_groups(ferry_node, topic_name):
    create_topic(ferry_node, topic_name)
    produce(ferry_node, topic_name, 50)
    group = f"{topic_name}-admin"
    admin = admin_client(ferry_node)

    consumer = Consumer(
        {
            "bootstrap.servers": ferry_node.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic_name])
    try:
        got = 0
        deadline = time.monotonic() + TIMEOUT_S
        while got < 50:
            assert time.monotonic() < deadline, "consumed the messages"
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            got += 1
            consumer.commit(message=msg, asynchronous=False)

        def listed():
            result = admin.list_consumer_groups(request_timeout=TIMEOUT_S).result()
            return next((g for g in result.valid if g.group_id == group), None)

        listing = wait_until(listed, timeout_s=TIMEOUT_S, what="the group in ListGroups")
        assert listing.state == ConsumerGroupState.STABLE

        described = admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S)[group].result()
        assert described.state == ConsumerGroupState.STABLE
        assert len(described.members) == 1
        assigned = {tp.partition for tp in described.members[0].assignment.topic_partitions}
        assert assigned == set(range(PARTITIONS))

        # Deleting a group with a member is refused and changes nothing.
        futures = admin.delete_consumer_groups([group], request_timeout=TIMEOUT_S)
        try:
            futures[group].result()
            raise AssertionError("deleting a non-empty group succeeded")
        except Exception as e:  # KafkaException wrapping the KafkaError
            assert e.args[0].code() == KafkaError.NON_EMPTY_GROUP, e
    finally:
        consumer.close()

    from confluent_kafka import ConsumerGroupTopicPartitions

    request = [ConsumerGroupTopicPartitions(group)]
    offsets = admin.list_consumer_group_offsets(request, request_timeout=TIMEOUT_S)[group].result()
    assert sum(tp.offset for tp in offsets.topic_partitions if tp.topic == topic_name) == 50

    # Empty now: the group shows as Empty, and then it can be deleted.
    def empty():
        result = admin.list_consumer_groups(
            request_timeout=TIMEOUT_S, states={ConsumerGroupState.EMPTY}
        ).result()
        return any(g.group_id == group for g in result.valid)

    wait_until(empty, timeout_s=TIMEOUT_S, what="the group Empty")
    admin.delete_consumer_groups([group], request_timeout=TIMEOUT_S)[group].result()
    result = admin.list_consumer_groups(request_timeout=TIMEOUT_S).result()
    assert group not in {g.group_id for g in result.valid}


def test_a_static_member_rejoins_under_its_instance_id_without_a_second_member(
    ferry_node, topic_name
):
    create_topic(ferry_node, topic_name)
    produce(ferry_node, topic_name, 20)
    group = f"{topic_name}-static"
    admin = admin_client(ferry_node)

    def static_consumer():
        consumer = Consumer(
            {
                "bootstrap.servers": ferry_node.bootstrap,
                "group.id": group,
                "group.instance.id": "static-1",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 30000,
            }
        )
        consumer.subscribe([topic_name])
        return consumer

    def consume(consumer, count: int) -> list[str]:
        got = []
        deadline = time.monotonic() + TIMEOUT_S
        while len(got) < count:
            assert time.monotonic() < deadline, f"consumed {len(got)}/{count}"
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            got.append(msg.value().decode())
            consumer.commit(message=msg, asynchronous=False)
        return got

    def members():
        described = admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S)[group].result()
        return described.state, [(m.member_id, m.group_instance_id) for m in described.members]

    first = static_consumer()
    assert len(consume(first, 20)) == 20
    state, before = members()
    assert state == ConsumerGroupState.STABLE
    assert [instance for _, instance in before] == ["static-1"]
    # A static member does not leave on close (KIP-345): the group keeps it for its session.
    first.close()
    assert members()[1] == before

    # The same instance comes back with a new member id, replaces the old one, and resumes
    # from the commits.
    second = static_consumer()
    try:
        late = Producer({"bootstrap.servers": ferry_node.bootstrap, "acks": "all"})
        for i in range(10):
            late.produce(topic_name, value=f"static-late-{i}".encode())
        assert late.flush(TIMEOUT_S) == 0
        assert sorted(consume(second, 10)) == sorted(f"static-late-{i}" for i in range(10))
        state, after = members()
        assert state == ConsumerGroupState.STABLE
        assert [instance for _, instance in after] == ["static-1"], after
        assert after[0][0] != before[0][0], "a new member id for the returning instance"
    finally:
        second.close()
