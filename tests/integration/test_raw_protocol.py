#!/usr/bin/python3
"""test_raw_protocol.py - protocol corners real clients rely on, checked with hand-encoded
requests (kwire.py): Produce acks=0 gets no response, errors for unknown topics/partitions,
Fetch out of range, Fetch long polls (max_wait_ms honoured when empty, woken by a produce),
KIP-74 (a batch bigger than partition_max_bytes still comes back whole), the broker's own cap
on a Fetch response ([broker] fetch_max_bytes), a large frame arriving in pieces (answered, and
the network thread not woken for each piece), and offsets continuing across a restart.
SPDX-License-Identifier: Apache-2.0
"""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwire  # noqa: E402
from harness import Report  # noqa: E402

R = Report("test_raw_protocol")
B = None


def recs(n, tag, size=20):
    return [(b"k%d" % i, (b"%s-%d-" % (tag, i)) + b"z" * size, []) for i in range(n)]


def case_acks0():
    R.section("Produce acks=0: no response")
    c = kwire.Conn(B.host, B.port)
    c.metadata(["acks0"])
    body = (kwire.string(None) + kwire.i16(0) + kwire.i32(5000) +
            kwire.array([kwire.string("acks0") + kwire.array(
                [kwire.i32(0) + kwire.kbytes(kwire.record_batch(recs(3, b"a0")))])]))
    corr0, fr0 = c.frame(kwire.API_PRODUCE, 3, body)
    corr1, fr1 = c.frame(kwire.API_APIVERSIONS, 0, b"")
    c.send_raw(fr0 + fr1)
    try:
        got, _ = c.recv_frame()
        R.eq(got, corr1, "the first response after an acks=0 Produce is the next request's")
    except Exception as e:  # noqa: BLE001
        R.check(False, "response after acks=0 produce: %s" % e)
    deadline = time.monotonic() + 5
    hw = -1
    while time.monotonic() < deadline:
        hw = c.fetch("acks0", 0, 0)[("acks0", 0)]["high_watermark"]
        if hw == 3:
            break
        time.sleep(0.05)
    R.eq(hw, 3, "the acks=0 batch is stored (high watermark 3)")
    c.close()


def case_errors():
    R.section("error codes")
    c = kwire.Conn(B.host, B.port)
    c.metadata(["errs"])
    r = c.produce("errs", 7, kwire.record_batch(recs(1, b"e")))
    R.eq(r[("errs", 7)]["error"], 3, "Produce to partition 7 of a 1-partition topic: "
         "UNKNOWN_TOPIC_OR_PARTITION (3)")
    f = c.fetch("no-such-topic-xyz", 0, 0)
    R.eq(f[("no-such-topic-xyz", 0)]["error"], 3, "Fetch of an unknown topic: "
         "UNKNOWN_TOPIC_OR_PARTITION (3)")
    R.check("no-such-topic-xyz" not in c.metadata(None)["topics"],
            "Fetch does not auto-create the topic")
    c.produce("errs", 0, kwire.record_batch(recs(5, b"e")))
    f = c.fetch("errs", 0, 6)[("errs", 0)]
    R.eq(f["error"], 1, "Fetch at offset 6 with high watermark 5: OFFSET_OUT_OF_RANGE (1)")
    f = c.fetch("errs", 0, 5, max_wait_ms=0)[("errs", 0)]
    R.eq((f["error"], f["high_watermark"], f["records"]), (0, 5, b""),
         "Fetch at the high watermark: no error, no records")
    f = c.fetch("errs", 0, -5)[("errs", 0)]
    R.eq(f["error"], 1, "Fetch at offset -5: OFFSET_OUT_OF_RANGE (1)")
    lo = c.list_offsets("no-such-topic-xyz", 0, -1)
    R.eq(lo["error"], 3, "ListOffsets of an unknown topic: UNKNOWN_TOPIC_OR_PARTITION (3)")
    r = c.create_topic("errs", 1)
    R.eq(r[0], 36, "CreateTopics of an existing topic: TOPIC_ALREADY_EXISTS (36)")
    r = c.create_topic("bad/name", 1)
    R.eq(r[0], 17, "CreateTopics 'bad/name': INVALID_TOPIC_EXCEPTION (17)")
    r = c.create_topic("zero-parts", 0)
    R.eq(r[0], 37, "CreateTopics with 0 partitions: INVALID_PARTITIONS (37)")
    r = c.create_topic("bad-config", 1, {"retention.ms": "not-a-number"})
    R.eq(r[0], 40, "CreateTopics with retention.ms=not-a-number: INVALID_CONFIG (40)")
    c.close()


