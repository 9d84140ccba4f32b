#!/usr/bin/env node
/* test_idempotence.js - the kafkajs part of test_idempotence.py: an idempotent producer
 * (kafkajs 2.2.4, tests/node_modules) writes idem-kjs through the connection-resetting proxy
 * (STRATUS_BOOTSTRAP; the python side turns faults on at "PRODUCING" and off at "PRODUCED"),
 * then writes {partition: [values]} to $STRATUS_SENT_FILE so the python side checks exactly-once and order.
 * Admin (directly, STRATUS_DIRECT): describeConfigs/alterConfigs of a topic, createPartitions,
 * deleteTopicRecords then fetchTopicOffsets shows the new low watermark.
 * SPDX-License-Identifier: Apache-2.0
 */
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, logLevel, ConfigResourceTypes } = require('kafkajs');

const proxy = process.env.STRATUS_BOOTSTRAP;
const direct = process.env.STRATUS_DIRECT || proxy;
let passed = 0, failed = 0;
const failures = [];

function check(cond, msg) {
  if (cond) { passed++; console.log('  ok   ' + msg); }
  else { failed++; failures.push(msg); console.log('  FAIL ' + msg); }
  return !!cond;
}
function eq(got, want, msg) {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  if (g === w) return check(true, msg);
  return check(false, `${msg}: got ${g.slice(0, 400)}, want ${w.slice(0, 400)}`);
}

async function produceThroughProxy() {
  const topic = 'idem-kjs', nparts = 2, n = 3000;
  const kafka = new Kafka({ clientId: 'itest-kjs-idem', brokers: [proxy], logLevel: logLevel.NOTHING,
    requestTimeout: 10000, retry: { initialRetryTime: 50, maxRetryTime: 1000 } });
  const admin = kafka.admin();
  await admin.connect();
  eq(await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: nparts }] }),
    true, 'createTopics ' + topic);
  await admin.disconnect();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const sent = {};
  for (let p = 0; p < nparts; p++) sent[p] = [];
  console.log('PRODUCING');
  let errors = 0;
  for (let i = 0; i < n; i += 30) {
    const messages = [];
    for (let j = i; j < i + 30 && j < n; j++) {
      const p = j % nparts;
      const v = 'kjs-' + String(j).padStart(6, '0');
      messages.push({ partition: p, value: v });
      sent[p].push(v);
    }
    for (;;) {
      try {
        await producer.send({ topic, acks: -1, messages });
        break;
      } catch (e) {
        /* kafkajs gives up on a request after its retries; the idempotent producer keeps its
         * sequence numbers, so resending the same messages is still exactly-once */
        errors++;
        if (errors > 200) throw e;
      }
    }
  }
  console.log('PRODUCED');
  await producer.disconnect();
  check(true, `kafkajs idempotent producer sent ${n} messages (${errors} send retries)`);
  require('fs').writeFileSync(process.env.STRATUS_SENT_FILE, JSON.stringify(sent));
}

async function adminDirect() {
  const kafka = new Kafka({ clientId: 'itest-kjs-admin', brokers: [direct], logLevel: logLevel.WARN });
  const admin = kafka.admin();
  await admin.connect();
  const topic = 'idem-kjs-admin';
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, i) => ({ value: 'm' + i })) });
  await producer.disconnect();

  await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC,
    name: topic, configEntries: [{ name: 'retention.bytes', value: '1048576' }] }] });
  const d = await admin.describeConfigs({ includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.bytes'] }] });
  eq(d.resources[0].configEntries.map(e => [e.configName, e.configValue]),
    [['retention.bytes', '1048576']], 'kafkajs alterConfigs then describeConfigs');

  await admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] });
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  eq(md.topics[0].partitions.length, 2, 'kafkajs createPartitions: 2 partitions');

  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '6' }] });
  const offs = await admin.fetchTopicOffsets(topic);
  const p0 = offs.find(o => o.partition === 0);
  eq([p0.low, p0.high], ['6', '10'], 'kafkajs deleteTopicRecords: low watermark 6');
  let threw = false;
  try {
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '99' }] });
  } catch (e) { threw = true; }
  check(threw, 'kafkajs deleteTopicRecords beyond the high watermark fails');
  await admin.disconnect();
}

async function main() {
  await produceThroughProxy();
  await adminDirect();
}

main().then(() => {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}).catch((e) => {
  console.log('FAIL exception: ' + (e && e.stack || e));
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
