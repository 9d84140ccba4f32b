#!/usr/bin/python3
"""test_objects.py - data leaves the WAL for objects in the storage-local directory and comes
back from them; retention moves the log start forward.

Objects: with [upload] interval=500ms, object_size=1MiB and a 1 MiB log cache, ~8 MiB produced
(acks=all, confluent-kafka) into three partitions must show up as object files under the
storage path, read back identical through raw Fetch v4 (cold reads through the cache plugin),
then again after a SIGTERM restart and after a SIGKILL restart on the same data dir.
Retention: a topic created with retention.ms=1000 (retention_check_interval=500ms) must see its
earliest offset (ListOffsets -2) move forward and a Fetch at offset 0 answer
OFFSET_OUT_OF_RANGE, while a topic with default retention keeps offset 0 and offsets keep
counting after the expiry.
SPDX-License-Identifier: Apache-2.0
"""
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwire  # noqa: E402
from harness import Report  # noqa: E402

R = Report("test_objects")


def object_files(root):
    out = []
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            try:
                out.append((os.path.relpath(p, root), os.path.getsize(p)))
            except OSError:
                pass
    return sorted(out)


def produce(bootstrap, topic_parts_msgs, extra=None):
    """topic_parts_msgs: {(topic, partition): [value, ...]}. acks=all; returns error list."""
    import confluent_kafka as ck
    conf = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
            "compression.type": "none", "client.id": "itest-objects"}
    conf.update(extra or {})
    p = ck.Producer(conf)
    errors = []

    def cb(err, msg):
        if err:
            errors.append(str(err))

    for (t, part), vals in topic_parts_msgs.items():
        for i, v in enumerate(vals):
            while True:
                try:
                    p.produce(t, value=v, key=b"%d" % i, partition=part, on_delivery=cb)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
    left = p.flush(60)
    if left:
        errors.append("%d messages still queued after flush" % left)
    return errors


def wal_replayed(B):
    """Records the broker's latest start replayed from its WAL, from its log; None if absent."""
    starts = B.log_text().split("==== start #")
    m = re.search(r"wal replayed \S+: (\d+) records", starts[-1])
    return int(m.group(1)) if m else None


def read_back(B, want, what):
    c = kwire.Conn(B.host, B.port, timeout=30)
    try:
        for (t, part), vals in want.items():
            t0 = time.monotonic()
            try:
                recs = c.fetch_all(t, part, verify_crc=False, timeout=60)
            except Exception as e:  # noqa: BLE001
                R.check(False, "%s: read %s/%d: %s" % (what, t, part, e))
                continue
            got = [v for _, _, _, v, _ in recs]
            offs = [o for o, *_ in recs]
            same = got == vals and offs == list(range(len(vals)))
            detail = ""
            if not same:
                i = next((i for i, (a, b) in enumerate(zip(got, vals)) if a != b),
                         min(len(got), len(vals)))
                detail = " (%d records, want %d; first difference at index %d)" % (
                    len(got), len(vals), i)
            R.check(same, "%s: %s/%d identical, %d records, offsets 0..n-1 (%.1fs)%s" % (
                what, t, part, len(vals), time.monotonic() - t0, detail))
    finally:
        c.close()


def test_objects():
    R.section("upload to objects, cold reads, restarts")
    B = R.broker("objects", sets={"upload.interval": "500ms", "upload.object_size": "1MiB",
                                  "broker.log_cache_size": "1MiB"})
    B.start()
    rnd = random.Random(42)
    want = {("obj-a", 0): [], ("obj-a", 1): [], ("obj-b", 0): []}
    for k in want:
        n = 2700 if k[0] == "obj-a" else 2800
        want[k] = [b"%s-%d-%06d:" % (k[0].encode(), k[1], i) + rnd.randbytes(rnd.randrange(500, 1500))
                   for i in range(n)]
    total = sum(len(v) for vals in want.values() for v in vals)
    c = kwire.Conn(B.host, B.port)
    ra = c.create_topic("obj-a", 2)
    rb = c.create_topic("obj-b", 1)
    R.eq(ra[0], 0, "CreateTopics v2 obj-a with 2 partitions")
    R.eq(rb[0], 0, "CreateTopics v2 obj-b with 1 partition")
    R.eq((ra[1], rb[1]), (None, None), "CreateTopics v2 success: error_message is null (as Kafka)")
    c.close()
    errs = produce(B.bootstrap, want)
    R.eq(errs[:3], [], "produced %.1f MiB acks=all without errors" % (total / 1048576.0))

    deadline = time.monotonic() + 20
    files = []
    while time.monotonic() < deadline:
        files = object_files(B.objects_dir)
        if sum(s for _, s in files) >= total:
            break
        time.sleep(0.25)
    size = sum(s for _, s in files)
    R.check(len(files) > 0, "object files exist under %s (%d files)" % (B.objects_dir, len(files)))
    R.check(size >= total, "object bytes (%d) cover the %d payload bytes within 20 s" % (
        size, total))
    print("  objects: %s%s" % (files[:8], " ..." if len(files) > 8 else ""), flush=True)

    read_back(B, want, "cold read (1 MiB log cache)")
    # Everything is in objects: the WAL must have been trimmed, so a SIGKILL now leaves
    # nothing to replay (the broker logs "wal replayed PATH: N records, ...").
    time.sleep(1.0)
    B.kill9()
    B.start()
    rep = wal_replayed(B)
    R.eq(rep, 0, "SIGKILL after the upload: the restart replays 0 WAL records (WAL trimmed)")
    read_back(B, want, "after SIGKILL restart (data only in objects)")
    R.eq(B.stop(), 0, "SIGTERM: clean exit status 0")
    B.start()
    read_back(B, want, "after SIGTERM restart")
    # Fresh data only in the WAL: SIGKILL right after the acks, replay brings it back.
    more = {("obj-b", 0): [b"after-restart-%d" % i for i in range(100)]}
    errs = produce(B.bootstrap, more)
    R.eq(errs, [], "produce after restart")
    want[("obj-b", 0)] += more[("obj-b", 0)]
    B.kill9()
    B.start()
    rep = wal_replayed(B)
    R.check(rep is not None and rep > 0, "SIGKILL right after acks: the restart replays the "
            "WAL (%s records)" % rep)
    read_back(B, want, "after SIGKILL restart (fresh data in the WAL)")
    R.check(B.alive(), "broker alive after the object test")
    R.eq(B.stop(), 0, "SIGTERM at the end: exit status 0")


