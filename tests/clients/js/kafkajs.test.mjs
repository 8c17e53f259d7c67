// kafkajs 2.2.4 against a real `ferry node` (run with `node --test`).
//
// What kafkajs produces is read back with kcat (librdkafka, assign-only consumer) and checked
// record by record; the consumer-group test consumes with kafkajs's own Consumer, which always
// joins a group through the broker's group coordinator.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

import { AssignerProtocol, CompressionTypes, Kafka, logLevel, Partitioners } from 'kafkajs';

import { FerryNode, run } from './ferry-node.mjs';

const require = createRequire(import.meta.url);
const NUM_MESSAGES = 500;
const PARTITIONS = 3;
const TIMEOUT_MS = 15_000;

const topicName = (base) => `${base}-${randomBytes(4).toString('hex')}`;

// The protocol error types (e.g. 'INVALID_TOPIC_EXCEPTION') inside a kafkajs error, looking
// through retry wrappers (cause, originalError) and aggregates (errors).
function errorTypes(err, seen = new Set()) {
  if (!err || typeof err !== 'object' || seen.has(err)) return [];
  seen.add(err);
  const inner = [err.cause, err.originalError, ...(Array.isArray(err.errors) ? err.errors : [])]
    .flatMap((e) => errorTypes(e, seen));
  const own = typeof err.type === 'string' ? [err.type] : [];
  return [...new Set([...own, ...inner])];
}

