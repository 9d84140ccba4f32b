#!/usr/bin/python3
"""test_gcs_e2e.py - a broker whose [storage] is stratus-storage-gcs.so against the fake GCS
server (tests/plugins/gcs_server.py, started here on a free port with a service-account key the
openssl CLI makes, auth required): produce, wait for the uploads, restart (SIGKILL: the WAL was
trimmed so nothing is replayed), consume from offset 0 through cold reads that must hit the
server (alt=media downloads counted by it), then SIGTERM restart and read again. Objects of
1 MiB go through resumable uploads (resumable_threshold 256 KiB, chunk 256 KiB); the server
drops a chunk and answers object reads with 503 for a while, which the plugin and the core's
retries must absorb without losing a record.
SPDX-License-Identifier: Apache-2.0
"""
import os
import random
import re
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "plugins"))
import kwire  # noqa: E402
from gcs_server import FakeGcs, free_port, make_service_account  # noqa: E402
from harness import Broker, Report, wait_wal_drained  # noqa: E402

R = Report("test_gcs_e2e")


class GcsBroker(Broker):
    """A Broker whose [storage] section names the gcs plugin instead of local."""

    def __init__(self, name, gcs_conf, **kw):
        self.gcs_conf = gcs_conf
        super().__init__(name, **kw)

    def _write_conf(self):
        super()._write_conf()
        with open(self.conf_path) as f:
            text = f.read()
        storage = "[storage]\nplugin = gcs\n" + "".join(
            "%s = %s\n" % kv for kv in self.gcs_conf.items())
        text = re.sub(r"\[storage\]\n(?:[^\[]*\n)", storage, text, count=1)
        with open(self.conf_path, "w") as f:
            f.write(text)


def produce(bootstrap, want):
    import confluent_kafka as ck
    p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                     "compression.type": "none", "client.id": "itest-gcs"})
    errors = []

    def cb(err, msg):
        if err:
            errors.append(str(err))
    for (t, part), vals in want.items():
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
            R.check(got == vals and offs == list(range(len(vals))),
                    "%s: %s/%d identical from offset 0, %d records (%.1fs; got %d)" % (
                        what, t, part, len(vals), time.monotonic() - t0, len(got)))
    finally:
        c.close()


def wal_replayed(B):
    starts = B.log_text().split("==== start #")
    m = re.search(r"wal replayed \S+: (\d+) records", starts[-1])
    return int(m.group(1)) if m else None


def test_gcs_broker(tmp):
    R.section("broker on the gcs plugin (service-account JWT auth)")
    port = free_port()
    key = os.path.join(tmp, "sa.json")
    make_service_account(key, "http://127.0.0.1:%d/token" % port)
    with FakeGcs("--bucket", "stratus-e2e", "--service-account", key, "--require-auth",
                 "--max-results-cap", "50", port=port) as gcs:
        mport = free_port()
        B = GcsBroker("gcs", {"bucket": "stratus-e2e", "endpoint": gcs.url,
                              "auth": "service_account", "credentials_file": key,
                              "prefix": "cluster-1/", "resumable_threshold": "256KiB",
                              "chunk_size": "256KiB"},
                      sets={"upload.interval": "500ms", "upload.object_size": "1MiB",
                            "broker.log_cache_size": "1MiB",
                            "metrics.listen": "127.0.0.1:%d" % mport})
        R.brokers.append(B)
        B.start()
        # one dropped chunk and a few 503s on uploads: retried, nothing lost
        gcs.faults(drop=1, fail=3, status=503, match="/upload/")
        rnd = random.Random(7)
        want = {("gcs-a", 0): [], ("gcs-a", 1): [], ("gcs-b", 0): []}
        for k in want:
            want[k] = [b"%s-%d-%06d:" % (k[0].encode(), k[1], i) + rnd.randbytes(
                rnd.randrange(300, 1200)) for i in range(1500)]
        total = sum(len(v) for vals in want.values() for v in vals)
        c = kwire.Conn(B.host, B.port)
        R.eq(c.create_topic("gcs-a", 2)[0], 0, "CreateTopics gcs-a (2 partitions)")
        R.eq(c.create_topic("gcs-b", 1)[0], 0, "CreateTopics gcs-b")
        c.close()
        R.eq(produce(B.bootstrap, want)[:3], [], "produced %.1f MiB acks=all" % (total / 2**20))

        # wait until the uploads cover the payload and the WAL is trimmed
        deadline = time.monotonic() + 40
        st = gcs.stats()
        while time.monotonic() < deadline:
            st = gcs.stats()
            if st["objects"] > 0 and st["faults_left"].get("fail", 0) == 0 and \
                    st["resumable_sessions"] > 0:
                break
            time.sleep(0.25)
        # then until the broker says nothing waits for upload and the WAL is trimmed (a fixed
        # sleep was too short for the retried uploads under ASan on a loaded machine)
        R.check(wait_wal_drained(mport, 60),
                "the broker uploaded everything and trimmed its WAL (metrics)")
        st = gcs.stats()
        print("  server stats: %s" % st, flush=True)
        R.check(st["objects"] > 0, "objects were uploaded to the fake GCS (%d)" % st["objects"])
        R.check(st["jwt_ok"] >= 1 and st["auth_401"] == 0,
                "the broker authenticated with a signed JWT (%d exchanges)" % st["jwt_ok"])
        R.check(st["resumable_chunks"] > 0, "1 MiB objects went through resumable uploads")
        R.check(st["faults_fail"] == 3 and st["faults_drop"] == 1,
                "the injected 503s and the dropped chunk were served (and retried)")

        B.kill9()
        B.start()
        R.eq(wal_replayed(B), 0, "SIGKILL after the uploads: nothing to replay (WAL trimmed)")
        before = gcs.stats()["requests"]
        gcs.faults(fail=2, status=503, match="GET /storage/v1/b/stratus-e2e/o/")
        read_back(B, want, "after SIGKILL restart, cold reads from GCS")
        st = gcs.stats()
        R.check(st["requests"] > before and st["faults_fail"] == 5,
                "the reads went to the fake GCS (incl. 2 retried 503s)")
        R.eq(B.stop(), 0, "SIGTERM: clean exit")
        B.start()
        read_back(B, want, "after SIGTERM restart")
        R.check(B.alive(), "broker alive at the end")
        R.eq(B.stop(), 0, "SIGTERM at the end: exit status 0")
        if R.failed:
            print("  fake GCS stats at the end: %s" % gcs.stats())


def main():
    with tempfile.TemporaryDirectory(prefix="stratus-gcs-e2e-") as tmp:
        R.run(test_gcs_broker, tmp)
    R.finish()


if __name__ == "__main__":
    main()
