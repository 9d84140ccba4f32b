"""test_s3_creds.py - the AWS credentials chain of storage-s3 (plugins/storage-s3/s3_creds.c)
through s3_probe (env S3_PROBE): environment variables, the shared credentials file and
profiles, STS AssumeRoleWithWebIdentity, ECS container credentials, IMDSv2, precedence,
refresh before expiry, and failures. IMDS, ECS and STS are played by a small HTTP server in
this process (127.0.0.1, free port) that checks what the real services check (IMDSv2 session
token header, ECS Authorization header, the web identity token and role ARN).
SPDX-License-Identifier: Apache-2.0
"""
import datetime
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s3_testlib import Results, free_port, need_env  # noqa: E402

PROBE = need_env("S3_PROBE")
R = Results()
T0 = 1700000000000  # the probe's clock (ms)
HOUR = 3600 * 1000


def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


class Fake:
    """State of the fake metadata/STS server."""
    count = {"imds": 0, "ecs": 0, "sts": 0}
    web_token = "eyJhbGciOiJSUzI1NiJ9.fake.jwt"
    ecs_auth = "Bearer ecs-secret-token"
    role_arn = "arn:aws:iam::123456789012:role/stratus"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body, ctype="text/plain"):
        b = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def creds_json(self, kind):
        Fake.count[kind] += 1
        n = Fake.count[kind]
        return json.dumps({"Code": "Success", "Type": "AWS-HMAC",
                           "AccessKeyId": "ASIA%s%d" % (kind.upper(), n),
                           "SecretAccessKey": "secret-%s-%d" % (kind, n),
                           "Token": "token-%s-%d" % (kind, n),
                           "Expiration": iso(T0 + HOUR)})

    def do_PUT(self):
        if self.path == "/latest/api/token":
            if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self.reply(400, "missing ttl")
            return self.reply(200, "IMDSTOKEN-abc")
        self.reply(404, "no")

    def do_GET(self):
        if self.path.startswith("/latest/meta-data/iam/security-credentials/"):
            if self.headers.get("X-aws-ec2-metadata-token") != "IMDSTOKEN-abc":
                return self.reply(401, "")
            role = self.path[len("/latest/meta-data/iam/security-credentials/"):]
            if role == "":
                return self.reply(200, "stratus-role\n")
            if role != "stratus-role":
                return self.reply(404, "")
            return self.reply(200, self.creds_json("imds"), "application/json")
        if self.path == "/ecs/v2/credentials/abc":
            if self.headers.get("Authorization") != Fake.ecs_auth:
                return self.reply(403, json.dumps({"message": "bad auth"}), "application/json")
            return self.reply(200, self.creds_json("ecs"), "application/json")
        self.reply(404, "no")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        if self.path != "/sts/":
            return self.reply(404, "no")
        if (form.get("Action") != ["AssumeRoleWithWebIdentity"] or
                form.get("WebIdentityToken") != [Fake.web_token] or
                form.get("RoleArn") != [Fake.role_arn]):
            return self.reply(403, "<ErrorResponse><Error><Code>AccessDenied</Code>"
                              "<Message>bad web identity</Message></Error></ErrorResponse>",
                              "text/xml")
        Fake.count["sts"] += 1
        k = Fake.count["sts"]
        self.reply(200, """<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIASTS%d</AccessKeyId>
      <SecretAccessKey>sts/secret+%d</SecretAccessKey>
      <SessionToken>sts&amp;token-%d</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>""" % (k, k, k, iso(T0 + HOUR)), "text/xml")


