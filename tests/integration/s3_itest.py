"""s3_itest.py - what the S3 integration tests (test_s3_broker.py, test_s3_faults.py) share:
moto (from tests/plugins/s3_testlib.py), a broker config with [storage] plugin = s3, producing
known records with the raw Kafka client (kwire), waiting for the objects to appear in the
bucket (boto3), reading everything back, and FaultProxy: an HTTP reverse proxy in front of moto
whose mode the test switches between pass, 503 SlowDown, dropped connections and stalls.
Runs under the python3 first on PATH (moto/boto3), not /usr/bin/python3.
SPDX-License-Identifier: Apache-2.0
"""
import http.client
import http.server
import os
import random
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "plugins"))
import kwire  # noqa: E402
from s3_testlib import ACCESS_KEY, SECRET_KEY, Moto, free_port  # noqa: E402,F401


def s3_storage(endpoint, bucket, prefix, **extra):
    st = {"plugin": "s3", "bucket": bucket, "endpoint": endpoint, "path_style": "true",
          "region": "us-east-1", "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY,
          "prefix": prefix, "multipart_threshold": "6MiB", "part_size": "5MiB"}
    st.update(extra)
    return st


def make_data(topic_parts, n, seed):
    rnd = random.Random(seed)
    want = {}
    for t, p in topic_parts:
        want[(t, p)] = [b"%s-%d-%06d:" % (t.encode(), p, i) + rnd.randbytes(rnd.randrange(400, 1400))
                        for i in range(n)]
    return want


def produce(conn, want, per_batch=50, start=None, on_error=None):
    """Produces want[(t, p)] (from index start[(t,p)] on) in batches with acks=all.
    Returns the list of errors (non-zero Kafka codes)."""
    errors = []
    for (t, p), vals in want.items():
        i = (start or {}).get((t, p), 0)
        while i < len(vals):
            chunk = vals[i:i + per_batch]
            batch = kwire.record_batch([(b"%d" % (i + j), v, ()) for j, v in enumerate(chunk)])
            res = conn.produce(t, p, batch, acks=-1, timeout_ms=30000)
            err = res[(t, p)]["error"]
            if err:
                errors.append((t, p, i, err))
                if on_error:
                    on_error(err)
                break
            i += len(chunk)
    return errors


def bucket_objects(s3, bucket, prefix):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
    return out


def wait_uploaded(s3, bucket, prefix, total, timeout):
    deadline = time.monotonic() + timeout
    objs = []
    while time.monotonic() < deadline:
        objs = bucket_objects(s3, bucket, prefix)
        if sum(sz for _, sz in objs) >= total:
            return objs, True
        time.sleep(0.3)
    return objs, False


def read_back(R, B, want, what):
    c = kwire.Conn(B.host, B.port, timeout=60)
    try:
        for (t, part), vals in want.items():
            t0 = time.monotonic()
            try:
                recs = c.fetch_all(t, part, verify_crc=True, timeout=120)
            except Exception as e:  # noqa: BLE001
                R.check(False, "%s: read %s/%d: %s" % (what, t, part, e))
                continue
            got = [v for _, _, _, v, _ in recs]
            offs = [o for o, *_ in recs]
            same = got == vals and offs == list(range(len(vals)))
            R.check(same, "%s: %s/%d identical, %d records, offsets 0..n-1 (%.1fs)%s" % (
                what, t, part, len(vals), time.monotonic() - t0,
                "" if same else " (got %d records)" % len(got)))
    finally:
        c.close()


class FaultProxy:
    """A threaded HTTP/1.1 reverse proxy on 127.0.0.1:<free port> in front of `upstream`.
    mode: "pass" | "503" (SlowDown XML) | "drop" (close without a reply) | "stall" (say
    nothing for stall_s, then close). counts[mode] tells how many requests each mode got."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.port = free_port()
        self.mode = "pass"
        self.stall_s = 5.0
        self.counts = {"pass": 0, "503": 0, "drop": 0, "stall": 0}
        self.lock = threading.Lock()
        proxy = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with proxy.lock:
                    mode = proxy.mode
                    proxy.counts[mode] += 1
                if mode == "503":
                    b = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>"
                         b"<Message>Please reduce your request rate.</Message></Error>")
                    self.send_response(503, "Slow Down")
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(b)))
                    self.end_headers()
                    self.wfile.write(b)
                    return
                if mode == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if mode == "stall":
                    time.sleep(proxy.stall_s)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                up = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() not in ("connection", "keep-alive", "proxy-connection")}
                up.request(self.command, self.path, body=body if body or n else None, headers=hdrs)
                r = up.getresponse()
                data = r.read()
                self.send_response(r.status, r.reason)
                for k, v in r.getheaders():
                    if k.lower() in ("connection", "transfer-encoding", "content-length", "server", "date"):
                        continue
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                up.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def set_mode(self, m):
        with self.lock:
            self.mode = m

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
