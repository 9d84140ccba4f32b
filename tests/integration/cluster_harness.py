#!/usr/bin/python3
"""cluster_harness.py - a real Stratus cluster for the cluster integration tests
(tests/integration/test_cluster*.py): a 3-member etcd cluster, n stratusd brokers in cluster
mode (docs/cluster-design.md) sharing one storage (a local directory or a bucket on moto's
S3 server), and the client-side workload the tests drive through it: an idempotent
sequence-numbered producer, group consumers, a from-the-beginning reader, raw partition
reassignments (kwire) and the checks on what was read back.

Owns: the processes it starts (etcd members, moto, brokers; each started through
`setpriv --pdeathsig KILL`, and killed again at exit and on SIGTERM/SIGINT/SIGHUP; it never
signals a PID it did not start), their directories (etcd data under /dev/shm, broker roots and
the shared storage directory under /var/tmp), and its client objects.
Runs under /usr/bin/python3 (python3-confluent-kafka); moto runs under $STRATUS_S3_PYTHON (or
the first python3 on PATH that imports moto). Standard library otherwise.
SPDX-License-Identifier: Apache-2.0
"""
import atexit
import base64
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "plugins"))
import kwire  # noqa: E402
from harness import Broker, BrokerError, free_port, plugin_dir, stratusd_path  # noqa: E402,F401
from kwire import Reader, compact_string, i32, uvarint  # noqa: E402

SKIP = 77
ETCD_PREFIX = "/stratus/"
NOT_LEADER = 6  # NOT_LEADER_OR_FOLLOWER

# ---- children: started with a parent-death signal, killed at exit ------------------------
_children = []
_children_lock = threading.Lock()


def spawn(argv, **kw):
    """Popen(argv) with PR_SET_PDEATHSIG=SIGKILL (setpriv execs in place: same PID), recorded
    so that kill_children() can kill it. Call from the main thread only: the death signal
    follows the thread that forked."""
    pre = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(pre + list(argv), **kw)
    with _children_lock:
        _children.append(p)
    return p


_shm_dirs = []  # etcd data directories (in memory): removed at exit and on signals


def _sweep_stale_shm():
    """Removes etcd data directories left in /dev/shm by test processes that died (SIGKILL,
    ctest timeout): their names carry the PID of the test that made them."""
    try:
        names = os.listdir("/dev/shm")
    except OSError:
        return
    for n in names:
        parts = n.split("-")
        if not n.startswith("stratus-clustertest-etcd-") or len(parts) < 6:
            continue
        try:
            pid = int(parts[4])
        except ValueError:
            continue
        if pid != os.getpid() and not os.path.exists("/proc/%d" % pid):
            shutil.rmtree(os.path.join("/dev/shm", n), ignore_errors=True)


def kill_children():
    with _children_lock:
        procs = list(_children)
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGCONT)  # a SIGSTOPped child still dies on SIGKILL
                p.kill()
                p.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
    for d in list(_shm_dirs):
        shutil.rmtree(d, ignore_errors=True)


def _on_signal(sig, _frame):
    kill_children()
    os._exit(128 + sig)


atexit.register(kill_children)
if threading.current_thread() is threading.main_thread():
    for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(_s, _on_signal)


def skip(msg):
    print("SKIP: %s" % msg, flush=True)
    sys.exit(SKIP)


def require_etcd():
    if not shutil.which("etcd"):
        skip("etcd not installed (scripts/install-deps.sh installs etcd-server)")


def percentile(xs, q):
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = min(len(s) - 1, max(0, int(round(q / 100.0 * (len(s) - 1)))))
    return s[k]


def _b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def _prefix_end(p):
    b = bytearray(p.encode())
    b[-1] += 1
    return bytes(b)


# ---- etcd ----------------------------------------------------------------------------------
class EtcdError(Exception):
    pass