def run(env_extra, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = HOME  # never read the real ~/.aws
    env.update(env_extra)
    out = subprocess.run([PROBE, "creds"] + [str(a) for a in args], env=env,
                         stdout=subprocess.PIPE, timeout=60).stdout.decode()
    return [ln.split() for ln in out.splitlines()]


def expect(lines, idx, source, akid, secret=None, token=None, what=""):
    ok = len(lines) > idx and lines[idx][0] == source and lines[idx][1] == akid
    if ok and secret is not None:
        ok = lines[idx][2] == secret
    if ok and token is not None:
        ok = lines[idx][3] == token
    R.check(ok, "%s: want %s %s, got %s" % (what, source, akid, lines))


def main():
    global HOME
    tmp = tempfile.mkdtemp(prefix="s3creds-")
    HOME = tmp
    port = free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    base = "http://127.0.0.1:%d" % port
    closed = "http://127.0.0.1:%d" % free_port()
    try:
        credfile = os.path.join(tmp, "credentials")
        with open(credfile, "w") as f:
            f.write("[default]\naws_access_key_id = AKIDFILEDEFAULT\naws_secret_access_key = sk-default\n\n"
                    "# a comment\n[other]\naws_access_key_id=AKIDFILEOTHER\n"
                    "aws_secret_access_key=sk-other\naws_session_token = tok-other\n"
                    "[profile spaced]\n  aws_access_key_id = AKIDSPACED  \n  aws_secret_access_key = sk sp\n")
        tokfile = os.path.join(tmp, "webtoken")
        with open(tokfile, "w") as f:
            f.write(Fake.web_token + "\n")
        no_imds = {"AWS_EC2_METADATA_DISABLED": "true"}

        # environment
        lines = run({"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "sk-env",
                     "AWS_SESSION_TOKEN": "tok-env", "AWS_SHARED_CREDENTIALS_FILE": credfile})
        expect(lines, 0, "env", "AKIDENV", "sk-env", "tok-env", "env beats the shared file")
        lines = run({"AWS_ACCESS_KEY_ID": "AKIDENV"})
        R.check(lines and lines[0][0] == "ERROR" and lines[0][1] == "STRATUS_EINVAL",
                "env key without secret is a config error: %s" % lines)

        # shared credentials file and profiles
        lines = run(dict(no_imds, AWS_SHARED_CREDENTIALS_FILE=credfile))
        expect(lines, 0, "shared-file", "AKIDFILEDEFAULT", "sk-default", "-", "file default profile")
        lines = run(dict(no_imds, AWS_SHARED_CREDENTIALS_FILE=credfile, AWS_PROFILE="other"))
        expect(lines, 0, "shared-file", "AKIDFILEOTHER", "sk-other", "tok-other", "AWS_PROFILE")
        lines = run(dict(no_imds, AWS_SHARED_CREDENTIALS_FILE=credfile, AWS_PROFILE="other"),
                    "--profile", "spaced")
        expect(lines, 0, "shared-file", "AKIDSPACED", None, None, "config profile beats AWS_PROFILE")
        os.makedirs(os.path.join(tmp, ".aws"))
        with open(os.path.join(tmp, ".aws", "credentials"), "w") as f:
            f.write("[default]\naws_access_key_id=AKIDHOME\naws_secret_access_key=sk-home\n")
        lines = run(no_imds)
        expect(lines, 0, "shared-file", "AKIDHOME", "sk-home", None, "~/.aws/credentials")
        os.unlink(os.path.join(tmp, ".aws", "credentials"))

        # nothing at all
        lines = run(no_imds)
        R.check(lines and lines[0][:2] == ["ERROR", "STRATUS_EAUTH"], "no credentials: %s" % lines)

        # web identity (endpoint from config, then from AWS_ENDPOINT_URL_STS)
        wi = {"AWS_WEB_IDENTITY_TOKEN_FILE": tokfile, "AWS_ROLE_ARN": Fake.role_arn}
        lines = run(wi, "--sts-endpoint", base + "/sts")
        expect(lines, 0, "web-identity", "ASIASTS1", "sts/secret+1", "sts&token-1", "web identity")
        lines = run(dict(wi, AWS_ENDPOINT_URL_STS=base + "/sts/"), "--now", T0,
                    "--then", T0 + HOUR - 4 * 60 * 1000)
        expect(lines, 0, "web-identity", "ASIASTS2", None, None, "web identity via AWS_ENDPOINT_URL_STS")
        expect(lines, 1, "web-identity", "ASIASTS3", None, None, "web identity refreshed 4 min before expiry")
        lines = run(dict(wi, AWS_ROLE_ARN="arn:aws:iam::1:role/wrong"), "--sts-endpoint", base + "/sts")
        R.check(lines and lines[0][:2] == ["ERROR", "STRATUS_EAUTH"] and "AccessDenied" in " ".join(lines[0]),
                "web identity refused -> EAUTH with the STS code: %s" % lines)

        # ECS container credentials
        ecs = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": base + "/ecs/v2/credentials/abc",
               "AWS_CONTAINER_AUTHORIZATION_TOKEN": Fake.ecs_auth}
        lines = run(ecs)
        expect(lines, 0, "ecs", "ASIAECS1", "secret-ecs-1", "token-ecs-1", "ecs with auth token")
        authfile = os.path.join(tmp, "ecs-auth")
        with open(authfile, "w") as f:
            f.write(Fake.ecs_auth + "\n")
        lines = run({"AWS_CONTAINER_CREDENTIALS_FULL_URI": base + "/ecs/v2/credentials/abc",
                     "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": authfile})
        expect(lines, 0, "ecs", "ASIAECS2", None, None, "ecs with auth token file")
        lines = run({"AWS_CONTAINER_CREDENTIALS_FULL_URI": base + "/ecs/v2/credentials/abc",
                     "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer wrong"})
        R.check(lines and lines[0][:2] == ["ERROR", "STRATUS_EAUTH"], "ecs wrong token: %s" % lines)

        # IMDSv2, cached until 5 minutes before expiry
        imds = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": base + "/"}
        before = Fake.count["imds"]
        lines = run(imds, "--now", T0, "--then", T0 + 30 * 60 * 1000)
        expect(lines, 0, "imds", "ASIAIMDS%d" % (before + 1), None, "token-imds-%d" % (before + 1), "imds")
        expect(lines, 1, "imds", "ASIAIMDS%d" % (before + 1), None, None, "imds cached at +30 min")
        lines = run(imds, "--now", T0, "--then", T0 + 56 * 60 * 1000)
        expect(lines, 1, "imds", "ASIAIMDS%d" % (before + 3), None, None, "imds refreshed at +56 min")
        lines = run(dict(imds, AWS_SHARED_CREDENTIALS_FILE=credfile))
        expect(lines, 0, "shared-file", "AKIDFILEDEFAULT", None, None, "shared file beats IMDS")
        lines = run({"AWS_EC2_METADATA_SERVICE_ENDPOINT": closed})
        R.check(lines and lines[0][:2] == ["ERROR", "STRATUS_EAUTH"], "imds unreachable: %s" % lines)
    finally:
        srv.shutdown()
        srv.server_close()
    sys.exit(R.report())


if __name__ == "__main__":
    main()
