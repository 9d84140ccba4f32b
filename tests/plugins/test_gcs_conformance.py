#!/usr/bin/env python3
"""test_gcs_conformance.py - the storage conformance kit (sdk/conformance, env
STRATUS_CONFORMANCE) against stratus-storage-gcs.so (env STRATUS_GCS_PLUGIN) on
tests/plugins/gcs_server.py, started here on free 127.0.0.1 ports and stopped by PID:
  1. auth = service_account (RS256 JWT verified by the server's /token), server requiring auth,
     list pages capped at 3 entries: the full kit incl. the 64 MiB object through a resumable
     upload in 4 MiB chunks, while the server drops two chunk PUTs (the plugin resumes after a
     status query) and persists less than sent three times (the plugin resends from the Range
     it is told);
  2. auth = auto from GOOGLE_APPLICATION_CREDENTIALS, with two object GETs answered 503 (the
     core retries) and every token revoked once (the plugin refreshes after the 401);
  3. every object through a resumable upload (resumable_threshold = 1 byte), with a prefix;
  4. auth = metadata (metadata server with Metadata-Flavor: Google);
  5. auth = token (static bearer token; a bad one -> STRATUS_EAUTH); auth = none against a
     server requiring auth (-> STRATUS_EAUTH) and against an open one (passes);
  6. a key the server does not trust -> STRATUS_EAUTH naming "Invalid JWT Signature"; a key
     file of another type is refused at open;
  7. a missing bucket -> STRATUS_ENOTFOUND;
  8. tokens that live 2 s are refreshed before they expire (no 401 seen).
Runs under any python3 (standard library only). Prints "N passed, N failed".
SPDX-License-Identifier: Apache-2.0
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gcs_server import FakeGcs, free_port, make_service_account  # noqa: E402


def need_env(name):
    v = os.environ.get(name)
    if not v:
        sys.stderr.write("%s is not set (run through ctest)\n" % name)
        sys.exit(2)
    return v


KIT = need_env("STRATUS_CONFORMANCE")
PLUGIN = need_env("STRATUS_GCS_PLUGIN")
passed = failed = 0


T0 = time.monotonic()


def check(cond, what, detail=""):
    """Records a result; detail (e.g. a kit's output) is printed only on failure, indented so
    that no line of it ends like the final "N failed" ctest looks for."""
    global passed, failed
    if cond:
        passed += 1
        print("ok   %s (%.1f s)" % (what, time.monotonic() - T0), flush=True)
    else:
        failed += 1
        print("FAIL %s" % what, flush=True)
        for line in detail.splitlines():
            print("   | %s |" % line)
    return cond


def kit(gcs, bucket, *extra, quick=True, env=None):
    args = [KIT, PLUGIN, "--set", "bucket=" + bucket, "--set", "endpoint=" + gcs.url]
    for e in extra:
        args += ["--set", e]
    if quick:
        args.append("--quick")
    e = dict(os.environ)
    e.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    e.update(env or {})
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=500, env=e)
    out = p.stdout.decode(errors="replace")
    # a sanitizer report fails the run even where the kit is expected to fail
    check(not any(w in out for w in ("AddressSanitizer", "LeakSanitizer", "runtime error:")),
          "no sanitizer report from the kit (%s)" % " ".join(extra), out)
    return p.returncode, out


def kit_ok(rc, out, what):
    return check(rc == 0 and " 0 failed" in out, what, out)


def main():
    tmp = tempfile.mkdtemp(prefix="stratus-gcs-test-")
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed or not passed else 0)


def run(tmp):
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    good = os.path.join(tmp, "sa.json")
    wrong = os.path.join(tmp, "sa-wrong.json")
    k = make_service_account(good, url + "/token")
    make_service_account(wrong, url + "/token", email=k["client_email"])  # same name, other key

    with FakeGcs("--bucket", "stratus-conf", "--service-account", good, "--require-auth",
                 "--max-results-cap", "3", "--static-token", "static-secret-token",
                 port=port) as gcs:
        # 1. service account, full kit, with faults on the way
        gcs.faults(drop=2, short_persist=3, match="PUT /upload")
        rc, out = kit(gcs, "stratus-conf", "auth=service_account", "credentials_file=" + good,
                      "resumable_threshold=8MiB", "chunk_size=4MiB", quick=False)
        kit_ok(rc, out, "full kit with auth=service_account (JWT) incl. 64 MiB resumable")
        check("large_object_64MiB" in out, "the 64 MiB case ran")
        st = gcs.stats()
        print("  server stats: %s" % st)
        check(st["jwt_ok"] >= 1, "the plugin exchanged a signed JWT for a token")
        check(st["resumable_sessions"] >= 1 and st["resumable_chunks"] >= 16,
              "the 64 MiB object went through a resumable session in chunks")
        # (curl itself silently re-sends a request whose pooled connection died unanswered,
        # so not every drop reaches the plugin)
        check(st["faults_drop"] == 2 and st["resumable_status_queries"] >= 1,
              "a dropped chunk PUT was resumed after a status query")
        check(st["faults_left"].get("short_persist") == 0,
              "short persists happened (the plugin resent from the 308 Range)")
        check(st["multipart"] > 0 and st["precondition_412"] > 0,
              "small objects by multipart upload, preconditions refused with 412")
        check(st["list_pages"] > 3, "lists were paged (pageToken)")
        check(st["objects"] == 0, "the kit deleted every object it wrote")

        # the core retries a 503; a revoked token is replaced after one 401 (the plugin
        # refreshes and sends once more); GOOGLE_APPLICATION_CREDENTIALS with auth = auto
        before = gcs.stats()
        gcs.faults(fail=2, status=503, revoke=1, match="GET /storage/v1/b/stratus-conf/o/")
        rc, out = kit(gcs, "stratus-conf", env={"GOOGLE_APPLICATION_CREDENTIALS": good})
        kit_ok(rc, out, "quick kit (auth=auto from GOOGLE_APPLICATION_CREDENTIALS) with 2 "
               "injected 503s and a token revoked mid-run")
        st = gcs.stats()
        check(st["faults_fail"] == 2, "the 503s were served (and retried by the core)")
        check(st["faults_revoke"] == 1 and st["auth_401"] - before["auth_401"] >= 1 and
              st["jwt_ok"] - before["jwt_ok"] >= 2, "a 401 is answered by a token refresh (%d "
              "exchanges, %d 401s)" % (st["jwt_ok"] - before["jwt_ok"],
                                       st["auth_401"] - before["auth_401"]))
        gcs.faults()

        # 2. everything resumable, with a prefix
        before = gcs.stats()["resumable_sessions"]
        rc, out = kit(gcs, "stratus-conf", "auth=service_account", "credentials_file=" + good,
                      "resumable_threshold=1", "chunk_size=256KiB", "prefix=tenant-a/")
        kit_ok(rc, out, "quick kit with every put resumable and a prefix")
        check(gcs.stats()["resumable_sessions"] - before > 100,
              "the puts used resumable sessions (incl. the if_absent race)")

        # 3. metadata server
        before = gcs.stats()["metadata_tokens"]
        rc, out = kit(gcs, "stratus-conf", "auth=metadata", "metadata_endpoint=" + gcs.url)
        kit_ok(rc, out, "quick kit with auth=metadata")
        check(gcs.stats()["metadata_tokens"] > before, "tokens came from the metadata server")

        # 4. static token
        rc, out = kit(gcs, "stratus-conf", "auth=token", "token=static-secret-token")
        kit_ok(rc, out, "quick kit with auth=token")
        rc, out = kit(gcs, "stratus-conf", "auth=token", "token=not-a-valid-token")
        check(rc != 0 and "STRATUS_EAUTH" in out and "Invalid Credentials" in out,
              "a bad static token -> STRATUS_EAUTH (Invalid Credentials)", out)

        # 5b. auth = none against a server that requires auth
        rc, out = kit(gcs, "stratus-conf", "auth=none")
        check(rc != 0 and "STRATUS_EAUTH" in out and "HTTP 401" in out,
              "auth=none on a server requiring auth -> STRATUS_EAUTH", out)

        # 7. a key the server does not trust
        rc, out = kit(gcs, "stratus-conf", "auth=service_account", "credentials_file=" + wrong)
        check(rc != 0 and "STRATUS_EAUTH" in out and "Invalid JWT Signature" in out,
              "an untrusted key -> STRATUS_EAUTH with Google's message", out)
        check(gcs.stats()["jwt_rejected"] >= 1, "the server rejected the JWT signature")

        # a key file that is not a key
        bad = os.path.join(tmp, "bad.json")
        with open(bad, "w") as f:
            f.write('{"type": "authorized_user", "client_id": "x"}')
        rc, out = kit(gcs, "stratus-conf", "auth=service_account", "credentials_file=" + bad)
        check(rc != 0 and "authorized_user" in out and "not supported" in out,
              "a non-service-account key file is refused at open", out)

        # 8. a missing bucket
        rc, out = kit(gcs, "no-such-bucket", "auth=service_account", "credentials_file=" + good)
        check(rc != 0 and "STRATUS_ENOTFOUND" in out and "bucket does not exist" in out,
              "a missing bucket -> STRATUS_ENOTFOUND", out)

    # 5. auth = none on a server without auth (an emulator)
    with FakeGcs("--implicit-buckets") as gcs:
        rc, out = kit(gcs, "anything", "auth=none")
        kit_ok(rc, out, "quick kit with auth=none on an open server (implicit bucket)")

    # 6. short-lived tokens are refreshed before they expire
    port = free_port()
    sa2 = os.path.join(tmp, "sa2.json")
    make_service_account(sa2, "http://127.0.0.1:%d/token" % port)
    with FakeGcs("--bucket", "b", "--service-account", sa2, "--require-auth", "--token-ttl", "2",
                 port=port) as gcs:
        rc, out = kit(gcs, "b", "auth=service_account", "credentials_file=" + sa2)
        kit_ok(rc, out, "quick kit with 2 s tokens")
        st = gcs.stats()
        check(st["jwt_ok"] >= 2 and st["auth_401"] == 0,
              "tokens refreshed before expiry (%d exchanges, %d 401s)" %
              (st["jwt_ok"], st["auth_401"]))


if __name__ == "__main__":
    main()
