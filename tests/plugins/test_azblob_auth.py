"""test_azblob_auth.py - the credentials of stratus-storage-azblob.so (env STRATUS_AZBLOB_PLUGIN)
against Azurite (env STRATUS_AZURITE), driven by the conformance kit (env STRATUS_CONFORMANCE)
and azblob_probe (env AZBLOB_PROBE):
  SAS (Azurite over HTTP, Shared Key checked for real):
    1. an account SAS signed here (read/write/delete/list) passes the quick kit;
    2. the same from AZURE_STORAGE_SAS_TOKEN + AZURE_STORAGE_ACCOUNT with no key in the config;
    3. a read-only SAS reads but its puts fail STRATUS_EAUTH (AuthorizationPermissionMismatch);
    4. a SAS with a forged signature fails STRATUS_EAUTH;
    5. Shared Key from AZURE_STORAGE_KEY + AZURE_STORAGE_ACCOUNT;
  Managed identity (Azurite over HTTPS with a self-signed certificate and --oauth basic, which
  checks the bearer JWT's audience, issuer and lifetime; a token server in this process plays
  Azure IMDS / App Service):
    6. the quick kit with auth=managed_identity and ca_file: the token server saw IMDS's
       request (Metadata: true, api-version=2018-02-01, resource=https://storage.azure.com/)
       exactly once: the token is cached;
    7. identity_client_id is sent as client_id;
    8. a 4-second token is refreshed ahead of its expiry (fetched again across 5 s of calls);
    9. a token Azure refuses (expired JWT) is STRATUS_EAUTH naming auth=managed_identity and
       Azure's reason;
   10. an endpoint that has no identity (HTTP 400) fails open() with STRATUS_EAUTH and its text;
   11. App Service form: IDENTITY_ENDPOINT + IDENTITY_HEADER (X-IDENTITY-HEADER, 2019-08-01);
   12. without ca_file the self-signed certificate is refused (TLS verification is on).
SPDX-License-Identifier: Apache-2.0
"""
import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from azblob_testlib import (ACCOUNT, KEY, Azurite, Results, account_sas,  # noqa: E402
                            need_env)

KIT = need_env("STRATUS_CONFORMANCE")
PLUGIN = need_env("STRATUS_AZBLOB_PLUGIN")
PROBE = need_env("AZBLOB_PROBE")
R = Results()
ENV_VARS = ("AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_ACCOUNT",
            "AZURE_CLIENT_ID", "IDENTITY_ENDPOINT", "IDENTITY_HEADER")


def run(argv, env_extra=None, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(env_extra or {})
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                       env=env)
    return p.returncode, p.stdout.decode(errors="replace")


def kit(sets, env_extra=None):
    argv = [KIT, PLUGIN, "--quick"]
    for s in sets:
        argv += ["--set", s]
    return run(argv, env_extra)


def probe(sets, cmds, env_extra=None):
    argv = [PROBE, PLUGIN]
    for s in sets:
        argv += ["--set", s]
    argv.append("--")
    for i, c in enumerate(cmds):
        if i:
            argv.append(",")
        argv += c.split()
    rc, out = run(argv, env_extra)
    lines = [ln for ln in out.splitlines() if not ln.startswith("20")]  # drop log lines
    print("\n".join(lines))
    if rc != 0 and not (rc == 1 and lines and lines[0].startswith("open rc=failed")):
        R.check(False, "azblob_probe exited with status %d:\n%s" % (rc, out[-2000:]))
    return lines, out


# ---- token server ------------------------------------------------------------------------
def b64url(d):
    return base64.urlsafe_b64encode(d).rstrip(b"=").decode()


def jwt(lifetime_s, expired=False):
    now = int(time.time())
    exp = now - 600 if expired else now + lifetime_s
    hdr = {"typ": "JWT", "alg": "RS256"}
    body = {"aud": "https://storage.azure.com/",
            "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
            "iat": now - 700, "nbf": now - 700, "exp": exp, "oid": "stratus-test"}
    return "%s.%s.%s" % (b64url(json.dumps(hdr).encode()), b64url(json.dumps(body).encode()),
                         b64url(b"not-a-real-signature"))


