"""s3_testlib.py - helpers shared by the S3 tests (tests/plugins/test_s3_*.py and
tests/integration/test_s3_*.py): free ports, moto's server started and stopped by PID (SIGTERM,
then SIGKILL), bucket creation with boto3, and a tiny result counter.

Runs under the python3 first on PATH (the image's, which has moto/boto3/botocore), never
/usr/bin/python3. Owns only the processes it starts.
SPDX-License-Identifier: Apache-2.0
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ACCESS_KEY = "AKIDSTRATUSTEST"
SECRET_KEY = "stratus/test+secret"


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def stop_process(p, timeout=5.0):
    """Stops a process we started: SIGTERM, then SIGKILL after timeout."""
    if p is None or p.poll() is not None:
        return
    try:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=timeout)


# moto's server checks a conditional PUT (If-None-Match: *) and then stores the object without
# a lock, on a threaded werkzeug server: two racing creates can both win, unlike S3. This
# launcher keeps the threaded HTTP/1.1 server (keep-alive, concurrent connections) but runs the
# WSGI application under one lock, so each request is atomic as on S3.
MOTO_LAUNCHER = r"""
import sys, threading
import moto.server as ms
_orig = ms.run_simple
_lock = threading.Lock()
def _run(hostname, port, application, *a, **kw):
    def locked(environ, start_response):
        with _lock:
            return list(application(environ, start_response))
    return _orig(hostname, port, locked, *a, **kw)
ms.run_simple = _run
sys.argv = ["moto_server"] + sys.argv[1:]
ms.main()
"""


class Moto:
    """moto's S3 server on 127.0.0.1:<free port>, in memory, requests serialized (see above)."""

    def __init__(self):
        self.port = free_port()
        self.proc = None
        self.log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", MOTO_LAUNCHER, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("moto exited: see %s" % self.log.name)
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1).read()
                return self
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("moto did not start")

    def stop(self):
        stop_process(self.proc)
        self.proc = None

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name="us-east-1")

    def create_bucket(self, name):
        self.client().create_bucket(Bucket=name)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL %s" % what, flush=True)
        return cond

    def report(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 0 if self.failed == 0 else 1


def need_env(name):
    v = os.environ.get(name)
    if not v:
        sys.stderr.write("%s is not set (run through ctest)\n" % name)
        sys.exit(2)
    return v
