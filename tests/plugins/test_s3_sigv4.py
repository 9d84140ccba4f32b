"""test_s3_sigv4.py - proves the C SigV4 signer (plugins/common/sigv4.c) byte for byte:
(a) against AWS's published S3 SigV4 examples (GET Object, PUT Object, GET Bucket Lifecycle,
    Get Bucket (List Objects), from the S3 API reference "Signature Calculations for the
    Authorization Header"), and
(b) against botocore's S3SigV4Auth / SigV4Auth for several hundred generated requests: odd keys
    (spaces, unicode, '=', '&', '+', '%', '~'), query strings with repeated and empty
    parameters, session tokens, empty and non-empty payloads signed or UNSIGNED-PAYLOAD,
    header values with runs of spaces, path-style and virtual-hosted URLs, default and
    explicit ports, several regions, and STS-style service "sts".
Drives s3_probe (env S3_PROBE). Runs under the python3 that has botocore.
SPDX-License-Identifier: Apache-2.0
"""
import datetime
import json
import os
import random
import subprocess
import sys
from unittest import mock
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s3_testlib import Results, need_env  # noqa: E402

from botocore.auth import S3SigV4Auth, SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

PROBE = need_env("S3_PROBE")
R = Results()

AWS_AKID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
T2013 = 1369353600000  # 2013-05-24T00:00:00Z


def probe(reqs):
    inp = "".join(json.dumps(r) + "\n" for r in reqs)
    out = subprocess.run([PROBE, "sign"], input=inp.encode(), stdout=subprocess.PIPE,
                         check=True, timeout=120).stdout.decode()
    lines = out.splitlines()
    assert len(lines) == len(reqs), (len(lines), len(reqs))
    res = []
    for ln in lines:
        auth, _, canon = ln.partition("\t")
        res.append((auth, canon.replace("\\n", "\n")))
    return res


# ---- (a) AWS's published examples --------------------------------------------------------
def aws_examples():
    base = {"akid": AWS_AKID, "secret": AWS_SECRET, "region": "us-east-1", "service": "s3",
            "now_ms": T2013, "sha_header": True, "unsigned_payload": False}
    ex = []
    ex.append((dict(base, method="GET", url="https://examplebucket.s3.amazonaws.com/test.txt",
                    headers=[["Range", "bytes=0-9"]]),
               "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
               "host;range;x-amz-content-sha256;x-amz-date"))
    ex.append((dict(base, method="PUT", url="https://examplebucket.s3.amazonaws.com/test%24file.text",
                    headers=[["Date", "Fri, 24 May 2013 00:00:00 GMT"],
                             ["x-amz-storage-class", "REDUCED_REDUNDANCY"]],
                    body_hex=b"Welcome to Amazon S3.".hex()),
               "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
               "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class"))
    ex.append((dict(base, method="GET", url="https://examplebucket.s3.amazonaws.com/?lifecycle",
                    headers=[]),
               "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
               "host;x-amz-content-sha256;x-amz-date"))
    ex.append((dict(base, method="GET",
                    url="https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
                    headers=[]),
               "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
               "host;x-amz-content-sha256;x-amz-date"))
    got = probe([e[0] for e in ex])
    for (req, sig, sh), (auth, canon) in zip(ex, got):
        want = ("AWS4-HMAC-SHA256 Credential=%s/20130524/us-east-1/s3/aws4_request, "
                "SignedHeaders=%s, Signature=%s" % (AWS_AKID, sh, sig))
        if not R.check(auth == want, "AWS example %s %s" % (req["method"], req["url"])):
            print("  want %s\n  got  %s\n  canonical:\n%s" % (want, auth, canon))


# ---- (b) botocore, many generated requests ------------------------------------------------
KEYS = ["simple.txt", "dir/sub/obj", "with space", "unicode/é/中文/🙂", "a=b&c=d", "plus+sign",
        "tilde~ok", "percent%25and%", "trailing/", "!*'()", ":@$,;", "[brackets]{}", "x" * 300,
        "stream-set/00000000000000000042.obj", "~/.hidden", "semi;colon/equals=/q?mark#hash"]
HOSTS = [("http://127.0.0.1:9000", True), ("https://s3.us-west-2.amazonaws.com", True),
         ("https://s3.eu-central-1.amazonaws.com", False), ("http://minio.local:80", True),
         ("https://acct.r2.cloudflarestorage.com:443", True), ("http://localhost:4566", False),
         ("https://S3.Example.COM:8443", True)]
REGIONS = ["us-east-1", "us-west-2", "eu-central-1", "auto", "ap-southeast-2"]
QUERIES = [[], [("uploads", None)], [("partNumber", "3"), ("uploadId", "abc~DEF.ghi-_0")],
           [("list-type", "2"), ("prefix", "a/b c"), ("start-after", "x+y=z"),
            ("continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")],
           [("delete", "")], [("a", "2"), ("a", "1"), ("b", "")], [("uploadId", "é中")],
           [("max-keys", "1000"), ("encoding-type", "url")]]