class EtcdCluster:
    """n etcd members on free 127.0.0.1 ports, data under /dev/shm, short election timeouts
    and --max-txn-ops=10000. Talks to them through the v3 JSON gateway."""

    def __init__(self, n=3, tag="cl"):
        self.n = n
        self.members = []
        _sweep_stale_shm()
        self.root = tempfile.mkdtemp(prefix="stratus-clustertest-etcd-%s-%d-" % (
            tag.replace("-", "_"), os.getpid()), dir="/dev/shm")
        _shm_dirs.append(self.root)
        self.logdir = tempfile.mkdtemp(prefix="stratus-clustertest-etcdlogs-%s-" % tag,
                                       dir="/var/tmp")
        for i in range(n):
            cport = free_port()
            pport = free_port()
            while pport == cport:
                pport = free_port()
            self.members.append({"name": "m%d" % (i + 1), "cport": cport, "pport": pport,
                                 "dir": os.path.join(self.root, "m%d" % (i + 1)),
                                 "log": os.path.join(self.logdir, "m%d.log" % (i + 1)),
                                 "proc": None, "logf": None})
        self.initial = ",".join("%s=http://127.0.0.1:%d" % (m["name"], m["pport"])
                                for m in self.members)

    def url(self, i):
        return "http://127.0.0.1:%d" % self.members[i]["cport"]

    @property
    def endpoints(self):
        return ",".join(self.url(i) for i in range(self.n))

    def alive(self, i):
        p = self.members[i]["proc"]
        return p is not None and p.poll() is None

    def start_member(self, i):
        m = self.members[i]
        if self.alive(i):
            return
        curl = self.url(i)
        purl = "http://127.0.0.1:%d" % m["pport"]
        argv = ["etcd", "--name", m["name"], "--data-dir", m["dir"],
                "--listen-client-urls", curl, "--advertise-client-urls", curl,
                "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
                "--initial-cluster", self.initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", "stratus-clustertest",
                "--heartbeat-interval=100", "--election-timeout=1000",
                "--max-txn-ops=10000", "--logger=zap", "--log-level=warn"]
        m["logf"] = open(m["log"], "ab")
        m["proc"] = spawn(argv, stdout=m["logf"], stderr=subprocess.STDOUT)

    def start(self, timeout=30.0):
        for i in range(self.n):
            self.start_member(i)
        if self.wait_leader(timeout=timeout) is None:
            raise EtcdError("etcd cluster has no leader after %.0fs\n%s" % (
                timeout, self.log_tail()))
        return self

    # -- gateway --
    def call(self, i, path, body, timeout=3.0):
        req = urllib.request.Request(self.url(i) + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read().decode())

    def call_any(self, path, body, timeout=3.0):
        last = None
        for i in range(self.n):
            if not self.alive(i):
                continue
            try:
                return self.call(i, path, body, timeout)
            except (OSError, ValueError, urllib.error.URLError) as e:
                last = e
        raise EtcdError("no etcd member answered %s: %s" % (path, last))

    def status(self, i, timeout=2.0):
        """(member id, leader id, raft term) as strings/ints, or None."""
        try:
            s = self.call(i, "/v3/maintenance/status", {}, timeout)
        except (OSError, ValueError, urllib.error.URLError):
            return None
        return s.get("header", {}).get("member_id"), s.get("leader"), int(s.get("raftTerm", 0))

    def leader(self):
        """Index of the live member that a majority of the cluster reports as leader, or
        None (no leader, or an election in progress)."""
        st = {i: self.status(i) for i in range(self.n) if self.alive(i)}
        st = {i: s for i, s in st.items() if s}
        votes = {}
        for s in st.values():
            if s[1] and s[1] != "0":
                votes[s[1]] = votes.get(s[1], 0) + 1
        for i, s in st.items():
            if votes.get(s[0], 0) > self.n // 2:
                return i
        return None

    def wait_leader(self, exclude=None, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            i = self.leader()
            if i is not None and i != exclude:
                # the leader must also serve a linearizable read
                try:
                    self.call(i, "/v3/kv/range", {"key": _b64("health")}, 2.0)
                    return i
                except (OSError, ValueError, urllib.error.URLError):
                    pass
            time.sleep(0.05)
        return None

    def kill9(self, i):
        m = self.members[i]
        if self.alive(i):
            m["proc"].kill()
            m["proc"].wait()
        if m["logf"]:
            m["logf"].close()
            m["logf"] = None

    def kill_leader(self):
        i = self.leader()
        if i is None:
            raise EtcdError("no etcd leader to kill")
        self.kill9(i)
        return i

    def stop(self):
        for i, m in enumerate(self.members):
            if self.alive(i):
                m["proc"].terminate()
        for i, m in enumerate(self.members):
            if m["proc"] is not None and m["proc"].poll() is None:
                try:
                    m["proc"].wait(10)
                except subprocess.TimeoutExpired:
                    m["proc"].kill()
                    m["proc"].wait()
            if m["logf"]:
                m["logf"].close()
                m["logf"] = None

    def cleanup(self, keep=False):
        """Stops the members and removes their data (in memory); keep: keep the logs."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        if not keep:
            shutil.rmtree(self.logdir, ignore_errors=True)

    def log_tail(self, lines=20):
        out = []
        for m in self.members:
            try:
                with open(m["log"], "rb") as f:
                    t = f.read().decode("utf-8", "replace").splitlines()
            except OSError:
                t = []
            out.append("---- etcd %s log (last %d lines) ----\n%s" % (
                m["name"], min(lines, len(t)), "\n".join(t[-lines:])))
        return "\n".join(out)

    # -- keys --
    def get_prefix(self, prefix):
        """{key: (value bytes, create_revision, mod_revision)} of every key under prefix, and
        the store revision of the read."""
        r = self.call_any("/v3/kv/range", {"key": _b64(prefix),
                                           "range_end": base64.b64encode(_prefix_end(prefix))
                                           .decode()}, timeout=5.0)
        out = {}
        for kv in r.get("kvs", []):
            out[base64.b64decode(kv["key"]).decode()] = (
                base64.b64decode(kv.get("value", "")), int(kv.get("create_revision", 0)),
                int(kv.get("mod_revision", 0)))
        return out, int(r.get("header", {}).get("revision", 0))

    def get_json_prefix(self, sub, prefix=ETCD_PREFIX):
        """{key without the stratus prefix: parsed JSON} of every key under prefix + sub."""
        kvs, _ = self.get_prefix(prefix + sub)
        out = {}
        for k, (v, _c, _m) in kvs.items():
            try:
                out[k[len(prefix):]] = json.loads(v.decode())
            except ValueError:
                out[k[len(prefix):]] = v
        return out

    def revision(self):
        return self.get_prefix(ETCD_PREFIX + "\x00none")[1]


# ---- moto (S3) -----------------------------------------------------------------------------
def s3_python():
    """A python3 that imports moto: $STRATUS_S3_PYTHON, else the first python3 on PATH."""
    cands = [os.environ.get("STRATUS_S3_PYTHON")]
    for d in os.environ.get("PATH", "").split(os.pathsep):
        cands.append(os.path.join(d, "python3"))
    for c in cands:
        if c and os.access(c, os.X_OK) and subprocess.call(
                [c, "-c", "import moto.server"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL) == 0:
            return c
    return None


class MotoS3:
    """moto's S3 server (tests/plugins/s3_testlib.py MOTO_LAUNCHER: requests serialized) on a
    free port, run by another python3; buckets created and listed with plain HTTP."""

    def __init__(self, python):
        from s3_testlib import ACCESS_KEY, MOTO_LAUNCHER, SECRET_KEY
        self.python = python
        self.launcher = MOTO_LAUNCHER
        self.access_key, self.secret_key = ACCESS_KEY, SECRET_KEY
        self.port = free_port()
        self.proc = None
        self.log = tempfile.NamedTemporaryFile(prefix="stratus-clustertest-moto-", suffix=".log",
                                               dir="/var/tmp", delete=False)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout=30.0):
        self.proc = spawn([self.python, "-c", self.launcher, "-H", "127.0.0.1", "-p",
                           str(self.port)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("moto exited: see %s" % self.log.name)
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1).read()
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        raise RuntimeError("moto did not start within %.0fs" % timeout)

    def stop(self, keep=False):
        """Stops moto; removes its log unless keep."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if not keep:
            try:
                os.unlink(self.log.name)
            except OSError:
                pass

    def create_bucket(self, name):
        req = urllib.request.Request("%s/%s" % (self.url, name), data=b"", method="PUT")
        urllib.request.urlopen(req, timeout=10).read()

    def list_objects(self, bucket, prefix=""):
        """[(key, size)] of every object under prefix (ListObjectsV2, paginated)."""
        out = []
        token = None
        while True:
            q = "list-type=2&prefix=%s" % urllib.request.quote(prefix, safe="")
            if token:
                q += "&continuation-token=%s" % urllib.request.quote(token, safe="")
            with urllib.request.urlopen("%s/%s?%s" % (self.url, bucket, q), timeout=30) as r:
                root = ET.fromstring(r.read())
            ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            for c in root.findall(ns + "Contents"):
                out.append((c.find(ns + "Key").text, int(c.find(ns + "Size").text)))
            if (root.findtext(ns + "IsTruncated") or "false") != "true":
                return out
            token = root.findtext(ns + "NextContinuationToken")

    def storage_conf(self, bucket, prefix):
        return {"plugin": "s3", "bucket": bucket, "endpoint": self.url, "path_style": "true",
                "region": "us-east-1", "access_key_id": self.access_key,
                "secret_access_key": self.secret_key, "prefix": prefix}


# ---- one broker in cluster mode ------------------------------------------------------------
class ClusterBroker(Broker):
    """stratusd with [cluster] metastore = etcd, the object WAL and the shared storage."""

    def __init__(self, node_id, etcd_endpoints, storage, session_ttl="3s", sets=None,
                 extra=None, name=None):
        """storage: the [storage] keys (shared by every broker of the cluster). extra:
        {section: {key: value}} written after the defaults (overrides them)."""
        self.node_id = node_id
        self.etcd_endpoints = etcd_endpoints
        self.session_ttl = session_ttl
        self.extra = extra or {}
        super().__init__(name or "cl-n%d" % node_id, sets=sets, storage=storage)

    def conf_sections(self):
        secs = {
            "broker": {"node_id": str(self.node_id),
                       "listeners": "PLAINTEXT://%s:%d" % (self.host, self.port),
                       "data_dir": self.data_dir, "plugin_dir": plugin_dir()},
            "cluster": {"metastore": "etcd", "etcd_endpoints": self.etcd_endpoints,
                        "etcd_prefix": ETCD_PREFIX, "session_ttl": self.session_ttl},
            "wal": {"type": "object", "object_interval": "100ms"},
            "upload": {"interval": "1s"},
            "storage": dict(self.storage),
            "cache": {"plugin": "memory", "capacity": "64MiB"},
            "group": {"initial_rebalance_delay": "300ms", "min_session_timeout": "1s"},
        }
        if os.environ.get("STRATUS_TEST_LOG_LEVEL"):  # e.g. debug, to chase a failure
            secs["broker"]["log_level"] = os.environ["STRATUS_TEST_LOG_LEVEL"]
        for s, kv in self.extra.items():
            secs.setdefault(s, {}).update(kv)
        return secs

    def _write_conf(self):
        os.makedirs(self.data_dir, exist_ok=True)
        with open(self.conf_path, "w") as f:
            f.write("; written by tests/integration/cluster_harness.py\n")
            for s, kv in self.conf_sections().items():
                f.write("[%s]\n" % s)
                for k, v in kv.items():
                    f.write("%s = %s\n" % (k, v))

    def spawn(self):
        """Starts the process without waiting for the port."""
        if self.alive():
            raise BrokerError("broker %s already running (pid %d)" % (self.name, self.proc.pid))
        exe = stratusd_path()
        if not os.access(exe, os.X_OK):
            raise BrokerError("no stratusd at %s (set STRATUS_BUILD_DIR)" % exe)
        self.starts += 1
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(("==== start #%d: %s\n" % (self.starts, " ".join(self.argv())))
                             .encode())
        self._log_file.flush()
        self.proc = spawn(self.argv(), stdout=self._log_file, stderr=subprocess.STDOUT,
                          cwd=self.root)

    def _this_start_log(self):
        try:
            with open(self.log_path, "rb") as f:
                t = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return t[t.rfind("==== start #"):]

    def wait_port(self, timeout=20.0):
        """Waits until this broker listens (its log says it started: a port another process
        took meanwhile would accept too). A broker that could not bind its port is started
        again on a new one (at most 3 times)."""
        deadline = time.monotonic() + timeout
        rebinds = 0
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self._close_log()
                if "Address already in use" in self._this_start_log() and rebinds < 3:
                    rebinds += 1
                    self.port = free_port()
                    self._write_conf()
                    self.spawn()
                    continue
                raise BrokerError("stratusd %s exited with status %d during startup\n%s"
                                  % (self.name, rc, self.log_tail()))
            quiet = os.environ.get("STRATUS_TEST_LOG_LEVEL", "info") in ("warn", "error")
            if quiet or "broker started" in self._this_start_log():
                try:
                    kwire.Conn(self.host, self.port, timeout=0.5).close()
                    return self
                except OSError:
                    pass
            if time.monotonic() > deadline:
                self.kill9()
                raise BrokerError("stratusd %s did not accept on %s within %.0fs\n%s"
                                  % (self.name, self.bootstrap, timeout, self.log_tail()))
            time.sleep(0.05)

    def start(self, timeout=20.0):
        self.spawn()
        return self.wait_port(timeout)

    def sigstop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGSTOP)
            self.stopped = True
            self._note("SIGSTOP by the harness")

    def sigcont(self):
        if self.alive() and getattr(self, "stopped", False):
            self.proc.send_signal(signal.SIGCONT)
            self.stopped = False
            self._note("SIGCONT by the harness")

    def log_since(self, marker):
        """The log after the last line containing marker (a harness note)."""
        t = self.log_text()
        i = t.rfind(marker)
        return t[i:] if i >= 0 else t


