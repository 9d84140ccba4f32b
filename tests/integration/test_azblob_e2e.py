#!/usr/bin/python3
"""test_azblob_e2e.py - a broker whose [storage] is stratus-storage-azblob.so against Azurite
(npm azurite@3.35.0 from tests/node_modules, or $STRATUS_AZURITE; started here on a free
127.0.0.1 port with --disableTelemetry and stopped by PID), Shared Key auth checked by Azurite,
the container created by the plugin (create_container = true), a key prefix:
produce ~4 MiB (acks=all) into three partitions, wait until the blobs in Azurite cover the
payload, SIGKILL the broker (the WAL was trimmed, so nothing is replayed), restart and consume
everything from offset 0 through cold reads from Azurite, then SIGTERM, restart and read again.
1 MiB objects go up in 128 KiB blocks (single_put_max 256 KiB): an independent Shared Key
client checks that the blobs exist under the prefix with committed block lists.
SPDX-License-Identifier: Apache-2.0
"""
import os
import random
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "plugins"))
import kwire  # noqa: E402
from azblob_testlib import ACCOUNT, KEY, Azurite  # noqa: E402
from harness import Broker, Report, free_port, wait_wal_drained  # noqa: E402

R = Report("test_azblob_e2e")
CONTAINER = "stratus-e2e"
PREFIX = "cluster-1/"


class AzBroker(Broker):
    """A Broker whose [storage] section names the azblob plugin instead of local."""

    def __init__(self, name, az_conf, **kw):
        self.az_conf = az_conf
        super().__init__(name, **kw)

    def _write_conf(self):
        super()._write_conf()
        with open(self.conf_path) as f:
            text = f.read()
        storage = "[storage]\nplugin = azblob\n" + "".join(
            "%s = %s\n" % kv for kv in self.az_conf.items())
        text = re.sub(r"\[storage\]\n(?:[^\[]*\n)", storage, text, count=1)
        with open(self.conf_path, "w") as f:
            f.write(text)


def produce(bootstrap, want):
    import confluent_kafka as ck
    p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                     "compression.type": "none", "client.id": "itest-azblob"})
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


def test_azblob_broker():
    R.section("broker on the azblob plugin (Azurite, Shared Key)")
    with Azurite() as az:
        cl = az.client()
        mport = free_port()
        B = AzBroker("azblob", {"account": ACCOUNT, "container": CONTAINER,
                                "endpoint": az.endpoint, "shared_key": KEY,
                                "create_container": "true", "prefix": PREFIX,
                                "single_put_max": "256KiB", "block_size": "128KiB"},
                     sets={"upload.interval": "500ms", "upload.object_size": "1MiB",
                           "broker.log_cache_size": "1MiB",
                           "metrics.listen": "127.0.0.1:%d" % mport})
        R.brokers.append(B)
        B.start()
        R.check(B.log_grep("azblob: account=devstoreaccount1") != [],
                "the broker opened the azblob plugin")
        R.check(not B.log_grep(KEY), "the account key is never logged")
        rnd = random.Random(11)
        want = {("az-a", 0): [], ("az-a", 1): [], ("az-b", 0): []}
        for k in want:
            want[k] = [b"%s-%d-%06d:" % (k[0].encode(), k[1], i) + rnd.randbytes(
                rnd.randrange(300, 1200)) for i in range(1800)]
        total = sum(len(v) for vals in want.values() for v in vals)
        c = kwire.Conn(B.host, B.port)
        R.eq(c.create_topic("az-a", 2)[0], 0, "CreateTopics az-a (2 partitions)")
        R.eq(c.create_topic("az-b", 1)[0], 0, "CreateTopics az-b")
        c.close()
        R.eq(produce(B.bootstrap, want)[:3], [], "produced %.1f MiB acks=all" % (total / 2**20))

        deadline = time.monotonic() + 40
        blobs = []
        while time.monotonic() < deadline:
            blobs = cl.list_sizes(CONTAINER)
            if sum(s for _, s in blobs) >= total:
                break
            time.sleep(0.25)
        R.check(wait_wal_drained(mport, 60),
                "the broker uploaded everything and trimmed its WAL (metrics)")
        blobs = cl.list_sizes(CONTAINER)
        size = sum(s for _, s in blobs)
        print("  blobs: %d, %d bytes: %s ..." % (len(blobs), size, blobs[:4]), flush=True)
        R.check(size >= total, "blob bytes in Azurite (%d) cover the %d payload bytes" % (
            size, total))
        R.check(blobs and all(n.startswith(PREFIX) for n, _ in blobs),
                "every blob is under the prefix %s" % PREFIX)
        big = [n for n, s in blobs if s > 256 * 1024]
        nblocks = len(cl.block_list(CONTAINER, big[0])) if big else 0
        R.check(big and nblocks >= 3,
                "objects over 256 KiB were committed as block lists (%s: %d blocks)" % (
                    big[:1], nblocks))

        B.kill9()
        B.start()
        R.eq(wal_replayed(B), 0, "SIGKILL after the uploads: nothing to replay (WAL trimmed)")
        read_back(B, want, "after SIGKILL restart, cold reads from Azurite")
        R.eq(B.stop(), 0, "SIGTERM: clean exit")
        B.start()
        read_back(B, want, "after SIGTERM restart")
        R.check(B.alive(), "broker alive at the end")
        R.eq(B.stop(), 0, "SIGTERM at the end: exit status 0")


def main():
    R.run(test_azblob_broker)
    R.finish()


if __name__ == "__main__":
    main()
