#!/usr/bin/python3
"""test_bad_input.py - hostile and odd bytes on a raw socket must never hurt the broker.

Each case sends something wrong (garbage, truncated or oversized frames, an unknown API, an
unsupported version, a batch with a bad CRC-32C), checks the broker's documented answer
(core/api/dispatch.c: unsupported API/version closes the connection; ApiVersions too new
answers a v0 body with UNSUPPORTED_VERSION; a bad batch gets CORRUPT_MESSAGE), then checks
that the process is alive and that a fresh client (a Metadata request, kcat -L) still works.
Also: pipelined requests in one write come back in order with their correlation ids; an
acks=0 Produce with a partition refused closes the connection after the responses before it
(Kafka's way to make such a client refresh its metadata), and nothing after it is handled.
SPDX-License-Identifier: Apache-2.0
"""
import os
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwire  # noqa: E402
from harness import Report  # noqa: E402

R = Report("test_bad_input")
B = None


def closed_by_peer(conn, timeout=5.0):
    """True if the broker closes the connection (EOF or reset) without sending anything."""
    conn.sock.settimeout(timeout)
    try:
        data = conn.sock.recv(65536)
    except socket.timeout:
        return "open"
    except ConnectionResetError:
        return "closed"
    except OSError as e:
        return "error %s" % e
    return "closed" if not data else "answered %r" % data[:64]


def healthy(what):
    """The broker survived `what`: alive, a new connection answers Metadata, kcat -L works."""
    R.check(B.alive(), "%s: broker process still alive" % what)
    try:
        c = kwire.Conn(B.host, B.port)
        md = c.metadata(None, version=1)
        c.close()
        R.check(any(b["port"] == B.port for b in md["brokers"]),
                "%s: fresh Metadata v1 lists the broker" % what)
    except Exception as e:  # noqa: BLE001
        R.check(False, "%s: fresh Metadata v1 failed: %s" % (what, e))


def case_garbage():
    R.section("garbage bytes")
    c = kwire.Conn(B.host, B.port)
    c.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # length prefix 0x47455420 > max
    R.eq(closed_by_peer(c), "closed", "HTTP request text: connection closed")
    c.close()
    healthy("HTTP garbage")
    c = kwire.Conn(B.host, B.port)
    c.send_raw(struct.pack(">i", 24) + b"\xff" * 24)  # api key -1, version -1, bad string len
    R.eq(closed_by_peer(c), "closed", "24 bytes of 0xff in a frame: connection closed")
    c.close()
    healthy("0xff frame")
    c = kwire.Conn(B.host, B.port)
    c.send_raw(struct.pack(">i", 6) + b"\x00\x12\x00\x00\x00\x01")  # header cut inside corr id
    R.eq(closed_by_peer(c), "closed", "frame shorter than a request header: connection closed")
    c.close()
    healthy("short header")


def case_truncated():
    R.section("truncated frame, then close")
    c = kwire.Conn(B.host, B.port)
    corr, fr = c.frame(kwire.API_METADATA, 1, kwire.array(None))
    c.send_raw(fr[:len(fr) - 3])
    c.close()
    healthy("truncated frame")
    c = kwire.Conn(B.host, B.port)
    c.send_raw(b"\x00\x00")  # half a length prefix
    c.close()
    healthy("half a length prefix")


def case_lengths():
    R.section("oversized, negative and zero length prefixes")
    for what, pre in (("0x7fffffff", 0x7FFFFFFF), ("negative -1", -1), ("zero", 0)):
        c = kwire.Conn(B.host, B.port)
        c.send_raw(struct.pack(">i", pre) + b"\x00" * 16)
        R.eq(closed_by_peer(c), "closed", "length prefix %s: connection closed" % what)
        c.close()
        healthy("length %s" % what)


def case_unknown_api():
    R.section("unknown API key 999")
    c = kwire.Conn(B.host, B.port)
    _, fr = c.frame(999, 0, b"")
    c.send_raw(fr)
    R.eq(closed_by_peer(c), "closed", "api_key 999: connection closed, no response")
    c.close()
    healthy("unknown api key")


