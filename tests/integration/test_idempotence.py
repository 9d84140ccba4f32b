#!/usr/bin/python3
"""test_idempotence.py - idempotent producers and the admin surface against a real stratusd.

- A small TCP proxy sits between the clients and the broker (the broker advertises the proxy)
  and resets connections at random points of the broker->client stream while producing, so
  responses are lost after the broker appended the batch and the clients retry.
- confluent-kafka (librdkafka 2.0.2) with enable.idempotence=true and a kafkajs idempotent
  producer (test_idempotence.js) each write a topic through the faulty proxy; read back
  directly, every partition holds each message exactly once and in send order.
- The proxy refuses librdkafka's first Produce to a new partition (NOT_LEADER_OR_FOLLOWER,
  answered late) while the next one is in flight: the broker must refuse that one too (a
  producer new to a partition starts at sequence 0), else librdkafka reports the refused
  message delivered although it was never written; every message is read back once.
- DescribeProducers (raw request) lists the producers with their last sequence; a raw
  idempotent Produce retried by hand answers the original offset; InitProducerId hands out
  increasing ids, also after a broker restart; a transactional id is refused.
- DeleteRecords (raw v1, and kafkajs admin.deleteTopicRecords in the js part): ListOffsets
  earliest shows the new low watermark, a fetch below it gets OFFSET_OUT_OF_RANGE, also after
  a restart. kafka-python alter_configs / describe_configs and create_partitions; the ACL and
  reassignment APIs answer their documented errors; DescribeLogDirs reports remote://local.
Run with /usr/bin/python3 (Debian's python3-kafka and python3-confluent-kafka).
SPDX-License-Identifier: Apache-2.0
"""
import os
import random
import select
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Report, free_port  # noqa: E402
import kwire  # noqa: E402
from kwire import Reader, array, compact_string, i8, i16, i32, i64, string, uvarint  # noqa: E402

R = Report("test_idempotence")
B = None
PROXY = None
HERE = os.path.dirname(os.path.abspath(__file__))


# ---- a TCP proxy that resets connections -------------------------------------------------
class Proxy:
    """Forwards 127.0.0.1:port to the broker; while `faults` is on, each connection is reset
    (RST) after a random number of broker->client bytes, i.e. usually between a request
    reaching the broker and its response reaching the client. With `refuse_topic` set when a
    connection opens, that connection instead answers the first Produce to the topic itself
    with NOT_LEADER_OR_FOLLOWER, 300 ms later, holding the broker's responses to the requests
    sent after it until then (see test_refused_first)."""

    def __init__(self, target_port):
        self.port = free_port()
        self.target = ("127.0.0.1", target_port)
        self.faults = False
        self.resets = 0
        self.stop = False
        self.refuse_topic = None
        self.refused = []  # (corr id, api version) of the Produce requests refused
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", self.port))
        self.lsock.listen(64)
        self.lsock.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(c,), daemon=True).start()

    @staticmethod
    def _reset(s):
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        except OSError:
            pass

    def _pipe(self, c):
        try:
            b = socket.create_connection(self.target)
        except OSError:
            c.close()
            return
        if self.refuse_topic:
            self._pipe_refusing(c, b, self.refuse_topic)
            return
        budget = random.randint(60, 1500)
        try:
            while not self.stop:
                r, _, _ = select.select([c, b], [], [], 0.2)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        raise EOFError
                    if s is b and self.faults:
                        budget -= len(data)
                        if budget <= 0:
                            # deliver part of it at most, then reset both sides
                            self.resets += 1
                            raise ConnectionResetError
                    (c if s is b else b).sendall(data)
        except (EOFError, OSError):
            pass
        self._reset(c)
        self._reset(b)


    @staticmethod
    def _frames(buf):
        """Splits whole frames (int32 size + payload) off buf: (frames, rest)."""
        out = []
        while len(buf) >= 4:
            n = struct.unpack_from(">i", buf)[0]
            if len(buf) < 4 + n:
                break
            out.append(buf[:4 + n])
            buf = buf[4 + n:]
        return out, buf

    @staticmethod
    def _produce_topics(frame):
        """(corr id, version, [topic names]) of a Produce v3-v8 request frame, or None."""
        r = Reader(frame, 4)
        key, ver, corr = r.i16(), r.i16(), r.i32()
        if key != 0 or not 3 <= ver <= 8:
            return None
        r.string()  # client id
        r.string()  # transactional id
        r.i16()
        r.i32()
        names = []
        for _ in range(r.i32()):
            names.append(r.string())
            for _ in range(r.i32()):
                r.i32()
                r.kbytes()
        return corr, ver, names

    def _pipe_refusing(self, c, b, topic):
        cbuf = bbuf = b""
        refused = None  # (send at, corr id, response frame)
        held = []
        try:
            while not self.stop:
                r, _, _ = select.select([c, b], [], [], 0.01)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        raise EOFError
                    if s is c:
                        frames, cbuf = self._frames(cbuf + data)
                        for f in frames:
                            pt = self._produce_topics(f)
                            if pt and topic in pt[2] and not self.refused:
                                corr, ver, _ = pt
                                self.refused.append((corr, ver))
                                body = array([string(topic) + array([
                                    i32(0) + i16(6) + i64(-1) + i64(-1) + i64(-1)])]) + i32(0)
                                resp = i32(corr) + body
                                refused = (time.monotonic() + 0.3, corr, i32(len(resp)) + resp)
                            else:
                                b.sendall(f)
                    else:
                        frames, bbuf = self._frames(bbuf + data)
                        for f in frames:
                            if refused and struct.unpack_from(">i", f, 4)[0] > refused[1]:
                                held.append(f)  # answered after the refused one
                            else:
                                c.sendall(f)
                if refused and time.monotonic() >= refused[0]:
                    c.sendall(refused[2])
                    for f in held:
                        c.sendall(f)
                    refused, held = None, []
        except (EOFError, OSError):
            pass
        self._reset(c)
        self._reset(b)


