"""azblob_testlib.py - helpers shared by the Azure Blob tests (tests/plugins/test_azblob_*.py and
tests/integration/test_azblob_*.py):
  - Azurite (npm azurite@3.35.0, path from $STRATUS_AZURITE or tests/node_modules) started on a
    free 127.0.0.1 port with a fresh --location, ALWAYS with --disableTelemetry and never
    --loose, optionally over HTTPS with a self-signed certificate and --oauth basic; stopped by
    PID (SIGTERM, then SIGKILL);
  - AzClient: an independent Shared Key client written here from Azure's documentation (not
    from the plugin's C code), to create containers and inspect what the plugin wrote;
  - account_sas(): an account SAS token signed here (version 2020-12-06+ string-to-sign);
  - Results: pass/fail counter ending with "N passed, N failed".
Standard library only: runs under /usr/bin/python3 (and the PATH python3). Owns only the
processes and temporary directories it creates.
SPDX-License-Identifier: Apache-2.0
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
API_VERSION = "2021-08-06"
HERE = os.path.dirname(os.path.abspath(__file__))


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


def azurite_path():
    p = os.environ.get("STRATUS_AZURITE") or os.path.join(
        HERE, "..", "node_modules", ".bin", "azurite-blob")
    if not os.access(p, os.X_OK):
        sys.stderr.write("no azurite-blob at %s: run scripts/install-deps.sh (npm install in "
                         "tests/)\n" % p)
        sys.exit(2)
    return p


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1 (SAN IP and DNS); returns (cert, key) paths."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def _die_with_parent():
    """In the child before exec: SIGKILL it when the test process dies (e.g. a ctest timeout
    kills the test), so no Azurite outlives its test."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort; stop() still ends it normally
        pass


class Azurite:
    """azurite-blob on 127.0.0.1:<free port>; https=True adds a self-signed cert and OAuth."""

    def __init__(self, https=False):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="stratus-azurite-", dir="/dev/shm"
                                    if os.path.isdir("/dev/shm") else None)
        self.https = https
        self.cert = self.key = None
        self.proc = None
        self.log_path = os.path.join(self.dir, "azurite.log")

    @property
    def endpoint(self):
        return "%s://127.0.0.1:%d/%s" % ("https" if self.https else "http", self.port, ACCOUNT)

    def start(self, timeout=60.0):
        data = os.path.join(self.dir, "data")
        os.makedirs(data, exist_ok=True)
        argv = [azurite_path(), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                "--location", data, "--silent", "--disableTelemetry"]
        if self.https:
            self.cert, self.key = make_cert(self.dir)
            argv += ["--cert", self.cert, "--key", self.key, "--oauth", "basic"]
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("azurite exited (%s): %s" % (self.proc.returncode,
                                                                self.log_text()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("azurite did not start within %.0f s" % timeout)

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self):
        stop_process(self.proc)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self):
        return AzClient(self.endpoint, ACCOUNT, KEY, cafile=self.cert)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


