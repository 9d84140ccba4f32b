"""test_azblob_conformance.py - the storage conformance kit (sdk/conformance, env
STRATUS_CONFORMANCE) against stratus-storage-azblob.so (env STRATUS_AZBLOB_PLUGIN) on Azurite
(env STRATUS_AZURITE), started here on a free 127.0.0.1 port and stopped by PID. Azurite checks
every Shared Key signature for real.
  1. full kit, the container created by the plugin (create_container=true): the 64 MiB object
     in 1 MiB blocks on 4 threads (Put Block + Put Block List), list pages of 2 blobs;
  2. quick kit with a key prefix and 256-byte blocks (the kit's 1000-byte objects go in 4);
  3. through azblob_probe (env AZBLOB_PROBE), conditional puts of 3 MiB objects in 256 KiB
     blocks: if_absent twice, if_match wrong / current / stale / on a missing blob, and 6
     threads racing if_absent puts of one 1 MiB+1 object (exactly one wins, the blob is the
     winner's), every result checked with an independent client: the bytes, and the committed
     block list (Get Block List) of equal-length block ids;
  4. a wrong account key fails with STRATUS_EAUTH, Azure's 403 code and which credentials;
  5. a missing container fails with STRATUS_ENOTFOUND naming ContainerNotFound;
  6. an unreachable endpoint is STRATUS_EAGAIN (retryable);
  7. against a scripted server, Azure's failures map to the SDK's classes (503 ServerBusy,
     500 OperationTimedOut, 400 Md5Mismatch retried as STRATUS_EAGAIN; 409 LeaseIdMissing
     STRATUS_EIO, 409 BlobAlreadyExists / 412 ConditionNotMet STRATUS_EEXIST; 403 with its
     AuthenticationErrorDetail; Delete of a missing blob ok, of a missing container not), on
     one line without Azure's timestamp, and the Put Blob request carries Content-MD5;
and checks with an independent Shared Key client (azblob_testlib.AzClient) that the kits left
nothing behind.
SPDX-License-Identifier: Apache-2.0
"""
import os
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from azblob_testlib import ACCOUNT, KEY, Azurite, Results, free_port, need_env  # noqa: E402

KIT = need_env("STRATUS_CONFORMANCE")
PLUGIN = need_env("STRATUS_AZBLOB_PLUGIN")
PROBE = need_env("AZBLOB_PROBE")
R = Results()


def kit(endpoint, container, *extra, quick=False, key=KEY):
    args = [KIT, PLUGIN, "--set", "account=" + ACCOUNT, "--set", "container=" + container,
            "--set", "endpoint=" + endpoint, "--set", "shared_key=" + key]
    for e in extra:
        args += ["--set", e]
    if quick:
        args.append("--quick")
    env = dict(os.environ)
    for v in ("AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_ACCOUNT"):
        env.pop(v, None)
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=500,
                       env=env)
    return p.returncode, p.stdout.decode(errors="replace")


def stream(n, seed):
    """The probe's object bytes: a 32-bit xorshift stream of seed (azblob_probe.c)."""
    x = (seed * 2654435761 + 1) & 0xFFFFFFFF
    out = bytearray(n)
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x & 0xFF
    return bytes(out)


def probe(az, *cmds):
    """Runs azblob_probe with 256 KiB blocks above 512 KiB; returns its output lines."""
    args = [PROBE, PLUGIN, "--set", "account=" + ACCOUNT, "--set", "container=stratus-probe",
            "--set", "endpoint=" + az.endpoint, "--set", "shared_key=" + KEY,
            "--set", "single_put_max=512KiB", "--set", "block_size=256KiB",
            "--set", "upload_concurrency=3", "--"]
    for i, c in enumerate(cmds):
        if i:
            args.append(",")
        args += c.split()
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    out = p.stdout.decode(errors="replace")
    lines = [ln for ln in out.splitlines() if not ln.startswith("20")]  # drop log lines
    print("\n".join(lines))
    if p.returncode != 0:
        R.check(False, "azblob_probe exited with status %d:\n%s" % (p.returncode, out[-2000:]))
    return lines


def field(line, name):
    for tok in line.split():
        if tok.startswith(name + "="):
            return tok[len(name) + 1:]
    return None