class TokenServer:
    """IMDS / App Service token endpoint on a free port; records every request."""

    def __init__(self):
        self.requests = []
        self.mode = "ok"        # ok | expired | noidentity
        self.lifetime = 3600
        ts = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query))
                ts.requests.append({"path": u.path, "query": q,
                                    "headers": {k.lower(): v for k, v in self.headers.items()}})
                if ts.mode == "noidentity":
                    body = json.dumps({"error": "invalid_request",
                                       "error_description": "Identity not found"}).encode()
                    self.send_response(400)
                else:
                    tok = jwt(ts.lifetime, expired=ts.mode == "expired")
                    body = json.dumps({
                        "access_token": tok, "client_id": q.get("client_id", "system"),
                        "expires_in": str(ts.lifetime),
                        "expires_on": str(int(time.time()) + ts.lifetime),
                        "ext_expires_in": str(ts.lifetime), "not_before": str(int(time.time())),
                        "resource": q.get("resource", ""), "token_type": "Bearer"}).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d/metadata/identity/oauth2/token" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def field(line, name):
    for tok in line.split():
        if tok.startswith(name + "="):
            return tok[len(name) + 1:]
    return None


# ---- SAS and keys from the environment ---------------------------------------------------
def test_sas():
    with Azurite() as az:
        cl = az.client()
        cl.create_container("sas")
        base = ["container=sas", "endpoint=" + az.endpoint]
        sas = account_sas(ACCOUNT, KEY)
        rc, out = kit(base + ["account=" + ACCOUNT, "auth=sas", "sas_token=?" + sas,
                              "single_put_max=512", "block_size=256"])
        print(out)
        R.check(rc == 0 and " 0 failed" in out and "auth=sas" in out,
                "quick kit with an account SAS (blocks too)")

        lines, out = probe(base + ["single_put_max=64KiB", "block_size=32KiB"],
                           ["put s/one 100000 7", "check s/one 100000 7"],
                           {"AZURE_STORAGE_SAS_TOKEN": sas, "AZURE_STORAGE_ACCOUNT": ACCOUNT})
        R.check(len(lines) == 2 and field(lines[0], "rc") == "STRATUS_OK" and " same " in lines[1]
                and "auth=sas" in out,
                "SAS and account from AZURE_STORAGE_SAS_TOKEN / AZURE_STORAGE_ACCOUNT: %s" % lines)

        ro = account_sas(ACCOUNT, KEY, permissions="rl")
        lines, out = probe(base + ["account=" + ACCOUNT, "sas_token=" + ro],
                           ["check s/one 100000 7", "put s/two 10 1"])
        R.check(len(lines) == 2 and " same " in lines[0], "read-only SAS reads: %s" % lines[:1])
        R.check(len(lines) == 2 and field(lines[1], "rc") == "STRATUS_EAUTH"
                and "AuthorizationPermissionMismatch" in lines[1] and "auth=sas" in lines[1]
                and ro.split("sig=")[1][:10] not in out,
                "read-only SAS put -> STRATUS_EAUTH, no token in the text: %s" % lines[1:])

        forged = account_sas(ACCOUNT, KEY, signature_key=base64.b64encode(b"x" * 64).decode())
        lines, _ = probe(base + ["account=" + ACCOUNT, "sas_token=" + forged], ["head s/one"])
        R.check(len(lines) == 1 and field(lines[0], "rc") == "STRATUS_EAUTH",
                "forged SAS -> STRATUS_EAUTH: %s" % lines)

        lines, out = probe(base, ["check s/one 100000 7", "del s/one"],
                           {"AZURE_STORAGE_KEY": KEY, "AZURE_STORAGE_ACCOUNT": ACCOUNT})
        R.check(lines == ["check rc=STRATUS_OK same got=100000", "del rc=STRATUS_OK"]
                and "auth=shared_key" in out,
                "Shared Key and account from AZURE_STORAGE_KEY / AZURE_STORAGE_ACCOUNT: %s" % lines)
        R.check(cl.list_blobs("sas") == [], "nothing left in the SAS container")