def wait_earliest(c, topic, part, timeout):
    deadline = time.monotonic() + timeout
    lo = None
    while time.monotonic() < deadline:
        lo = c.list_offsets(topic, part, -2)
        if lo["error"] == 0 and lo["offset"] > 0:
            return lo
        time.sleep(0.25)
    return lo


def test_retention():
    R.section("retention.ms=1000")
    import confluent_kafka as ck
    from confluent_kafka.admin import AdminClient, NewTopic
    B = R.broker("retention", sets={"upload.interval": "500ms",
                                    "broker.retention_check_interval": "500ms"})
    B.start()
    admin = AdminClient({"bootstrap.servers": B.bootstrap})
    fs = admin.create_topics([NewTopic("ret", 1, 1, config={"retention.ms": "1000"}),
                              NewTopic("keep", 1, 1)], operation_timeout=10)
    for t, f in fs.items():
        try:
            f.result(15)
            R.check(True, "create_topics %s" % t)
        except ck.KafkaException as e:
            R.check(False, "create_topics %s: %s" % (t, e))
    n = 2000
    vals = {("ret", 0): [b"r%05d" % i + b"x" * 500 for i in range(n)],
            ("keep", 0): [b"k%05d" % i + b"y" * 500 for i in range(n)]}
    R.eq(produce(B.bootstrap, vals), [], "produced %d + %d messages" % (n, n))
    c = kwire.Conn(B.host, B.port)
    t0 = time.monotonic()
    lo = wait_earliest(c, "ret", 0, 30)
    R.check(lo and lo["error"] == 0 and lo["offset"] > 0,
            "ListOffsets earliest of 'ret' moved forward within 30 s: %s (%.1fs)" % (
                lo, time.monotonic() - t0))
    hi = c.list_offsets("ret", 0, -1)
    R.eq((hi["error"], hi["offset"]), (0, n), "ListOffsets latest of 'ret' still %d" % n)
    if lo and lo["offset"] > 0:
        f = c.fetch("ret", 0, 0)[("ret", 0)]
        R.eq(f["error"], 1, "Fetch 'ret' at offset 0: OFFSET_OUT_OF_RANGE (1)")
        if lo["offset"] < n:
            f = c.fetch("ret", 0, lo["offset"])[("ret", 0)]
            recs = kwire.decode_batches(f["records"], False)
            R.check(f["error"] == 0 and recs and recs[0][0] <= lo["offset"] and
                    all(v == vals[("ret", 0)][o] for o, _, _, v, _ in recs),
                    "Fetch at the new earliest %d: data as written" % lo["offset"])
    # Wait a little longer: the whole topic should expire once every object is uploaded.
    time.sleep(3)
    lo2 = c.list_offsets("ret", 0, -2)
    print("  'ret' earliest after 3 more seconds: %s" % lo2, flush=True)
    R.check(lo2["offset"] >= (lo["offset"] if lo else 0), "earliest never moves back")
    keep = c.list_offsets("keep", 0, -2)
    R.eq((keep["error"], keep["offset"]), (0, 0), "'keep' (default retention) earliest still 0")
    recs = c.fetch_all("keep", 0)
    R.check([v for _, _, _, v, _ in recs] == vals[("keep", 0)],
            "'keep' data intact after retention ran (%d records)" % len(recs))
    res = c.produce("ret", 0, kwire.record_batch([(None, b"late", [])],
                                                  base_ts=int(time.time() * 1000)))
    R.eq(res[("ret", 0)]["base_offset"], n, "a new produce to 'ret' continues at offset %d" % n)
    c.close()
    B.restart()
    c = kwire.Conn(B.host, B.port)
    lo3 = c.list_offsets("ret", 0, -2)
    R.check(lo3["offset"] >= lo2["offset"], "after restart 'ret' earliest stays >= %d: %s" % (
        lo2["offset"], lo3))
    c.close()
    R.eq(B.stop(), 0, "SIGTERM: exit status 0")


def main():
    R.run(test_objects)
    R.run(test_retention)
    R.finish()


if __name__ == "__main__":
    main()