def case_longpoll():
    R.section("Fetch long poll")
    c = kwire.Conn(B.host, B.port)
    c.metadata(["lp"])
    t0 = time.monotonic()
    f = c.fetch("lp", 0, 0, max_wait_ms=800, min_bytes=1)[("lp", 0)]
    dt = time.monotonic() - t0
    R.check(f["error"] == 0 and f["records"] == b"" and 0.7 <= dt <= 2.0,
            "empty partition: Fetch waits max_wait_ms=800 then answers empty (%.2fs, error %d)"
            % (dt, f["error"]))

    def later():
        time.sleep(0.3)
        p = kwire.Conn(B.host, B.port)
        p.produce("lp", 0, kwire.record_batch(recs(2, b"lp")))
        p.close()

    th = threading.Thread(target=later)
    t0 = time.monotonic()
    th.start()
    f = c.fetch("lp", 0, 0, max_wait_ms=5000, min_bytes=1)[("lp", 0)]
    dt = time.monotonic() - t0
    th.join()
    got = kwire.decode_batches(f["records"])
    R.check(f["error"] == 0 and len(got) == 2 and dt < 2.0,
            "a produce wakes a parked Fetch (max_wait 5s): answered in %.2fs with %d records"
            % (dt, len(got)))
    c.close()


def case_kip74():
    R.section("KIP-74: first batch returned whole even if bigger than the limits")
    c = kwire.Conn(B.host, B.port)
    c.metadata(["big"])
    big = recs(4, b"big", size=20000)  # one batch of ~80 KB
    r = c.produce("big", 0, kwire.record_batch(big))
    R.eq(r[("big", 0)]["error"], 0, "produce an 80 KB batch")
    f = c.fetch("big", 0, 0, max_bytes=1000)[("big", 0)]
    got = kwire.decode_batches(f["records"], verify_crc=True)
    R.eq([v for _, _, _, v, _ in got], [v for _, v, _ in big],
         "Fetch with max_bytes 1000 returns the whole 80 KB first batch")
    c.close()


def case_fetch_cap():
    R.section("[broker] fetch_max_bytes caps a Fetch response under the request's max_bytes")
    batches = [kwire.record_batch(recs(1, b"cap%d" % i, size=20000)) for i in range(12)]
    whole = recs(4, b"capbig", size=30000)  # one batch of ~120 KB, over the cap
    sizes = {}
    capped = R.broker("rawcap", sets={"broker.fetch_max_bytes": "64KiB"})
    for name, b in (("default", B), ("64KiB", capped)):
        if b is not B:
            b.start()
        c = kwire.Conn(b.host, b.port)
        c.metadata(["capped", "capbig"])
        for bt in batches:
            R.eq(c.produce("capped", 0, bt)[("capped", 0)]["error"], 0, "produce 20 KB (%s)" % name)
        f = c.fetch("capped", 0, 0, max_bytes=8 << 20)[("capped", 0)]
        sizes[name] = (len(f["records"]), len(kwire.decode_batches(f["records"])))
        R.eq(c.produce("capbig", 0, kwire.record_batch(whole))[("capbig", 0)]["error"], 0,
             "produce a 120 KB batch (%s)" % name)
        g = c.fetch("capbig", 0, 0, max_bytes=8 << 20)[("capbig", 0)]
        got = kwire.decode_batches(g["records"], verify_crc=True)
        R.eq([v for _, _, _, v, _ in got], [v for _, v, _ in whole],
             "a first batch bigger than the cap comes back whole (%s)" % name)
        c.close()
    R.eq(sizes["default"][1], 12, "default cap (16 MiB): one Fetch of max_bytes 8 MiB returns all "
         "12 records (%d bytes)" % sizes["default"][0])
    R.check(0 < sizes["64KiB"][0] <= 64 * 1024 and 1 <= sizes["64KiB"][1] < 12,
            "64 KiB cap: the same Fetch returns %d bytes, %d of 12 records"
            % (sizes["64KiB"][0], sizes["64KiB"][1]))
    capped.stop()


