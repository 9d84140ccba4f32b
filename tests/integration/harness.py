#!/usr/bin/python3
"""harness.py - start, stop, crash and restart a real stratusd for the integration tests.

Owns: one temporary directory per Broker (config file, data dir, objects, broker log) under
/var/tmp; the broker processes it started (and only those: it never signals any other PID).
Binary: $STRATUS_BUILD_DIR/stratusd (default /work/main/build); plugins: $STRATUS_PLUGIN_DIR
(default $STRATUS_BUILD_DIR/plugins).

From Python:  b = Broker("name", sets={"upload.interval": "500ms"}); b.start(); b.bootstrap ...
From node or a shell:  /usr/bin/python3 harness.py run -- node test_kafkajs.js
    starts a broker, runs the command with STRATUS_BOOTSTRAP=host:port (and STRATUS_BROKER_LOG),
    stops the broker and prints its log if the command failed.
Standard library only, so it runs under /usr/bin/python3 next to python3-kafka and
python3-confluent-kafka.
SPDX-License-Identifier: Apache-2.0
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

DEFAULT_BUILD_DIR = "/work/main/build"


def build_dir():
    return os.environ.get("STRATUS_BUILD_DIR") or DEFAULT_BUILD_DIR


def plugin_dir():
    return os.environ.get("STRATUS_PLUGIN_DIR") or os.path.join(build_dir(), "plugins")


def stratusd_path():
    return os.path.join(build_dir(), "stratusd")


_ports_given = set()  # every port free_port() handed out in this process


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on right now, and never one this process was
    given before (the kernel may hand the same free port to two consecutive calls)."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise OSError("free_port: no new port in 100 tries")


def wal_drained(metrics_port):
    """True when the broker's /metrics (on 127.0.0.1:metrics_port) shows nothing waiting for
    upload and an empty WAL: what a test waits for before it expects a restart to replay
    nothing. (Fixed sleeps were too short for retried uploads under ASan on a loaded host.)"""
    import urllib.request
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port,
                                    timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return False
    vals = dict(l.rsplit(" ", 1) for l in text.splitlines() if l and not l.startswith("#"))
    return (float(vals.get("stratus_uploader_pending_bytes", 1)) == 0 and
            float(vals.get("stratus_wal_used_bytes", 1)) == 0)


def wait_wal_drained(metrics_port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if wal_drained(metrics_port):
            return True
        time.sleep(0.25)
    return False


# Lines that start a sanitizer's report (the ASan build aborts on the first one).
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", ": runtime error: ",
                   "WARNING: ThreadSanitizer")


class BrokerError(Exception):
    pass


class Broker:
    """One stratusd process on 127.0.0.1:<free port> with its own fresh data directory."""

    def __init__(self, name="itest", sets=None, wal_size="64MiB", keep=False, storage=None):
        """storage: the keys of [storage] (e.g. {"plugin": "s3", "bucket": ...}) instead of
        the default storage-local under <root>/objects."""
        self.name = name
        self.storage = dict(storage) if storage else None
        self.sets = dict(sets or {})
        self.wal_size = wal_size
        self.keep = keep or bool(os.environ.get("STRATUS_ITEST_KEEP"))
        self.root = tempfile.mkdtemp(prefix="stratus-itest-%s-" % name, dir="/var/tmp")
        self.data_dir = os.path.join(self.root, "data")
        self.objects_dir = os.path.join(self.root, "objects")
        self.log_path = os.path.join(self.root, "broker.log")
        self.conf_path = os.path.join(self.root, "stratus.ini")
        self.host = "127.0.0.1"
        self.port = free_port()
        self.proc = None
        self.starts = 0
        self._log_file = None
        self._write_conf()

    # ---- configuration -----------------------------------------------------------------
    def _write_conf(self):
        os.makedirs(self.data_dir, exist_ok=True)
        os.makedirs(self.objects_dir, exist_ok=True)
        with open(self.conf_path, "w") as f:
            f.write("; written by tests/integration/harness.py\n")
            f.write("[broker]\nnode_id = 1\n")
            f.write("listeners = PLAINTEXT://%s:%d\n" % (self.host, self.port))
            f.write("data_dir = %s\n" % self.data_dir)
            f.write("plugin_dir = %s\n" % plugin_dir())
            f.write("[wal]\nsize = %s\n" % self.wal_size)
            if self.storage:
                f.write("[storage]\n")
                for k, v in self.storage.items():
                    f.write("%s = %s\n" % (k, v))
            else:
                f.write("[storage]\nplugin = local\npath = %s\n" % self.objects_dir)
            f.write("[cache]\nplugin = memory\ncapacity = 64MiB\n")

    @property
    def bootstrap(self):
        return "%s:%d" % (self.host, self.port)

    def argv(self):
        a = [stratusd_path(), "--config", self.conf_path]
        for k, v in self.sets.items():
            a += ["--set", "%s=%s" % (k, v)]
        return a

    # ---- lifetime ----------------------------------------------------------------------
    def start(self, timeout=10.0):
        if self.proc is not None and self.proc.poll() is None:
            raise BrokerError("broker %s already running (pid %d)" % (self.name, self.proc.pid))
        exe = stratusd_path()
        if not os.access(exe, os.X_OK):
            raise BrokerError("no stratusd at %s (set STRATUS_BUILD_DIR)" % exe)
        self.starts += 1
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(("==== start #%d: %s\n" % (self.starts, " ".join(self.argv())))
                             .encode())
        self._log_file.flush()
        self.proc = subprocess.Popen(self.argv(), stdout=self._log_file,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.root)
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self._close_log()
                raise BrokerError("stratusd exited with status %d during startup\n%s"
                                  % (rc, self.log_tail()))
            try:
                s = socket.create_connection((self.host, self.port), timeout=0.5)
                s.close()
                return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill9()
                raise BrokerError("stratusd did not accept on %s within %.0fs\n%s"
                                  % (self.bootstrap, timeout, self.log_tail()))
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stop(self, timeout=10.0):
        """SIGTERM; SIGKILL after timeout. Returns the exit status (negative = signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._note("SIGTERM not honoured within %.0fs: SIGKILL" % timeout)
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self._close_log()
        return rc

    def kill9(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL to the PID we started, nothing else
            self.proc.wait()
        self._note("killed with SIGKILL by the harness")
        self._close_log()
        return self.proc.returncode

    def restart(self, kill=False, timeout=10.0):
        """Stop (or kill -9) and start again on the same data dir and port."""
        if kill:
            self.kill9()
        else:
            self.stop()
        return self.start(timeout)

    def cleanup(self):
        if self.alive():
            self.stop()
        self._close_log()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def _note(self, msg):
        if self._log_file:
            try:
                self._log_file.write(("==== harness: %s\n" % msg).encode())
                self._log_file.flush()
            except ValueError:
                pass

    def _close_log(self):
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    # ---- the log -----------------------------------------------------------------------
    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=80):
        t = self.log_text().splitlines()
        return "---- broker log %s (last %d of %d lines) ----\n%s\n---- end of log ----" % (
            self.log_path, min(lines, len(t)), len(t), "\n".join(t[-lines:]))

    def log_grep(self, *words):
        return [l for l in self.log_text().splitlines() if any(w in l for w in words)]

    def sanitizer_report(self, lines=40):
        """The first sanitizer report in this broker's log (ASan, LSan, UBSan, TSan), as text
        of at most `lines` lines, or "" when there is none. A crash of this kind in a broker
        a test did not mean to stop must name itself, not surface as a timeout elsewhere."""
        t = self.log_text().splitlines()
        for i, l in enumerate(t):
            if any(w in l for w in SANITIZER_MARKS):
                return "\n".join(t[i:i + lines])
        return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False


# ---- a tiny test reporter --------------------------------------------------------------
class Report:
    """check()/eq() record results; finish() prints 'N passed, N failed' and exits."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.brokers = []
        self.failures = []

    def check(self, cond, msg):
        if cond:
            self.passed += 1
            print("  ok   %s" % msg, flush=True)
        else:
            self.failed += 1
            self.failures.append(msg)
            print("  FAIL %s" % msg, flush=True)
        return bool(cond)

    def eq(self, got, want, msg):
        if got == want:
            return self.check(True, msg)
        g, w = repr(got), repr(want)
        if len(g) > 400:
            g = g[:400] + "..."
        if len(w) > 400:
            w = w[:400] + "..."
        return self.check(False, "%s: got %s, want %s" % (msg, g, w))

    def broker(self, *args, **kw):
        b = Broker(*args, **kw)
        self.brokers.append(b)
        return b

    def section(self, title):
        print("== %s" % title, flush=True)

    def run(self, fn, *args):
        """Run one sub-test; an exception counts as a failure, not a crash of the whole file."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - a test body may raise anything
            self.failed += 1
            self.failures.append("%s raised %s: %s" % (fn.__name__, type(e).__name__, e))
            print("  FAIL %s raised:" % fn.__name__, flush=True)
            traceback.print_exc()
            sys.stdout.flush()

    def finish(self):
        for b in self.brokers:
            if b.alive():
                b.stop_rc = b.stop()
            san = b.sanitizer_report()
            if san:
                self.failed += 1
                self.failures.append("broker %s: sanitizer report in its log" % b.name)
                print("  FAIL broker %s: sanitizer report in its log:\n%s" % (b.name, san),
                      flush=True)
        for b in self.brokers:
            if self.failed:
                print(b.log_tail(200), flush=True)
            rc = getattr(b, "stop_rc", None)
            if rc is not None:
                if rc not in (0, None):
                    self.failed += 1
                    print("  FAIL broker %s exited with status %s on SIGTERM" % (b.name, rc))
            if self.failed:
                b.keep = True
                print("  (kept %s)" % b.root)
            b.cleanup()
        if self.failures:
            print("failures:")
            for f in self.failures:
                print("  - %s" % f)
        print("%s: %d passed, %d failed" % (self.name, self.passed, self.failed))
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed or self.passed == 0 else 0)


