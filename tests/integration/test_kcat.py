#!/usr/bin/python3
"""test_kcat.py - kcat (librdkafka 2.0) against a real stratusd: metadata, and for every codec
(none, gzip, snappy, lz4, zstd) 100,000 keyed messages with headers produced with acks=all and
consumed back byte-identical and in order, offsets 0..N-1.
SPDX-License-Identifier: Apache-2.0
"""
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Report  # noqa: E402

N = int(os.environ.get("STRATUS_ITEST_KCAT_MESSAGES", "100000"))
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
R = Report("test_kcat")
WANT = {}
B = None


def kcat(args, stdin=None, timeout=120):
    return subprocess.run(["kcat", "-b", B.bootstrap] + args, input=stdin, capture_output=True,
                          timeout=timeout)


def messages(seed):
    rnd = random.Random(seed)
    alpha = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;!?-_=+"
    out = []
    for i in range(N):
        n = rnd.choice((0, 1, 7, 30, 100, 180)) if i % 10 else rnd.randrange(1, 400)
        payload = "".join(rnd.choice(alpha) for _ in range(n))
        out.append(("k%06d-%d" % (i, rnd.randrange(1000)), "v%06d|%s" % (i, payload)))
    return out


def metadata_json():
    p = kcat(["-L", "-J", "-m", "10"], timeout=30)
    if p.returncode != 0:
        raise RuntimeError("kcat -L -J failed rc=%d: %s" % (p.returncode, p.stderr.decode()))
    return json.loads(p.stdout)


def test_metadata_empty():
    R.section("kcat -L")
    p = kcat(["-L", "-m", "10"], timeout=30)
    out = p.stdout.decode()
    R.eq(p.returncode, 0, "kcat -L exits 0 (stderr: %s)" % p.stderr.decode().strip())
    R.check("1 brokers:" in out, "kcat -L reports 1 broker\n%s" % out)
    R.check("broker 1 at %s" % B.bootstrap in out, "kcat -L lists broker 1 at %s" % B.bootstrap)
    md = metadata_json()
    R.eq([(b["id"], b["name"]) for b in md["brokers"]], [(1, B.bootstrap)],
         "kcat -L -J brokers")
    R.eq(md.get("controllerid"), 1, "kcat -L -J controllerid")


def test_codec(codec):
    R.section("codec %s: %d messages" % (codec, N))
    topic = "kcat-%s" % codec
    msgs = messages(codec)
    data = "".join("%s:%s\n" % kv for kv in msgs).encode()
    t0 = time.monotonic()
    p = kcat(["-P", "-t", topic, "-K:", "-H", "h1=v1", "-H", "hdr-two=value two",
              "-X", "acks=all", "-X", "compression.codec=%s" % codec,
              "-X", "linger.ms=20", "-X", "batch.num.messages=5000"], stdin=data)
    t1 = time.monotonic()
    err = p.stderr.decode()
    R.eq(p.returncode, 0, "%s: kcat -P exits 0 in %.1fs" % (codec, t1 - t0))
    R.check("fail" not in err.lower() and "error" not in err.lower(),
            "%s: kcat -P reports no delivery error%s" % (codec, (": " + err[:2000]) if err else ""))

    want = ["%d|%s|h1=v1,hdr-two=value two|%s" % (i, k, v) for i, (k, v) in enumerate(msgs)]
    WANT[codec] = want
    consume_and_compare(codec, topic, want, "")

    md = metadata_json()
    t = [x for x in md["topics"] if x["topic"] == topic]
    R.check(len(t) == 1 and [pp["leader"] for pp in t[0]["partitions"]] == [1],
            "%s: kcat -L -J lists %s with partition 0 led by broker 1" % (codec, topic))


def consume_and_compare(codec, topic, want, when):
    t1 = time.monotonic()
    p = kcat(["-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%o|%k|%h|%s\n",
              "-X", "fetch.wait.max.ms=100"])
    t2 = time.monotonic()
    codec = codec + when
    R.eq(p.returncode, 0, "%s: kcat -C exits 0 in %.1fs (stderr: %s)" % (
        codec, t2 - t1, p.stderr.decode()[:1000].strip()))
    got = p.stdout.decode("utf-8", "replace").split("\n")
    if got and got[-1] == "":
        got.pop()
    R.eq(len(got), len(want), "%s: consumed message count" % codec)
    first_bad = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), None)
    if first_bad is None and len(got) == len(want):
        R.check(True, "%s: all %d messages byte-identical, in order, offsets 0..%d" % (
            codec, N, N - 1))
    else:
        i = first_bad if first_bad is not None else min(len(got), len(want))
        R.check(False, "%s: first difference at index %d:\n   got  %r\n   want %r" % (
            codec, i, got[i] if i < len(got) else None, want[i] if i < len(want) else None))


def test_reread_cold():
    R.section("re-read every codec's topic after the upload (8 MiB log cache: cold reads)")
    time.sleep(3.0)  # > [upload] interval (2 s default)
    for codec, want in WANT.items():
        consume_and_compare(codec, "kcat-%s" % codec, want, " (re-read from objects)")


def main():
    global B
    B = R.broker("kcat", sets={"broker.log_cache_size": "8MiB"})
    try:
        B.start()
    except Exception as e:  # noqa: BLE001
        R.check(False, "broker starts: %s" % e)
        R.finish()
    R.run(test_metadata_empty)
    for c in CODECS:
        R.run(test_codec, c)
        if not B.alive():
            R.check(False, "broker alive after codec %s" % c)
            break
    R.run(test_reread_cold)
    R.finish()


if __name__ == "__main__":
    main()