def conditional_blocks(az, cl):
    cl.create_container("stratus-probe")
    mib3 = 3 * 1024 * 1024
    out = probe(az, "put big %d 1 absent" % mib3, "put big %d 2 absent" % mib3,
                "check big %d 1" % mib3, "head big", "put big %d 3 match=wrong" % mib3)
    R.check(len(out) == 5 and field(out[0], "rc") == "STRATUS_OK",
            "if_absent put of a new 3 MiB blob in blocks: %s" % out[:1])
    R.check(len(out) > 1 and field(out[1], "rc") == "STRATUS_EEXIST",
            "if_absent put of an existing blob -> EEXIST: %s" % out[1:2])
    R.check(len(out) > 2 and " same " in out[2], "the blob kept the first bytes: %s" % out[2:3])
    etag1 = field(out[3], "etag") if len(out) > 3 else None
    R.check(len(out) > 4 and field(out[4], "rc") == "STRATUS_EEXIST",
            "if_match with a wrong etag -> EEXIST: %s" % out[4:5])
    st, _, body = cl.get("stratus-probe", "big")
    R.check(st == 200 and body == stream(mib3, 1), "independent GET sees the first bytes")
    ids = cl.block_list("stratus-probe", "big")
    R.check(len(ids) == 12 and len(set(ids)) == 12 and len(set(map(len, ids))) == 1,
            "committed block list: 12 distinct equal-length ids (%d)" % len(ids))

    out = probe(az, "head big", "put big %d 3 match=@" % mib3, "check big %d 3" % mib3,
                "put big %d 4 match=%s" % (mib3, etag1), "put nothing %d 5 match=%s" % (mib3, etag1),
                "race racy %d 6" % (1024 * 1024 + 1))
    R.check(len(out) == 6 and field(out[1], "rc") == "STRATUS_OK" and field(out[1], "etag"),
            "if_match with the current etag replaces the blob: %s" % out[1:2])
    R.check(len(out) > 2 and " same " in out[2], "the if_match put landed: %s" % out[2:3])
    R.check(len(out) > 3 and field(out[3], "rc") == "STRATUS_EEXIST",
            "if_match with a stale etag -> EEXIST: %s" % out[3:4])
    R.check(len(out) > 4 and field(out[4], "rc") == "STRATUS_EEXIST",
            "if_match on a missing blob -> EEXIST: %s" % out[4:5])
    R.check(len(out) > 5 and "winners=1 eexist=5 other=0 content=winner" in out[5],
            "6 racing if_absent block uploads: one winner, 5 EEXIST: %s" % out[5:6])
    st, _, body = cl.get("stratus-probe", "big")
    R.check(st == 200 and body == stream(mib3, 3), "independent GET sees the if_match bytes")
    out = probe(az, "del big", "del racy", "del big", "head big")
    R.check(out[:3] == ["del rc=STRATUS_OK"] * 3 and len(out) == 4
            and out[3].startswith("head rc=STRATUS_ENOTFOUND") and "BlobNotFound" in out[3],
            "deletes (also of a deleted blob), then head -> ENOTFOUND: %s" % out)
    R.check(cl.list_blobs("stratus-probe") == [], "nothing left in stratus-probe")

    odd = "odd+key/%C3%A9=&?#%25~!'()*,;:@$[]x"
    name = urllib.parse.unquote(odd)
    out = probe(az, "put %s 700000 9" % name, "check %s 700000 9" % name, "head %s" % name)
    R.check(len(out) == 3 and field(out[0], "rc") == "STRATUS_OK" and " same " in out[1]
            and field(out[2], "etag") == field(out[0], "etag"),
            "a key with reserved and non-ASCII characters round-trips (blocks): %s" % out)
    R.check(cl.list_blobs("stratus-probe") == [name],
            "the independent client lists it under the same name")
    probe(az, "del %s" % name)


