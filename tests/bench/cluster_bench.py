#!/usr/bin/python3
"""cluster_bench.py - the cluster under benchmark load: what etcd costs, and what each WAL type
costs in produce latency (issue 7: "report commits/s and etcd request latency under the
benchmark load"; docs/cluster.md "Which WAL").

For each [wal] type (object, local) it starts 3 etcd members and 3 brokers on one shared
storage-local directory (tests/integration/cluster_harness.py), runs stratus-bench produce
(1 KiB records, acks=all, 30 partitions, 2 producers, linger 5 ms) flat out for DUR seconds
and then at a fixed 20 MB/s, and reads every broker's /metrics before and after: object
commits to etcd per second, commit latency (mean and histogram p50/p99), claims; plus the
benchmark's throughput and produce latency percentiles. Prints one table and a RESULT json line.

Usage: STRATUS_BUILD_DIR=build /usr/bin/python3 tests/bench/cluster_bench.py [--duration S]
SPDX-License-Identifier: Apache-2.0
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import cluster_harness as H  # noqa: E402


def scrape(port):
    """{sample name with labels: value} of one /metrics page."""
    out = {}
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, _, val = line.rpartition(" ")
                try:
                    out[name] = float(val)
                except ValueError:
                    pass
    return out


def metrics_port(broker):
    with open(broker.log_path, errors="replace") as f:
        m = re.search(r"serving /metrics .* port=(\d+)", f.read())
    return int(m.group(1)) if m else None


def hist_delta(before, after, family):
    """(count, sum_s, [(le, cumulative count)]) of a histogram between two scrapes."""
    buckets = []
    for k, v in after.items():
        m = re.match(re.escape(family) + r'_bucket\{le="([^"]+)"\}$', k)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets.append((le, v - before.get(k, 0.0)))
    buckets.sort()
    cnt = after.get(family + "_count", 0.0) - before.get(family + "_count", 0.0)
    s = after.get(family + "_sum", 0.0) - before.get(family + "_sum", 0.0)
    return cnt, s, buckets


def hist_pct(buckets, total, pct):
    """The upper bound of the bucket holding the pct-th percentile (a bound, not a value)."""
    want = total * pct / 100.0
    for le, c in buckets:
        if c >= want:
            return le
    return float("inf")


def bench(bs, args):
    exe = os.path.join(os.environ.get("STRATUS_BUILD_DIR", "build"), "bench", "stratus-bench")
    out = subprocess.run([exe] + args + ["-b", bs], capture_output=True, text=True, timeout=600)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError("stratus-bench gave no RESULT: %s" % out.stderr[-2000:])


def run_one(wal, dur):
    extra = {"metrics": {"listen": "127.0.0.1:0"}, "wal": {"type": wal},
             "upload": {"interval": "2s"}, "cache": {"capacity": "256MiB"}}
    C = H.Cluster(3, tag="bench-%s" % wal, session_ttl="6s", extra=extra)
    res = {"wal": wal}
    try:
        C.start()
        C.wait_brokers([1, 2, 3], 30)
        ports = [metrics_port(b) for b in C.brokers]
        bs = C.bootstrap
        bench(bs, ["produce", "-t", "cb", "-p", "30", "--create", "-c", "30", "-q"])
        time.sleep(2)
        for name, extra_args in (("flat", []), ("20MB/s", ["--mbps", "20"])):
            before = [scrape(p) for p in ports]
            t0 = time.monotonic()
            r = bench(bs, ["produce", "-t", "cb", "-p", "30", "-n", "2", "-s", "1024", "--acks",
                           "all", "--linger", "5", "-d", str(dur)] + extra_args)
            secs = time.monotonic() - t0
            time.sleep(2.5)  # the last uploads commit
            after = [scrape(p) for p in ports]
            commits = sum(a.get("stratus_cluster_object_commits_total", 0) -
                          b.get("stratus_cluster_object_commits_total", 0)
                          for a, b in zip(after, before))
            cnt = tot = 0.0
            merged = {}
            for a, b in zip(after, before):
                c, s, bk = hist_delta(b, a, "stratus_cluster_commit_seconds")
                cnt += c
                tot += s
                for le, v in bk:
                    merged[le] = merged.get(le, 0.0) + v
                bk_sorted = sorted(merged.items())
            res[name] = {
                "mb_s": r["mb_s"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
                "p999_ms": r["p999_ms"], "errors": r["errors"],
                "etcd_commits": commits, "etcd_commits_per_s": commits / (secs + 2.5),
                "commit_mean_ms": 1000.0 * tot / cnt if cnt else None,
                "commit_p50_le_ms": 1000.0 * hist_pct(bk_sorted, cnt, 50) if cnt else None,
                "commit_p99_le_ms": 1000.0 * hist_pct(bk_sorted, cnt, 99) if cnt else None,
            }
    finally:
        C.stop(check_exit=False)
    return res


def main():
    dur = 20
    if "--duration" in sys.argv:
        dur = int(sys.argv[sys.argv.index("--duration") + 1])
    results = [run_one(w, dur) for w in ("object", "local")]
    print("\n%-7s %-7s %9s %9s %9s %10s %11s %12s %13s %13s" % (
        "wal", "load", "MB/s", "p50 ms", "p99 ms", "p99.9 ms", "commits/s", "commit mean",
        "commit p50<=", "commit p99<="))
    for r in results:
        for name in ("flat", "20MB/s"):
            x = r[name]
            fmt = lambda v: "%.2f" % v if v is not None else "-"  # noqa: E731
            print("%-7s %-7s %9.1f %9.2f %9.2f %10.2f %11.1f %12s %13s %13s" % (
                r["wal"], name, x["mb_s"], x["p50_ms"], x["p99_ms"], x["p999_ms"],
                x["etcd_commits_per_s"], fmt(x["commit_mean_ms"]), fmt(x["commit_p50_le_ms"]),
                fmt(x["commit_p99_le_ms"])))
    print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    main()
