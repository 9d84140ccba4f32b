#!/usr/bin/python3
"""test_metrics.py - operating Stratus (issue 6): the [metrics] listener under real traffic.

- /metrics under a producer and a consumer group: the series move, the text parses with a
  strict Prometheus text-format parser written here and with promtool (Debian's prometheus
  package) when it is installed; /healthz, /readyz, POST /loglevel.
- A dead storage backend (tests/integration/plugins/storage_dead.c: every call EAGAIN): upload
  retries and failures show in metrics and in the log while produce goes on into the WAL, and
  /readyz turns 503 once the WAL is past [metrics] ready_wal_percent; once the WAL ring is full,
  a produce (acks=all) waits no longer than its TimeoutMs and is answered REQUEST_TIMED_OUT
  (stratus_produce_timeouts_total), and the broker still stops cleanly.
- Connections spread over the network threads: each new one goes to the thread with the
  fewest (stratus_network_thread_connections{thread}), also after some have closed.
- examples/deploy: the Grafana dashboard loads and every query names a metric the live broker
  exports; the Kubernetes manifests and the Prometheus config load as YAML with the expected
  objects, probes and paths; the systemd unit has its sections.
SPDX-License-Identifier: Apache-2.0
"""
import configparser
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import kwire  # noqa: E402

from kafka import KafkaConsumer, KafkaProducer  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEPLOY = os.path.join(REPO, "examples", "deploy")
R = harness.Report("test_metrics")


# ---- a strict Prometheus text format 0.0.4 parser ---------------------------------------
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
SAMPLE_RE = re.compile(r"^(%s)(\{.*\})? (\S+)( -?\d+)?$" % NAME)
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ParseError(Exception):
    pass


def parse_labels(s, lineno):
    """'{a="x",b="y\\"z"}' -> dict; raises ParseError on anything malformed."""
    out = {}
    i, n = 1, len(s)
    if s[-1] != "}":
        raise ParseError("line %d: labels not closed" % lineno)
    while i < n - 1:
        m = re.match(LABEL, s[i:])
        if not m:
            raise ParseError("line %d: bad label name at %r" % (lineno, s[i:]))
        name = m.group(0)
        i += len(name)
        if s[i:i + 2] != '="':
            raise ParseError("line %d: expected =\" after %s" % (lineno, name))
        i += 2
        val = []
        while True:
            if i >= n - 1:
                raise ParseError("line %d: unterminated label value" % lineno)
            c = s[i]
            if c == "\\":
                nxt = s[i + 1]
                if nxt not in ('\\', '"', 'n'):
                    raise ParseError("line %d: bad escape \\%s" % (lineno, nxt))
                val.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ParseError("line %d: newline in label value" % lineno)
            else:
                val.append(c)
                i += 1
        if name in out:
            raise ParseError("line %d: duplicate label %s" % (lineno, name))
        out[name] = "".join(val)
        if s[i] == ",":
            i += 1
        elif i != n - 1:
            raise ParseError("line %d: expected , or } at %r" % (lineno, s[i:]))
    return out


def family_of(sample, families):
    for suf in ("_bucket", "_sum", "_count"):
        if sample.endswith(suf) and families.get(sample[:-len(suf)], {}).get("type") in (
                "histogram", "summary"):
            return sample[:-len(suf)]
    return sample


