#!/usr/bin/python3
"""test_cli.py - the `stratus` admin CLI against a real data directory (issue 6).

A broker takes records into several objects and stops; then `stratus fsck` reports clean,
`stratus objects` lists the partition's ranges (offsets, sizes, keys) matching the files in
storage, `stratus plugins` and `stratus config` describe the setup (values, defaults and where
each was set; secret redaction needs a plugin with a secret key, not exercised here), and after one object file is deleted fsck names the missing offset range and an
orphan file is reported and removed by --repair. fsck refuses to run against a live broker's
locked index.
SPDX-License-Identifier: Apache-2.0
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

from kafka import KafkaProducer  # noqa: E402

R = harness.Report("test_cli")


def stratus(*args):
    exe = os.path.join(harness.build_dir(), "stratus")
    p = subprocess.run([exe] + list(args), capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_cli():
    b = R.broker("cli", sets={"upload.interval": "200ms"})
    b.start()
    prod = KafkaProducer(bootstrap_servers=b.bootstrap, acks=1)
    for round_ in range(4):
        for i in range(10):
            prod.send("cli-t", b"r%d-%d" % (round_, i), partition=0)
        prod.flush(30)
        time.sleep(0.6)  # one upload (one object) per round
    prod.close()

    rc, out, err = stratus("fsck", b.data_dir, "--config", b.conf_path)
    R.check(rc == 2 and "running" in err, "fsck refuses a live broker's index: %d %r" % (rc, err))
    R.eq(b.stop(), 0, "broker stopped")

    R.section("fsck on a healthy data directory")
    rc, out, err = stratus("fsck", b.data_dir, "--config", b.conf_path)
    print(out + err)
    R.eq(rc, 0, "fsck exits 0")
    R.check(out.strip().splitlines()[-1].startswith("clean:"), "fsck reports clean")

    R.section("objects")
    rc, out, err = stratus("objects", "--config", b.conf_path, "--topic", "cli-t",
                           "--partition", "0")
    print(out + err)
    R.eq(rc, 0, "objects exits 0")
    rows = [l.split() for l in out.splitlines() if re.match(r"^\d+\s+\d+\s", l)]
    R.check(len(rows) >= 2, "several ranges listed (%d)" % len(rows))
    R.eq(int(rows[0][0]), 0, "the first range starts at offset 0")
    R.eq(int(rows[-1][1]), 39, "the last range ends at offset 39")
    R.check(all(int(rows[i + 1][0]) == int(rows[i][1]) + 1 for i in range(len(rows) - 1)),
            "ranges are contiguous")
    keys = [r[6] for r in rows]
    for k in keys:
        R.check(os.path.exists(os.path.join(b.objects_dir, k)), "object %s exists in storage" % k)
    rc, out, err = stratus("objects", "--config", b.conf_path, "--topic", "nope",
                           "--partition", "0")
    R.eq(rc, 2, "objects of an unknown partition exits 2")

    R.section("plugins and config")
    rc, out, err = stratus("plugins", "--config", b.conf_path)
    R.eq(rc, 0, "plugins exits 0")
    R.check("plugin:      local" in out and "plugin:      memory" in out,
            "plugins describes storage-local and cache-memory")
    rc, out, err = stratus("config", "--config", b.conf_path, "--set",
                           "metrics.listen=127.0.0.1:9464")
    R.eq(rc, 0, "config exits 0")
    R.check("[storage]" in out and "path = %s" % b.objects_dir in out, "config shows storage")
    R.check("log_level = info    ; default" in out, "config shows defaults")
    R.check("listen = 127.0.0.1:9464    ; --set" in out, "config shows where a value was set")
    rc, out, err = stratus("config", "--config", b.conf_path, "--set", "broker.bogus=1")
    R.check(rc == 2 and "bogus" in err, "config refuses an unknown key: %r" % err)
    # a value the broker does not know: stratusd refuses to start and names section and key
    p = subprocess.run([harness.stratusd_path(), "--config", b.conf_path, "--set",
                        "wal.type=bogus"], capture_output=True, timeout=60)
    err = p.stderr.decode() + p.stdout.decode()
    R.check(p.returncode != 0 and "[wal]" in err and "type" in err and "'bogus'" in err,
            "stratusd refuses wal.type=bogus and names the key: %r" % err.strip()[-300:])

    R.section("fsck after deleting an object and adding an orphan")
    victim = keys[1]
    os.unlink(os.path.join(b.objects_dir, victim))
    orphan = os.path.join(b.objects_dir, "data", "00", "ffffffffffffffff.sso")
    os.makedirs(os.path.dirname(orphan), exist_ok=True)
    with open(orphan, "wb") as f:
        f.write(b"junk")
    rc, out, err = stratus("fsck", b.data_dir, "--config", b.conf_path)
    print(out + err)
    R.eq(rc, 1, "fsck exits 1")
    want = "MISSING topic=cli-t partition=0 offsets=%s-%s object=%s" % (rows[1][0], rows[1][1],
                                                                        victim)
    R.check(want in out, "fsck names the missing range: %s" % want)
    R.check("ORPHAN data/00/ffffffffffffffff.sso" in out, "fsck reports the orphan")
    R.check(out.strip().splitlines()[-1].startswith("NOT CLEAN"), "fsck is not clean")
    rc, out, err = stratus("fsck", b.data_dir, "--config", b.conf_path, "--repair")
    R.check("deleted" in out and not os.path.exists(orphan), "--repair deletes the orphan")
    R.check("MISSING" in out, "a missing object is still reported after --repair")


def main():
    R.run(test_cli)
    R.finish()


if __name__ == "__main__":
    main()
