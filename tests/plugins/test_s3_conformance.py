"""test_s3_conformance.py - the storage conformance kit (sdk/conformance, env
STRATUS_CONFORMANCE) against stratus-storage-s3.so (env STRATUS_S3_PLUGIN) on moto's S3 server,
started here on a free 127.0.0.1 port and stopped by PID:
  1. full kit incl. the 64 MiB object, multipart above 6 MiB with 5 MiB parts (moto enforces
     S3's 5 MiB minimum for non-last parts), 4 parallel part uploads;
  2. quick kit with a key prefix, payload signing on and one upload thread;
  3. a missing bucket fails with STRATUS_ENOTFOUND naming NoSuchBucket;
and checks with boto3 that every object the kits wrote was deleted (no leftover multipart
uploads either).
SPDX-License-Identifier: Apache-2.0
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s3_testlib import ACCESS_KEY, SECRET_KEY, Moto, Results, need_env  # noqa: E402

KIT = need_env("STRATUS_CONFORMANCE")
PLUGIN = need_env("STRATUS_S3_PLUGIN")
R = Results()


def kit(moto, bucket, *extra, quick=False):
    args = [KIT, PLUGIN, "--set", "bucket=" + bucket, "--set", "endpoint=" + moto.url,
            "--set", "path_style=true", "--set", "access_key_id=" + ACCESS_KEY,
            "--set", "secret_access_key=" + SECRET_KEY]
    for e in extra:
        args += ["--set", e]
    if quick:
        args.append("--quick")
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=500)
    out = p.stdout.decode(errors="replace")
    return p.returncode, out


def main():
    with Moto() as moto:
        moto.create_bucket("stratus-conf")
        s3 = moto.client()

        rc, out = kit(moto, "stratus-conf", "multipart_threshold=6MiB", "part_size=5MiB",
                      "upload_concurrency=4")
        print(out)
        R.check(rc == 0 and "large_object_64MiB" in out and " 0 failed" in out,
                "full conformance kit against moto")

        rc, out = kit(moto, "stratus-conf", "prefix=tenant-a/", "payload_signing=true",
                      "upload_concurrency=1", "multipart_threshold=6MiB", "part_size=5MiB",
                      quick=True)
        print(out)
        R.check(rc == 0 and " 0 failed" in out, "quick kit with prefix and payload signing")

        left = s3.list_objects_v2(Bucket="stratus-conf").get("KeyCount", 0)
        R.check(left == 0, "kits cleaned up after themselves (%d objects left)" % left)
        ups = s3.list_multipart_uploads(Bucket="stratus-conf").get("Uploads", [])
        R.check(not ups, "no multipart upload left open: %s" % ups)

        rc, out = kit(moto, "no-such-bucket-here", quick=True)
        R.check(rc != 0 and "STRATUS_ENOTFOUND" in out and "NoSuchBucket" in out,
                "missing bucket -> ENOTFOUND with the S3 code:\n" + out[-600:])
    sys.exit(R.report())


if __name__ == "__main__":
    main()