def case_concurrent_producers():
    R.section("8 connections producing to one partition at once")
    c = kwire.Conn(B.host, B.port)
    c.metadata(["conc"])
    nthreads, nbatches, per = 8, 50, 10
    results = {}

    def worker(t):
        p = kwire.Conn(B.host, B.port)
        out = []
        try:
            for b in range(nbatches):
                batch = [(b"t%d" % t, b"t%d-b%d-r%d" % (t, b, r), []) for r in range(per)]
                res = p.produce("conc", 0, kwire.record_batch(batch))[("conc", 0)]
                out.append((res["error"], res["base_offset"]))
        except Exception as e:  # noqa: BLE001
            out.append(("exception", str(e)))
        p.close()
        results[t] = out

    ths = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    errs = [(t, x) for t, out in results.items() for x in out if x[0] != 0]
    R.eq(errs[:5], [], "all %d produces acknowledged without error" % (nthreads * nbatches))
    bases = sorted(b for out in results.values() for e, b in out if e == 0)
    R.eq(bases, list(range(0, nthreads * nbatches * per, per)),
         "base offsets are disjoint and cover 0..%d in steps of %d" % (
             nthreads * nbatches * per - 1, per))
    got = c.fetch_all("conc", 0, verify_crc=True)
    by_off = {o: v for o, _, _, v, _ in got}
    ok = True
    for t, out in results.items():
        for b, (e, base) in enumerate(out):
            for r in range(per):
                if by_off.get(base + r) != b"t%d-b%d-r%d" % (t, b, r):
                    ok = False
    R.check(ok and len(got) == nthreads * nbatches * per,
            "every batch is stored whole at the base offset its response gave")
    c.close()


def case_restart_offsets():
    R.section("offsets continue across a restart")
    c = kwire.Conn(B.host, B.port)
    c.metadata(["cont"])
    r1 = c.produce("cont", 0, kwire.record_batch(recs(7, b"c")))
    c.close()
    R.eq(B.stop(), 0, "SIGTERM: exit status 0")
    B.start()
    c = kwire.Conn(B.host, B.port)
    r2 = c.produce("cont", 0, kwire.record_batch(recs(3, b"d")))
    R.eq((r1[("cont", 0)]["base_offset"], r2[("cont", 0)]["base_offset"]), (0, 7),
         "base offsets 0 then 7 across the restart")
    got = c.fetch_all("cont", 0, verify_crc=True)
    R.eq([v for _, _, _, v, _ in got], [v for _, v, _ in recs(7, b"c") + recs(3, b"d")],
         "all 10 records readable after the restart")
    md = c.metadata(None)
    R.check(all(t in md["topics"] for t in ("acks0", "errs", "lp", "big", "cont")),
            "topics survive the restart: %s" % sorted(md["topics"]))
    c.close()


def _skip_tags(r):
    for _ in range(r.uvarint()):
        r.uvarint()
        r.raw(r.uvarint())


def _compact_str(r):
    n = r.uvarint()
    return None if n == 0 else r.raw(n - 1).decode()


def _compact_array(r, fn):
    n = r.uvarint()
    return None if n == 0 else [fn(r) for _ in range(n - 1)]