# ---- the cluster ---------------------------------------------------------------------------
class Cluster:
    """etcd (3 members) + n brokers (node ids 1..n) on one shared storage."""

    def __init__(self, n=3, storage="local", tag="cl", session_ttl="3s", extra=None,
                 etcd_members=3, report=None):
        py = None
        if storage == "s3":
            py = s3_python()
            if not py:
                skip("no python3 with moto (set STRATUS_S3_PYTHON)")
        self.tag = tag
        self.report = report
        self.failed_at_start = report.failed if report else 0
        self.etcd = EtcdCluster(etcd_members, tag)
        self.moto = None
        self.storage_kind = storage
        self.bucket = "stratus-cluster"
        self.s3_prefix = "c-%s/" % tag
        self.shared = tempfile.mkdtemp(prefix="stratus-clustertest-%s-objects-" % tag,
                                       dir="/var/tmp")
        if storage == "s3":
            self.moto = MotoS3(py)
            st = self.moto.storage_conf(self.bucket, self.s3_prefix)
        else:
            st = {"plugin": "local", "path": self.shared}
        self.brokers = [ClusterBroker(i + 1, self.etcd.endpoints, st, session_ttl=session_ttl,
                                      extra=extra, name="%s-n%d" % (tag, i + 1))
                        for i in range(n)]
        self.session_ttl_s = float(session_ttl.rstrip("s"))
        self._conns = {}
        self.probes_ok = collections.Counter()     # (topic, partition): probes appended
        self.probes_maybe = collections.Counter()  # (topic, partition): outcome unknown

    def start(self, timeout=30.0):
        self.etcd.start()
        if self.moto:
            self.moto.start()
            self.moto.create_bucket(self.bucket)
        for b in self.brokers:
            b.spawn()
        for b in self.brokers:
            b.wait_port(timeout)
        return self

    def broker(self, node_id):
        return self.brokers[node_id - 1]

    def live(self):
        return [b for b in self.brokers if b.alive()]

    def live_ids(self):
        return {b.node_id for b in self.live()}

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers)

    def live_bootstrap(self):
        return ",".join(b.bootstrap for b in self.live())

    # -- raw requests to one broker (one cached connection per broker) --
    def conn(self, node_id, timeout=10.0):
        c = self._conns.get(node_id)
        if c is None:
            b = self.broker(node_id)
            c = kwire.Conn(b.host, b.port, timeout=timeout, client_id="cluster-itest")
            self._conns[node_id] = c
        return c

    def drop_conn(self, node_id):
        c = self._conns.pop(node_id, None)
        if c:
            c.close()

    def request(self, node_id, fn):
        """fn(conn) on broker node_id; on a socket error the connection is dropped and the
        error raised."""
        try:
            return fn(self.conn(node_id))
        except (OSError, ValueError, ConnectionError):
            self.drop_conn(node_id)
            raise

    def metadata(self, topics=None, via=None):
        """Metadata v1 from broker `via`, or from the first live broker that answers."""
        order = [via] if via else [b.node_id for b in self.live()]
        last = None
        for nid in order:
            try:
                return self.request(nid, lambda c: c.metadata(topics, version=1))
            except (OSError, ValueError, ConnectionError) as e:
                last = e
        raise RuntimeError("no broker answered Metadata: %s" % last)

    def wait_brokers(self, ids, timeout, via=None):
        """Waits until the Metadata of broker `via` (default: of every live broker) lists
        exactly the broker ids and names the same controller among them. Returns (listed ids,
        controller, seconds or None on timeout)."""
        t0 = time.monotonic()
        got, ctrl = None, None
        while True:
            answers = []
            for nid in ([via] if via else sorted(self.live_ids())):
                try:
                    md = self.metadata(via=nid)
                    answers.append((sorted(b["node_id"] for b in md["brokers"]),
                                    md["controller"]))
                except RuntimeError:
                    answers.append((None, None))
            got, ctrl = answers[0] if answers else (None, None)
            if (answers and all(a == answers[0] for a in answers) and got == sorted(ids) and
                    ctrl in ids):
                return got, ctrl, time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                if len(set(map(repr, answers))) > 1:
                    got, ctrl = [a[0] for a in answers], [a[1] for a in answers]
                return got, ctrl, None
            time.sleep(0.1)

    def leaders(self, topic, via=None):
        """{partition: leader or -1}; {} when the topic is unknown."""
        md = self.metadata([topic], via)
        t = md["topics"].get(topic)
        if not t or t["error"]:
            return {}
        return {p: (v["leader"] if v["error"] == 0 else -1) for p, v in t["partitions"].items()}

    def wait_leaders(self, topic, nparts, timeout, allowed=None, via=None):
        """Waits until every partition of topic has a leader in `allowed` (default: the live
        brokers). Returns (leaders, seconds) or (last leaders, None)."""
        t0 = time.monotonic()
        last = {}
        while time.monotonic() - t0 < timeout:
            ok_ids = allowed if allowed is not None else self.live_ids()
            try:
                last = self.leaders(topic, via)
            except RuntimeError:
                last = {}
            if len(last) == nparts and all(l in ok_ids for l in last.values()):
                return last, time.monotonic() - t0
            time.sleep(0.05)
        return last, None

    def create_topic(self, name, nparts, timeout=20.0):
        from confluent_kafka.admin import AdminClient, NewTopic
        a = AdminClient({"bootstrap.servers": self.live_bootstrap(), "log_level": 2})
        try:
            a.create_topics([NewTopic(name, nparts, 1)],
                            request_timeout=timeout)[name].result(timeout)
        finally:
            del a

    def controller(self):
        return self.metadata()["controller"]

    def probe(self, topic, partition, leader, timeout_ms=5000, own_conn=False):
        """One acks=all Produce of a record with key b"probe" straight to `leader`. Returns the
        Kafka error code (0 = appended) or -1 on a connection error. Counts the probes that
        were appended and those whose outcome is unknown (see probe_range)."""
        batch = kwire.record_batch([(b"probe", b"probe", ())], base_ts=int(time.time() * 1000))
        own = None
        try:
            if own_conn:  # a connection of its own: probes may run in parallel threads
                b = self.broker(leader)
                own = kwire.Conn(b.host, b.port, timeout=10.0, client_id="cluster-probe")
                res = own.produce(topic, partition, batch, acks=-1, timeout_ms=timeout_ms)
            else:
                res = self.request(leader, lambda c: c.produce(topic, partition, batch, acks=-1,
                                                              timeout_ms=timeout_ms))
            err = res.get((topic, partition), {}).get("error", -1)
        except (OSError, ValueError, ConnectionError, KeyError):
            err = -1
        finally:
            if own:
                own.close()
        if err == 0:
            self.probes_ok[(topic, partition)] += 1
        elif err not in (3, 5, NOT_LEADER):  # not a definite refusal: maybe appended
            self.probes_maybe[(topic, partition)] += 1
        return err

    def probe_range(self, topic, nparts):
        """{partition: (probes surely appended, probes maybe appended)} for check_topic."""
        return {p: (self.probes_ok[(topic, p)],
                    self.probes_ok[(topic, p)] + self.probes_maybe[(topic, p)])
                for p in range(nparts)}

    def streams(self, topic):
        """The stream ids of the topic's partitions, from etcd topics/<name>."""
        t = self.etcd.get_json_prefix("topics/" + topic).get("topics/" + topic)
        return [int(s) for s in t["streams"]] if isinstance(t, dict) else []

    def parts(self, topic):
        """{partition: parts/<stream> JSON} for the topic."""
        ss = self.streams(topic)
        allp = self.etcd.get_json_prefix("parts/")
        return {p: allp.get("parts/%020d" % s) for p, s in enumerate(ss)}

    # -- end --
    def stop(self, check_exit=True):
        """SIGTERM to every live broker at once (SIGKILL after 30 s), then moto and etcd. With
        a report: counts a broker that did not exit 0 on SIGTERM as a failure; prints the logs
        and keeps the directories when the report has new failures."""
        for c in list(self._conns):
            self.drop_conn(c)
        termed = []
        for b in self.brokers:
            if b.alive():
                b.sigcont()
                b.proc.send_signal(signal.SIGTERM)
                termed.append(b)
        deadline = time.monotonic() + 30
        for b in termed:
            try:
                b.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                b._note("SIGTERM not honoured within 30s: stacks, then SIGKILL")
                if shutil.which("gdb"):  # where it hangs, for the failure report
                    try:
                        out = subprocess.run(["gdb", "-p", str(b.proc.pid), "-batch", "-ex",
                                              "thread apply all bt"], capture_output=True,
                                             text=True, timeout=60).stdout
                        b._note("\n" + out[-20000:])
                        print("---- %s: threads of the hung broker ----\n%s" % (b.name, out[-20000:]),
                              flush=True)
                    except (OSError, subprocess.SubprocessError):
                        pass
                b.proc.kill()
                b.proc.wait()
            b._close_log()
            if self.report and check_exit:
                self.report.eq(b.proc.returncode, 0, "%s: exit status on SIGTERM" % b.name)
        if self.report:  # a broker that died of a sanitizer report says so first
            for b in self.brokers:
                san = b.sanitizer_report()
                self.report.check(not san, "%s: no sanitizer report in its log%s" % (
                    b.name, (":\n" + san) if san else ""))
        failed = bool(self.report and self.report.failed > self.failed_at_start)
        if self.moto:
            self.moto.stop(keep=failed)
        if failed:
            for b in self.brokers:
                print(b.log_tail(60), flush=True)
            print(self.etcd.log_tail(10), flush=True)
        self.etcd.cleanup(keep=failed)
        for b in self.brokers:
            b.keep = b.keep or failed
            b.cleanup()
        if failed:
            print("  (kept %s, the etcd logs in %s and the broker roots)" % (
                self.shared, self.etcd.logdir), flush=True)
        else:
            shutil.rmtree(self.shared, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# ---- raw admin requests (kwire) ------------------------------------------------------------
def _flex(conn, api_key, body):
    r = Reader(conn.request(api_key, 0, body, flexible=True))
    r.uvarint()  # response header tagged fields
    return r


def _cnstr(r):
    n = r.uvarint() - 1
    return None if n < 0 else r.raw(n).decode()


def alter_reassignments(conn, topic, moves, timeout_ms=30000):
    """AlterPartitionReassignments v0 (flexible): moves = {partition: [replica ids] or None}.
    Returns (top error, top message, {partition: (error, message)})."""
    parts = b""
    for p, reps in sorted(moves.items()):
        rep = (uvarint(0) if reps is None else
               uvarint(len(reps) + 1) + b"".join(i32(x) for x in reps))
        parts += i32(p) + rep + b"\x00"
    body = (i32(timeout_ms) + uvarint(2) + compact_string(topic) + uvarint(len(moves) + 1) +
            parts + b"\x00" + b"\x00")
    r = _flex(conn, 45, body)
    r.i32()  # throttle
    err, msg = r.i16(), _cnstr(r)
    out = {}
    for _ in range(r.uvarint() - 1):
        _cnstr(r)
        for _ in range(r.uvarint() - 1):
            p, perr, pmsg = r.i32(), r.i16(), _cnstr(r)
            r.uvarint()
            out[p] = (perr, pmsg)
        r.uvarint()
    return err, msg, out


def list_reassignments(conn, topics=None, timeout_ms=10000):
    """ListPartitionReassignments v0: topics = {name: [partitions]} or None (all). Returns
    (error, {(topic, partition): (replicas, adding, removing)})."""
    if topics is None:
        tb = uvarint(0)
    else:
        tb = uvarint(len(topics) + 1) + b"".join(
            compact_string(t) + uvarint(len(ps) + 1) + b"".join(i32(p) for p in ps) + b"\x00"
            for t, ps in topics.items())
    r = _flex(conn, 46, i32(timeout_ms) + tb + b"\x00")
    r.i32()
    err = r.i16()
    _cnstr(r)
    out = {}

    def ints(rr):
        return [rr.i32() for _ in range(rr.uvarint() - 1)]
    for _ in range(r.uvarint() - 1):
        t = _cnstr(r)
        for _ in range(r.uvarint() - 1):
            p = r.i32()
            out[(t, p)] = (ints(r), ints(r), ints(r))
            r.uvarint()
        r.uvarint()
    return err, out


def kcat_leaders(bootstrap, topic, timeout=30):
    """{partition: leader} from `kcat -L -J`, or None when kcat failed."""
    try:
        out = subprocess.run(["kcat", "-L", "-J", "-b", bootstrap, "-t", topic, "-m", "10"],
                             capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        print("  kcat: %s" % out.stderr.decode(errors="replace").strip()[:300], flush=True)
        return None
    md = json.loads(out.stdout.decode())
    for t in md.get("topics", []):
        if t.get("topic") == topic:
            return {p["partition"]: p["leader"] for p in t.get("partitions", [])}
    return {}


# ---- workload: an idempotent producer of sequence-numbered records -------------------------
class SeqProducer:
    """A thread producing to partitions 0..nparts-1 of topic with confluent_kafka
    (enable.idempotence, acks=all): record i of partition p has key b"p<p>" and value
    b"<p>:<i>". Round-robin over the partitions, about `rate` records/s in total."""

    def __init__(self, bootstrap, topic, nparts, rate=2000, conf=None):
        from confluent_kafka import Producer
        self.topic, self.nparts, self.rate = topic, nparts, rate
        c = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
             "linger.ms": 5, "message.timeout.ms": 120000, "request.timeout.ms": 10000,
             "topic.metadata.refresh.interval.ms": 1000, "retry.backoff.ms": 100,
             "log.connection.close": False, "error_cb": self._on_error,
             # librdkafka's own view, kept for the diagnostic of a flush that times out
             "statistics.interval.ms": 1000, "stats_cb": self._on_stats}
        c.update(conf or {})
        self.stats = None
        self.stuck_off_leader = None  # see stop()
        dbg = os.environ.get("STRATUS_TEST_RDKAFKA_DEBUG")
        if dbg:  # e.g. "eos,msg,broker": librdkafka's log to $STRATUS_TEST_RDKAFKA_LOG
            import logging
            lg = logging.getLogger("seqproducer")
            h = logging.FileHandler(os.environ.get("STRATUS_TEST_RDKAFKA_LOG",
                                                   "/tmp/seqproducer.log"))
            h.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            lg.addHandler(h)
            lg.setLevel(logging.DEBUG)
            c["debug"] = dbg
            self.p = Producer(c, logger=lg)
        else:
            self.p = Producer(c)
        self.sent = [0] * nparts
        self.acked = [[] for _ in range(nparts)]   # [(seq, offset)] in delivery order
        self.ack_times = []                         # monotonic time of each delivery
        self.failed = []                            # (partition, seq, code, str, retriable, fatal)
        self.errors = []                            # error_cb: (code, str, fatal, retriable)
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)

    def _on_error(self, err):
        with self.lock:
            self.errors.append((err.code(), err.str(), err.fatal(), err.retriable()))

    def _on_stats(self, js):
        self.stats = js

    def _off_leader(self, parts):
        """{partition: (leader, broker it is delegated to)} when librdkafka's last statistics
        show every partition of `parts` delegated to a broker that is not its leader; None
        otherwise."""
        try:
            st = json.loads(self.stats or "{}")
        except ValueError:
            return None
        tp = st.get("topics", {}).get(self.topic, {}).get("partitions", {})
        at = {}
        for b in st.get("brokers", {}).values():
            for t in b.get("toppars", {}).values():
                if t.get("topic") == self.topic:
                    at[t.get("partition")] = b.get("nodeid")
        out = {}
        for p in parts:
            leader = tp.get(str(p), {}).get("leader", -1)
            if leader is None or leader < 0 or at.get(p) in (None, leader):
                return None
            out[p] = (leader, at[p])
        return out or None

    def stuck_state(self, parts):
        """Where librdkafka holds the undelivered messages of `parts` (from its last
        statistics): per partition its leader, queued / in-transmit / in-flight counts and
        idempotence sequence state, and per broker its request queues."""
        try:
            st = json.loads(self.stats or "{}")
        except ValueError:
            return "no statistics"
        out = []
        tp = st.get("topics", {}).get(self.topic, {}).get("partitions", {})
        for p in sorted(parts):
            d = tp.get(str(p), {})
            out.append("p%d: leader %s msgq %s xmit %s inflight %s next_ack_seq %s "
                       "next_err_seq %s acked_msgid %s" % (
                           p, d.get("leader"), d.get("msgq_cnt"), d.get("xmit_msgq_cnt"),
                           d.get("msgs_inflight"), d.get("next_ack_seq"),
                           d.get("next_err_seq"), d.get("acked_msgid")))
        for name, b in sorted(st.get("brokers", {}).items()):
            if b.get("nodeid", -1) < 0:
                continue
            out.append("broker %s: state %s outbuf %s waitresp %s req_timeouts %s "
                       "toppars %s" % (b.get("nodeid"), b.get("state"), b.get("outbuf_msg_cnt"),
                                       b.get("waitresp_msg_cnt"), b.get("req_timeouts"),
                                       sorted(t.get("partition") for t in
                                              b.get("toppars", {}).values()
                                              if t.get("topic") == self.topic)))
        out.append("eos: %s" % (st.get("eos"),))
        return "; ".join(out)

    def _delivered(self, err, msg):
        now = time.monotonic()
        p = msg.partition()
        seq = int(msg.value().split(b":")[1])
        with self.lock:
            if err is not None:
                self.failed.append((p, seq, err.code(), err.str(), err.retriable(), err.fatal()))
            else:
                self.acked[p].append((seq, msg.offset()))
                self.ack_times.append(now)

    def start(self):
        self.th.start()
        return self

    def _run(self):
        tick = self.nparts / float(self.rate)
        nxt = time.monotonic()
        while not self._stop.is_set():
            for p in range(self.nparts):
                v = b"%d:%d" % (p, self.sent[p])
                while not self._stop.is_set():
                    try:
                        self.p.produce(self.topic, v, b"p%d" % p, partition=p,
                                       on_delivery=self._delivered)
                        self.sent[p] += 1
                        break
                    except BufferError:
                        self.p.poll(0.05)
            self.p.poll(0)
            nxt += tick
            d = nxt - time.monotonic()
            if d > 0:
                time.sleep(d)
            else:
                nxt = time.monotonic()

    def stop(self, flush_timeout=90.0):
        """Stops producing and waits for every delivery report. Returns the number of
        messages still undelivered (0 when all reports came)."""
        if self.p is None:
            return 0
        self._stop.set()
        if self.th.is_alive():
            self.th.join()
        left = self.p.flush(flush_timeout)
        if left:
            und = self.undelivered()
            print("  SeqProducer %s: no delivery report after %.0fs for {partition: count} %r"
                  % (self.topic, flush_timeout, und), flush=True)
            print("  SeqProducer %s: librdkafka's statistics: %s"
                  % (self.topic, self.stuck_state(und)), flush=True)
            self.stuck_off_leader = self._off_leader(und)
        self.p = None  # destroys the client: no more connections to stopped brokers
        return left

    def total_sent(self):
        return sum(self.sent)

    def undelivered(self):
        """{partition: messages sent without a delivery report} for the partitions that have
        some (a diagnostic for a flush that timed out)."""
        with self.lock:
            failed = collections.Counter(f[0] for f in self.failed)
            out = {p: self.sent[p] - len(self.acked[p]) - failed[p] for p in range(self.nparts)}
        return {p: n for p, n in out.items() if n}

    def total_acked(self):
        with self.lock:
            return sum(len(a) for a in self.acked)

    def acks_between(self, t0, t1):
        with self.lock:
            return sum(1 for t in self.ack_times if t0 <= t < t1)

    def max_ack_gap(self, t0, t1):
        """The longest time in [t0, t1] without a delivery report."""
        with self.lock:
            ts = sorted(t for t in self.ack_times if t0 <= t <= t1)
        pts = [t0] + ts + [t1]
        return max(b - a for a, b in zip(pts, pts[1:]))

    def fatal_errors(self):
        with self.lock:
            return [e for e in self.errors if e[2]]