class AzClient:
    """A minimal Blob service client with Shared Key auth (Azure's documented algorithm)."""

    def __init__(self, endpoint, account, key, cafile=None):
        u = urllib.parse.urlsplit(endpoint)
        self.scheme, self.netloc, self.base_path = u.scheme, u.netloc, u.path.rstrip("/")
        self.account = account
        self.key = base64.b64decode(key)
        self.cafile = cafile

    def _sign(self, method, path, query, headers, body_len):
        def h(name):
            for k, v in headers.items():
                if k.lower() == name.lower():
                    return v
            return ""
        cl = str(body_len) if body_len else ""
        std = [method, h("Content-Encoding"), h("Content-Language"), cl, h("Content-MD5"),
               h("Content-Type"), h("Date"), h("If-Modified-Since"), h("If-Match"),
               h("If-None-Match"), h("If-Unmodified-Since"), h("Range")]
        ms = sorted((k.lower(), " ".join(v.split())) for k, v in headers.items()
                    if k.lower().startswith("x-ms-"))
        canon_h = "".join("%s:%s\n" % kv for kv in ms)
        res = "/%s%s" % (self.account, path)
        params = {}
        for k, v in query:
            params.setdefault(k.lower(), []).append(v)
        for k in sorted(params):
            res += "\n%s:%s" % (k, ",".join(sorted(params[k])))
        sts = "\n".join(std) + "\n" + canon_h + res
        sig = base64.b64encode(hmac.new(self.key, sts.encode(), hashlib.sha256).digest())
        return "SharedKey %s:%s" % (self.account, sig.decode())

    def request(self, method, blob_path, query=(), headers=None, body=b""):
        """blob_path: "/container[/blob]" (unencoded). Returns (status, headers, body)."""
        headers = dict(headers or {})
        path = self.base_path + urllib.parse.quote(blob_path, safe="/~")
        headers["x-ms-date"] = datetime.datetime.now(datetime.timezone.utc).strftime(
            "%a, %d %b %Y %H:%M:%S GMT")
        headers["x-ms-version"] = API_VERSION
        if body or method in ("PUT", "POST"):
            headers.setdefault("Content-Type", "application/octet-stream")
        headers["Authorization"] = self._sign(method, path, query, headers, len(body))
        qs = urllib.parse.urlencode(list(query), quote_via=urllib.parse.quote)
        if self.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.cafile)
            conn = http.client.HTTPSConnection(self.netloc, timeout=30, context=ctx)
        else:
            conn = http.client.HTTPConnection(self.netloc, timeout=30)
        try:
            conn.request(method, path + ("?" + qs if qs else ""), body=body or None,
                         headers=headers)
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def create_container(self, name):
        st, _, body = self.request("PUT", "/" + name, [("restype", "container")])
        if st not in (201, 409):
            raise RuntimeError("create container %s: HTTP %d %s" % (name, st, body[:300]))

    def list_blobs(self, container, prefix=""):
        """All blob names of a container (follows NextMarker)."""
        return [n for n, _ in self.list_sizes(container, prefix)]

    def list_sizes(self, container, prefix=""):
        """(name, Content-Length) of every blob of a container (follows NextMarker)."""
        import xml.etree.ElementTree as ET
        names, marker = [], ""
        while True:
            q = [("restype", "container"), ("comp", "list")]
            if prefix:
                q.append(("prefix", prefix))
            if marker:
                q.append(("marker", marker))
            st, _, body = self.request("GET", "/" + container, q)
            if st != 200:
                raise RuntimeError("list %s: HTTP %d %s" % (container, st, body[:300]))
            root = ET.fromstring(body)
            names += [(b.findtext("Name"), int(b.findtext("Properties/Content-Length") or 0))
                      for b in root.iter("Blob")]
            marker = root.findtext("NextMarker") or ""
            if not marker:
                return names

    def get(self, container, blob):
        return self.request("GET", "/%s/%s" % (container, blob))

    def block_list(self, container, blob):
        """Committed block ids of a blob (Get Block List)."""
        import xml.etree.ElementTree as ET
        st, _, body = self.request("GET", "/%s/%s" % (container, blob),
                                   [("comp", "blocklist"), ("blocklisttype", "committed")])
        if st != 200:
            raise RuntimeError("block list %s: HTTP %d %s" % (blob, st, body[:300]))
        root = ET.fromstring(body)
        return [b.findtext("Name") for b in root.iter("Block")]


def account_sas(account, key, permissions="rwdlac", services="b", resource_types="sco",
                expiry_s=3600, version="2021-08-06", signature_key=None):
    """An account SAS query string (without '?'), signed with key (or signature_key)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    st = (now - datetime.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    se = (now + datetime.timedelta(seconds=expiry_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Account SAS, version 2020-12-06 and later: the encryption scope line, then a final "\n"
    sts = "\n".join([account, permissions, services, resource_types, st, se, "", "https,http",
                     version, "", ""])
    k = base64.b64decode(signature_key or key)
    sig = base64.b64encode(hmac.new(k, sts.encode(), hashlib.sha256).digest()).decode()
    q = [("sv", version), ("ss", services), ("srt", resource_types), ("sp", permissions),
         ("st", st), ("se", se), ("spr", "https,http"), ("sig", sig)]
    return urllib.parse.urlencode(q, quote_via=urllib.parse.quote)


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
            print("ok   %s" % what.split("\n")[0], flush=True)
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
