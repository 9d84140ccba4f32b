#!/usr/bin/env node
/* test_platformatic.js - @platformatic/kafka 1.35.0 against a real stratusd. This client only
 * speaks the Kafka 3.5+ versions (flexible ApiVersions v3/v4, Metadata v9-12, FindCoordinator
 * v4-6, JoinGroup v6-9, SyncGroup v4-5, Heartbeat v4, OffsetCommit/OffsetFetch v8-9, Fetch 12+,
 * Produce 7-11, InitProducerId 3-5, CreateTopics v7, DeleteTopics v6, DescribeGroups v5,
 * ListGroups v4-5, DeleteGroups v2), so it exercises the newest versions the broker serves:
 *   admin:    create a 3-partition topic, listTopics, metadata (leaders, topic id);
 *   producer: 1000 keyed messages with headers, idempotent, acks=all; listOffsets;
 *   consumer: one group member consumes every message exactly once, identical and in order per
 *             partition, and commits; a second member joins, the group rebalances and the two
 *             split the partitions, each gets only its partitions' new messages; after both
 *             leave, a restarted member resumes from the committed offsets (no re-delivery);
 *   admin:    listGroups, describeGroups (members, assignments), listConsumerGroupOffsets,
 *             deleteGroups, deleteTopics.
 * The package is ESM-only, so it is loaded with import() from this CommonJS script.
 * Run through the harness (it sets STRATUS_BOOTSTRAP):
 *   /usr/bin/python3 harness.py run --set group.initial_rebalance_delay=300ms -- node test_platformatic.js
 * Prints "N passed, N failed" last; exits 1 on any failure.
 * SPDX-License-Identifier: Apache-2.0
 */
'use strict';

const bootstrap = process.env.STRATUS_BOOTSTRAP || '127.0.0.1:9092';
let passed = 0, failed = 0;

function check(cond, msg) {
  if (cond) { passed++; console.log('  ok   ' + msg); }
  else { failed++; console.log('  FAIL ' + msg); }
  return !!cond;
}
const js = (v) => JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? x.toString() : x));
function eq(got, want, msg) {
  const g = js(got), w = js(want);
  if (g === w) return check(true, msg);
  return check(false, `${msg}: got ${g.slice(0, 400)}, want ${w.slice(0, 400)}`);
}
/* Every Kafka error code in a client error: its responses' errorCode fields, nested errors too. */
function errorCodes(e, out = []) {
  const walk = (v) => {
    if (!v || typeof v !== 'object') return;
    if (typeof v.errorCode === 'number' && v.errorCode !== 0) out.push(v.errorCode);
    for (const x of Array.isArray(v) ? v : Object.values(v)) walk(x);
  };
  if (e) { walk(e.response); for (const x of e.errors || []) errorCodes(x, out); }
  return out;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) { if (cond()) return true; await sleep(50); }
  return !!cond();
}

const TOPIC = 'plat-topic', GROUP = 'plat-group', NPART = 3;
const N1 = 1000, N2 = 300, N3 = 200;   /* messages produced before each consumer phase */

/* Message i: key k<i%37> (so each key maps to one partition), value and headers derived from i. */
const keyOf = (i) => `k${i % 37}`;
const valueOf = (i) => `value-${i}-` + 'x'.repeat(i % 50);
function msgOf(i) {
  return { topic: TOPIC, key: keyOf(i), value: valueOf(i), headers: { seq: String(i), src: 'plat' } };
}

/* Checks one consumed message against what was produced; returns its seq or -1. */
function verify(m, bad) {
  const seq = Number(m.headers.get('seq'));
  if (!Number.isInteger(seq) || m.key !== keyOf(seq) || m.value !== valueOf(seq) ||
      m.headers.get('src') !== 'plat' || m.headers.size !== 2 || m.topic !== TOPIC) {
    bad.push(`${m.partition}:${m.offset} key=${m.key} seq=${seq}`);
    return -1;
  }
  return seq;
}

