#!/usr/bin/python3
"""test_crash.py - acknowledged means durable: a steady acks=all produce (confluent-kafka), the
broker killed with SIGKILL mid-stream (twice), restarted on the same data dir and port; then
everything is read back with raw Fetch v4 requests and checked:
  - every acknowledged message is present, at the offset its delivery report gave;
  - a message acknowledged before a kill appears exactly once (it was never retried);
  - a message first produced after the last restart appears at most once;
  - first occurrences are in produce order (max.in.flight=1), offsets are contiguous;
  - nothing appears that was never produced.
A message in flight at the kill may legitimately appear twice (written, ack lost, retried).
SPDX-License-Identifier: Apache-2.0
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwire  # noqa: E402
from harness import Report  # noqa: E402

R = Report("test_crash")
TOPIC = "crash"
PAD = b"." * 150
RATE = int(os.environ.get("STRATUS_ITEST_CRASH_RATE", "30000"))  # messages per second


def value(seq):
    return b"seq-%08d-" % seq + PAD


def parse_seq(v):
    if not v or not v.startswith(b"seq-"):
        return None
    return int(v[4:12])


def main():
    # frames in the huge-page arena (broker.huge_frames, on by default where stratusd runs on
    # jemalloc): what the WAL wrote from them must replay after each kill
    B = R.broker("crash")
    try:
        B.start()
    except Exception as e:  # noqa: BLE001
        R.check(False, "broker starts: %s" % e)
        R.finish()
    R.run(crash_cycles, B)
    R.finish()


def crash_cycles(B):
    import confluent_kafka as ck

    acked = {}      # seq -> offset
    errors = {}     # seq -> error string

    def on_delivery(err, msg):
        s = parse_seq(msg.value())
        if err:
            errors[s] = str(err)
        else:
            acked[s] = msg.offset()

    prod = ck.Producer({"bootstrap.servers": B.bootstrap, "acks": "all", "linger.ms": 2,
                        "max.in.flight.requests.per.connection": 1, "retries": 1000000,
                        "retry.backoff.ms": 50, "message.timeout.ms": 60000,
                        "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
                        "enable.idempotence": False, "client.id": "itest-crash",
                        "partitioner": "consistent", "batch.num.messages": 500})
    seq = 0
    acked_before_kill = set()
    maybe_dup = set()   # produced before a restart and not acked at the kill: may be retried
    produced_before_restart = 0

    def produce_for(seconds, rate=RATE):
        """Produce about rate messages a second for seconds, in bursts of 500."""
        nonlocal seq
        start = time.monotonic()
        sent = 0
        while True:
            now = time.monotonic()
            if now - start >= seconds:
                break
            if sent >= (now - start) * rate or len(prod) > 20000:
                prod.poll(0.002)
                continue
            for _ in range(500):
                prod.produce(TOPIC, value=value(seq), key=b"k", partition=0,
                             on_delivery=on_delivery)
                seq += 1
                sent += 1
            prod.poll(0)

    if True:
        produce_for(1.0)
        for cycle in (1, 2):
            # Kill from another thread while this one keeps producing: a real mid-stream kill.
            at_kill = {}

            def killer():
                at_kill["seq"] = seq
                at_kill["acked"] = len(acked)
                B.kill9()

            timer = threading.Timer(1.0, killer)
            timer.start()
            produce_for(2.0)   # 1 s before the kill, 1 s into the outage
            timer.join()
            prod.poll(0.2)
            R.check(at_kill.get("acked", 0) > 0, "cycle %d: messages acknowledged before the "
                    "kill (%d of %d produced)" % (cycle, at_kill.get("acked", 0),
                                                  at_kill.get("seq", 0)))
            # Acks received before the kill reach on_delivery during the outage; nothing new
            # can be acknowledged while the broker is down.
            acked_before_kill |= set(acked)
            maybe_dup.update(s for s in range(seq) if s not in acked and s not in errors)
            print("  cycle %d: killed at seq %d; %d acked before the kill, %d unacked so far"
                  % (cycle, at_kill.get("seq", -1), len(acked), seq - len(acked)), flush=True)
            produced_before_restart = seq
            B.start()
            produce_for(2.0)
        left = prod.flush(90)
    R.eq(left, 0, "producer flush after the last restart leaves nothing queued")
    R.check(len(acked) > len(acked_before_kill), "messages acknowledged after the restarts "
            "(%d in all, %d before the last kill)" % (len(acked), len(acked_before_kill)))
    R.eq(sorted(errors.items())[:5], [], "no delivery errors reported to the producer")
    print("  produced %d, acked %d, failed %d" % (seq, len(acked), len(errors)), flush=True)

    c = kwire.Conn(B.host, B.port)
    t_read = time.monotonic()
    recs = c.fetch_all(TOPIC, 0, verify_crc=False, timeout=120)
    print("  read back %d records in %.1fs" % (len(recs), time.monotonic() - t_read), flush=True)
    lo = c.list_offsets(TOPIC, 0, -2)
    hi = c.list_offsets(TOPIC, 0, -1)
    c.close()
    R.eq((lo["offset"], hi["offset"]), (0, len(recs)),
         "ListOffsets earliest/latest match what Fetch returns (0, %d)" % len(recs))
    offsets = [o for o, *_ in recs]
    R.check(offsets == list(range(len(recs))), "fetched offsets are contiguous 0..%d" % (
        len(recs) - 1))
    seqs = [parse_seq(v) for _, _, _, v, _ in recs]
    R.check(all(s is not None and 0 <= s < seq for s in seqs),
            "every stored record is one the producer sent")
    by_offset = dict(zip(offsets, seqs))
    seqset = set(seqs)
    missing = sorted(s for s in acked if s not in seqset)
    R.eq(missing[:10], [], "every acknowledged message is present (%d acked)" % len(acked))
    wrong = sorted((s, o, by_offset.get(o)) for s, o in acked.items() if by_offset.get(o) != s)
    R.eq(wrong[:10], [], "every acknowledged message sits at the offset its ack reported")
    count = {}
    for s in seqs:
        count[s] = count.get(s, 0) + 1
    pre = [s for s in acked_before_kill if s not in maybe_dup]
    dup_pre = sorted(s for s in pre if count.get(s, 0) != 1)
    R.eq(dup_pre[:10], [], "messages acked before a kill (never retried) appear exactly once "
         "(%d)" % len(pre))
    dup_any = sorted(s for s in acked if s not in maybe_dup and count.get(s, 0) != 1)
    R.eq(dup_any[:10], [], "acked messages never in flight at a kill appear exactly once "
         "(%d of them)" % sum(1 for s in acked if s not in maybe_dup))
    dup_post = sorted(s for s in range(produced_before_restart, seq) if count.get(s, 0) > 1)
    R.eq(dup_post[:10], [], "messages first produced after the last restart appear at most once")
    firsts = []
    seen = set()
    for s in seqs:
        if s not in seen:
            seen.add(s)
            firsts.append(s)
    bad = next((i for i in range(1, len(firsts)) if firsts[i] <= firsts[i - 1]), None)
    R.check(bad is None, "first occurrences are in produce order%s" % (
        "" if bad is None else " (at %d: %d after %d)" % (bad, firsts[bad], firsts[bad - 1])))
    dups = sum(1 for v in count.values() if v > 1)
    print("  stored %d records, %d distinct, %d duplicated (retries of in-flight messages)"
          % (len(seqs), len(seen), dups), flush=True)
    R.check(B.alive(), "broker alive at the end")


if __name__ == "__main__":
    main()