class ScriptedServer:
    """Answers every request with the status and Azure error code set in .reply; records the
    requests (method, path, headers, body)."""

    def __init__(self):
        import http.server
        import threading
        self.reply = (503, "ServerBusy", "")
        self.requests = []
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                srv.requests.append((self.command, self.path, dict(self.headers), body))
                st, code, detail = srv.reply
                xml = ('<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code><Message>'
                       'scripted %s\nRequestId:42\nTime:2024-01-01T00:00:00Z</Message>%s</Error>'
                       % (code, code, "<AuthenticationErrorDetail>%s</AuthenticationErrorDetail>"
                          % detail if detail else "")).encode()
                self.send_response(st)
                self.send_header("x-ms-error-code", code)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(xml)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(xml)

            do_GET = do_PUT = do_DELETE = do_HEAD = handle_one

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.endpoint = "http://127.0.0.1:%d/%s" % (self.httpd.server_address[1], ACCOUNT)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def error_classes():
    """Azure's failures as the SDK classes them (the core retries only STRATUS_EAGAIN)."""
    import hashlib
    import base64
    srv = ScriptedServer()

    class Fake:
        endpoint = srv.endpoint
    try:
        cases = [((503, "ServerBusy", ""), "put k 10 1", "STRATUS_EAGAIN", 3),
                 ((500, "OperationTimedOut", ""), "put k 10 1", "STRATUS_EAGAIN", 3),
                 ((400, "Md5Mismatch", ""), "put k 10 1", "STRATUS_EAGAIN", 3),
                 ((409, "LeaseIdMissing", ""), "put k 10 1", "STRATUS_EIO", 1),
                 ((409, "BlobAlreadyExists", ""), "put k 10 1 absent", "STRATUS_EEXIST", 1),
                 ((412, "ConditionNotMet", ""), "put k 10 1 match=x", "STRATUS_EEXIST", 1),
                 ((403, "AuthenticationFailed", "Signature did not match"), "put k 10 1",
                  "STRATUS_EAUTH", 1),
                 ((404, "BlobNotFound", ""), "del k", "STRATUS_OK", 1),
                 ((404, "ContainerNotFound", ""), "del k", "STRATUS_ENOTFOUND", 1),
                 ((404, "BlobNotFound", ""), "head k", "STRATUS_ENOTFOUND", 1)]
        for reply, cmd, want, nreq in cases:
            srv.reply = reply
            srv.requests.clear()
            out = probe(Fake, cmd)
            line = out[0] if out else ""
            R.check(field(line, "rc") == want and len(srv.requests) == nreq
                    and (want == "STRATUS_OK" or reply[1] in line or cmd.startswith("head"))
                    and "\n" not in line and "Time:" not in line,
                    "%d %s on '%s' -> %s after %d request(s): %s (%d requests)" % (
                        reply[0], reply[1], cmd, want, nreq, line, len(srv.requests)))
            if reply[1] == "AuthenticationFailed":
                R.check("Signature did not match" in line and "auth=shared_key" in line,
                        "403 names the auth mode and AuthenticationErrorDetail: %s" % line)
        srv.reply = (503, "ServerBusy", "")
        srv.requests.clear()
        probe(Fake, "put k 10 1")
        m, path, hdr, body = srv.requests[0]
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        R.check(m == "PUT" and path == "/%s/stratus-probe/k" % ACCOUNT and len(body) == 10
                and hdr.get("Content-MD5") == md5 and hdr.get("x-ms-blob-type") == "BlockBlob"
                and hdr.get("x-ms-version") == "2021-08-06" and hdr.get("x-ms-date")
                and hdr.get("Authorization", "").startswith("SharedKey %s:" % ACCOUNT),
                "Put Blob request form (Content-MD5, x-ms-* headers, SharedKey): %s %s %s" % (
                    m, path, hdr))
    finally:
        srv.stop()


def main():
    with Azurite() as az:
        cl = az.client()

        rc, out = kit(az.endpoint, "stratus-conf", "create_container=true",
                      "single_put_max=4MiB", "block_size=1MiB", "upload_concurrency=4",
                      "list_page_size=2")
        print(out)
        R.check(rc == 0 and "large_object_64MiB" in out and " 0 failed" in out,
                "full conformance kit against Azurite (64 MiB in 1 MiB blocks, 2-blob pages)")

        rc, out = kit(az.endpoint, "stratus-conf", "prefix=tenant-a/", "single_put_max=1",
                      "block_size=256", "upload_concurrency=2", quick=True)
        print(out)
        R.check(rc == 0 and " 0 failed" in out,
                "quick kit with a prefix, objects over 256 bytes in blocks")

        conditional_blocks(az, cl)

        left = cl.list_blobs("stratus-conf")
        R.check(left == [], "kits cleaned up after themselves: %s" % left[:5])

        bad = "A" * 86 + "=="
        rc, out = kit(az.endpoint, "stratus-conf", quick=True, key=bad)
        R.check(rc != 0 and "STRATUS_EAUTH" in out and "HTTP 403 Authori" in out
                and "credentials refused (auth=shared_key, account=devstoreaccount1)" in out
                and bad not in out,
                "wrong key -> STRATUS_EAUTH with Azure's code, key not printed:\n" + out[-800:])

        rc, out = kit(az.endpoint, "no-such-container", quick=True)
        R.check(rc != 0 and "STRATUS_ENOTFOUND" in out and "ContainerNotFound" in out,
                "missing container -> STRATUS_ENOTFOUND naming ContainerNotFound:\n" + out[-800:])

    error_classes()
    dead = "http://127.0.0.1:%d/%s" % (free_port(), ACCOUNT)
    rc, out = kit(dead, "stratus-conf", "connect_timeout=2s", quick=True)
    R.check(rc != 0 and "STRATUS_EAGAIN" in out,
            "unreachable endpoint -> STRATUS_EAGAIN:\n" + out[-600:])
    sys.exit(R.report())


if __name__ == "__main__":
    main()