# ---- workload: consumers -------------------------------------------------------------------
class GroupConsumer:
    """A confluent_kafka group member in a thread: records (partition, offset, key, value)."""

    def __init__(self, bootstrap, group, topic, name):
        from confluent_kafka import Consumer
        self.name = name
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": name,
                           "auto.offset.reset": "earliest", "enable.auto.commit": True,
                           "auto.commit.interval.ms": 1000, "session.timeout.ms": 6000,
                           "heartbeat.interval.ms": 500, "fetch.wait.max.ms": 100,
                           "topic.metadata.refresh.interval.ms": 1000,
                           "log.connection.close": False, "error_cb": self._on_error})
        self.topic = topic
        self.records = []
        self.assigned = set()
        self.errors = []
        self.rebalances = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)

    def _on_error(self, err):
        with self.lock:
            self.errors.append((err.code(), err.str(), err.fatal()))

    def _on_assign(self, c, parts):
        with self.lock:
            self.assigned = {p.partition for p in parts}
            self.rebalances += 1

    def _on_revoke(self, c, parts):
        try:
            c.commit(asynchronous=False)
        except Exception:  # noqa: BLE001 - nothing to commit, or the coordinator moved
            pass
        with self.lock:
            self.assigned = set()

    def start(self):
        self.c.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.th.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            m = self.c.poll(0.2)
            if m is None or m.error():
                continue
            with self.lock:
                self.records.append((m.partition(), m.offset(), m.key(), m.value()))

    def owned(self):
        with self.lock:
            return set(self.assigned)

    def count(self):
        with self.lock:
            return len(self.records)

    def stop(self):
        self._stop.set()
        self.th.join()
        try:
            self.c.close()
        except Exception:  # noqa: BLE001
            pass