/* A consumer of GROUP with one stream that records every message it receives. */
async function startMember(lib, name, commitEach) {
  const consumer = new lib.Consumer({
    clientId: 'itest-plat-' + name, groupId: GROUP, bootstrapBrokers: [bootstrap],
    deserializers: lib.stringDeserializers, sessionTimeout: 6000, heartbeatInterval: 300,
    rebalanceTimeout: 8000, maxWaitTime: 300, timeout: 10000, retries: 5, retryDelay: 200
  });
  const rec = { name, consumer, got: [], bad: [], commits: [], joins: [], errors: [], stream: null };
  consumer.on('consumer:group:join', (p) => rec.joins.push(p));
  rec.stream = await consumer.consume({
    topics: [TOPIC], mode: 'committed', fallbackMode: 'earliest', autocommit: false
  });
  rec.stream.on('error', (e) => rec.errors.push(e));
  rec.stream.on('data', (m) => {
    rec.got.push({ partition: m.partition, offset: m.offset, seq: verify(m, rec.bad) });
    if (commitEach) rec.commits.push(m.commit().catch((e) => rec.errors.push(e)));
  });
  return rec;
}
async function stopMember(rec) {
  await Promise.all(rec.commits);
  await rec.stream.close();
  await rec.consumer.close();
}

/* Per partition: offsets strictly consecutive from the first one seen, seqs increasing. */
function inOrder(got) {
  const byPart = new Map();
  for (const g of got) {
    if (!byPart.has(g.partition)) byPart.set(g.partition, []);
    byPart.get(g.partition).push(g);
  }
  for (const list of byPart.values()) {
    for (let i = 1; i < list.length; i++) {
      if (list[i].offset !== list[i - 1].offset + 1n || list[i].seq <= list[i - 1].seq) return false;
    }
  }
  return true;
}
const seqRange = (a, b) => Array.from({ length: b - a }, (_, i) => a + i);
const sortedSeqs = (got) => got.map((g) => g.seq).sort((a, b) => a - b);

