"""confluent-kafka reads the metadata of a 60-broker cluster, the largest Ferry makes.

librdkafka 2.3 and later sizes the buffer it parses a Metadata response into from the
response's size, and each broker entry costs it a fixed amount besides its host and rack
strings: with host 127.0.0.1 and a one-character rack every entry ran 4 bytes short, so every
Metadata request of a cluster of 28 or more brokers failed ("Protocol parse failure for
Metadata v12"), with or without topics (librdkafka's broker-only refreshes carry none). Ferry's
brokers present their zone as their rack, and `ferry dev`'s zones are named so that the
entries fit. This test builds the full-size cluster through the control plane of a real
`ferry dev` and reads it with no topics, with one, and with a hundred.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import REPO_ROOT, FerryDev, ferry_bin

BROKERS = 60
CONTROLLERS = 5
# 60 brokers and 5 controllers over 3 hosts.
NODES_PER_HOST = 32
CREATE_TIMEOUT_S = 240
METADATA_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def big_cluster():
    artifacts = Path(os.environ.get("FERRY_TEST_ARTIFACTS", REPO_ROOT / "tests" / "artifacts"))
    dev = FerryDev(artifacts / "metadata-at-scale.ferry-dev.log",
                   ["--max-nodes-per-host", str(NODES_PER_HOST)])
    try:
        name = f"big-{uuid.uuid4().hex[:6]}"
        out = subprocess.run(
            [str(ferry_bin()), "cluster", "create", name, "--brokers", str(BROKERS),
             "--controllers", str(CONTROLLERS), "--storage-gib", "1", "--wait",
             "--wait-timeout-secs", str(CREATE_TIMEOUT_S), "--output", "json", "--api", dev.url],
            env={**os.environ, "FERRY_TOKEN": dev.admin_token},
            capture_output=True, text=True, timeout=CREATE_TIMEOUT_S + 30,
        )
        assert out.returncode == 0, f"cluster create: {out.stderr}\n{out.stdout}"
        yield json.loads(out.stdout)
    finally:
        dev.stop()


def read_metadata(admin: AdminClient):
    """One metadata request; librdkafka raises "Local: Bad message format" (or times out) on a
    response it cannot parse."""
    return admin.list_topics(timeout=METADATA_TIMEOUT_S)


@pytest.mark.timeout(900)
def test_a_60_broker_cluster_is_readable_with_no_topics_one_and_a_hundred(big_cluster):
    bootstrap = big_cluster["status"]["bootstrapBrokers"]
    admin = AdminClient({"bootstrap.servers": bootstrap})

    md = read_metadata(admin)
    assert len(md.brokers) == BROKERS, sorted(md.brokers)
    assert md.cluster_id == big_cluster["id"]

    # One topic: produce and read one message through it.
    topic = "scale-one"
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)])[topic].result(60)
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, value=b"across sixty brokers")
    assert producer.flush(60) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"scale-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = None
    deadline = time.monotonic() + 60
    while got is None and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None:
            assert msg.error() is None, msg.error()
            got = msg.value()
    consumer.close()
    assert got == b"across sixty brokers"

    # A hundred topics of three partitions each.
    many = [f"scale-many-{i}" for i in range(100)]
    for t, future in admin.create_topics(
            [NewTopic(t, num_partitions=3, replication_factor=3) for t in many]).items():
        future.result(120)
    md = read_metadata(admin)
    assert len(md.brokers) == BROKERS
    assert set(many) <= set(md.topics), sorted(set(many) - set(md.topics))[:5]
    # A fresh client, whose first requests are the broker-only refreshes.
    md = read_metadata(AdminClient({"bootstrap.servers": bootstrap}))
    assert len(md.brokers) == BROKERS