def wait_group(consumers, nparts, timeout):
    """Waits until every consumer owns partitions and together they own all nparts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owned = [c.owned() for c in consumers]
        allp = sorted(p for o in owned for p in o)
        if all(owned) and allp == list(range(nparts)):
            return owned
        time.sleep(0.1)
    return None


def read_all(bootstrap, topic, nparts, timeout=90.0):
    """Every record of the topic from offset 0 up to the high watermarks of the moment it
    starts, read with a fresh assign()-ing consumer: {partition: [(offset, key, value)]}, and
    whether the read completed."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "readback-%d" % os.getpid(),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "fetch.wait.max.ms": 100, "topic.metadata.refresh.interval.ms": 1000,
                  "log.connection.close": False})
    out = {p: [] for p in range(nparts)}
    try:
        deadline = time.monotonic() + timeout
        hw = {}
        for p in range(nparts):
            while p not in hw:
                try:
                    hw[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                except Exception:  # noqa: BLE001 - leader moving: ask again
                    if time.monotonic() > deadline:
                        return out, False
                    time.sleep(0.2)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(nparts) if hw[p] > 0])
        nxt = {p: 0 for p in range(nparts)}
        while any(nxt[p] < hw[p] for p in range(nparts)):
            if time.monotonic() > deadline:
                print("  read_all %s: stuck at %s of %s" % (
                    topic, {p: nxt[p] for p in nxt if nxt[p] < hw[p]}, hw), flush=True)
                return out, False
            for m in c.consume(1000, 0.5):
                if m.error():
                    continue
                p = m.partition()
                if m.offset() < hw[p]:
                    out[p].append((m.offset(), m.key(), m.value()))
                nxt[p] = max(nxt[p], m.offset() + 1)
        return out, True
    finally:
        c.close()