async function main() {
  const lib = await import('@platformatic/kafka');
  const base = { bootstrapBrokers: [bootstrap], timeout: 10000, retries: 5, retryDelay: 200 };

  console.log('== admin: topics');
  const admin = new lib.Admin({ clientId: 'itest-plat-admin', ...base });
  const apis = await admin.listApis();
  const apiMax = new Map(apis.map((a) => [a.apiKey, a.maxVersion]));
  check(apiMax.get(18) >= 3 && apiMax.get(3) >= 9 && apiMax.get(10) >= 4,
    `ApiVersions (flexible) lists ApiVersions>=3, Metadata>=9, FindCoordinator>=4: ${apis.length} apis`);
  const created = await admin.createTopics({ topics: [TOPIC], partitions: NPART, replicas: 1 });
  eq(created.map((t) => [t.name, t.partitions, t.replicas]), [[TOPIC, NPART, 1]],
    'createTopics: 3 partitions, 1 replica');
  check(created[0] && /^[0-9a-f-]{36}$/.test(created[0].id) && !/^[0-]+$/.test(created[0].id),
    `createTopics returns a topic id: ${created[0] && created[0].id}`);
  const topics = await admin.listTopics();
  check(topics.includes(TOPIC), `listTopics includes ${TOPIC}: ${js(topics)}`);
  const md = await admin.metadata({ topics: [TOPIC], forceUpdate: true });
  const tmd = md.topics.get(TOPIC);
  check(tmd && tmd.partitionsCount === NPART && tmd.partitions.every((p) => md.brokers.has(p.leader)),
    `metadata: ${NPART} partitions, each led by a listed broker`);
  check(tmd && created[0] && tmd.id === created[0].id, 'metadata topic id matches CreateTopics');
  try {
    await admin.createTopics({ topics: [TOPIC], partitions: NPART, replicas: 1 });
    check(false, 'createTopics of an existing topic fails');
  } catch (e) {
    check(errorCodes(e).includes(36), `createTopics of an existing topic: TOPIC_ALREADY_EXISTS (36): ${errorCodes(e)}`);
  }

  console.log('== producer: idempotent, acks=all, keyed with headers');
  const producer = new lib.Producer({ clientId: 'itest-plat-producer', ...base,
    serializers: lib.stringSerializers, idempotent: true, acks: lib.ProduceAcks.ALL });
  async function produce(from, to) {
    for (let i = from; i < to; i += 100) {
      const batch = [];
      for (let j = i; j < Math.min(to, i + 100); j++) batch.push(msgOf(j));
      await producer.send({ messages: batch });
    }
  }
  await produce(0, N1);
  check(typeof producer.producerId === 'bigint' && producer.producerId >= 0n,
    `InitProducerId gave a producer id: ${producer.producerId}/${producer.producerEpoch}`);
  const probe = new lib.Consumer({ clientId: 'itest-plat-probe', groupId: 'plat-probe', ...base });
  const hw = (await probe.listOffsets({ topics: [TOPIC] })).get(TOPIC);
  const lw = (await probe.listOffsets({ topics: [TOPIC], timestamp: -2n })).get(TOPIC);
  eq(hw && hw.reduce((a, b) => a + b, 0n), BigInt(N1), 'listOffsets latest: high watermarks sum to 1000');
  eq(lw, [0n, 0n, 0n], 'listOffsets earliest: 0 on every partition');
  check(hw && hw.every((o) => o > 0n), `every partition got keyed messages: ${js(hw)}`);
  await probe.close();

  console.log('== consumer group: one member');
  const a = await startMember(lib, 'a', false);
  await waitFor(() => a.got.length >= N1, 20000);
  await sleep(700);   /* duplicates would arrive here */
  eq(a.got.length, N1, 'member a received 1000 messages');
  eq(a.bad, [], 'every message identical to what was produced (key, value, headers)');
  eq(sortedSeqs(a.got), seqRange(0, N1), 'each message exactly once');
  check(inOrder(a.got), 'in order within each partition (consecutive offsets, increasing seq)');
  const keyParts = new Map();
  for (const x of a.got) {
    if (x.seq < 0) continue;
    if (!keyParts.has(keyOf(x.seq))) keyParts.set(keyOf(x.seq), new Set());
    keyParts.get(keyOf(x.seq)).add(x.partition);
  }
  check(keyParts.size === 37 && [...keyParts.values()].every((ps) => ps.size === 1),
    'every key is on a single partition');
  eq(a.consumer.assignments && a.consumer.assignments.flatMap((x) => x.partitions).sort(), [0, 1, 2],
    'member a is assigned all 3 partitions');
  /* Commit the position of every partition (last offset + 1) with one OffsetCommit. */
  const last = new Map();
  for (const g of a.got) last.set(g.partition, g.offset);
  await a.consumer.commit({ offsets: [...last].map(([partition, off]) =>
    ({ topic: TOPIC, partition, offset: off + 1n, leaderEpoch: 0 })) });
  const committed1 = await a.consumer.listCommittedOffsets({ topics: [{ topic: TOPIC, partitions: [0, 1, 2] }] });
  eq(committed1.get(TOPIC), hw, 'OffsetFetch: committed offsets are the high watermarks');

  console.log('== second member: rebalance');
  const genBefore = a.consumer.generationId, aBefore = a.got.length;
  const b = await startMember(lib, 'b', true);
  const parts = (c) => (c.assignments || []).flatMap((x) => x.partitions).sort();
  const split = await waitFor(() => a.consumer.generationId > genBefore &&
    a.consumer.generationId === b.consumer.generationId &&
    parts(a.consumer).length > 0 && parts(b.consumer).length > 0 &&
    parts(a.consumer).length + parts(b.consumer).length === NPART, 20000);
  check(split, `rebalance: a=${js(parts(a.consumer))} b=${js(parts(b.consumer))} ` +
    `generation ${genBefore} -> ${a.consumer.generationId}/${b.consumer.generationId}`);
  eq([...parts(a.consumer), ...parts(b.consumer)].sort(), [0, 1, 2], 'the two members split the partitions');
  check(a.consumer.memberId !== b.consumer.memberId, 'distinct member ids');
  await sleep(500);
  eq([a.got.length - aBefore, b.got.length], [0, 0],
    'nothing re-delivered after the rebalance (both resume from the committed offsets)');
  a.got = []; a.bad = [];
  /* From now on a commits every message too (one OffsetCommit per message, as b does). */
  a.stream.on('data', (m) => a.commits.push(m.commit().catch((e) => a.errors.push(e))));
  await produce(N1, N1 + N2);
  await waitFor(() => a.got.length + b.got.length >= N2, 20000);
  await sleep(700);
  eq(sortedSeqs([...a.got, ...b.got]), seqRange(N1, N1 + N2),
    'the two members received the 300 new messages exactly once between them');
  eq([...a.bad, ...b.bad], [], 'contents identical');
  check(inOrder(a.got) && inOrder(b.got), 'in order within each partition');
  const pa = parts(a.consumer), pb = parts(b.consumer);
  check(a.got.every((g) => pa.includes(g.partition)) && b.got.every((g) => pb.includes(g.partition)),
    'each member got only messages of its own partitions');
  check(a.got.length > 0 && b.got.length > 0, `both members consumed: a=${a.got.length} b=${b.got.length}`);
  await Promise.all([...a.commits, ...b.commits]);
  eq([...a.errors, ...b.errors].map(String), [], 'no stream or commit errors');

  console.log('== admin: groups while a member is active');
  const groups = await admin.listGroups();
  const g = groups.get(GROUP);
  check(g && g.protocolType === 'consumer', `listGroups has ${GROUP} (consumer): ${js([...groups.values()])}`);
  let desc = (await admin.describeGroups({ groups: [GROUP] })).get(GROUP);
  eq(desc && [desc.state, desc.protocolType, desc.members.size], ['STABLE', 'consumer', 2],
    'describeGroups: Stable consumer group, 2 members');
  const described = [];
  for (const m of (desc ? desc.members.values() : [])) {
    for (const asg of (m.assignments ? m.assignments.values() : [])) described.push(...asg.partitions);
  }
  eq(described.sort(), [0, 1, 2], 'describeGroups: member assignments cover the 3 partitions');

  console.log('== restart: resume from committed offsets');
  await stopMember(a);
  await stopMember(b);
  await produce(N1 + N2, N1 + N2 + N3);
  const c = await startMember(lib, 'c', false);
  await waitFor(() => c.got.length >= N3, 20000);
  await sleep(1000);
  eq(sortedSeqs(c.got), seqRange(N1 + N2, N1 + N2 + N3),
    'restarted member received exactly the 200 uncommitted messages (no re-delivery)');
  eq(c.bad, [], 'contents identical');
  check(inOrder(c.got), 'in order within each partition');
  const lastC = new Map();
  for (const x of c.got) lastC.set(x.partition, x.offset);
  await c.consumer.commit({ offsets: [...lastC].map(([partition, off]) =>
    ({ topic: TOPIC, partition, offset: off + 1n, leaderEpoch: 0 })) });
  const offs = await admin.listConsumerGroupOffsets({ groups: [GROUP] });
  const t = offs[0] && offs[0].topics.find((x) => x.name === TOPIC);
  const hw2 = (await c.consumer.listOffsets({ topics: [TOPIC] })).get(TOPIC);
  eq(t && t.partitions.map((p) => [p.partitionIndex, p.committedOffset]).sort((x, y) => x[0] - y[0]),
    hw2 && hw2.map((o, i) => [i, o]), 'listConsumerGroupOffsets: committed = high watermarks');
  eq(hw2 && hw2.reduce((x, y) => x + y, 0n), BigInt(N1 + N2 + N3), 'high watermarks sum to 1500');
  try {
    await admin.deleteGroups({ groups: [GROUP] });
    check(false, 'deleteGroups of a group with a member fails');
  } catch (e) {
    check(errorCodes(e).includes(68), `deleteGroups of an active group: NON_EMPTY_GROUP (68): ${errorCodes(e)}`);
  }
  await stopMember(c);
  eq(c.errors.map(String), [], 'no stream or commit errors');

  console.log('== admin: cleanup');
  desc = (await admin.describeGroups({ groups: [GROUP] })).get(GROUP);
  eq(desc && [desc.state, desc.members.size], ['EMPTY', 0], 'describeGroups after the members left: Empty');
  await admin.deleteGroups({ groups: [GROUP] });
  check(!(await admin.listGroups()).has(GROUP), 'deleteGroups removed the group');
  await admin.deleteTopics({ topics: [TOPIC] });
  check(!(await admin.listTopics()).includes(TOPIC), 'deleteTopics removed the topic');
  await producer.close();
  await admin.close();
}

const watchdog = setTimeout(() => {
  check(false, 'test finished within 55 s');
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(1);
}, 55000);
main().catch((e) => {
  check(false, 'unexpected error: ' + (e && e.stack ? e.stack : e) +
    (e && e.errors ? ' ' + js(e.errors.map(String)) : ''));
}).finally(() => {
  clearTimeout(watchdog);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed || !passed ? 1 : 0);
});
