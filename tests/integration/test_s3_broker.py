"""test_s3_broker.py - the broker end to end on [storage] plugin = s3, against moto's S3
server (started here on a free 127.0.0.1 port, stopped by PID).

~9 MiB are produced (acks=all, raw Produce v3) into three partitions with upload.interval=500ms
and upload.object_size=6MiB, so objects go up both as single PutObject and as multipart
uploads (multipart_threshold=6MiB, part_size=5MiB); the objects must appear in the bucket under
the configured prefix (listed with boto3); everything is read back identical with a 1 MiB log
cache (cold reads: ranged GETs through the plugin), again after a SIGKILL restart (the WAL must
be trimmed: nothing to replay) and after a SIGTERM restart; data produced after the restart is
readable too. Runs under the PATH python3 (boto3, moto); prints "N passed, N failed".
SPDX-License-Identifier: Apache-2.0
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwire  # noqa: E402
import s3_itest as S  # noqa: E402
from harness import Report  # noqa: E402

R = Report("test_s3_broker")
BUCKET = "stratus-e2e"
PREFIX = "cluster-a/"


def wal_replayed(B):
    starts = B.log_text().split("==== start #")
    m = re.search(r"wal replayed \S+: (\d+) records", starts[-1])
    return int(m.group(1)) if m else None


def test_e2e(moto):
    R.section("broker on storage-s3 (moto)")
    moto.create_bucket(BUCKET)
    s3 = moto.client()
    B = R.broker("s3-e2e", storage=S.s3_storage(moto.url, BUCKET, PREFIX),
                 sets={"upload.interval": "500ms", "upload.object_size": "6MiB",
                       "broker.log_cache_size": "1MiB"})
    B.start()
    want = S.make_data([("s3a", 0), ("s3a", 1), ("s3b", 0)], 3300, seed=7)
    total = sum(len(v) for vals in want.values() for v in vals)
    c = kwire.Conn(B.host, B.port, timeout=60)
    R.eq(c.create_topic("s3a", 2)[0], 0, "CreateTopics s3a (2 partitions)")
    R.eq(c.create_topic("s3b", 1)[0], 0, "CreateTopics s3b")
    t0 = time.monotonic()
    errs = S.produce(c, want)
    c.close()
    R.eq(errs, [], "produced %.1f MiB acks=all in %.1fs" % (total / 1048576.0, time.monotonic() - t0))
    objs, ok = S.wait_uploaded(s3, BUCKET, PREFIX, total, 60)
    R.check(ok, "objects in s3://%s/%s cover the %d payload bytes (%d objects, %d bytes)" % (
        BUCKET, PREFIX, total, len(objs), sum(sz for _, sz in objs)))
    print("  objects: %s" % objs[:6], flush=True)
    mp = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", [])
          if "-" in o["ETag"]]
    print("  %d of %d objects went up as multipart uploads (ETag with -N)" % (len(mp), len(objs)),
          flush=True)
    R.eq(S.bucket_objects(s3, BUCKET, "") == S.bucket_objects(s3, BUCKET, PREFIX), True,
         "every object is under the configured prefix")
    S.read_back(R, B, want, "cold read through s3")
    time.sleep(1.0)
    B.kill9()
    B.start(timeout=30)
    R.eq(wal_replayed(B), 0, "SIGKILL after the upload: restart replays 0 WAL records")
    S.read_back(R, B, want, "after SIGKILL restart (data only in S3)")
    R.eq(B.stop(), 0, "SIGTERM: exit status 0")
    B.start(timeout=30)
    more = S.make_data([("s3b", 0)], 200, seed=8)
    c = kwire.Conn(B.host, B.port, timeout=60)
    R.eq(S.produce(c, {("s3b", 0): more[("s3b", 0)]}), [], "produce after restart")
    c.close()
    want[("s3b", 0)] = want[("s3b", 0)] + more[("s3b", 0)]
    S.read_back(R, B, want, "after SIGTERM restart, with new data")
    R.eq(B.stop(), 0, "SIGTERM at the end: exit status 0")
    bad = B.log_grep("ERROR")
    R.eq(bad[:3], [], "no ERROR lines in the broker log")


def main():
    moto = S.Moto()
    try:
        moto.start()
        R.run(test_e2e, moto)
    finally:
        moto.stop()
    R.finish()


if __name__ == "__main__":
    main()
