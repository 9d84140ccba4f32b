#!/usr/bin/env node
/* test_groups_kafkajs.js - kafkajs 2.2.4 consumer groups against a real stratusd: two members
 * of one group consume every message of a 4-partition topic exactly once between them and
 * commit; admin listGroups/describeGroups/fetchOffsets/deleteGroups report what the broker
 * serves (members and assignments, committed offsets, NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND).
 * Run through the harness: /usr/bin/python3 harness.py run --set ... -- node test_groups_kafkajs.js
 * SPDX-License-Identifier: Apache-2.0
 */
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, logLevel, AssignerProtocol } = require('kafkajs');

const bootstrap = process.env.STRATUS_BOOTSTRAP;
let passed = 0, failed = 0;

function check(cond, msg) {
  if (cond) { passed++; console.log('  ok   ' + msg); }
  else { failed++; console.log('  FAIL ' + msg); }
  return !!cond;
}
function eq(got, want, msg) {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  if (g === w) return check(true, msg);
  return check(false, `${msg}: got ${g.slice(0, 400)}, want ${w.slice(0, 400)}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const kafka = new Kafka({ clientId: 'itest-kjs-groups', brokers: [bootstrap],
    logLevel: logLevel.NOTHING, retry: { retries: 5 }, requestTimeout: 15000 });
  const admin = kafka.admin();
  await admin.connect();
  const topic = 'kjs-group-topic', group = 'kjs-group', N = 400;
  await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
  const producer = kafka.producer();
  await producer.connect();
  const msgs = [];
  for (let i = 0; i < N; i++) msgs.push({ partition: i % 4, value: `v${i}` });
  await producer.send({ topic, acks: -1, messages: msgs });
  await producer.disconnect();

  console.log('== consumer group');
  const seen = [];
  const consumers = [];
  for (let k = 0; k < 2; k++) {
    const c = kafka.consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 500,
      rebalanceTimeout: 10000 });
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    await c.run({ eachMessage: async ({ partition, message }) => {
      seen.push(`${partition}:${message.offset}`);
    } });
    consumers.push(c);
  }
  const deadline = Date.now() + 40000;
  while (Date.now() < deadline && seen.length < N) await sleep(100);
  await sleep(1500); /* duplicates would show up here; auto-commit flushes */
  eq(seen.length, N, 'two kafkajs members consumed every message');
  eq(new Set(seen).size, N, 'no message consumed twice');

  console.log('== admin');
  const groups = (await admin.listGroups()).groups;
  check(groups.some((g) => g.groupId === group && g.protocolType === 'consumer'),
    `listGroups has ${group}: ${JSON.stringify(groups)}`);
  const desc = (await admin.describeGroups([group])).groups[0];
  eq([desc.state, desc.protocolType, desc.members.length], ['Stable', 'consumer', 2],
    'describeGroups: Stable consumer group with 2 members');
  const parts = [];
  for (const m of desc.members) {
    const a = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
    if (a && a.assignment[topic]) parts.push(...a.assignment[topic]);
  }
  eq(parts.sort(), [0, 1, 2, 3], 'member assignments as stored cover the 4 partitions');
  for (const c of consumers) await c.disconnect();
  const offs = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  eq(offs[0].partitions.map((p) => [p.partition, p.offset]).sort(),
    [[0, '100'], [1, '100'], [2, '100'], [3, '100']], 'fetchOffsets: committed offsets');
  const after = (await admin.describeGroups([group])).groups[0];
  eq([after.state, after.members.length], ['Empty', 0], 'describeGroups after disconnect: Empty');
  try {
    await admin.deleteGroups([group, 'kjs-no-such-group']);
    check(false, 'deleteGroups of an unknown group rejects');
  } catch (e) {
    const byId = {};
    for (const g of e.groups || []) byId[g.groupId] = g.errorCode;
    eq(byId, { 'kjs-no-such-group': 69 },
      'deleteGroups: only the unknown group fails, GROUP_ID_NOT_FOUND');
  }
  const left = (await admin.listGroups()).groups.map((g) => g.groupId);
  check(!left.includes(group), 'the deleted group is no longer listed');
  await admin.disconnect();
}

main().catch((e) => { failed++; console.log('  FAIL exception: ' + (e.stack || e)); })
  .finally(() => {
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed || !passed ? 1 : 0);
  });