def _topic_id(c, topic):
    """The topic's UUID from a flexible Metadata v12 request."""
    body = (kwire.uvarint(2) + b"\x00" * 16 + kwire.compact_string(topic) + b"\x00" +
            kwire.i8(1) + kwire.i8(0) + b"\x00")
    r = kwire.Reader(c.request(kwire.API_METADATA, 12, body, flexible=True))
    _skip_tags(r)  # the response header's tags (v1)
    r.i32()
    _compact_array(r, lambda x: (x.i32(), _compact_str(x), x.i32(), _compact_str(x),
                                 _skip_tags(x)))
    _compact_str(r)
    r.i32()
    ids = {}

    def part(x):
        x.i16(), x.i32(), x.i32(), x.i32()
        for _ in range(3):
            _compact_array(x, lambda y: y.i32())
        _skip_tags(x)

    def topic_(x):
        err = x.i16()
        name = _compact_str(x)
        tid = x.raw(16)
        x.i8()
        _compact_array(x, part)
        x.i32()
        _skip_tags(x)
        ids[name] = (err, tid)
    _compact_array(r, topic_)
    return ids.get(topic, (-1, None))


def _fetch_v13(c, tid, partition, offset):
    body = (kwire.i32(-1) + kwire.i32(100) + kwire.i32(1) + kwire.i32(8 << 20) + kwire.i8(0) +
            kwire.i32(0) + kwire.i32(-1) +
            kwire.uvarint(2) + tid + kwire.uvarint(2) + kwire.i32(partition) + kwire.i32(-1) +
            kwire.i64(offset) + kwire.i32(-1) + kwire.i64(-1) + kwire.i32(1 << 20) + b"\x00" +
            b"\x00" + kwire.uvarint(1) + kwire.compact_string("") + b"\x00")
    r = kwire.Reader(c.request(kwire.API_FETCH, 13, body, flexible=True))
    _skip_tags(r)
    r.i32()
    top_err = r.i16()
    r.i32()
    out = []

    def part(x):
        p, err, hw = x.i32(), x.i16(), x.i64()
        x.i64(), x.i64()
        _compact_array(x, lambda y: (y.i64(), y.i64(), _skip_tags(y)))
        x.i32()
        n = x.uvarint()
        recs_ = b"" if n == 0 else x.raw(n - 1)
        _skip_tags(x)
        return p, err, hw, recs_

    def topic_(x):
        t = x.raw(16)
        parts = _compact_array(x, part)
        _skip_tags(x)
        out.append((t, parts))
    _compact_array(r, topic_)
    return top_err, out


def case_fetch_topic_ids():
    R.section("Fetch v13+ names topics by id (KIP-516)")
    c = kwire.Conn(B.host, B.port)
    c.metadata(["ids"])
    c.produce("ids", 0, kwire.record_batch(recs(5, b"id")))
    err, tid = _topic_id(c, "ids")
    R.eq(err, 0, "Metadata v12 knows the topic")
    R.check(tid is not None and tid != b"\x00" * 16, "the topic has a non-zero UUID")
    top_err, res = _fetch_v13(c, tid, 0, 0)
    R.eq(top_err, 0, "Fetch v13: no top-level error")
    R.eq(len(res), 1, "one topic in the answer")
    if res:
        t, parts = res[0]
        R.eq(t, tid, "the answer names the topic by the same id")
        R.eq(parts[0][1], 0, "partition 0: no error")
        R.eq(parts[0][2], 5, "partition 0: high watermark 5")
        got = kwire.decode_batches(parts[0][3]) if parts[0][3] else []
        R.eq(len(got), 5, "the five records come back by id")
    top_err, res = _fetch_v13(c, b"\x42" * 16, 0, 0)
    R.eq(res[0][1][0][1] if res else None, 100, "an unknown topic id: UNKNOWN_TOPIC_ID (100)")
    c.close()


