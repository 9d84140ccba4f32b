#!/usr/bin/python3
"""test_python_clients.py - Debian's kafka-python 2.0.2 and confluent-kafka (librdkafka 2.0.2)
against a real stratusd: admin create/list/describe/delete topics, acks=all producers, and
consumers that read by assignment (no consumer groups in this milestone), ListOffsets through
watermarks and offsets_for_times. Run with /usr/bin/python3 (the Debian packages live there).
SPDX-License-Identifier: Apache-2.0
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Report  # noqa: E402

R = Report("test_python_clients")
B = None
NMSG = 1000


def payload(i):
    return (b"value-%05d-" % i) + bytes((i * 7 + j) % 256 for j in range(i % 300))


# ---- kafka-python ----------------------------------------------------------------------
def test_kafka_python():
    import kafka
    import kafka.errors
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    R.section("kafka-python %s" % kafka.__version__)
    topic = "kp-topic"
    nparts = 3
    admin = KafkaAdminClient(bootstrap_servers=B.bootstrap, client_id="itest-kp-admin",
                             request_timeout_ms=15000)
    resp = admin.create_topics([NewTopic(topic, nparts, 1)], timeout_ms=10000)
    errs = [(t, e) for t, e, *_ in resp.topic_errors]
    R.eq(errs, [(topic, 0)], "kafka-python create_topics: no error")
    R.check(topic in admin.list_topics(), "kafka-python list_topics includes %s" % topic)
    try:
        admin.create_topics([NewTopic(topic, nparts, 1)], timeout_ms=10000)
        R.check(False, "kafka-python create_topics again raises TopicAlreadyExistsError")
    except kafka.errors.TopicAlreadyExistsError:
        R.check(True, "kafka-python create_topics again: TOPIC_ALREADY_EXISTS (36)")

    prod = KafkaProducer(bootstrap_servers=B.bootstrap, acks="all", linger_ms=5,
                         client_id="itest-kp-prod", request_timeout_ms=15000)
    futs = []
    for i in range(NMSG):
        futs.append((i, prod.send(topic, key=b"key-%d" % i, value=payload(i),
                                  headers=[("seq", b"%d" % i), ("empty", b"")],
                                  partition=i % nparts)))
    prod.flush(30)
    acked = {}
    failures = []
    for i, f in futs:
        try:
            md = f.get(timeout=30)
            acked[i] = (md.partition, md.offset)
        except Exception as e:  # noqa: BLE001
            failures.append((i, repr(e)))
    prod.close(10)
    R.eq(failures[:3], [], "kafka-python producer: all %d sends acknowledged" % NMSG)
    want_offsets = {i: (i % nparts, i // nparts) for i in range(NMSG)}
    R.eq(acked, want_offsets, "kafka-python producer: offsets are 0.. per partition in send order")

    cons = KafkaConsumer(bootstrap_servers=B.bootstrap, group_id=None, enable_auto_commit=False,
                         client_id="itest-kp-cons", fetch_max_wait_ms=100,
                         request_timeout_ms=15000, api_version_auto_timeout_ms=10000)
    tps = [TopicPartition(topic, p) for p in range(nparts)]
    cons.assign(tps)
    cons.seek_to_beginning()
    got = {p: [] for p in range(nparts)}
    deadline = time.monotonic() + 30
    while sum(len(v) for v in got.values()) < NMSG and time.monotonic() < deadline:
        for tp, recs in cons.poll(timeout_ms=500).items():
            for r in recs:
                got[tp.partition].append((r.offset, r.key, r.value, list(r.headers)))
    ends = cons.end_offsets(tps)
    begs = cons.beginning_offsets(tps)
    cons.close()
    for p in range(nparts):
        want = [(i // nparts, b"key-%d" % i, payload(i), [("seq", b"%d" % i), ("empty", b"")])
                for i in range(p, NMSG, nparts)]
        R.eq(len(got[p]), len(want), "kafka-python consumer: partition %d count" % p)
        R.check(got[p] == want, "kafka-python consumer: partition %d identical and in order" % p)
    R.eq({tp.partition: o for tp, o in ends.items()},
         {p: len(range(p, NMSG, nparts)) for p in range(nparts)},
         "kafka-python end_offsets (ListOffsets latest)")
    R.eq({tp.partition: o for tp, o in begs.items()}, {p: 0 for p in range(nparts)},
         "kafka-python beginning_offsets (ListOffsets earliest)")

    resp = admin.delete_topics([topic], timeout_ms=10000)
    errs = [(t, e) for t, e in resp.topic_error_codes]
    R.eq(errs, [(topic, 0)], "kafka-python delete_topics: no error")
    R.check(topic not in admin.list_topics(), "kafka-python list_topics no longer has %s" % topic)
    admin.close()


# ---- confluent-kafka -------------------------------------------------------------------
def test_confluent():
    import confluent_kafka as ck
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

    R.section("confluent-kafka %s (librdkafka %s)" % (ck.version()[0], ck.libversion()[0]))
    topic = "ck-topic"
    nparts = 2
    admin = AdminClient({"bootstrap.servers": B.bootstrap, "client.id": "itest-ck-admin"})
    fs = admin.create_topics([NewTopic(topic, num_partitions=nparts, replication_factor=1,
                                       config={"retention.ms": "3600000"})],
                             operation_timeout=10, request_timeout=15)
    try:
        fs[topic].result(15)
        R.check(True, "confluent create_topics %s" % topic)
    except Exception as e:  # noqa: BLE001
        R.check(False, "confluent create_topics %s: %s" % (topic, e))

    md = admin.list_topics(timeout=10)
    R.eq({k: str(v) for k, v in md.brokers.items()}, {1: "%s:%d/1" % (B.host, B.port)},
         "confluent list_topics brokers")
    R.check(topic in md.topics, "confluent list_topics includes %s" % topic)
    if topic in md.topics:
        parts = md.topics[topic].partitions
        R.eq(sorted((p, parts[p].leader) for p in parts), [(p, 1) for p in range(nparts)],
             "confluent list_topics: %d partitions led by broker 1" % nparts)
    R.eq(md.controller_id, 1, "confluent list_topics controller id")

    res = ConfigResource("topic", topic)
    try:
        cfg = admin.describe_configs([res], request_timeout=15)[res].result(15)
        R.eq(cfg.get("retention.ms").value if "retention.ms" in cfg else None, "3600000",
             "confluent describe_configs: retention.ms as created")
        R.check("cleanup.policy" in cfg, "confluent describe_configs lists cleanup.policy")
    except Exception as e:  # noqa: BLE001
        R.check(False, "confluent describe_configs(topic): %s" % e)
    bres = ConfigResource("broker", "1")
    try:
        bcfg = admin.describe_configs([bres], request_timeout=15)[bres].result(15)
        R.check(len(bcfg) > 0, "confluent describe_configs(broker 1): %d entries" % len(bcfg))
    except Exception as e:  # noqa: BLE001
        R.check(False, "confluent describe_configs(broker 1): %s" % e)

    # Produce with explicit timestamps: message i goes to partition i % 2 with T0 + i ms,
    # so at offset j of partition p sits message 2j + p.
    t0 = int(time.time() * 1000) - 60000
    prod = ck.Producer({"bootstrap.servers": B.bootstrap, "acks": "all", "linger.ms": 5,
                        "client.id": "itest-ck-prod"})
    acked = {}
    errors = []

    def on_delivery(err, msg):
        if err:
            errors.append((msg.value()[:20], str(err)))
        else:
            acked[int(msg.value()[6:11])] = (msg.partition(), msg.offset())

    for i in range(NMSG):
        prod.produce(topic, value=payload(i), key=b"key-%d" % i, partition=i % nparts,
                     headers=[("seq", b"%d" % i)], timestamp=t0 + i, on_delivery=on_delivery)
        prod.poll(0)
    left = prod.flush(30)
    R.eq(left, 0, "confluent producer: flush leaves nothing queued")
    R.eq(errors[:3], [], "confluent producer: no delivery errors")
    R.eq(acked, {i: (i % nparts, i // nparts) for i in range(NMSG)},
         "confluent producer: offsets are 0.. per partition in produce order")

    cons = ck.Consumer({"bootstrap.servers": B.bootstrap, "group.id": "itest-assign-only",
                        "enable.auto.commit": False, "enable.auto.offset.store": False,
                        "enable.partition.eof": True, "client.id": "itest-ck-cons",
                        "fetch.wait.max.ms": 100})
    cons.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(nparts)])
    got = {p: [] for p in range(nparts)}
    eof = set()
    errs = []
    deadline = time.monotonic() + 30
    while len(eof) < nparts and time.monotonic() < deadline:
        m = cons.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == ck.KafkaError._PARTITION_EOF:
                if sum(1 for _ in got[m.partition()]) >= len(range(m.partition(), NMSG, nparts)):
                    eof.add(m.partition())
            else:
                errs.append(str(m.error()))
            continue
        got[m.partition()].append((m.offset(), m.key(), m.value(), m.headers(), m.timestamp()))
    R.eq(errs[:5], [], "confluent consumer (assign, no group): no errors")
    for p in range(nparts):
        want = [(i // nparts, b"key-%d" % i, payload(i), [("seq", b"%d" % i)],
                 (ck.TIMESTAMP_CREATE_TIME, t0 + i)) for i in range(p, NMSG, nparts)]
        R.eq(len(got[p]), len(want), "confluent consumer: partition %d count" % p)
        R.check(got[p] == want,
                "confluent consumer: partition %d identical (key, value, headers, timestamp)" % p)

    for p in range(nparts):
        n = len(range(p, NMSG, nparts))
        wm = cons.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10, cached=False)
        R.eq(tuple(wm) if wm else None, (0, n), "get_watermark_offsets partition %d" % p)
        # n = 500 messages per partition, offsets 0..499; offset j has timestamp t0 + 2j + p.
        q = [ck.TopicPartition(topic, p, t0 + 2 * 250 + p)]  # exact: offset 250
        r1 = cons.offsets_for_times(q, timeout=10)
        R.eq([(x.partition, x.offset, x.error) for x in r1], [(p, 250, None)],
             "offsets_for_times exact timestamp, partition %d" % p)
        r2 = cons.offsets_for_times([ck.TopicPartition(topic, p, t0 + 2 * 150 + p - 1)],
                                    timeout=10)
        R.eq([x.offset for x in r2], [150], "offsets_for_times between two timestamps, "
             "partition %d: first offset at or after" % p)
        r3 = cons.offsets_for_times([ck.TopicPartition(topic, p, t0 - 100000)], timeout=10)
        R.eq([x.offset for x in r3], [0], "offsets_for_times before all, partition %d" % p)
        r4 = cons.offsets_for_times([ck.TopicPartition(topic, p, t0 + 10 * NMSG)], timeout=10)
        R.eq([x.offset for x in r4], [-1], "offsets_for_times after all: -1 (end), "
             "partition %d" % p)
    cons.close()

    fs = admin.delete_topics([topic], operation_timeout=10, request_timeout=15)
    try:
        fs[topic].result(15)
        R.check(True, "confluent delete_topics %s" % topic)
    except Exception as e:  # noqa: BLE001
        R.check(False, "confluent delete_topics %s: %s" % (topic, e))
    md = admin.list_topics(timeout=10)
    R.check(topic not in md.topics, "confluent list_topics no longer has %s" % topic)
    fs = admin.delete_topics(["never-existed"], operation_timeout=10, request_timeout=15)
    try:
        fs["never-existed"].result(15)
        R.check(False, "confluent delete_topics of a missing topic fails")
    except ck.KafkaException as e:
        R.eq(e.args[0].code(), ck.KafkaError.UNKNOWN_TOPIC_OR_PART,
             "confluent delete_topics of a missing topic: UNKNOWN_TOPIC_OR_PARTITION")


# ---- raw ListOffsets v1 by timestamp, to pin what the clients see -----------------------
def test_raw_listoffsets_by_time():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import kwire
    R.section("raw ListOffsets v1 by timestamp inside batches")
    c = kwire.Conn(B.host, B.port)
    c.metadata(["lo-raw"])
    t = 1700000000000
    for k in range(3):  # 3 batches of 10 records; offset o has timestamp t + 10 * o
        recs = [(None, b"v%d" % (10 * k + i), [], 10 * i) for i in range(10)]
        c.produce("lo-raw", 0, kwire.record_batch(recs, base_ts=t + 100 * k))
    for d, want in ((0, (0, t)), (10, (1, t + 10)), (55, (6, t + 60)), (100, (10, t + 100)),
                    (150, (15, t + 150)), (290, (29, t + 290)), (291, (-1, -1)), (-5, (0, t))):
        r = c.list_offsets("lo-raw", 0, t + d)
        R.eq((r["error"], r["offset"], r["timestamp"]), (0,) + want,
             "ListOffsets v1 timestamp t+%d: first record with timestamp >= target "
             "(offset, its timestamp)" % d)
    c.close()


def main():
    global B
    B = R.broker("pyclients")
    try:
        B.start()
    except Exception as e:  # noqa: BLE001
        R.check(False, "broker starts: %s" % e)
        R.finish()
    R.run(test_kafka_python)
    R.check(B.alive(), "broker alive after kafka-python")
    R.run(test_confluent)
    R.check(B.alive(), "broker alive after confluent-kafka")
    R.run(test_raw_listoffsets_by_time)
    R.finish()


if __name__ == "__main__":
    main()