# ---- raw requests --------------------------------------------------------------------------
def flex_request(conn, api_key, version, body):
    payload = conn.request(api_key, version, body, flexible=True)
    r = Reader(payload)
    r.uvarint()  # response header tagged fields
    return r


def compact_nullable_string(r):
    n = r.uvarint() - 1
    return None if n < 0 else r.raw(n).decode()


def describe_producers(conn, topic, partitions):
    body = (uvarint(2) + compact_string(topic) + uvarint(len(partitions) + 1) +
            b"".join(i32(p) for p in partitions) + b"\x00" + b"\x00")
    r = flex_request(conn, 61, 0, body)
    r.i32()
    out = {}
    for _ in range(r.uvarint() - 1):
        t = compact_nullable_string(r)
        for _ in range(r.uvarint() - 1):
            p, err = r.i32(), r.i16()
            compact_nullable_string(r)
            prods = []
            for _ in range(r.uvarint() - 1):
                prods.append({"pid": r.i64(), "epoch": r.i32(), "last_seq": r.i32(),
                              "last_ts": r.i64(), "coord_epoch": r.i32(), "txn_start": r.i64()})
                r.uvarint()
            r.uvarint()
            out[(t, p)] = (err, prods)
        r.uvarint()
    return out


def init_producer_id(conn, txn_id=None, version=1, pid=-1, epoch=-1):
    if version >= 2:  # flexible
        t = uvarint(0) if txn_id is None else compact_string(txn_id)
        body = t + i32(60000) + (i64(pid) + i16(epoch) if version >= 3 else b"") + b"\x00"
        r = flex_request(conn, 22, version, body)
    else:
        r = Reader(conn.request(22, version, string(txn_id) + i32(60000)))
    r.i32()
    return r.i16(), r.i64(), r.i16()


def delete_records(conn, topic, partition, offset):
    body = array([string(topic) + array([i32(partition) + i64(offset)])]) + i32(10000)
    r = Reader(conn.request(21, 1, body))
    r.i32()
    res = {}
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p, low, err = r.i32(), r.i64(), r.i16()
            res[(t, p)] = (err, low)
    return res[(topic, partition)]