def net_wakeups():
    """Voluntary context switches of the broker's network threads so far (each is a sleep in
    epoll_wait ended by a wake-up)."""
    total = 0
    task_dir = "/proc/%d/task" % B.pid
    for tid in os.listdir(task_dir):
        try:
            with open(os.path.join(task_dir, tid, "comm")) as f:
                if f.read().strip() != "net":
                    continue
            with open(os.path.join(task_dir, tid, "status")) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def send_produce_in_pieces(c, topic, batch, pieces):
    """Sends one Produce frame as the given (bytes, pause in s) pieces; returns the error."""
    body = (kwire.string(None) + kwire.i16(-1) + kwire.i32(10000) +
            kwire.array([kwire.string(topic) + kwire.array([kwire.i32(0) + kwire.kbytes(batch)])]))
    corr, fr = c.frame(kwire.API_PRODUCE, 3, body)
    pos = 0
    for n, pause in pieces:
        c.send_raw(fr[pos:pos + n])
        pos += n
        if pause:
            time.sleep(pause)
    c.send_raw(fr[pos:])
    got, payload = c.recv_frame()
    R.eq(got, corr, "the Produce's own response")
    r = kwire.Reader(payload)
    r.i32()
    r.string()
    r.i32()
    r.i32()
    return r.i16()


def case_big_frame_pieces():
    R.section("a large frame arriving in pieces: answered, with few network-thread wake-ups")
    c = kwire.Conn(B.host, B.port, timeout=20.0)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each piece its own segment
    c.metadata(["pieces"])
    big = kwire.record_batch([(b"k%d" % i, os.urandom(1000), []) for i in range(1000)])
    # 1 MiB in 16 KiB pieces, 5 ms apart: a thread woken for each piece wakes about 60 times;
    # with the socket's low-water mark (SO_RCVLOWAT, 256 KiB while a large frame is read) a
    # handful of times
    w0 = net_wakeups()
    err = send_produce_in_pieces(c, "pieces", big, [(16384, 0.005)] * (len(big) // 16384))
    w1 = net_wakeups()
    R.eq(err, 0, "1 MiB Produce sent as 16 KiB pieces 5 ms apart: stored")
    R.check(w1 - w0 <= 24, "network threads woke %d times for its %d pieces (at most 24)" %
            (w1 - w0, len(big) // 16384))
    # the mark is lowered to what is left of the frame: 300 KiB, a pause, then the last
    # ~700 KiB, of which the last 20 KiB come after another pause, must all be answered
    err = send_produce_in_pieces(c, "pieces", big, [(300 << 10, 0.3), (len(big) - (320 << 10),
                                                                      0.3)])
    R.eq(err, 0, "1 MiB Produce with pauses before its last 720 KiB and 20 KiB: stored")
    small = kwire.record_batch([(b"s", os.urandom(20000), [])])
    err = send_produce_in_pieces(c, "pieces", small, [(10000, 0.3)])
    R.eq(err, 0, "a 20 KiB Produce split 10 KiB + pause + rest: stored")
    err = send_produce_in_pieces(c, "pieces", kwire.record_batch(recs(3, b"p")), [])
    R.eq(err, 0, "a small Produce after them: stored")
    hw = c.fetch("pieces", 0, 0)[("pieces", 0)]["high_watermark"]
    R.eq(hw, 2004, "all 2004 records are there")
    c.close()


def main():
    global B
    B = R.broker("raw")
    try:
        B.start()
    except Exception as e:  # noqa: BLE001
        R.check(False, "broker starts: %s" % e)
        R.finish()
    for fn in (case_acks0, case_errors, case_longpoll, case_kip74, case_fetch_cap,
               case_concurrent_producers,
               case_big_frame_pieces, case_restart_offsets, case_fetch_topic_ids):
        R.run(fn)
        if not B.alive():
            R.check(False, "broker died after %s" % fn.__name__)
            break
    R.finish()


if __name__ == "__main__":
    main()