def _run_cmd(argv):
    """harness.py run [--set k=v ...] -- CMD...: a broker around an external command."""
    sets = {}
    i = 0
    while i < len(argv) and argv[i] != "--":
        if argv[i] == "--set" and i + 1 < len(argv):
            k, _, v = argv[i + 1].partition("=")
            sets[k] = v
            i += 2
        else:
            print("harness: unknown argument %r" % argv[i], file=sys.stderr)
            return 2
    cmd = argv[i + 1:]
    if not cmd:
        print("usage: harness.py run [--set S.K=V ...] -- COMMAND ...", file=sys.stderr)
        return 2
    b = Broker(os.path.basename(cmd[-1]).split(".")[0], sets=sets)
    try:
        b.start()
    except BrokerError as e:
        print("harness: %s" % e)
        print("0 passed, 1 failed")
        b.keep = True
        b.cleanup()
        return 1
    env = dict(os.environ, STRATUS_BOOTSTRAP=b.bootstrap, STRATUS_BROKER_LOG=b.log_path,
               STRATUS_BROKER_PID=str(b.pid))
    rc = subprocess.call(cmd, env=env)
    alive = b.alive()
    if not alive:
        print("harness: the broker died during the test (status %s)" % b.proc.returncode)
    stop_rc = b.stop()
    if rc != 0 or not alive or stop_rc not in (0, None):
        print(b.log_tail(200))
        b.keep = True
        print("harness: kept %s" % b.root)
        if rc == 0:
            print("harness: broker exit status %s" % stop_rc)
            print("0 passed, 1 failed")
            rc = 1
    b.cleanup()
    return rc


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "run":
        sys.exit(_run_cmd(sys.argv[2:]))
    print("usage: harness.py run [--set S.K=V ...] -- COMMAND ...", file=sys.stderr)
    sys.exit(2)