# ---- checks --------------------------------------------------------------------------------
def check_partition_log(p, recs, acked, sent=None, probes=None, from_zero=True):
    """recs: [(offset, key, value)] of partition p (any order, maybe with repeats); acked:
    [(seq, offset)] the producer's delivery reports; sent: records produced (all must be
    there exactly once when given); probes: number of probe records appended (when given), or
    (at least, at most).
    Checks: offsets contiguous, no record twice, sequence numbers strictly increasing in
    offset order, every acknowledged record present at its acknowledged offset. Returns
    (the problems found, the number of records with a sequence number)."""
    by_off = {}
    for o, k, v in recs:
        by_off.setdefault(o, (k, v))
    offs = sorted(by_off)
    problems = []
    if offs and (offs != list(range(offs[0], offs[-1] + 1)) or (from_zero and offs[0] != 0)):
        problems.append("offsets not contiguous from %s: %d offsets in %d..%d" % (
            "0" if from_zero else "the first", len(offs), offs[0], offs[-1]))
    seqs = []
    nprobe = 0
    seq_at = {}
    for o in offs:
        k, v = by_off[o]
        if k == b"probe":
            nprobe += 1
            continue
        pp, _, s = v.partition(b":")
        if int(pp) != p:
            problems.append("offset %d holds a record of partition %s" % (o, pp))
            continue
        seqs.append(int(s))
        seq_at[int(s)] = o
    dup = len(seqs) - len(set(seqs))
    if dup:
        problems.append("%d sequence numbers appear twice" % dup)
    bad_order = [i for i in range(1, len(seqs)) if seqs[i] <= seqs[i - 1]]
    if bad_order:
        i = bad_order[0]
        problems.append("sequence out of order at offset index %d: %d after %d" % (
            i, seqs[i], seqs[i - 1]))
    missing = [s for s, _o in acked if s not in seq_at]
    if missing:
        problems.append("%d acknowledged records missing (first seq %d)" % (
            len(missing), missing[0]))
    moved = [(s, o, seq_at[s]) for s, o in acked if s in seq_at and seq_at[s] != o]
    if moved:
        problems.append("%d acknowledged records at another offset than acknowledged "
                        "(seq %d: acked %d, read %d)" % ((len(moved),) + moved[0]))
    if sent is not None and sorted(set(seqs)) != list(range(sent)):
        problems.append("read %d distinct sequence numbers, want exactly 0..%d" % (
            len(set(seqs)), sent - 1))
    lo, hi = probes if isinstance(probes, tuple) else (probes, probes)
    if probes is not None and not lo <= nprobe <= hi:
        problems.append("%d probe records, want %s" % (
            nprobe, lo if lo == hi else "%d to %d" % (lo, hi)))
    return problems, len(seqs)