# ---- managed identity --------------------------------------------------------------------
def test_managed_identity():
    ts = TokenServer()
    try:
        with Azurite(https=True) as az:
            az.client().create_container("mi-test")
            base = ["account=" + ACCOUNT, "container=mi-test", "endpoint=" + az.endpoint,
                    "auth=managed_identity", "ca_file=" + az.cert]
            mi = base + ["identity_endpoint=" + ts.url]

            rc, out = kit(mi + ["single_put_max=512", "block_size=256"])
            print(out)
            R.check(rc == 0 and " 0 failed" in out, "quick kit with a managed identity over TLS")
            reqs = list(ts.requests)
            R.check(len(reqs) == 1, "one token fetch for the whole kit (cached): %d" % len(reqs))
            r = reqs[0] if reqs else {"query": {}, "headers": {}, "path": ""}
            R.check(r["path"] == "/metadata/identity/oauth2/token"
                    and r["headers"].get("metadata") == "true"
                    and r["query"].get("api-version") == "2018-02-01"
                    and r["query"].get("resource") == "https://storage.azure.com/"
                    and "client_id" not in r["query"],
                    "IMDS request form: %s" % r)

            ts.requests.clear()
            lines, _ = probe(mi + ["identity_client_id=11111111-2222-3333-4444-555555555555"],
                             ["put m/a 10 1", "check m/a 10 1"])
            R.check(lines[:1] == ["put rc=STRATUS_OK etag=%s msg=" % field(lines[0], "etag")]
                    and ts.requests and ts.requests[0]["query"].get("client_id")
                    == "11111111-2222-3333-4444-555555555555",
                    "user-assigned identity: client_id sent: %s" % lines)

            ts.requests.clear()
            ts.lifetime = 4
            lines, _ = probe(mi, ["head m/a", "sleep 2300", "head m/a", "sleep 2300",
                                  "head m/a"])
            heads = [ln for ln in lines if ln.startswith("head")]
            R.check(len(heads) == 3 and all(field(h, "rc") == "STRATUS_OK" for h in heads)
                    and len(ts.requests) >= 3,
                    "a 4 s token is refreshed ahead of expiry: %d fetches, %s"
                    % (len(ts.requests), heads))
            ts.lifetime = 3600

            ts.mode = "expired"
            lines, out = probe(mi, ["put m/b 10 1"])  # a PUT: its error reply has a body
            R.check(len(lines) == 1 and field(lines[0], "rc") == "STRATUS_EAUTH"
                    and "auth=managed_identity" in lines[0] and "Lifetime validation" in lines[0],
                    "a token Azure refuses -> STRATUS_EAUTH naming the auth mode: %s" % lines)

            ts.mode = "noidentity"
            lines, out = probe(mi, ["head m/a"])
            R.check(len(lines) == 1 and lines[0].startswith("open rc=failed")
                    and "STRATUS_EAUTH" in out and "Identity not found" in out,
                    "no identity at the endpoint -> open fails STRATUS_EAUTH:\n%s" % out[-500:])
            ts.mode = "ok"

            ts.requests.clear()
            lines, _ = probe(base, ["check m/a 10 1", "del m/a"],
                             {"IDENTITY_ENDPOINT": "http://127.0.0.1:%d/msi/token" % ts.port,
                              "IDENTITY_HEADER": "stratus-secret-header"})
            r = ts.requests[0] if ts.requests else {"query": {}, "headers": {}, "path": ""}
            R.check(lines == ["check rc=STRATUS_OK same got=10", "del rc=STRATUS_OK"]
                    and r["path"] == "/msi/token"
                    and r["headers"].get("x-identity-header") == "stratus-secret-header"
                    and r["query"].get("api-version") == "2019-08-01",
                    "App Service IDENTITY_ENDPOINT / IDENTITY_HEADER: %s %s" % (lines, r))

            lines, out = probe([s for s in mi if not s.startswith("ca_file=")], ["head m/a"])
            R.check(len(lines) == 1 and field(lines[0], "rc") == "STRATUS_EAUTH"
                    and "certificate" in lines[0].lower(),
                    "self-signed certificate refused without ca_file: %s" % lines)
    finally:
        ts.stop()


def main():
    test_sas()
    test_managed_identity()
    sys.exit(R.report())


if __name__ == "__main__":
    main()