// Polls `probe` every 200 ms until it returns something other than null; fails with `what`
// after `ms`.
async function withinMs(ms, what, probe) {
  const deadline = Date.now() + ms;
  for (;;) {
    const result = await probe();
    if (result !== null) return result;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// Reads a whole topic from the beginning with kcat; returns [{partition, offset, key, value}].
async function kcatConsume(bootstrap, topic) {
  const { code, stdout, stderr } = await run(
    'kcat',
    ['-b', bootstrap, '-C', '-t', topic, '-e', '-q', '-o', 'beginning', '-f', '%p %o %k %s\\n'],
    { timeoutMs: 30_000 },
  );
  assert.equal(code, 0, `kcat failed: ${stderr}`);
  return stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((line) => {
      const [partition, offset, key, value] = line.split(' ');
      return { partition: Number(partition), offset: Number(offset), key, value };
    });
}

describe('kafkajs', { timeout: 180_000 }, () => {
  let node;
  let kafka;
  let admin;

  before(async () => {
    node = await FerryNode.start(`kafkajs-${process.pid}`);
    kafka = new Kafka({
      clientId: 'ferry-test-kafkajs',
      brokers: [node.bootstrap],
      connectionTimeout: 5_000,
      requestTimeout: TIMEOUT_MS,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2_000 },
      // kafkajs logs every error response at ERROR; the negative tests below cause some.
      // KAFKAJS_LOG_LEVEL=DEBUG (or INFO, WARN, ERROR) shows them.
      logLevel: logLevel[process.env.KAFKAJS_LOG_LEVEL ?? 'NOTHING'] ?? logLevel.NOTHING,
    });
    admin = kafka.admin();
    await admin.connect();
  });

  after(async () => {
    try {
      await admin?.disconnect();
    } finally {
      const status = await node?.stop();
      if (status && status.code !== 0) {
        console.error(`ferry node exited with ${JSON.stringify(status)}; log: ${node.logPath}`);
      }
    }
  });

  test('kafkajs version', () => {
    assert.equal(require('kafkajs/package.json').version, '2.2.4');
  });

  test('create, produce 500 (acks -1), read back, offsets, list, delete', async () => {
    const topic = topicName('kafkajs-main');
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
      timeout: TIMEOUT_MS,
    });
    assert.equal(created, true);
    // A second create of the same topic reports "already exists" as false.
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }] }), false);

    assert.ok((await admin.listTopics()).includes(topic));
    const { topics: meta } = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.equal(meta.length, 1);
    assert.equal(meta[0].partitions.length, PARTITIONS);
    for (const p of meta[0].partitions) {
      assert.equal(p.leader, 1);
      assert.deepEqual(p.replicas, [1]);
      assert.deepEqual(p.isr, [1]);
    }

    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
    await producer.connect();
    const sent = [];
    try {
      // Five sends of 100 records each, keys spread over the partitions.
      for (let batch = 0; batch < 5; batch++) {
        const messages = [];
        for (let i = batch * 100; i < (batch + 1) * 100; i++) {
          messages.push({ key: `key-${i % 31}`, value: `value-${i}` });
        }
        const meta = await producer.send({ topic, acks: -1, timeout: TIMEOUT_MS, messages });
        for (const m of meta) assert.equal(m.errorCode, 0, JSON.stringify(m));
        sent.push(...messages);
      }
    } finally {
      await producer.disconnect();
    }
    assert.equal(sent.length, NUM_MESSAGES);

    // ListOffsets: low 0 everywhere, highs add up to what was produced.
    const offsets = await admin.fetchTopicOffsets(topic);
    assert.equal(offsets.length, PARTITIONS);
    let total = 0;
    for (const o of offsets) {
      assert.equal(o.low, '0', JSON.stringify(o));
      assert.equal(o.offset, o.high);
      total += Number(o.high) - Number(o.low);
    }
    assert.equal(total, NUM_MESSAGES);
    const nonEmpty = offsets.filter((o) => Number(o.high) > 0).length;
    assert.ok(nonEmpty > 1, 'all keyed messages landed on one partition');

    // ListOffsets by timestamp: everything is newer than t=0 (offset 0); nothing is newer
    // than an hour from now (the broker answers -1, which kafkajs maps to the high watermark).
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, 0);
    assert.equal(byTime.length, PARTITIONS);
    for (const o of byTime) assert.equal(o.offset, '0', JSON.stringify(o));
    const future = await admin.fetchTopicOffsetsByTimestamp(topic, Date.now() + 3_600_000);
    for (const o of future) {
      const high = offsets.find((x) => x.partition === o.partition).high;
      assert.equal(o.offset, high, JSON.stringify(o));
    }

    // Read everything back with kcat.
    const records = await kcatConsume(node.bootstrap, topic);
    assert.equal(records.length, NUM_MESSAGES);
    const byPartition = new Map();
    for (const r of records) {
      if (!byPartition.has(r.partition)) byPartition.set(r.partition, []);
      byPartition.get(r.partition).push(r);
    }
    for (const [p, rows] of byPartition) {
      assert.deepEqual(rows.map((r) => r.offset), [...Array(rows.length).keys()], `partition ${p} offsets`);
      const high = offsets.find((o) => o.partition === p).high;
      assert.equal(String(rows.length), high, `partition ${p} count vs ListOffsets`);
    }
    // Every record exactly once, and each key's records in send order on one partition.
    assert.deepEqual(
      records.map((r) => `${r.key} ${r.value}`).sort(),
      sent.map((m) => `${m.key} ${m.value}`).sort(),
    );
    const keyPartition = new Map();
    const keySeq = new Map();
    for (const r of records) {
      if (keyPartition.has(r.key)) assert.equal(keyPartition.get(r.key), r.partition, `key ${r.key} split`);
      keyPartition.set(r.key, r.partition);
      if (!keySeq.has(r.key)) keySeq.set(r.key, []);
      keySeq.get(r.key).push(Number(r.value.split('-')[1]));
    }
    for (const [key, seq] of keySeq) {
      assert.deepEqual(seq, [...seq].sort((a, b) => a - b), `key ${key} out of order`);
    }

    await admin.deleteTopics({ topics: [topic], timeout: TIMEOUT_MS });
    const deadline = Date.now() + TIMEOUT_MS;
    while ((await admin.listTopics()).includes(topic)) {
      assert.ok(Date.now() < deadline, 'topic still listed after deleteTopics');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  test('idempotent producer: InitProducerId, each record once, in send order', async () => {
    const topic = topicName('kafkajs-idem');
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
    const producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    const sent = [];
    try {
      for (let batch = 0; batch < 5; batch++) {
        const messages = Array.from({ length: 40 }, (_, j) => {
          const i = batch * 40 + j;
          return { key: `key-${i % 7}`, value: `idem-${i}` };
        });
        const meta = await producer.send({ topic, acks: -1, timeout: TIMEOUT_MS, messages });
        for (const m of meta) assert.equal(m.errorCode, 0, JSON.stringify(m));
        sent.push(...messages);
      }
    } finally {
      await producer.disconnect();
    }
    const records = await kcatConsume(node.bootstrap, topic);
    assert.deepEqual(
      records.map((r) => `${r.key} ${r.value}`).sort(),
      sent.map((m) => `${m.key} ${m.value}`).sort(),
      'every record exactly once',
    );
    const byKey = new Map();
    for (const r of records) {
      if (!byKey.has(r.key)) byKey.set(r.key, []);
      byKey.get(r.key).push(Number(r.value.split('-')[1]));
    }
    for (const [key, seq] of byKey) {
      assert.deepEqual(seq, [...seq].sort((a, b) => a - b), `key ${key} out of order`);
    }
    await admin.deleteTopics({ topics: [topic] });
  });

  test('gzip-compressed batches', async () => {
    const topic = topicName('kafkajs-gzip');
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const messages = Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: `gz-${i}-${'x'.repeat(200)}` }));
    try {
      await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages });
    } finally {
      await producer.disconnect();
    }
    const records = await kcatConsume(node.bootstrap, topic);
    assert.deepEqual(
      records.map((r) => [r.offset, r.key, r.value]),
      messages.map((m, i) => [i, m.key, m.value]),
    );
    await admin.deleteTopics({ topics: [topic] });
  });

  test('invalid topic name is rejected by the broker', async () => {
    await assert.rejects(
      admin.createTopics({ topics: [{ topic: 'not a valid name!', numPartitions: 1 }] }),
      (err) => {
        assert.deepEqual(errorTypes(err), ['INVALID_TOPIC_EXCEPTION'], `${err}`);
        return true;
      },
    );
    assert.ok(!(await admin.listTopics()).includes('not a valid name!'));
  });

  test('a consumer group of two kafkajs consumers splits the topic, reads everything once and commits it', async () => {
    const topic = topicName('kafkajs-group');
    await admin.createTopics({
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
      timeout: TIMEOUT_MS,
    });
    const messages = Array.from({ length: 90 }, (_, i) => ({ key: `k-${i}`, value: `group-${i}` }));
    const groupId = topicName('kafkajs-group-id');
    // Each consumer's member id and partitions, from its latest GROUP_JOIN (emitted after
    // SyncGroup with the assignment the broker handed it).
    const joined = [null, null];
    // Deliveries of each message; the first second sighting fails the test at once.
    const seen = new Map();
    let allSeen;
    let duplicate;
    const done = new Promise((resolve, reject) => {
      allSeen = resolve;
      duplicate = reject;
    });
    const consumers = [0, 1].map(() => kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1_000 }));
    try {
      for (const [index, consumer] of consumers.entries()) {
        consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
          const partitions = [...(payload.memberAssignment[topic] ?? [])].sort((a, b) => a - b);
          joined[index] = { memberId: payload.memberId, partitions };
        });
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        // eachMessage resolves before kafkajs commits the offset (autoCommit after processing).
        await consumer.run({
          eachMessage: async ({ message, partition }) => {
            const value = message.value.toString();
            const count = (seen.get(value) ?? 0) + 1;
            seen.set(value, count);
            if (count > 1) {
              duplicate(new Error(`${value} (partition ${partition}) read ${count} times, by consumer ${index} the last time`));
            }
            if (seen.size === messages.length) allSeen();
          },
        });
      }

      // Both consumers settle in one generation before anything is produced, so no rebalance
      // happens while they read (kafkajs's eager rebalance may legitimately re-deliver what was
      // read but not committed). A generation is settled when the coordinator's group is
      // Stable with both members and each consumer's own view of its assignment is the one the
      // coordinator holds for it (a consumer's GROUP_JOIN can lag the other's).
      const split = await withinMs(60_000, 'both consumers settled in one generation', async () => {
        const { groups } = await admin.describeGroups([groupId]);
        const group = groups[0];
        if (group.state !== 'Stable' || group.members.length !== 2) return null;
        const views = group.members.map((member) => {
          const decoded = AssignerProtocol.MemberAssignment.decode(member.memberAssignment);
          const held = [...(decoded?.assignment[topic] ?? [])].sort((a, b) => a - b);
          const mine = joined.find((j) => j?.memberId === member.memberId);
          return mine && JSON.stringify(mine.partitions) === JSON.stringify(held) ? held : null;
        });
        return views.every((v) => v !== null) ? views : null;
      });
      for (const partitions of split) assert.ok(partitions.length > 0, `a member holds nothing: ${JSON.stringify(split)}`);
      const [first, second] = split;
      assert.deepEqual(first.filter((p) => second.includes(p)), [], `held by both members: ${JSON.stringify(split)}`);
      assert.deepEqual(
        [...first, ...second].sort((a, b) => a - b),
        Array.from({ length: PARTITIONS }, (_, p) => p),
        `the members together hold every partition: ${JSON.stringify(split)}`,
      );

      const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      try {
        await producer.send({ topic, acks: -1, timeout: TIMEOUT_MS, messages });
      } finally {
        await producer.disconnect();
      }
      let timer;
      const bound = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`consumed ${seen.size}/${messages.length} within 90 s`)), 90_000);
      });
      try {
        await Promise.race([done, bound]);
      } finally {
        clearTimeout(timer);
      }

      const described = await admin.describeGroups([groupId]);
      assert.equal(described.groups[0].protocolType, 'consumer');
      assert.ok(['Stable', 'PreparingRebalance', 'CompletingRebalance'].includes(described.groups[0].state));
    } finally {
      for (const consumer of consumers) await consumer.disconnect();
    }
    // Every message, each exactly once (also counting what arrived after the last new one).
    assert.deepEqual(
      [...seen.entries()].sort(([a], [b]) => a.localeCompare(b)),
      messages.map((m) => [m.value, 1]).sort(([a], [b]) => a.localeCompare(b)),
    );

    // Disconnecting commits and leaves: the committed offsets cover every message.
    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    const total = committed[0].partitions.reduce((sum, p) => sum + Number(p.offset), 0);
    assert.equal(total, messages.length);
    const { groups } = await admin.listGroups();
    assert.ok(groups.some((g) => g.groupId === groupId));
    await admin.deleteGroups([groupId]);
  });

  test('deleting an unknown topic fails', async () => {
    await assert.rejects(
      admin.deleteTopics({ topics: [topicName('never-created')], timeout: 5_000 }),
      (err) => {
        // kafkajs retries UNKNOWN_TOPIC_OR_PARTITION, then wraps it.
        assert.deepEqual(errorTypes(err), ['UNKNOWN_TOPIC_OR_PARTITION'], `unexpected error ${err}`);
        return true;
      },
    );
  });
});
