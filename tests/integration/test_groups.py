#!/usr/bin/python3
"""test_groups.py - consumer groups and committed offsets against a real stratusd, with
librdkafka (confluent-kafka), kcat -G, kafka-python (consumer and admin) and raw requests:
a 12-partition topic split by three members, a SIGKILLed member taken over within the session
timeout, cooperative-sticky without needless revocations, resume at the committed offset (also
across a broker restart), admin list/describe/delete groups and group offsets, Kafka error codes
for bad input, and a commits-per-second measurement of OffsetCommit.
Run with /usr/bin/python3 (Debian's python3-kafka and python3-confluent-kafka live there).
SPDX-License-Identifier: Apache-2.0
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Report  # noqa: E402
import kwire  # noqa: E402
from kwire import array, i16, i32, i64, kbytes, string  # noqa: E402

R = Report("test_groups")
B = None
SETS = {"group.initial_rebalance_delay": "300ms", "group.min_session_timeout": "1s",
        "group.offsets_retention_check_interval": "1s"}
SESSION_MS = 3000


def create_topic(name, parts, nmsg=0):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": B.bootstrap})
    a.create_topics([NewTopic(name, parts, 1)])[name].result(15)
    if nmsg:
        p = Producer({"bootstrap.servers": B.bootstrap, "linger.ms": 5})
        for i in range(nmsg):
            p.produce(name, b"m-%06d" % i, partition=i % parts)
        R.eq(p.flush(30), 0, "%s: %d messages produced" % (name, nmsg))


# ---- a consumer member in its own process (so it can be SIGKILLed) ---------------------
MEMBER = r"""
import json, sys, time
from confluent_kafka import Consumer
bootstrap, group, topic, strategy, name = sys.argv[1:6]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": name,
              "auto.offset.reset": "earliest", "session.timeout.ms": %d,
              "heartbeat.interval.ms": 300, "partition.assignment.strategy": strategy,
              "enable.auto.commit": False})
def emit(kind, parts):
    print(json.dumps({"t": time.time(), "kind": kind, "parts": sorted(p.partition for p in parts)}),
          flush=True)
c.subscribe([topic], on_assign=lambda cc, p: emit("assign", p),
            on_revoke=lambda cc, p: emit("revoke", p))
while True:
    m = c.poll(0.2)
    if m is not None and not m.error():
        print(json.dumps({"t": time.time(), "kind": "msg", "p": m.partition(), "o": m.offset()}),
              flush=True)