def idem_batch(pid, epoch, seq, values):
    """A v2 batch of the given values carrying producer id, epoch and base sequence."""
    b = bytearray(kwire.record_batch([(None, v, ()) for v in values]))
    # offsets after the length and magic: producerId at 43, epoch at 51, base seq at 53
    struct.pack_into(">qhi", b, 43, pid, epoch, seq)
    crc = kwire.crc32c(bytes(b[21:]))
    struct.pack_into(">I", b, 17, crc)
    return bytes(b)


def produce_raw(conn, topic, partition, batch):
    body = (string(None) + i16(-1) + i32(10000) +
            array([string(topic) + array([i32(partition) + kwire.kbytes(batch)])]))
    r = Reader(conn.request(0, 3, body))
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            r.i32()
            err, off = r.i16(), r.i64()
            return err, off


# ---- tests -----------------------------------------------------------------------------------
def read_partition(topic, p):
    c = kwire.Conn.to(B.bootstrap)
    try:
        return [x[3] for x in c.fetch_all(topic, p)]
    finally:
        c.close()


def check_exactly_once(topic, nparts, sent, who):
    for p in range(nparts):
        got = read_partition(topic, p)
        want = sent[p]
        dups = len(got) - len(set(got))
        R.eq(dups, 0, "%s partition %d: no duplicates" % (who, p))
        R.eq(len(got), len(want), "%s partition %d: every message once" % (who, p))
        R.check(got == want, "%s partition %d: in send order" % (who, p))