def case_bad_versions():
    R.section("unsupported versions")
    for key, ver, name in ((kwire.API_METADATA, 99, "Metadata v99"),
                           (kwire.API_FETCH, 3, "Fetch v3 (below 4)"),
                           (kwire.API_PRODUCE, 0, "Produce v0 (advertised, refused)")):
        c = kwire.Conn(B.host, B.port)
        _, fr = c.frame(key, ver, kwire.array([]))
        c.send_raw(fr)
        R.eq(closed_by_peer(c), "closed", "%s: connection closed" % name)
        c.close()
        healthy(name)

    c = kwire.Conn(B.host, B.port)
    corr, fr = c.frame(kwire.API_APIVERSIONS, 99, b"\x00", flexible=True)
    c.send_raw(fr)
    try:
        got, payload = c.recv_frame()
        R.eq(got, corr, "ApiVersions v99: correlation id echoed")
        err, keys = kwire.parse_api_versions(payload, 0)
        R.eq(err, 35, "ApiVersions v99: v0 body with UNSUPPORTED_VERSION (35)")
        R.eq(keys.get(18), (0, 4), "ApiVersions v99: ApiKeys contains {18, 0, 4}")
    except Exception as e:  # noqa: BLE001
        R.check(False, "ApiVersions v99: no parseable answer: %s" % e)
    # The connection stays usable after that answer (the client retries with v0).
    try:
        err, keys = c.api_versions(0)
        R.eq(err, 0, "ApiVersions v0 on the same connection after v99: no error")
        R.eq(keys.get(3), (0, 12), "ApiVersions v0 advertises Metadata 0-12")
        R.eq(keys.get(0), (0, 11), "ApiVersions v0 advertises Produce 0-11")
        R.eq(keys.get(1), (4, 16), "ApiVersions v0 advertises Fetch 4-16")
    except Exception as e:  # noqa: BLE001
        R.check(False, "ApiVersions v0 after v99 on the same connection: %s" % e)
    c.close()
    healthy("ApiVersions v99")


def case_corrupt_crc():
    R.section("Produce v3 with a corrupt CRC")
    topic = "bad-crc"
    c = kwire.Conn(B.host, B.port)
    md = c.metadata([topic], version=1)  # auto-creates
    R.eq(md["topics"].get(topic, {}).get("error"), 0, "Metadata v1 auto-creates %s" % topic)
    recs = [(b"k%d" % i, b"value-%d" % i, [("h", b"v")]) for i in range(5)]
    res = c.produce(topic, 0, kwire.record_batch(recs, corrupt_crc=True))
    R.eq(res.get((topic, 0), {}).get("error"), 2, "corrupt CRC: CORRUPT_MESSAGE (2) for the partition")
    f = c.fetch(topic, 0, 0)[(topic, 0)]
    R.eq(f["error"], 0, "fetch after the corrupt batch: no error")
    R.eq(f["high_watermark"], 0, "fetch after the corrupt batch: high watermark still 0")
    R.eq(kwire.decode_batches(f["records"]), [], "fetch after the corrupt batch: no records")

    # Other malformed batches: a batch length beyond the data, and magic 1.
    good = kwire.record_batch(recs)
    short = good[:8] + struct.pack(">i", len(good)) + good[12:]
    res = c.produce(topic, 0, short)
    e = res.get((topic, 0), {}).get("error")
    R.check(e not in (None, 0), "batch length beyond the records: refused (error %s)" % e)
    badmagic = bytearray(good)
    badmagic[16] = 1
    res = c.produce(topic, 0, bytes(badmagic))
    e = res.get((topic, 0), {}).get("error")
    R.check(e not in (None, 0), "batch with magic 1 (v2 frame): refused (error %s)" % e)

    res = c.produce(topic, 0, good)
    R.eq(res.get((topic, 0)), {"error": 0, "base_offset": 0, "log_append_time": -1},
         "a good batch after the bad ones: stored at base offset 0")
    got = c.fetch_all(topic, 0, verify_crc=True)
    R.eq([(o, k, v, h) for o, _, k, v, h in got],
         [(i, k, v, [(b"h", b"v")]) for i, (k, v, _) in enumerate(recs)],
         "fetch returns exactly the good batch's 5 records")
    c.close()
    healthy("corrupt CRC")


