"""test_s3_faults.py - object-store faults never stop the broker nor lose data.

A broker on [storage] plugin = s3 talks to moto through FaultProxy (s3_itest.py). While the
proxy answers every request with 503 SlowDown, then drops every connection without a reply,
then stalls past the plugin's stall_timeout, the test keeps producing (acks=all): every
produce must succeed (the WAL takes it), the proxy must see the uploader retry (the core
retries STRATUS_EAGAIN with backoff, the uploader keeps failed rounds pending), and nothing may
reach the bucket. When the proxy passes again, everything must be uploaded, read back
identical, and again after a SIGKILL restart (data then only in S3, read through the proxy).
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


def main():
    moto = S.Moto()
    try:
        moto.start()
        R.run(test_faults, moto)
    finally:
        moto.stop()
    R.finish()


if __name__ == "__main__":
    main()