HEADERS = [("Content-Type", "application/octet-stream"),
           ("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="), ("If-None-Match", "*"),
           ("If-Match", '"9b2cf535f27731c974343645a3985328"'), ("Range", "bytes=100-199"),
           ("x-amz-meta-Note", "  two   spaces  inside  "), ("User-Agent", "stratus/0.1"),
           ("x-amz-storage-class", "STANDARD_IA"), ("X-Amz-Meta-Tabs", "a\tb"),
           ("Cache-Control", "no-cache")]
TOKEN = ("IQoJb3JpZ2luX2VjEHcaCXVzLWVhc3QtMSJGMEQCIFake/Session+Token=" + "A" * 300)


def build_url(host, path_style, bucket, key, query):
    enc = quote(key, safe="/~")
    if path_style:
        url = "%s/%s/%s" % (host, bucket, enc)
    else:
        scheme, rest = host.split("://", 1)
        url = "%s://%s.%s/%s" % (scheme, bucket, rest, enc)
    if query:
        parts = []
        for k, v in query:
            parts.append(quote(k, safe="-_.~") if v is None
                         else "%s=%s" % (quote(k, safe="-_.~"), quote(v, safe="-_.~")))
        url += "?" + "&".join(parts)
    return url


def botocore_sign(r):
    creds = Credentials(r["akid"], r["secret"], r.get("token") or None)
    body = bytes.fromhex(r.get("body_hex", ""))
    req = AWSRequest(method=r["method"], url=r["url"], headers=dict(r["headers"]), data=body)
    when = datetime.datetime.fromtimestamp(r["now_ms"] / 1000, datetime.timezone.utc).replace(tzinfo=None)
    if r["service"] == "s3":
        req.context["client_config"] = Config(s3={"payload_signing_enabled": not r["unsigned_payload"]})
        signer = S3SigV4Auth(creds, "s3", r["region"])
    else:
        signer = SigV4Auth(creds, r["service"], r["region"])
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        signer.add_auth(req)
    return req.headers["Authorization"], signer.canonical_request(req)


def generated(n, seed=20240601):
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        host, path_style = rnd.choice(HOSTS)
        method = rnd.choice(["GET", "PUT", "POST", "DELETE", "HEAD"])
        body = b""
        if method in ("PUT", "POST") and rnd.random() < 0.7:
            body = bytes(rnd.randrange(256) for _ in range(rnd.choice([1, 17, 1000, 4096])))
        hdrs = rnd.sample(HEADERS, rnd.randrange(0, 5))
        r = {"method": method,
             "url": build_url(host, path_style, rnd.choice(["stratus-data", "my.bucket-01"]),
                              rnd.choice(KEYS), rnd.choice(QUERIES)),
             "headers": [list(h) for h in hdrs],
             "body_hex": body.hex(),
             "akid": rnd.choice(["AKIDEXAMPLE", "ASIAQWERTYUIOP123456"]),
             "secret": rnd.choice([AWS_SECRET, "s3cr3t+/=key"]),
             "token": TOKEN if rnd.random() < 0.4 else "",
             "region": rnd.choice(REGIONS), "service": "s3",
             "now_ms": 1700000000000 + rnd.randrange(0, 400 * 86400) * 1000 + rnd.randrange(1000),
             "unsigned_payload": rnd.random() < 0.5, "sha_header": True}
        out.append(r)
    # STS-style: POST form body to "/", no x-amz-content-sha256 header
    for i in range(20):
        body = ("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%%3Aaws%%3Aiam%%3A%%3A%d"
                % i).encode()
        out.append({"method": "POST", "url": rnd.choice(["https://sts.amazonaws.com/",
                                                          "http://127.0.0.1:%d/" % (5000 + i)]),
                    "headers": [["Content-Type", "application/x-www-form-urlencoded; charset=utf-8"]],
                    "body_hex": body.hex(), "akid": "AKIDEXAMPLE", "secret": AWS_SECRET,
                    "token": TOKEN if i % 2 else "", "region": "us-east-1", "service": "sts",
                    "now_ms": 1700000000000 + i * 86400000, "unsigned_payload": False,
                    "sha_header": False})
    return out


def main():
    aws_examples()
    reqs = generated(400)
    got = probe(reqs)
    mismatches = 0
    for r, (auth, canon) in zip(reqs, got):
        want, wcanon = botocore_sign(r)
        ok = auth == want
        if not ok:
            mismatches += 1
            if mismatches <= 3:
                print("mismatch for %s %s\n  botocore: %s\n  C:        %s\n  botocore canonical:\n%s\n"
                      "  C canonical+sts:\n%s" % (r["method"], r["url"], want, auth, wcanon, canon))
        R.check(ok, "signature of %s %s" % (r["method"], r["url"][:100]))
    print("compared %d generated requests with botocore, %d mismatches" % (len(reqs), mismatches))
    sys.exit(R.report())


if __name__ == "__main__":
    main()