def case_pipelining():
    R.section("pipelining: ApiVersions v0 + Metadata v0 in one write")
    c = kwire.Conn(B.host, B.port)
    c1, f1 = c.frame(kwire.API_APIVERSIONS, 0, b"", corr=1001)
    c2, f2 = c.frame(kwire.API_METADATA, 0, kwire.array([]), corr=1002)
    c.send_raw(f1 + f2)
    try:
        g1, p1 = c.recv_frame()
        g2, p2 = c.recv_frame()
        R.eq((g1, g2), (1001, 1002), "both responses arrive, in request order")
        err, keys = kwire.parse_api_versions(p1, 0)
        R.check(err == 0 and 18 in keys, "first response is an ApiVersions v0 body")
        md = kwire.parse_metadata(p2, 0)
        R.check(any(b["port"] == B.port for b in md["brokers"]),
                "second response is a Metadata v0 body listing the broker")
    except Exception as e:  # noqa: BLE001
        R.check(False, "pipelined responses: %s" % e)
    # Many more in one write, mixing APIs.
    frames = b""
    want = []
    for i in range(50):
        if i % 2:
            cid, fr = c.frame(kwire.API_METADATA, 1, kwire.array([]), corr=5000 + i)
        else:
            cid, fr = c.frame(kwire.API_APIVERSIONS, 1, b"", corr=5000 + i)
        frames += fr
        want.append(cid)
    c.send_raw(frames)
    try:
        got = [c.recv_frame()[0] for _ in want]
        R.eq(got, want, "50 pipelined requests: responses in order")
    except Exception as e:  # noqa: BLE001
        R.check(False, "50 pipelined requests: %s" % e)
    c.close()

    # Produce requests answered when the WAL write completes (off the network thread, several
    # per send()), between requests answered at once, with acks=0 requests (no response) among
    # them: every response in request order, offsets in order, nothing for acks=0.
    R.section("pipelining: 60 produce (acks=all and acks=0) + ApiVersions in one write")
    topic = "pipeline-mix"
    c = kwire.Conn(B.host, B.port)
    c.create_topic(topic, 1)
    frames, want, acks0 = b"", [], 0
    for i in range(60):
        batch = kwire.record_batch([(b"k%d" % i, b"v%d" % i, [])])
        if i % 3 == 2:
            cid, fr = c.frame(kwire.API_APIVERSIONS, 1, b"", corr=7000 + i)
            want.append(("av", cid))
        else:
            acks = 0 if i % 10 == 4 else -1
            body = (kwire.string(None) + kwire.i16(acks) + kwire.i32(10000) +
                    kwire.array([kwire.string(topic) +
                                 kwire.array([kwire.i32(0) + kwire.kbytes(batch)])]))
            cid, fr = c.frame(kwire.API_PRODUCE, 3, body, corr=7000 + i)
            if acks == 0:
                acks0 += 1
            else:
                want.append(("produce", cid))
        frames += fr
    c.send_raw(frames)
    try:
        got, offsets = [], []
        for kind, _ in want:
            cid, payload = c.recv_frame()
            got.append((kind, cid))
            if kind == "produce":
                r = kwire.Reader(payload)
                r.i32()
                r.string()
                r.i32()
                r.i32()
                err = r.i16()
                offsets.append(r.i64() if err == 0 else -1)
        R.eq(got, want, "%d responses in request order, none for the %d acks=0 requests"
             % (len(want), acks0))
        R.check(offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
                and min(offsets) >= 0,
                "acks=all base offsets rise with the request order: %s" % offsets[:8])
        n = len(c.fetch_all(topic, 0))
        R.eq(n, 40, "all 40 produced records are in the log (acks=0 ones included)")
    except Exception as e:  # noqa: BLE001
        R.check(False, "pipelined produce responses: %s" % e)
    c.close()