def parse_prom(text):
    """Returns {family: {"type", "help", "samples": [(name, labels, value)]}}; raises
    ParseError. Checks: HELP/TYPE at most once per family and before its samples, samples of a
    family contiguous, values are floats, histogram buckets cumulative with +Inf == _count."""
    if not text.endswith("\n"):
        raise ParseError("text does not end with a newline")
    fams = {}
    order = []
    current = None
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                fam = parts[2]
                if not re.fullmatch(NAME, fam):
                    raise ParseError("line %d: bad family name %r" % (lineno, fam))
                f = fams.setdefault(fam, {"type": None, "help": None, "samples": []})
                if f["samples"]:
                    raise ParseError("line %d: %s after samples of %s" % (lineno, parts[1], fam))
                key = parts[1].lower()
                if f[key] is not None:
                    raise ParseError("line %d: second %s for %s" % (lineno, parts[1], fam))
                val = parts[3] if len(parts) > 3 else ""
                if key == "type" and val not in TYPES:
                    raise ParseError("line %d: unknown type %r" % (lineno, val))
                f[key] = val
                if fam not in order:
                    order.append(fam)
                current = fam
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise ParseError("line %d: not a sample: %r" % (lineno, line))
        name, lab, val = m.group(1), m.group(2), m.group(3)
        labels = parse_labels(lab, lineno) if lab else {}
        try:
            v = float(val)
        except ValueError:
            raise ParseError("line %d: bad value %r" % (lineno, val))
        fam = family_of(name, fams)
        f = fams.setdefault(fam, {"type": None, "help": None, "samples": []})
        if fam != current:
            if f["samples"]:
                raise ParseError("line %d: samples of %s are not contiguous" % (lineno, fam))
            if fam not in order:
                order.append(fam)
            current = fam
        f["samples"].append((name, labels, v))
    for fam, f in fams.items():
        if f["type"] == "counter":
            for name, labels, v in f["samples"]:
                if v < 0:
                    raise ParseError("counter %s%s is negative" % (name, labels))
        if f["type"] == "histogram":
            series = {}
            for name, labels, v in f["samples"]:
                base = {k: x for k, x in labels.items() if k != "le"}
                key = tuple(sorted(base.items()))
                s = series.setdefault(key, {"buckets": [], "count": None, "sum": None})
                if name == fam + "_bucket":
                    if "le" not in labels:
                        raise ParseError("%s bucket without le" % fam)
                    s["buckets"].append((float(labels["le"]), v))
                elif name == fam + "_count":
                    s["count"] = v
                elif name == fam + "_sum":
                    s["sum"] = v
                else:
                    raise ParseError("%s: stray sample %s" % (fam, name))
            for key, s in series.items():
                b = s["buckets"]
                if not b or b[-1][0] != float("inf"):
                    raise ParseError("%s%s: no +Inf bucket" % (fam, key))
                if any(b[i][1] > b[i + 1][1] or b[i][0] >= b[i + 1][0] for i in range(len(b) - 1)):
                    raise ParseError("%s%s: buckets not cumulative" % (fam, key))
                if s["count"] != b[-1][1] or s["sum"] is None:
                    raise ParseError("%s%s: _count != +Inf bucket or no _sum" % (fam, key))
    return fams


def value(fams, fam, sample=None, **labels):
    """The value of one sample (None when absent); sample defaults to fam."""
    f = fams.get(fam)
    if not f:
        return None
    for name, lab, v in f["samples"]:
        if name == (sample or fam) and all(lab.get(k) == x for k, x in labels.items()):
            return v
    return None


def total(fams, fam, sample=None, **labels):
    f = fams.get(fam)
    if not f:
        return 0
    return sum(v for name, lab, v in f["samples"]
               if name == (sample or fam) and all(lab.get(k) == x for k, x in labels.items()))