def test_librdkafka():
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    R.section("librdkafka enable.idempotence=true through a connection-resetting proxy")
    topic, nparts, n = "idem-rdk", 3, 4000
    admin = AdminClient({"bootstrap.servers": PROXY})
    fs = admin.create_topics([NewTopic(topic, nparts, 1)])
    fs[topic].result(15)
    errors = []
    prod = Producer({"bootstrap.servers": PROXY, "enable.idempotence": True, "acks": "all",
                     "linger.ms": 2, "batch.num.messages": 50, "message.timeout.ms": 120000,
                     "retry.backoff.ms": 50, "socket.timeout.ms": 10000, "log_level": 2,
                     "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 200,
                     "max.in.flight.requests.per.connection": 5})
    sent = {p: [] for p in range(nparts)}

    def dr(err, msg):
        if err is not None:
            errors.append(str(err))

    resets0 = 0
    t0 = time.monotonic()
    for i in range(n):
        if i == 200:
            Proxy_obj.faults = True
            resets0 = Proxy_obj.resets
        v = b"rdk-%06d" % i
        p = i % nparts
        sent[p].append(v)
        while True:
            try:
                prod.produce(topic, value=v, partition=p, on_delivery=dr)
                break
            except BufferError:
                prod.poll(0.05)
        if i % 100 == 0:
            prod.poll(0)
            time.sleep(0.01)
    left = prod.flush(120)
    Proxy_obj.faults = False
    print("  librdkafka produced in %.1fs" % (time.monotonic() - t0), flush=True)
    R.eq(left, 0, "librdkafka: every message delivered")
    R.eq(errors[:3], [], "librdkafka: no delivery errors")
    R.check(Proxy_obj.resets - resets0 >= 3,
            "proxy reset %d connections while producing" % (Proxy_obj.resets - resets0))
    check_exactly_once(topic, nparts, sent, "librdkafka")

    conn = kwire.Conn.to(B.bootstrap)
    dp = describe_producers(conn, topic, [0, 1, 2, 7])
    err, prods = dp.get((topic, 0), (-1, []))
    R.eq(err, 0, "DescribeProducers partition 0: no error")
    R.check(len(prods) >= 1, "DescribeProducers partition 0: a producer is listed")
    if prods:
        last = max(prods, key=lambda x: x["last_seq"])
        R.check(last["last_seq"] >= n // nparts - 1 - 0 and last["pid"] >= 0,
                "DescribeProducers: last sequence %d covers the partition's %d messages" % (
                    last["last_seq"], n // nparts))
        R.eq((last["coord_epoch"], last["txn_start"]), (-1, -1),
             "DescribeProducers: no transaction fields")
    R.eq(dp.get((topic, 7), (None,))[0], 3, "DescribeProducers unknown partition: error 3")
    conn.close()


def test_refused_first():
    """CI once lost the first acknowledged record of a new partition in a cluster: the
    claiming broker refused librdkafka's first Produce (sequence 0) while the second was in
    flight and then accepted that one; librdkafka takes a later success as proof that the
    refused batch was written too and reports it delivered. The proxy stages exactly that
    here: the broker must refuse the second batch (OUT_OF_ORDER_SEQUENCE_NUMBER, a producer
    new to the partition starts at 0) so that librdkafka resends both."""
    from confluent_kafka import Producer

    R.section("librdkafka: the first Produce refused while the next is in flight")
    topic, n = "idem-gap", 300
    conn = kwire.Conn.to(B.bootstrap)
    R.eq(conn.create_topic(topic, 1)[0], 0, "create %s" % topic)
    conn.close()
    Proxy_obj.refuse_topic, Proxy_obj.refused = topic, []
    errors, fatal, acked = [], [], []
    prod = Producer({"bootstrap.servers": PROXY, "enable.idempotence": True, "acks": "all",
                     "linger.ms": 1, "message.timeout.ms": 60000, "retry.backoff.ms": 50,
                     "error_cb": lambda e: fatal.append(str(e)) if e.fatal() else None})

    def dr(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked.append(msg.value())

    sent = []
    try:
        for i in range(n):
            v = b"gap-%04d" % i
            sent.append(v)
            prod.produce(topic, value=v, partition=0, on_delivery=dr)
            prod.poll(0)
            time.sleep(0.002)
        left = prod.flush(60)
    finally:
        Proxy_obj.refuse_topic = None
    R.eq(len(Proxy_obj.refused), 1, "the proxy refused the first Produce to %s" % topic)
    R.eq((left, errors[:3], fatal[:3]), (0, [], []),
         "every message delivered, no delivery error, no fatal producer error")
    R.eq(sorted(acked), sent, "a delivery report for each message")
    check_exactly_once(topic, 1, {0: sent}, "refused-first")


def test_kafkajs():
    R.section("kafkajs idempotent producer through the proxy, and kafkajs admin")
    node = os.environ.get("STRATUS_ITEST_NODE") or "node"
    sent_file = os.path.join(B.root, "kjs-sent.json")
    env = dict(os.environ, STRATUS_BOOTSTRAP=PROXY, STRATUS_DIRECT=B.bootstrap,
               STRATUS_SENT_FILE=sent_file)
    Proxy_obj.faults = False
    p = subprocess.Popen([node, os.path.join(HERE, "test_idempotence.js")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # turn faults on once the producer started, off when it says it is done producing
    out = []
    for line in p.stdout:
        out.append(line)
        print("  [js] " + line.rstrip(), flush=True)
        if "PRODUCING" in line:
            resets0 = Proxy_obj.resets
            Proxy_obj.faults = True
        if "PRODUCED" in line:
            Proxy_obj.faults = False
            R.check(Proxy_obj.resets - resets0 >= 2, "proxy reset %d kafkajs connections while "
                    "producing" % (Proxy_obj.resets - resets0))
    rc = p.wait()
    Proxy_obj.faults = False
    text = "".join(out)
    last = [ln for ln in out if " passed, " in ln]
    R.check(rc == 0 and last and last[-1].strip().endswith(" 0 failed"),
            "kafkajs part passed (exit %d)" % rc)
    del text
    if R.check(os.path.exists(sent_file), "kafkajs wrote what it sent"):
        import json
        with open(sent_file) as f:
            sent = json.load(f)
        sent = {int(k): [x.encode() for x in v] for k, v in sent.items()}
        check_exactly_once("idem-kjs", len(sent), sent, "kafkajs")


def test_raw():
    R.section("raw: InitProducerId, duplicate retry, sequence errors, DeleteRecords")
    conn = kwire.Conn.to(B.bootstrap)
    topic = "idem-raw"
    R.eq(conn.create_topic(topic, 1)[0], 0, "create %s" % topic)
    err, pid, epoch = init_producer_id(conn)
    R.eq((err, epoch), (0, 0), "InitProducerId v1: no error, epoch 0")
    err2, pid2, ep2 = init_producer_id(conn, version=4, pid=pid, epoch=0)
    R.check(err2 == 0 and pid2 > pid and ep2 == 0,
            "InitProducerId v4 with the current id (KIP-360): a new id, epoch 0 (%d > %d)" % (
                pid2, pid))
    R.eq(init_producer_id(conn, txn_id="tx-1")[0], 53,
         "InitProducerId with a transactional id: TRANSACTIONAL_ID_AUTHORIZATION_FAILED")
    R.eq(produce_raw(conn, topic, 0, idem_batch(pid2, 0, 1, [b"z"]))[0], 45,
         "a producer new to the partition continuing at sequence 1 (its first batch lost): "
         "OUT_OF_ORDER_SEQUENCE_NUMBER")
    b0 = idem_batch(pid, 0, 0, [b"a", b"b"])
    R.eq(produce_raw(conn, topic, 0, b0), (0, 0), "first batch at offset 0")
    R.eq(produce_raw(conn, topic, 0, idem_batch(pid, 0, 2, [b"c"])), (0, 2), "next at 2")
    R.eq(produce_raw(conn, topic, 0, b0), (0, 0), "retried batch: original offset 0")
    R.eq(produce_raw(conn, topic, 0, idem_batch(pid, 0, 9, [b"x"]))[0], 45,
         "sequence gap: OUT_OF_ORDER_SEQUENCE_NUMBER")
    R.eq(produce_raw(conn, topic, 0, idem_batch(pid, 1, 0, [b"d"])), (0, 3),
         "new epoch from 0: offset 3")
    R.eq(produce_raw(conn, topic, 0, idem_batch(pid, 0, 3, [b"y"]))[0], 47,
         "old epoch: INVALID_PRODUCER_EPOCH")
    R.eq([x[3] for x in conn.fetch_all(topic, 0)], [b"a", b"b", b"c", b"d"],
         "the log holds each batch once")
    conn.close()

    B.restart()
    conn = kwire.Conn.to(B.bootstrap)
    R.eq(produce_raw(conn, topic, 0, idem_batch(pid, 1, 0, [b"d"])), (0, 3),
         "after restart: retry answered with the original offset")
    err3, pid3, _ = init_producer_id(conn)
    R.check(err3 == 0 and pid3 > pid2, "after restart: producer ids are not reused")
    R.eq(delete_records(conn, topic, 0, 99), (1, -1), "DeleteRecords beyond hw: OFFSET_OUT_OF_RANGE")
    R.eq(delete_records(conn, topic, 0, 2), (0, 2), "DeleteRecords to 2: low watermark 2")
    R.eq(conn.list_offsets(topic, 0, -2)["offset"], 2, "ListOffsets earliest = 2")
    R.eq(conn.fetch(topic, 0, 1)[(topic, 0)]["error"], 1, "fetch below it: OFFSET_OUT_OF_RANGE")
    R.eq(delete_records(conn, topic, 0, -1), (0, 4), "DeleteRecords -1: up to the high watermark")
    conn.close()
    B.restart()
    conn = kwire.Conn.to(B.bootstrap)
    R.eq(conn.list_offsets(topic, 0, -2)["offset"], 4, "after restart: ListOffsets earliest = 4")
    conn.close()


def test_admin_python():
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions
    import kafka.errors

    R.section("kafka-python admin: alter/describe configs, create partitions, ACLs")
    admin = KafkaAdminClient(bootstrap_servers=B.bootstrap, client_id="itest-admin",
                             request_timeout_ms=15000)
    conn = kwire.Conn.to(B.bootstrap)
    topic = "idem-admin"
    R.eq(conn.create_topic(topic, 1)[0], 0, "create %s" % topic)
    res = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                              configs={"retention.ms": "3600000"})])
    R.eq([r[0] for r in res.resources], [0], "alter_configs topic: no error")
    d = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    entries = {e[0]: e[1] for e in d[0].resources[0][4]}
    R.eq(entries.get("retention.ms"), "3600000", "describe_configs shows retention.ms")
    res = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                              configs={"retention.ms": "-7"})])
    R.check(res.resources[0][0] != 0, "alter_configs with a bad value is refused (%d)" %
            res.resources[0][0])
    res = admin.alter_configs([ConfigResource(ConfigResourceType.BROKER, "1",
                                              configs={"log.retention.ms": "1"})])
    R.eq(res.resources[0][0], 42, "alter_configs broker: INVALID_REQUEST (static configs)")
    R.check("stratus.ini" in (res.resources[0][1] or ""), "... with a message naming stratus.ini")
    admin.create_partitions({topic: NewPartitions(3)})
    R.eq(len(conn.metadata([topic])["topics"][topic]["partitions"]), 3,
         "create_partitions: 3 partitions")
    # DescribeAcls v1 (any resource, any principal): SECURITY_DISABLED with a message
    body = i8(1) + string(None) + i8(1) + string(None) + string(None) + i8(1) + i8(1)
    r = Reader(conn.request(29, 1, body))
    r.i32()
    err, msg = r.i16(), r.string()
    R.eq(err, 54, "DescribeAcls: SECURITY_DISABLED")
    R.check(msg and "Authorizer" in msg, "DescribeAcls message: %s" % msg)
    admin.close()
    conn.close()