def check_topic(R, what, nparts, recs, prod, exact=False, probes=None):
    """check_partition_log on every partition: one check line for the whole topic (the
    problems of the first few bad partitions in it)."""
    bad = []
    total = 0
    for p in range(nparts):
        with prod.lock:
            acked = list(prod.acked[p])
        problems, n = check_partition_log(
            p, recs.get(p, []), acked, sent=prod.sent[p] if exact else None,
            probes=(probes or {}).get(p, 0) if probes is not None else None)
        if problems:
            bad.append((p, problems))
        total += n
    if bad:
        R.check(False, "%s: %d of %d partitions wrong: %s" % (
            what, len(bad), nparts, " | ".join("partition %d: %s" % (p, "; ".join(pr))
                                               for p, pr in bad[:3])))
        for p, pr in bad[3:12]:
            print("       partition %d: %s" % (p, "; ".join(pr)), flush=True)
        return False
    R.check(True, "%s: %d partitions, %d records (%d acknowledged): offsets contiguous, "
            "no duplicates, in order%s" % (what, nparts, total, prod.total_acked(),
                                            ", exactly the produced records" if exact else
                                            ", every acknowledged record present"))
    return True


def check_no_redelivery(R, what, consumers):
    """Each (partition, offset) was consumed once by the whole group."""
    seen = {}
    for c in consumers:
        with c.lock:
            for p, o, _k, _v in c.records:
                seen[(p, o)] = seen.get((p, o), 0) + 1
    again = sorted(k for k, n in seen.items() if n > 1)
    R.eq(again[:5], [], "%s: no record consumed twice by the group (%d records, %d consumed "
         "more than once)" % (what, len(seen), len(again)))


