"""test_s3_faults.py - object-store faults never stop the broker nor lose data.

A broker on [storage] plugin = s3 talks to moto through FaultProxy (s3_itest.py). While the
proxy answers every request with 503 SlowDown, then drops every connection without a reply,
then stalls past the plugin's stall_timeout, the test keeps producing (acks=all): every
produce must succeed (the WAL takes it), the proxy must see the uploader retry (the core
retries STRATUS_EAGAIN with backoff, the uploader keeps failed rounds pending), and nothing may
reach the bucket. When the proxy passes again, everything must be uploaded, read back
identical, and again after a SIGKILL restart (data then only in S3, read through the proxy).
Then, with a 16 MiB WAL ring on a second broker: while S3 refuses, the ring fills, and the
produce that finds it full is answered REQUEST_TIMED_OUT at its TimeoutMs; when S3 is back,
the uploads free the ring, that append completes after all (as Kafka's "may have been
written"), and every record reads back once, in order, the timed-out batch last.
Runs under the PATH python3 (boto3, moto); prints "N passed, N failed".
SPDX-License-Identifier: Apache-2.0
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwire  # noqa: E402
import s3_itest as S  # noqa: E402
from harness import Report  # noqa: E402

R = Report("test_s3_faults")
BUCKET = "stratus-faults"
PREFIX = "f/"


def produce_phase(B, want, topic_parts, n, seed, what):
    data = S.make_data(topic_parts, n, seed)
    c = kwire.Conn(B.host, B.port, timeout=60)
    start = {k: len(want.get(k, [])) for k in data}
    for k, vals in data.items():
        want[k] = want.get(k, []) + vals
    t0 = time.monotonic()
    errs = S.produce(c, want, start=start)
    dt = time.monotonic() - t0
    c.close()
    nbytes = sum(len(v) for vals in data.values() for v in vals)
    R.eq(errs, [], "%s: produced %.1f MiB acks=all in %.2fs" % (what, nbytes / 1048576.0, dt))
    return nbytes


def test_faults(moto):
    R.section("503 / dropped connections / stalls between the broker and S3")
    moto.create_bucket(BUCKET)
    s3 = moto.client()
    proxy = S.FaultProxy(moto.port).start()
    try:
        storage = S.s3_storage(proxy.url, BUCKET, PREFIX, stall_timeout="2s",
                               connect_timeout="2s", retry_max_attempts="3",
                               retry_base_delay="50ms", retry_max_delay="400ms")
        B = R.broker("s3-faults", storage=storage, sets={"upload.interval": "300ms"})
        B.start()
        c = kwire.Conn(B.host, B.port, timeout=60)
        R.eq(c.create_topic("ft", 2)[0], 0, "CreateTopics ft (2 partitions)")
        c.close()
        parts = [("ft", 0), ("ft", 1)]
        want = {}
        total = produce_phase(B, want, parts, 400, 1, "healthy")
        objs, ok = S.wait_uploaded(s3, BUCKET, PREFIX, total, 30)
        R.check(ok, "healthy: uploaded (%d objects)" % len(objs))
        n_before = len(objs)

        for mode, hold in (("503", 4.0), ("drop", 4.0), ("stall", 7.0)):
            proxy.stall_s = 3.0
            proxy.set_mode(mode)
            seen = proxy.counts[mode]
            t_end = time.monotonic() + hold
            i = 0
            while time.monotonic() < t_end:
                total += produce_phase(B, want, parts, 150, 100 + len(want[parts[0]]) + i,
                                       "during %s" % mode)
                i += 1
                time.sleep(0.3)
            R.check(B.alive(), "broker alive during %s" % mode)
            hits = proxy.counts[mode] - seen
            R.check(hits >= 3, "uploader kept retrying during %s (%d requests refused)" % (mode, hits))
            now = S.bucket_objects(s3, BUCKET, PREFIX)
            R.eq(len(now), n_before, "nothing reached the bucket during %s" % mode)

        proxy.set_mode("pass")
        t0 = time.monotonic()
        objs, ok = S.wait_uploaded(s3, BUCKET, PREFIX, total, 60)
        R.check(ok, "after the faults cleared: all %d bytes uploaded within %.1fs (%d objects)" % (
            total, time.monotonic() - t0, len(objs)))
        warn = B.log_grep("upload failed")
        R.check(len(warn) > 0, "the broker logged the failed uploads (%d lines), e.g. %s" % (
            len(warn), warn[0][-160:] if warn else None))
        R.check(any("SlowDown" in w for w in warn), "a failure message names S3's SlowDown code")
        S.read_back(R, B, want, "after the faults")
        time.sleep(1.0)
        B.kill9()
        B.start(timeout=30)
        S.read_back(R, B, want, "after SIGKILL restart (data only in S3)")
        R.eq(B.stop(), 0, "SIGTERM: exit status 0")
        print("  proxy requests by mode: %s" % proxy.counts, flush=True)
    finally:
        proxy.stop()


def test_ring_full(moto):
    R.section("a full WAL ring while S3 refuses: REQUEST_TIMED_OUT, then recovery")
    bucket = "stratus-ringfull"
    moto.create_bucket(bucket)
    proxy = S.FaultProxy(moto.port).start()
    try:
        storage = S.s3_storage(proxy.url, bucket, PREFIX, retry_max_attempts="2",
                               retry_base_delay="20ms", retry_max_delay="100ms")
        B = R.broker("s3-ringfull", storage=storage,
                     sets={"upload.interval": "200ms", "wal.size": "16MiB"})
        B.start()
        c = kwire.Conn(B.host, B.port, timeout=60)
        R.eq(c.create_topic("rf", 1)[0], 0, "CreateTopics rf")
        proxy.set_mode("503")
        acked, err, waited, i = [], 0, 0.0, 0
        while i < 80:  # 80 x 480 KB: over twice the ring
            vals = [b"rf-%04d-%d:" % (i, j) + bytes([65 + j]) * 60000 for j in range(8)]
            batch = kwire.record_batch([(None, v, ()) for v in vals])
            t0 = time.monotonic()
            err = c.produce("rf", 0, batch, acks=-1, timeout_ms=1500)[("rf", 0)]["error"]
            waited = time.monotonic() - t0
            if err:
                timed_out = vals
                break
            acked += vals
            i += 1
        R.check(err == 7 and len(acked) >= 64,
                "with S3 refusing, %d batches acknowledged, then REQUEST_TIMED_OUT (%d)"
                % (len(acked) // 8, err))
        R.check(1.4 <= waited < 10, "answered at the request's TimeoutMs of 1.5 s (%.2f s)"
                % waited)
        proxy.set_mode("pass")
        if err == 7:
            want = acked + timed_out
            deadline = time.monotonic() + 60
            hw = -1
            while time.monotonic() < deadline:
                hw = c.fetch("rf", 0, 0, max_bytes=1024)[("rf", 0)]["high_watermark"]
                if hw >= len(want):
                    break
                time.sleep(0.2)
            R.eq(hw, len(want), "S3 back: the timed-out batch is written after all "
                 "(high watermark)")
            recs = c.fetch_all("rf", 0, verify_crc=True, timeout=120)
            got = [v for _, _, _, v, _ in recs]
            R.check(got == want and [o for o, *_ in recs] == list(range(len(want))),
                    "read back: %d records once, in order, the timed-out batch last" % len(got))
        c.close()
        R.check(B.alive(), "broker alive")
        R.eq(B.stop(), 0, "SIGTERM: exit status 0")
    finally:
        proxy.stop()


def main():
    moto = S.Moto()
    try:
        moto.start()
        R.run(test_faults, moto)
        R.run(test_ring_full, moto)
    finally:
        moto.stop()
    R.finish()


if __name__ == "__main__":
    main()