def test_logdirs_reassign():
    R.section("DescribeLogDirs, partition reassignments (raw)")
    conn = kwire.Conn.to(B.bootstrap)
    # DescribeLogDirs v1 (not flexible), null topics = all
    r = Reader(conn.request(35, 1, i32(-1)))
    r.i32()
    dirs = {}
    for _ in range(r.i32()):
        err, d = r.i16(), r.string()
        sizes = {}
        for _ in range(r.i32()):
            t = r.string()
            for _ in range(r.i32()):
                p, size, lag, fut = r.i32(), r.i64(), r.i64(), r.i8()
                sizes[(t, p)] = size
        dirs[d] = (err, sizes)
    R.eq(list(dirs), ["remote://local"], "DescribeLogDirs: one log dir remote://local")
    sizes = dirs.get("remote://local", (0, {}))[1]
    R.check(sizes.get(("idem-rdk", 0), 0) > 4000, "DescribeLogDirs: idem-rdk/0 has bytes (%s)" %
            sizes.get(("idem-rdk", 0)))
    # ListPartitionReassignments v0 (flexible): timeout, null topics
    rr = flex_request(conn, 46, 0, i32(10000) + uvarint(0) + b"\x00")
    rr.i32()
    err = rr.i16()
    compact_nullable_string(rr)
    R.eq((err, rr.uvarint() - 1), (0, 0), "ListPartitionReassignments: none")
    # AlterPartitionReassignments v0: move idem-admin/0 to broker 2
    body = (i32(10000) + uvarint(2) + compact_string("idem-admin") + uvarint(2) + i32(0) +
            uvarint(2) + i32(2) + b"\x00" + b"\x00" + b"\x00")
    rr = flex_request(conn, 45, 0, body)
    rr.i32()
    rr.i16()
    compact_nullable_string(rr)
    rr.uvarint()
    compact_nullable_string(rr)
    rr.uvarint()
    rr.i32()
    R.eq(rr.i16(), 39, "AlterPartitionReassignments to another broker: INVALID_REPLICA_ASSIGNMENT")
    conn.close()


def main():
    global B, PROXY, Proxy_obj
    B = R.broker("idem", sets={"upload.interval": "300ms"})
    proxy = Proxy(B.port)
    Proxy_obj = proxy
    PROXY = "127.0.0.1:%d" % proxy.port
    B.sets["broker.advertised_listeners"] = "PLAINTEXT://%s" % PROXY
    B.start()
    R.run(test_librdkafka)
    R.run(test_refused_first)
    R.run(test_kafkajs)
    R.run(test_raw)
    R.run(test_admin_python)
    R.run(test_logdirs_reassign)
    proxy.stop = True
    R.finish()


Proxy_obj = None

if __name__ == "__main__":
    main()