""" % SESSION_MS


class Member:
    def __init__(self, group, topic, name, strategy="range"):
        self.name = name
        self.events = []
        self.proc = subprocess.Popen([sys.executable, "-c", MEMBER, B.bootstrap, group, topic,
                                      strategy, name], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.lock = threading.Lock()
        self.th = threading.Thread(target=self._read, daemon=True)
        self.th.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.events.append(ev)

    def owned(self):
        """Partitions owned now (eager: last assign; cooperative: assigns minus revokes)."""
        own = set()
        with self.lock:
            for ev in self.events:
                if ev["kind"] == "assign":
                    own |= set(ev["parts"])
                elif ev["kind"] == "revoke":
                    own -= set(ev["parts"])
        return own

    def revoked(self):
        with self.lock:
            return [p for ev in self.events if ev["kind"] == "revoke" for p in ev["parts"]]

    def messages(self):
        with self.lock:
            return [(ev["p"], ev["o"]) for ev in self.events if ev["kind"] == "msg"]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL: no LeaveGroup
        self.proc.wait()


def wait_split(members, nparts, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owned = [m.owned() for m in members]
        allp = [p for o in owned for p in o]
        if sorted(allp) == list(range(nparts)) and all(owned):
            return owned
        time.sleep(0.1)
    owned = [m.owned() for m in members]
    R.check(False, "%s: partitions not split within %.1fs: %r" % (what, timeout, owned))
    return None


def test_eager_split_and_kill():
    R.section("librdkafka: three members split 12 partitions; a SIGKILLed member is taken over")
    topic = "g-split"
    create_topic(topic, 12, 1200)
    ms = [Member("grp-split", topic, "m%d" % i) for i in range(3)]
    try:
        owned = wait_split(ms, 12, 30, "3 members")
        if owned is None:
            return
        R.check(all(len(o) == 4 for o in owned), "each of 3 members owns 4 partitions: %r" % owned)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sum(len(m.messages()) for m in ms) < 1200:
            time.sleep(0.1)
        msgs = [x for m in ms for x in m.messages()]
        R.eq(len(msgs), 1200, "all 1200 messages consumed by the group")
        R.eq(len(set(msgs)), 1200, "no message consumed twice")
        t_kill = time.time()
        ms[2].kill()
        owned = wait_split(ms[:2], 12, SESSION_MS / 1000.0 + 6, "after SIGKILL")
        if owned is not None:
            took = max(ev["t"] for m in ms[:2] for ev in m.events if ev["kind"] == "assign") - t_kill
            R.check(took < SESSION_MS / 1000.0 + 3,
                    "the two others own all 12 partitions %.1fs after the kill (session %.1fs)"
                    % (took, SESSION_MS / 1000.0))
    finally:
        for m in ms:
            m.kill()


def test_cooperative():
    R.section("librdkafka cooperative-sticky: members keeping partitions are not revoked")
    topic = "g-coop"
    create_topic(topic, 12)
    ms = [Member("grp-coop", topic, "c%d" % i, "cooperative-sticky") for i in range(2)]
    try:
        before = wait_split(ms, 12, 30, "2 cooperative members")
        if before is None:
            return
        ms.append(Member("grp-coop", topic, "c2", "cooperative-sticky"))
        after = wait_split(ms, 12, 30, "3 cooperative members")
        if after is None:
            return
        R.check(all(len(o) == 4 for o in after), "3 cooperative members own 4 each: %r" % after)
        for i in range(2):
            rev = set(ms[i].revoked())
            R.check(rev.isdisjoint(after[i]),
                    "member c%d: revoked %r, keeps %r (kept partitions never revoked)"
                    % (i, sorted(rev), sorted(after[i])))
            R.check(before[i] - rev == after[i],
                    "member c%d: only the partitions that moved were revoked" % i)
    finally:
        for m in ms:
            m.kill()


def consume_commit(group, topic, n, extra=None):
    """Consumes n messages of the group with a fresh consumer, commits synchronously, closes.
    Returns the (partition, offset) list."""
    from confluent_kafka import Consumer
    conf = {"bootstrap.servers": B.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": SESSION_MS}
    conf.update(extra or {})
    c = Consumer(conf)
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append((m.partition(), m.offset()))
    if got:
        c.commit(asynchronous=False)
    c.close()
    return got


def test_resume():
    R.section("librdkafka: commit, stop, start again -> resume at the committed offset")
    topic = "g-resume"
    create_topic(topic, 1, 100)
    first = consume_commit("grp-resume", topic, 40)
    R.check(len(first) >= 40, "first consumer read %d messages" % len(first))
    last = max(o for _, o in first)
    second = consume_commit("grp-resume", topic, 10)
    R.eq(second[0] if second else None, (0, last + 1), "second consumer starts after the commit")
    last = max(o for _, o in second)
    B.restart()
    third = consume_commit("grp-resume", topic, 5)
    R.eq(third[0] if third else None, (0, last + 1),
         "after a broker restart the consumer resumes at the committed offset")


def test_kcat():
    R.section("kcat -G")
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if not kcat:
        R.check(True, "kcat not installed: skipped")
        return
    topic = "g-kcat"
    create_topic(topic, 4, 400)
    p = subprocess.Popen([kcat, "-b", B.bootstrap, "-G", "grp-kcat", "-X",
                          "auto.offset.reset=earliest", "-X", "session.timeout.ms=3000",
                          "-X", "heartbeat.interval.ms=500",
                          "-f", "%p:%o\\n", "-q", topic], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    lines = []
    th = threading.Thread(target=lambda: lines.extend(p.stdout), daemon=True)
    th.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(lines) < 400:
        time.sleep(0.1)
    p.terminate()
    p.wait(10)
    got = [ln.strip() for ln in lines if ln.strip()]
    R.eq(len(got), 400, "kcat -G consumed 400 messages")
    R.eq(len(set(got)), 400, "kcat -G: none twice")


def test_kafka_python():
    R.section("kafka-python KafkaConsumer(group_id) and KafkaAdminClient")
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    topic = "g-kp"
    create_topic(topic, 3, 300)
    # One thread per member: kafka-python blocks in poll() until its group join completes.
    cs = [KafkaConsumer(topic, bootstrap_servers=B.bootstrap, group_id="grp-kp",
                        auto_offset_reset="earliest", enable_auto_commit=False,
                        session_timeout_ms=SESSION_MS, heartbeat_interval_ms=500,
                        max_poll_interval_ms=20000, client_id="kp%d" % i) for i in range(2)]
    got = []
    lock = threading.Lock()
    deadline = time.monotonic() + 40

    def run(c):
        while time.monotonic() < deadline:
            with lock:
                if len(got) >= 300:
                    break
            for tp, recs in c.poll(timeout_ms=200).items():
                with lock:
                    got.extend((tp.partition, r.offset) for r in recs)
        c.commit()
    ths = [threading.Thread(target=run, args=(c,)) for c in cs]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    R.eq(len(got), 300, "two kafka-python members consumed 300 messages")
    R.eq(len(set(got)), 300, "kafka-python: none twice")

    admin = KafkaAdminClient(bootstrap_servers=B.bootstrap, request_timeout_ms=15000)
    groups = dict(admin.list_consumer_groups())
    R.check("grp-kp" in groups, "list_consumer_groups has grp-kp: %r" % groups)
    R.eq(groups.get("grp-kp"), "consumer", "grp-kp protocol type")
    desc = admin.describe_consumer_groups(["grp-kp"])[0]
    R.eq(desc.state, "Stable", "describe_consumer_groups: Stable")
    R.eq(desc.protocol, "range", "describe_consumer_groups: protocol range")
    R.eq(len(desc.members), 2, "describe_consumer_groups: 2 members")
    assigned = sorted(tp.partition for m in desc.members
                      for tp in _assignment_partitions(m.member_assignment))
    R.eq(assigned, [0, 1, 2], "member assignments (as stored) cover the 3 partitions")
    offs = admin.list_consumer_group_offsets("grp-kp")
    R.eq(sorted((tp.partition, om.offset) for tp, om in offs.items()),
         [(0, 100), (1, 100), (2, 100)], "list_consumer_group_offsets after commit")
    res = admin.delete_consumer_groups(["grp-kp"])
    R.check(res and res[0][1].errno == 68, "delete of a group with members: NON_EMPTY_GROUP")
    for c in cs:
        c.close()
    res = dict((g, e.errno) for g, e in admin.delete_consumer_groups(["grp-kp", "no-such"]))
    R.eq(res, {"grp-kp": 0, "no-such": 69}, "delete_consumer_groups: deleted / GROUP_ID_NOT_FOUND")
    R.check("grp-kp" not in dict(admin.list_consumer_groups()), "deleted group is gone")
    c = KafkaConsumer(bootstrap_servers=B.bootstrap, group_id="grp-kp")
    R.eq(c.committed(TopicPartition(topic, 0)), None, "offsets of the deleted group are gone")
    c.close()
    admin.close()


def _assignment_partitions(a):
    from kafka import TopicPartition
    parts = []
    if hasattr(a, "assignment"):
        for t, ps in a.assignment:
            parts.extend(TopicPartition(t, p) for p in ps)
    return parts


# ---- raw requests: error codes ----------------------------------------------------------
def join_v2(group, member="", meta=b"\x00\x00", proto_type="consumer", session=10000):
    return (string(group) + i32(session) + i32(session) + string(member) + string(proto_type) +
            array([string("range") + kbytes(meta)]))


def test_errors():
    R.section("bad input gets Kafka error codes")
    create_topic("g-raw", 2)
    c = kwire.Conn.to(B.bootstrap, client_id="raw")
    hb = lambda g, gen, m: struct.unpack(">h", c.request(12, 1, string(g) + i32(gen) + string(m))[4:6])[0]  # noqa
    R.eq(hb("no-such-group", 1, "x"), 25, "Heartbeat unknown group: UNKNOWN_MEMBER_ID")
    # JoinGroup v4 first join: MEMBER_ID_REQUIRED with an id
    body = (string("grp-raw") + i32(10000) + i32(10000) + string("") + string("consumer") +
            array([string("range") + kbytes(b"\x00\x00")]))
    r = kwire.Reader(c.request(11, 4, body))
    r.i32()
    err = r.i16()
    R.eq(err, 79, "JoinGroup v4 with empty member id: MEMBER_ID_REQUIRED")
    r.i32(), r.string(), r.string()
    mid = r.string()
    R.check(bool(mid), "MEMBER_ID_REQUIRED carries a member id (%r)" % mid)
    r = kwire.Reader(c.request(11, 2, join_v2("grp-raw2")))
    r.i32()
    err, gen = r.i16(), r.i32()
    r.string()
    r.string()
    member = r.string()
    R.eq(err, 0, "JoinGroup v2 joins (after the initial delay)")
    R.eq(hb("grp-raw2", gen + 5, member), 22, "Heartbeat wrong generation: ILLEGAL_GENERATION")
    R.eq(hb("grp-raw2", gen, "stale-member"), 25, "Heartbeat stale member: UNKNOWN_MEMBER_ID")
    r = kwire.Reader(c.request(11, 2, join_v2("grp-raw3", meta=b"\x00" * (2 << 20))))
    r.i32()
    R.eq(r.i16(), 42, "JoinGroup with 2 MiB metadata: INVALID_REQUEST")
    r = kwire.Reader(c.request(11, 2, join_v2("grp-raw3", session=100)))
    r.i32()
    R.eq(r.i16(), 26, "JoinGroup session timeout below the minimum: INVALID_SESSION_TIMEOUT")
    r = kwire.Reader(c.request(11, 2, join_v2("grp-raw2", proto_type="other")))
    r.i32()
    R.eq(r.i16(), 23, "JoinGroup with another protocol type: INCONSISTENT_GROUP_PROTOCOL")

    def commit(group, gen, member, topic, part, off=5):
        body = (string(group) + i32(gen) + string(member) + i64(-1) +
                array([string(topic) + array([i32(part) + i64(off) + string("meta")])]))
        r = kwire.Reader(c.request(8, 2, body))
        n = r.i32()
        r.string()
        r.i32()
        r.i32()
        return r.i16() if n else None
    R.eq(commit("grp-raw4", -1, "", "g-raw", 0), 0, "OffsetCommit gen -1 from a memberless group")
    R.eq(commit("grp-raw4", -1, "", "no-topic", 0), 3, "OffsetCommit unknown topic")
    R.eq(commit("grp-raw4", -1, "", "g-raw", 7), 3, "OffsetCommit unknown partition")
    R.eq(commit("grp-raw5", 3, "m", "g-raw", 0), 22, "OffsetCommit gen 3 to unknown group")
    R.eq(commit("grp-raw2", gen + 1, member, "g-raw", 0), 22, "OffsetCommit wrong generation")
    R.eq(commit("grp-raw2", gen, "bogus", "g-raw", 0), 25, "OffsetCommit unknown member")
    R.eq(commit("grp-raw2", gen, member, "g-raw", 1, 77), 27,
         "OffsetCommit before the leader's SyncGroup: REBALANCE_IN_PROGRESS")
    body = string("grp-raw2") + i32(gen) + string(member) + array([string(member) + kbytes(b"A")])
    r = kwire.Reader(c.request(14, 1, body))
    r.i32()
    R.eq((r.i16(), r.kbytes()), (0, b"A"), "SyncGroup of the leader returns its assignment")
    R.eq(commit("grp-raw2", gen, member, "g-raw", 1, 77), 0, "OffsetCommit by the member")
    # OffsetFetch v1 of one partition, v8 null topics (all)
    r = kwire.Reader(c.request(9, 1, string("grp-raw2") + array([string("g-raw") +
                                                               array([i32(1), i32(0)])])))
    r.i32()
    r.string()
    r.i32()
    got = []
    for _ in range(2):
        got.append((r.i32(), r.i64(), r.string(), r.i16()))
    R.eq(got, [(1, 77, "meta", 0), (0, -1, "", 0)], "OffsetFetch v1")
    # SyncGroup with the wrong generation, LeaveGroup of an unknown member
    body = string("grp-raw2") + i32(gen + 1) + string(member) + array([])
    r = kwire.Reader(c.request(14, 1, body))
    r.i32()
    R.eq(r.i16(), 22, "SyncGroup wrong generation: ILLEGAL_GENERATION")
    r = kwire.Reader(c.request(13, 1, string("grp-raw2") + string("nobody")))
    r.i32()
    R.eq(r.i16(), 25, "LeaveGroup unknown member: UNKNOWN_MEMBER_ID")
    r = kwire.Reader(c.request(13, 1, string("grp-raw2") + string(member)))
    r.i32()
    R.eq(r.i16(), 0, "LeaveGroup of the member")
    c.close()


def test_commit_rate():
    R.section("OffsetCommit throughput")
    create_topic("g-bench", 1)
    stop = time.monotonic() + 3.0
    counts = []
    lock = threading.Lock()

    def worker(k):
        c = kwire.Conn.to(B.bootstrap, client_id="bench%d" % k)
        n = 0
        off = 0
        while time.monotonic() < stop:
            off += 1
            body = (string("grp-bench-%d" % k) + i32(-1) + string("") + i64(-1) +
                    array([string("g-bench") + array([i32(0) + i64(off) + string("")])]))
            c.request(8, 2, body)
            n += 1
        c.close()
        with lock:
            counts.append(n)
    ths = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    t0 = time.monotonic()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    rate = sum(counts) / (time.monotonic() - t0)
    print("  commits/s (8 connections, synchronous OffsetCommit v2, synced RocksDB batches): %.0f"
          % rate, flush=True)
    R.check(rate > 50, "OffsetCommit rate %.0f/s" % rate)


def test_retention():
    R.section("offsets retention of empty groups")
    b = R.broker("groups-ret", sets=dict(SETS, **{"group.offsets_retention": "1s"}))
    b.start()
    global B
    saved, B = B, b
    try:
        create_topic("g-ret", 1)
        from kafka import KafkaAdminClient
        c = kwire.Conn.to(b.bootstrap)
        body = (string("grp-ret") + i32(-1) + string("") + i64(-1) +
                array([string("g-ret") + array([i32(0) + i64(9) + string("")])]))
        c.request(8, 2, body)
        c.close()
        admin = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=15000)
        R.check("grp-ret" in dict(admin.list_consumer_groups()), "group with offsets listed")
        time.sleep(3.5)
        R.check("grp-ret" not in dict(admin.list_consumer_groups()),
                "group gone after offsets_retention")
        admin.close()
    finally:
        B = saved
        b.stop()


def main():
    global B
    B = R.broker("groups", sets=SETS)
    B.start()
    only = os.environ.get("ONLY")
    for t in (test_errors, test_eager_split_and_kill, test_cooperative, test_resume, test_kcat,
              test_kafka_python, test_commit_rate, test_retention):
        if not only or only in t.__name__:
            R.run(t)
    R.finish()


def _unused():
    R.run(test_errors)
    R.run(test_eager_split_and_kill)
    R.run(test_cooperative)
    R.run(test_resume)
    R.run(test_kcat)
    R.run(test_kafka_python)
    R.run(test_commit_rate)
    R.run(test_retention)
    R.finish()


if __name__ == "__main__":
    main()