def produce_frame(c, topic, partition, acks, value, corr):
    batch = kwire.record_batch([(b"k", value, [])])
    body = (kwire.string(None) + kwire.i16(acks) + kwire.i32(10000) +
            kwire.array([kwire.string(topic) +
                         kwire.array([kwire.i32(partition) + kwire.kbytes(batch)])]))
    return c.frame(kwire.API_PRODUCE, 3, body, corr=corr)


def case_acks0_refused():
    R.section("acks=0 Produce to a partition that is not there: the connection closes")
    topic = "acks0"
    c = kwire.Conn(B.host, B.port)
    c.create_topic(topic, 1)
    # acks=0 that succeeds: the connection stays open
    _, f0 = produce_frame(c, topic, 0, 0, b"a0-ok", 8000)
    cid, fa = c.frame(kwire.API_APIVERSIONS, 1, b"", corr=8001)
    c.send_raw(f0 + fa)
    try:
        R.eq(c.recv_frame()[0], 8001, "after a good acks=0 Produce the connection answers on")
    except Exception as e:  # noqa: BLE001
        R.check(False, "after a good acks=0 Produce: %s" % e)
    # acks=all, then acks=0 to partition 7 of a 1-partition topic, then a produce and an
    # ApiVersions: the first is answered, then the connection closes, the rest is not handled
    _, f1 = produce_frame(c, topic, 0, -1, b"before", 8002)
    _, f2 = produce_frame(c, topic, 7, 0, b"refused", 8003)
    _, f3 = produce_frame(c, topic, 0, -1, b"after", 8004)
    _, f4 = c.frame(kwire.API_APIVERSIONS, 1, b"", corr=8005)
    c.send_raw(f1 + f2 + f3 + f4)
    try:
        cid, payload = c.recv_frame()
        r = kwire.Reader(payload)
        r.i32()
        r.string()
        r.i32()
        r.i32()
        R.eq((cid, r.i16()), (8002, 0), "the acks=all Produce before it is answered, no error")
    except Exception as e:  # noqa: BLE001
        R.check(False, "the acks=all Produce before it: %s" % e)
    R.eq(closed_by_peer(c), "closed", "then the connection is closed")
    c.close()
    c = kwire.Conn(B.host, B.port)
    vals = [x[3] for x in c.fetch_all(topic, 0)]
    c.close()
    R.eq(vals, [b"a0-ok", b"before"], "the log holds the two produced before it, not the one "
         "after it")
    R.check(any("acks=0 produce refused" in ln and "partition=7" in ln
                for ln in B.log_text().splitlines()),
            "the broker logs why it closed the connection")
    healthy("acks=0 refused")


def case_kcat():
    R.section("kcat -L after everything")
    p = subprocess.run(["kcat", "-b", B.bootstrap, "-L", "-m", "10"], capture_output=True,
                       text=True, timeout=30)
    R.check(p.returncode == 0 and ("broker 1 at %s" % B.bootstrap) in p.stdout,
            "kcat -L lists broker 1 at %s (rc %d)\n%s%s" % (B.bootstrap, p.returncode,
                                                            p.stdout, p.stderr))


def main():
    global B
    B = R.broker("badinput")
    try:
        B.start()
    except Exception as e:  # noqa: BLE001
        R.check(False, "broker starts: %s" % e)
        R.finish()
    for fn in (case_garbage, case_truncated, case_lengths, case_unknown_api, case_bad_versions,
               case_corrupt_crc, case_pipelining, case_acks0_refused, case_kcat):
        R.run(fn)
        if not B.alive():
            R.check(False, "broker died after %s" % fn.__name__)
            break
    R.finish()


if __name__ == "__main__":
    main()