# ---- HTTP ------------------------------------------------------------------------------
def http(port, path, method="GET", body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers.get("Content-Type", "")


def scrape(port):
    st, text, ctype = http(port, "/metrics")
    if st != 200:
        raise AssertionError("/metrics answered %d" % st)
    return text, ctype


def promtool_check(text):
    exe = shutil.which("promtool")
    if not exe:
        return None
    p = subprocess.run([exe, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode()


def start_metrics(b, timeout=20.0):
    """Starts b and waits until its metrics endpoint accepts too: the broker opens its Kafka
    listener first, and in a slow build (ThreadSanitizer) the HTTP listener comes a moment
    later."""
    b.start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", b.metrics_port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def metrics_broker(name, extra_sets=None):
    port = harness.free_port()
    sets = {"metrics.listen": "127.0.0.1:%d" % port, "upload.interval": "300ms"}
    sets.update(extra_sets or {})
    b = R.broker(name, sets=sets)
    b.metrics_port = port
    return b


# ---- traffic ---------------------------------------------------------------------------
def test_traffic(b):
    R.section("metrics under a producer and a consumer group")
    start_metrics(b)
    port = b.metrics_port
    st, body, _ = http(port, "/healthz")
    R.eq((st, body), (200, "ok\n"), "/healthz is 200 ok")
    st, body, _ = http(port, "/readyz")
    R.eq((st, body), (200, "ready\n"), "/readyz is 200 ready on a healthy broker")
    text0, ctype = scrape(port)
    R.check(ctype.startswith("text/plain; version=0.0.4"), "content type is text format 0.0.4")
    f0 = parse_prom(text0)

    topic = "metrics-t"
    prod = KafkaProducer(bootstrap_servers=b.bootstrap, acks=1, linger_ms=5)
    for i in range(300):
        prod.send(topic, b"v" * 500 + str(i).encode())
    prod.flush(30)
    prod.close()
    # one large batch (~200 KB to one partition of another topic): the WAL writes it from the
    # request's buffer
    prod = KafkaProducer(bootstrap_servers=b.bootstrap, acks=1, linger_ms=500,
                         batch_size=1 << 20)
    for i in range(200):
        prod.send(topic + "-big", b"w" * 1000, partition=0)
    prod.flush(30)
    prod.close()
    cons = KafkaConsumer(topic, bootstrap_servers=b.bootstrap, group_id="mgroup",
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         consumer_timeout_ms=8000)
    got = 0
    for _ in cons:
        got += 1
        if got == 200:
            break
    cons.commit()
    R.eq(got, 200, "consumer group read 200 records")
    # A malformed frame: a header cut short (no client id) closes the connection.
    s = socket.create_connection((b.host, b.port))
    s.sendall(b"\x00\x00\x00\x08\x00\x12\x00\x00\x00\x00\x00\x01")
    s.settimeout(5)
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()
    time.sleep(1.5)  # an upload round (upload.interval 300ms)

    text1, _ = scrape(port)
    try:
        f1 = parse_prom(text1)
        R.check(True, "scrape parses with the strict text-format parser (%d families)" % len(f1))
    except ParseError as e:
        R.check(False, "scrape parses with the strict parser: %s" % e)
        return
    pc = promtool_check(text1)
    if pc is None:
        print("  (promtool not installed: strict parser only)")
    else:
        R.eq(pc, (0, ""), "promtool check metrics accepts the scrape (no lint problems)")
    cons.close()

    def moved(fam, sample=None, **labels):
        a, c = total(f0, fam, sample, **labels), total(f1, fam, sample, **labels)
        return R.check(c > a, "%s%s moved %s -> %s" % (sample or fam, labels or "", a, c))

    moved("stratus_requests_total", api="Produce")
    moved("stratus_requests_total", api="Fetch")
    moved("stratus_request_duration_seconds", "stratus_request_duration_seconds_count",
          api="Produce")
    moved("stratus_topic_records_in_total")
    moved("stratus_topic_bytes_in_total")
    moved("stratus_topic_records_out_total")
    moved("stratus_topic_bytes_out_total")
    R.check(total(f1, "stratus_topic_records_in_total") >= 300, "records in counts 300 records")
    moved("stratus_wal_append_bytes_total")
    inpl = total(f1, "stratus_wal_in_place_bytes_total")
    R.check(inpl >= 64 * 1024, "stratus_wal_in_place_bytes_total counts the large batch "
            "written in place (%s bytes)" % inpl)
    moved("stratus_wal_write_duration_seconds", "stratus_wal_write_duration_seconds_count")
    moved("stratus_uploader_objects_total")
    moved("stratus_uploader_bytes_total")
    moved("stratus_storage_calls_total", op="put")
    moved("stratus_storage_call_duration_seconds", "stratus_storage_call_duration_seconds_count",
          op="put")
    moved("stratus_network_received_bytes_total")
    moved("stratus_connections_accepted_total")
    moved("stratus_request_errors_total", api="unknown")
    moved("stratus_process_cpu_seconds_total")
    R.check(any(lab.get("version") for _, lab, _ in f1["stratus_requests_total"]["samples"]),
            "requests carry an API version label")
    R.eq(f1.get("stratus_request_duration_seconds", {}).get("type"), "histogram",
         "request latency is a histogram")
    R.check((value(f1, "stratus_consumer_groups") or 0) >= 1, "stratus_consumer_groups >= 1")
    lag = value(f1, "stratus_consumer_group_lag", group="mgroup")
    R.eq(lag, 100.0, "stratus_consumer_group_lag{group=mgroup} = 300 produced - 200 committed")
    R.check((value(f1, "stratus_process_resident_memory_bytes") or 0) > 1e6, "RSS reported")
    R.check((value(f1, "stratus_process_open_fds") or 0) > 5, "open fds reported")
    # the allocator's view: jemalloc's stats when stratusd links it, glibc's mallinfo2 otherwise
    # (sanitizer builds, whose own allocator leaves glibc's counters at zero)
    alloc = value(f1, "stratus_allocator_bytes", state="allocated")
    R.check(alloc is not None, "stratus_allocator_bytes{state=allocated} exported")
    resident = value(f1, "stratus_allocator_bytes", state="resident")
    if resident is not None:  # jemalloc
        rss = value(f1, "stratus_process_resident_memory_bytes") or 0
        R.check(1e6 < (alloc or 0) <= resident <= rss * 1.05 + 16e6,
                f"jemalloc: allocated {alloc} <= resident {resident} <= RSS {rss}")
    R.eq(value(f1, "stratus_ready"), 1.0, "stratus_ready is 1")
    R.check(value(f1, "stratus_cache_misses_total") is not None, "cache counters exported")
    R.check(value(f1, "stratus_cold_read_bytes_total") is not None, "cold-read bytes exported")
    R.check(all(n.startswith("stratus_") for n in f1), "every family is stratus_*")
    R.check(not any("topic" in lab for fam in f1.values() for _, lab, _ in fam["samples"]),
            "no topic label by default (topic_labels = false)")

    # Log level at run time.
    st, body, _ = http(port, "/loglevel?level=debug", method="POST", body=b"")
    R.eq((st, body), (200, "debug\n"), "POST /loglevel?level=debug")
    st, body, _ = http(port, "/loglevel", method="POST", body=b"shout")
    R.eq(st, 400, "an unknown level is refused")
    http(port, "/loglevel", method="POST", body=b"info")
    R.check(b.log_grep("log level changed from=info to=debug"), "the level change is logged")
    return f1


def test_topic_labels(b):
    R.section("topic_labels = true")
    start_metrics(b)
    prod = KafkaProducer(bootstrap_servers=b.bootstrap, acks=1)
    for t in ("lab-a", "lab-b"):
        for i in range(5):
            prod.send(t, b"x%d" % i)
    prod.flush(30)
    prod.close()
    f = parse_prom(scrape(b.metrics_port)[0])
    R.eq(value(f, "stratus_topic_records_in_total", topic="lab-a"), 5.0, "records in {topic=lab-a}")
    R.eq(value(f, "stratus_topic_records_in_total", topic="lab-b"), 5.0, "records in {topic=lab-b}")
    b.stop()


# ---- connections spread over the network threads ------------------------------------------
def test_thread_spread(b):
    R.section("new connections go to the network thread with the fewest")
    start_metrics(b)

    def per_thread():
        f = parse_prom(scrape(b.metrics_port)[0])
        return [value(f, "stratus_network_thread_connections", thread="net-%d" % i)
                for i in range(3)]

    conns = []
    for i in range(6):
        c = kwire.Conn.to(b.bootstrap, client_id="spread-%d" % i)
        err, _ = c.api_versions(0)  # answered: the connection is set up on its thread
        R.eq(err, 0, "connection %d answers ApiVersions" % i)
        conns.append(c)
    R.eq(per_thread(), [2.0, 2.0, 2.0], "6 connections: 2 on each of 3 network threads")
    for c in conns[:3]:
        c.close()
    deadline = time.monotonic() + 10
    while sum(per_thread()) != 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    counts = per_thread()
    R.eq(sum(counts), 3.0, "3 closed: 3 connections left over the threads (%s)" % counts)
    for i in range(3 * 3):
        c = kwire.Conn.to(b.bootstrap, client_id="spread-more-%d" % i)
        R.eq(c.api_versions(0)[0], 0, "new connection %d answers" % i)
        conns.append(c)
    R.eq(per_thread(), [4.0, 4.0, 4.0],
         "9 more: the threads with fewer filled first, 4 on each (was %s)" % counts)
    for c in conns:
        c.close()
    b.stop()


# ---- dead storage ----------------------------------------------------------------------
def test_dead_storage():
    R.section("dead storage backend: retries, failures, WAL filling, /readyz degraded")
    port = harness.free_port()
    b = R.broker("deadstore")
    dead = os.path.join(harness.plugin_dir(), "stratus-storage-dead.so")
    if not os.path.exists(dead):
        R.check(False, "test plugin %s is built" % dead)
        return
    with open(b.conf_path, "w") as f:
        f.write("[broker]\nlisteners = PLAINTEXT://%s:%d\ndata_dir = %s\nplugin_dir = %s\n"
                % (b.host, b.port, b.data_dir, harness.plugin_dir()))
        f.write("[wal]\nsize = 16MiB\n[upload]\ninterval = 200ms\nobject_size = 256KiB\n")
        f.write("[storage]\nplugin = %s\nretry_max_attempts = 3\nretry_base_delay = 5ms\n"
                "retry_max_delay = 20ms\n" % dead)
        f.write("[cache]\nplugin = memory\n")
        f.write("[metrics]\nlisten = 127.0.0.1:%d\nready_wal_percent = 10\n" % port)
    b.metrics_port = port
    start_metrics(b)
    R.eq(http(port, "/readyz")[0], 200, "ready before any data")
    prod = KafkaProducer(bootstrap_servers=b.bootstrap, acks=1, linger_ms=5,
                         max_request_size=4 << 20)
    futs = [prod.send("dead-t", b"d" * 8000) for _ in range(300)]  # ~2.4 MB
    prod.flush(60)
    ok = sum(1 for fu in futs if fu.exception is None and fu.succeeded())
    prod.close()
    R.eq(ok, 300, "every produce is acknowledged (into the WAL) while storage is down")
    time.sleep(1.5)
    f = parse_prom(scrape(port)[0])
    R.check(total(f, "stratus_storage_retries_total", op="put") > 0,
            "storage put retries visible: %s" % total(f, "stratus_storage_retries_total", op="put"))
    R.check(total(f, "stratus_storage_failures_total", op="put") > 0,
            "storage put failures visible: %s"
            % total(f, "stratus_storage_failures_total", op="put"))
    R.check((value(f, "stratus_uploader_failures_total") or 0) > 0, "uploader failures visible")
    R.eq(value(f, "stratus_uploader_objects_total"), 0.0, "no object uploaded")
    used, size = value(f, "stratus_wal_used_bytes") or 0, value(f, "stratus_wal_size_bytes") or 1
    R.check(used >= 2e6, "WAL holds the un-uploaded data: used %d of %d bytes" % (used, size))
    st, body, _ = http(port, "/readyz")
    R.check(st == 503 and "degraded: WAL" in body, "/readyz is 503 degraded: %d %r" % (st, body))
    R.eq(http(port, "/healthz")[0], 200, "/healthz stays 200 (alive, not ready)")
    R.eq(value(f, "stratus_ready"), 0.0, "stratus_ready is 0")
    R.check(b.log_grep("upload failed"), "the log says the upload failed")
    R.check(b.log_grep("giving up after 3 attempts"), "the log names the retries given up")
    cons = KafkaConsumer("dead-t", bootstrap_servers=b.bootstrap, auto_offset_reset="earliest",
                         consumer_timeout_ms=5000)
    n = sum(1 for _ in cons)
    cons.close()
    R.eq(n, 300, "consumers still read everything (from the log cache)")

    # A failed round is followed by a 1 s pause, however often produces wake the uploader:
    # 2 s of small produces (each wakes it) make at most ~3 more failed rounds, not one per
    # wake (before, a round every ~25 ms, each building a whole object for nothing).
    fails0 = value(parse_prom(scrape(port)[0]), "stratus_uploader_failures_total") or 0
    t0 = time.monotonic()
    prod = KafkaProducer(bootstrap_servers=b.bootstrap, acks=1, linger_ms=0)
    while time.monotonic() - t0 < 2.0:
        prod.send("dead-t", b"w" * 100).get(timeout=10)
        time.sleep(0.01)
    prod.close()
    dt = time.monotonic() - t0
    fails1 = value(parse_prom(scrape(port)[0]), "stratus_uploader_failures_total") or 0
    R.check(1 <= fails1 - fails0 <= dt + 2,
            "failed rounds paced at 1 s while produces wake the uploader: %d in %.1f s"
            % (fails1 - fails0, dt))

    # Fill the 16 MiB ring: the produce that finds it full waits for an upload that cannot
    # come, and is answered REQUEST_TIMED_OUT at its TimeoutMs instead of never.
    c = kwire.Conn(b.host, b.port, timeout=60)
    R.eq(c.create_topic("dead-full", 1)[0], 0, "CreateTopics dead-full")
    batch = kwire.record_batch([(b"k%d" % i, bytes([65 + i]) * 60000, ()) for i in range(8)])
    acked, timed_out, other, waited = 0, 0, [], 0.0
    for _ in range(64):  # 64 x 480 KB: twice the ring
        t0 = time.monotonic()
        err = c.produce("dead-full", 0, batch, acks=-1, timeout_ms=1500)[("dead-full", 0)]["error"]
        dt = time.monotonic() - t0
        if err == 0:
            acked += 1
        elif err == 7:  # REQUEST_TIMED_OUT
            timed_out, waited = timed_out + 1, dt
            break
        else:
            other.append(err)
            break
    c.close()
    R.check(acked >= 8 and timed_out == 1 and not other,
            "a full WAL ring: %d batches acknowledged, then REQUEST_TIMED_OUT (other errors: %s)"
            % (acked, other))
    R.check(1.4 <= waited < 10, "answered at the request's TimeoutMs of 1.5 s (%.2f s)" % waited)
    f = parse_prom(scrape(port)[0])
    R.check((value(f, "stratus_produce_timeouts_total") or 0) >= 1,
            "stratus_produce_timeouts_total counts it: %s"
            % value(f, "stratus_produce_timeouts_total"))
    R.check(b.alive(), "the broker is alive with a full WAL ring")
    R.eq(b.stop(), 0, "the broker stops cleanly with storage down")


# ---- examples --------------------------------------------------------------------------
def metric_names_in(expr):
    return set(re.findall(r"\bstratus_[a-zA-Z0-9_]+", expr))


def test_dashboard(fams):
    R.section("Grafana dashboard queries name exported metrics")
    path = os.path.join(DEPLOY, "grafana", "stratus-dashboard.json")
    with open(path) as f:
        d = json.load(f)
    R.check(d.get("panels"), "dashboard has panels")
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    for v in d.get("templating", {}).get("list", []):
        if isinstance(v.get("query"), str) and "stratus_" in v["query"]:
            exprs.append(v["query"])
    R.check(len(exprs) >= 15, "dashboard has %d queries" % len(exprs))
    missing = set()
    for e in exprs:
        names = metric_names_in(e)
        if not names:
            missing.add("(no metric in %r)" % e)
        for n in names:
            if family_of(n, fams) not in fams:
                missing.add(n)
    R.eq(sorted(missing), [], "every dashboard query names a metric the broker exports")


def test_manifests():
    R.section("Kubernetes manifests, Prometheus config, systemd unit")
    try:
        import yaml
    except ImportError:
        yaml = None
    kpath = os.path.join(DEPLOY, "kubernetes", "stratus.yaml")
    ppath = os.path.join(DEPLOY, "prometheus", "prometheus.yml")
    if yaml is None:
        print("  (python3-yaml not installed: checking tabs and document markers only)")
        for p in (kpath, ppath):
            with open(p) as f:
                t = f.read()
            R.check("\t" not in t, "%s has no tabs" % os.path.basename(p))
        return
    with open(kpath) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    kinds = {d["kind"]: d for d in docs}
    R.check({"ConfigMap", "Secret", "Service"} <= set(kinds), "ConfigMap, Secret, Service")
    wl = kinds.get("StatefulSet") or kinds.get("Deployment")
    R.check(wl is not None, "a StatefulSet or Deployment")
    for d in docs:
        R.check(d.get("apiVersion") and d.get("metadata", {}).get("name"),
                "%s has apiVersion and metadata.name" % d.get("kind"))
    c = wl["spec"]["template"]["spec"]["containers"][0]
    R.eq(c["livenessProbe"]["httpGet"]["path"], "/healthz", "liveness probe on /healthz")
    R.eq(c["readinessProbe"]["httpGet"]["path"], "/readyz", "readiness probe on /readyz")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    R.eq(c["readinessProbe"]["httpGet"]["port"] in ports, True, "probe port is a named port")
    ini = kinds["ConfigMap"]["data"]["stratus.ini"]
    cp = configparser.ConfigParser(interpolation=None)
    cp.read_string(ini)
    R.eq(cp.get("metrics", "listen").rsplit(":", 1)[1], str(ports["metrics"]),
         "the ConfigMap's [metrics] listen matches the metrics port")
    R.check(cp.get("broker", "data_dir") in [m["mountPath"] for m in c["volumeMounts"]],
            "data_dir is a mounted volume")
    R.check(kinds["Secret"].get("stringData") or kinds["Secret"].get("data"), "Secret has data")
    R.check(any(e.get("secretRef") for e in c.get("envFrom", [])),
            "credentials come from the Secret as environment variables")
    with open(ppath) as f:
        prom = yaml.safe_load(f)
    R.check(all(s.get("metrics_path", "/metrics") == "/metrics" for s in prom["scrape_configs"]),
            "Prometheus scrapes /metrics")
    kubectl = shutil.which("kubectl")
    if kubectl:
        p = subprocess.run([kubectl, "apply", "--dry-run=client", "--validate=false", "-f", kpath,
                            "-o", "name"], capture_output=True, timeout=60)
        if p.returncode == 0:
            R.check(True, "kubectl apply --dry-run=client accepts the manifests")
        else:
            print("  (kubectl needs an API server for --dry-run=client here: skipped)")
    upath = os.path.join(DEPLOY, "systemd", "stratus.service")
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.read(upath)
    R.check({"Unit", "Service", "Install"} <= set(cp.sections()), "systemd unit has its sections")
    R.check("stratusd --config" in cp.get("Service", "ExecStart"), "ExecStart runs stratusd")


def main():
    b = metrics_broker("metrics")
    fams = None
    try:
        fams = test_traffic(b)
    except Exception as e:  # noqa: BLE001
        R.check(False, "traffic test raised %s: %s" % (type(e).__name__, e))
        import traceback
        traceback.print_exc()
    if fams:
        R.run(test_dashboard, fams)
    if b.alive():
        R.eq(b.stop(), 0, "broker stops cleanly with the metrics listener")
    R.run(test_topic_labels, metrics_broker("metrics-labels", {"metrics.topic_labels": "true"}))
    R.run(test_thread_spread, metrics_broker("metrics-spread", {"broker.network_threads": "3"}))
    R.run(test_dead_storage)
    R.run(test_manifests)
    R.finish()


if __name__ == "__main__":
    main()
