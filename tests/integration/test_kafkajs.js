#!/usr/bin/env node
/* test_kafkajs.js - kafkajs 2.2.4 (tests/node_modules) against a real stratusd: admin
 * createTopics/listTopics/fetchTopicMetadata/createPartitions/describeCluster/describeConfigs/
 * fetchTopicOffsets(ByTimestamp)/deleteTopics and a producer with acks -1; what it wrote is read
 * back with kcat (kafkajs has no group-less consumer) and compared.
 * Run through the harness: /usr/bin/python3 harness.py run -- node test_kafkajs.js
 * (STRATUS_BOOTSTRAP=host:port).
 * SPDX-License-Identifier: Apache-2.0
 */
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { execFileSync } = require('child_process');
const { Kafka, logLevel, ConfigResourceTypes } = require('kafkajs');

const bootstrap = process.env.STRATUS_BOOTSTRAP;
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

function kcatConsume(topic, partition) {
  const out = execFileSync('kcat', ['-b', bootstrap, '-C', '-t', topic, '-p', String(partition),
    '-o', 'beginning', '-e', '-q', '-f', '%o|%k|%h|%T|%s\n'], { timeout: 60000 });
  const lines = out.toString('utf8').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

async function main() {
  if (!bootstrap) throw new Error('STRATUS_BOOTSTRAP is not set (run through harness.py run)');
  const [host, port] = [bootstrap.slice(0, bootstrap.lastIndexOf(':')),
    Number(bootstrap.slice(bootstrap.lastIndexOf(':') + 1))];
  const kafka = new Kafka({ clientId: 'itest-kafkajs', brokers: [bootstrap],
    logLevel: logLevel.WARN, retry: { retries: 3 }, requestTimeout: 15000 });
  const admin = kafka.admin();
  await admin.connect();
  const topic = 'kjs-topic';
  const nparts = 3;

  console.log('== admin');
  const cluster = await admin.describeCluster();
  eq(cluster.brokers.map(b => [b.nodeId, b.host, b.port]), [[1, host, port]],
    'describeCluster brokers');
  eq(cluster.controller, 1, 'describeCluster controller');
  check(typeof cluster.clusterId === 'string' && cluster.clusterId.length > 0,
    `describeCluster clusterId '${cluster.clusterId}'`);

  const created = await admin.createTopics({ waitForLeaders: true, topics: [
    { topic, numPartitions: nparts, configEntries: [{ name: 'retention.ms', value: '86400000' }] }] });
  eq(created, true, 'createTopics creates ' + topic);
  const again = await admin.createTopics({ topics: [{ topic, numPartitions: nparts }] });
  eq(again, false, 'createTopics of an existing topic returns false');
  check((await admin.listTopics()).includes(topic), 'listTopics includes ' + topic);

  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  const t = md.topics.find(x => x.name === topic);
  eq(t && t.partitions.map(p => [p.partitionId, p.leader, p.partitionErrorCode])
    .sort((a, b) => a[0] - b[0]), [[0, 1, 0], [1, 1, 0], [2, 1, 0]],
  'fetchTopicMetadata: 3 partitions led by broker 1');

  const dc = await admin.describeConfigs({ includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }] });
  const entries = dc.resources[0].configEntries;
  const ret = entries.find(e => e.configName === 'retention.ms');
  eq(dc.resources[0].errorCode, 0, 'describeConfigs(topic) errorCode');
  eq(ret && ret.configValue, '86400000', 'describeConfigs: retention.ms as created');

  console.log('== producer acks -1');
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false });
  await producer.connect();
  const t0 = Date.now() - 60000;
  const want = { 0: [], 1: [], 2: [] };
  const nextOff = { 0: 0, 1: 0, 2: 0 };
  let seq = 0;
  let offsetsOk = true;
  for (let round = 0; round < 10; round++) {
    const messages = [];
    for (let k = 0; k < 100; k++, seq++) {
      const p = seq % nparts;
      const value = `value-${seq}-` + 'x'.repeat(seq % 97);
      messages.push({ partition: p, key: `key-${seq}`, value, headers: { seq: String(seq) },
        timestamp: String(t0 + seq) });
      want[p].push(`${want[p].length}|key-${seq}|seq=${seq}|${t0 + seq}|${value}`);
    }
    const res = await producer.send({ topic, acks: -1, messages });
    for (const r of res) {
      if (r.errorCode !== 0 || Number(r.baseOffset) !== nextOff[r.partition]) {
        offsetsOk = false;
        console.log('  unexpected send result', JSON.stringify(r), 'want baseOffset',
          nextOff[r.partition]);
      }
      nextOff[r.partition] += messages.filter(m => m.partition === r.partition).length;
    }
  }
  check(offsetsOk, 'producer.send acks -1: 10 rounds, no errors, base offsets contiguous');
  await producer.disconnect();

  const offs = await admin.fetchTopicOffsets(topic);
  eq(offs.map(o => [o.partition, o.low, o.high, o.offset]).sort((a, b) => a[0] - b[0]),
    [0, 1, 2].map(p => [p, '0', String(want[p].length), String(want[p].length)]),
    'fetchTopicOffsets: low 0, high = messages sent per partition');
  // Message seq has timestamp t0 + seq and sits in partition seq % 3 at offset seq / 3.
  const atBatch = await admin.fetchTopicOffsetsByTimestamp(topic, t0 + 3 * 200);
  eq(atBatch.map(o => [o.partition, o.offset]).sort((a, b) => a[0] - b[0]),
    [[0, '200'], [1, '200'], [2, '200']], 'fetchTopicOffsetsByTimestamp(t0 + 600), a batch start');
  const inBatch = await admin.fetchTopicOffsetsByTimestamp(topic, t0 + 631);
  eq(inBatch.map(o => [o.partition, o.offset]).sort((a, b) => a[0] - b[0]),
    [[0, '211'], [1, '210'], [2, '210']],
    'fetchTopicOffsetsByTimestamp(t0 + 631), inside a batch: first record at or after');

  for (let p = 0; p < nparts; p++) {
    const got = kcatConsume(topic, p);
    eq(got.length, want[p].length, `kcat read-back partition ${p}: count`);
    const bad = got.findIndex((l, i) => l !== want[p][i]);
    check(bad === -1, `kcat read-back partition ${p}: identical` +
      (bad === -1 ? '' : ` (first diff at ${bad}: ${got[bad]} vs ${want[p][bad]})`));
  }

  console.log('== createPartitions, deleteTopics');
  await admin.createPartitions({ topicPartitions: [{ topic, count: 5 }] });
  const md2 = await admin.fetchTopicMetadata({ topics: [topic] });
  eq(md2.topics[0].partitions.length, 5, 'createPartitions: topic now has 5 partitions');
  const offs2 = await admin.fetchTopicOffsets(topic);
  eq(offs2.filter(o => o.partition >= 3).map(o => [o.low, o.high]), [['0', '0'], ['0', '0']],
    'new partitions are empty');
  let cpErr = null;
  try { await admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] }); }
  catch (e) { cpErr = e; }
  check(cpErr !== null, 'createPartitions to fewer partitions is refused' +
    (cpErr ? ` (${cpErr.type || cpErr.message})` : ''));

  await admin.deleteTopics({ topics: [topic], timeout: 10000 });
  check(!(await admin.listTopics()).includes(topic), 'deleteTopics: listTopics no longer has it');
  await admin.disconnect();
}

main().catch(e => {
  failed++;
  failures.push('exception: ' + (e && e.stack || e));
  console.log('  FAIL exception:', e && e.stack || e);
}).finally(() => {
  if (failures.length) { console.log('failures:'); failures.forEach(f => console.log('  - ' + f)); }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed || !passed ? 1 : 0);
});