def group_records(consumers):
    """{partition: [(offset, key, value)]} of everything the group consumed."""
    out = {}
    for c in consumers:
        with c.lock:
            for p, o, k, v in c.records:
                out.setdefault(p, []).append((o, k, v))
    return out


def wait_consumed(consumers, want, timeout):
    """Waits until the group consumed want[p] distinct offsets of every partition p."""
    deadline = time.monotonic() + timeout
    while True:
        got = {p: len({o for o, _k, _v in rs}) for p, rs in group_records(consumers).items()}
        if all(got.get(p, 0) >= n for p, n in want.items()):
            return True
        if time.monotonic() > deadline:
            short = {p: (got.get(p, 0), n) for p, n in want.items() if got.get(p, 0) < n}
            print("  group consumers short of (consumed, want): %s" % dict(list(short.items())[:8]),
                  flush=True)
            return False
        time.sleep(0.2)


def check_delivered(R, C, prod, what):
    """Stops the producer: every delivery report must come. One exception, checked for what
    it is: librdkafka (every version to date, an open bug: confluentinc/librdkafka#5593, also
    #3399, #4976) can leave a partition delegated to a broker that is not its leader after two
    Metadata answers in a row name different leaders (a broker that was paused answers with
    what it knew before the pause), and then never moves it ("not migrating away from
    preferred replica"): its records get no delivery report and no error. When the client's
    own statistics show exactly that for every partition left undelivered, the broker side
    is checked instead: each such partition's leader takes a produce. What was acknowledged
    is checked by the caller as always."""
    left = prod.stop()
    stuck = prod.stuck_off_leader
    if not left or not stuck:
        R.eq(left, 0, "%s: every delivery report came" % what)
        return
    leaders = C.leaders(prod.topic)
    errs = {p: C.probe(prod.topic, p, leaders.get(p, -1)) for p in sorted(stuck)}
    print("  %s: librdkafka left partitions on a broker that is not their leader "
          "{partition: (leader, delegated to)} %r: its bug #5593, not the broker's" % (
              what, stuck), flush=True)
    R.eq(errs, {p: 0 for p in stuck}, "%s: every delivery report came, but for %d records of "
         "partitions librdkafka kept off their leader; those partitions' leaders take a "
         "produce" % (what, left))


def report_producer(R, prod, what):
    """The producer saw no permanent error: no failed delivery report, no fatal error."""
    with prod.lock:
        failed = list(prod.failed)
        errs = list(prod.errors)
    R.eq(failed[:5], [], "%s: no failed delivery report (%d sent, %d acked)" % (
        what, prod.total_sent(), prod.total_acked()))
    R.eq([e for e in errs if e[2]][:5], [], "%s: no fatal producer error" % what)
    if errs:
        kinds = {}
        for e in errs:
            kinds[e[1][:80]] = kinds.get(e[1][:80], 0) + 1
        print("  %s: %d transient client errors: %s" % (what, len(errs), list(kinds.items())[:5]),
              flush=True)
