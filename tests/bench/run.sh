#!/usr/bin/env bash
# run.sh - the benchmark harness of issue 5: runs named workloads against stratusd (started here
# with a fresh data dir under /var/tmp, storage-local, default config otherwise), against
# librdkafka's in-memory mock cluster (stratus-mockbroker, the reference peer), and measures the
# machine's limits (stratus-limits); prints every figure with the ratios Stratus/mock and
# Stratus/limit, the broker's CPU seconds per GiB (utime+stime from /proc/PID/stat before and
# after), peak RSS (VmHWM), object-store PUTs per GiB (object files written under the storage
# dir: storage-local writes one file per PUT), bytes served by cold reads (the broker's
# /metrics, stratus_cold_read_bytes_total), and regenerates docs/benchmarks.md.
#
#   tests/bench/run.sh [options] [WORKLOAD...]
# Workloads (default: all, in this order):
#   limits      loopback TCP; O_DIRECT|O_DSYNC writes at 256 KiB / 1 MiB on the data disk; the
#               durable-ingest ceiling (WAL + object files on that disk, each byte twice); the
#               first touch of fresh memory (what a replay or a warm-up pays per byte)
#   startup     start-up with an empty WAL; WAL replay rate after kill -9 (upload held back)
#   produce     1: 1 KiB, acks=all, 8 partitions, 2 producers, linger 5, batch 1 MiB, flat out;
#               also PUTs per GiB and PUTs while idle
#   consume     2: tail consumers (2, assign-style, no group) keeping up with workload 1; and
#               2c: 2 consumers reading 256 MiB just written (128 partitions) flat out, 4
#               times over (1 GiB served: the CPU figure is read in 10 ms ticks), measured
#               from when the broker is idle (its uploads done)
#   catchup     3: write --catchup-gib GiB, restart the broker, one consumer reads it from objects
#   isolation   4: workload 1 at 50% of its flat-out rate alone, then beside the catch-up reader,
#               then (control) beside a one-core shell busy loop instead of the reader
#   latency     5: produce at a fixed 20 MB/s, acks=all, --latency-secs (60)
#   partitions  6: 10,000 partitions over 100 topics, a record every 5 s to each; RSS;
#               restart time
# Options:
#   --build DIR          build tree with stratusd, plugins/ and bench/ ($STRATUS_BUILD_DIR or
#                        /work/main/build)
#   -d, --duration S     seconds per produce/consume run (20)
#   --catchup-gib G      size of the catch-up data in GiB (4, as issue 5 specifies)
#   --latency-secs S     workload 5 duration (60)
#   --latency-linger MS  linger.ms of workload 5 (1)
#   --no-mock            skip the mock runs;  --perf  record `perf record -g` of stratusd during
#                        each Stratus measurement and print its top functions
#   --out FILE           the markdown to write (docs/benchmarks.md); --no-doc writes none
#   --keep               keep the scratch dirs (/var/tmp/stratus-bench.*)
#   --set K=V            extra stratusd --set (repeatable)
#   --repeat N           run the chosen workloads N times over (Stratus and mock alternate within
#                        each round); the bars use the median of each figure, the run table
#                        lists every round (the machine is shared: one run proves little)
# Results are also kept as JSON lines in the scratch dir (results.jsonl); report.py renders them.
# SPDX-License-Identifier: Apache-2.0
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD="${STRATUS_BUILD_DIR:-$REPO/build}"
DUR=20
CATCHUP_GIB=4
LAT_SECS=60
LAT_LINGER=1
MOCK=1
PERF=0
OUT="$REPO/docs/benchmarks.md"
KEEP=0
REPEAT=1
EXTRA_SETS=()
WLS=()
PY=/usr/bin/python3
ORIG_ARGS="$*"
[ -x "$PY" ] || PY=python3

while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    -d|--duration) DUR="$2"; shift 2 ;;
    --catchup-gib) CATCHUP_GIB="$2"; shift 2 ;;
    --latency-secs) LAT_SECS="$2"; shift 2 ;;
    --latency-linger) LAT_LINGER="$2"; shift 2 ;;
    --no-mock) MOCK=0; shift ;;
    --perf) PERF=1; shift ;;
    --out) OUT="$2"; shift 2 ;;
    --no-doc) OUT=""; shift ;;
    --keep) KEEP=1; shift ;;
    --set) EXTRA_SETS+=(--set "$2"); shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
    all) WLS+=(limits startup produce consume catchup isolation latency partitions); shift ;;
    limits|startup|produce|consume|catchup|isolation|latency|partitions) WLS+=("$1"); shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ ${#WLS[@]} -gt 0 ] || WLS=(limits startup produce consume catchup isolation latency partitions)

BIN="$BUILD/bench"
for f in "$BUILD/stratusd" "$BIN/stratus-bench" "$BIN/stratus-mockbroker" "$BIN/stratus-limits" \
         "$BUILD/plugins/stratus-storage-local.so"; do
  [ -e "$f" ] || { echo "run.sh: missing $f (build: make -C $BUILD stratusd stratus-storage-local stratus-cache-memory stratus-bench stratus-mockbroker stratus-limits)" >&2; exit 2; }
done

WORK="$(mktemp -d /var/tmp/stratus-bench.XXXXXX)"
FREE_GB=$(df -P -BG /var/tmp | awk 'NR==2 {sub("G", "", $4); print $4}')
if [ "${FREE_GB:-0}" -lt 25 ]; then
  echo "run.sh: warning: only ${FREE_GB} GB free under /var/tmp; workloads 3 and 4 write ~20 GB" >&2
fi
RES="$WORK/results.jsonl"
: > "$RES"
TCK=$(getconf CLK_TCK)
SPID=""; MPID=""; BGPIDS=(); MSTART_MS=0

cleanup() {
  for p in "${BGPIDS[@]}" "$MPID" "$SPID"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  if [ "$KEEP" = 1 ]; then echo "run.sh: scratch kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '\n=== %s\n' "$*" >&2; }
now_ns() { date +%s%N; }
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # host port timeout_s pid -> 0 when it accepts
  local end=$(( $(date +%s) + $3 ))
  while [ "$(date +%s)" -le "$end" ]; do
    kill -0 "$4" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.01
  done
  return 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
wait_idle() { # pid: until it uses <= 2 ticks (20 ms) per 0.5 s (uploads of what was just
  # written done), at most 30 s; so that a short run's CPU is its own work
  local end=$(( $(date +%s) + 30 )) c0 c1
  while [ "$(date +%s)" -lt "$end" ]; do
    c0=$(cpu_ticks "$1"); sleep 0.5; c1=$(cpu_ticks "$1")
    [ $((c1 - c0)) -le 2 ] && return 0
  done
}
hwm_kb() { awk '/^VmHWM/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
count_objects() { [ -d "$SROOT/objects" ] && find "$SROOT/objects" -type f | wc -l || echo 0; }
record() { echo "$1" >> "$RES"; }

# ---- stratusd ------------------------------------------------------------------------------
SROOT=""; SBS=""; SPORT=""; SSTART_MS=0; SMPORT=""
stratus_new() { # name: fresh data dir (a later round replaces the earlier one's)
  SROOT="$WORK/stratus-$1"
  rm -rf "$SROOT"
  # earlier workloads' data and objects are done with (their figures are in results.jsonl);
  # kept, a full run needs ~35 GB, and a full disk stalls the broker mid-run
  [ "$KEEP" = 1 ] || rm -rf "$WORK"/stratus-*/data "$WORK"/stratus-*/objects
  mkdir -p "$SROOT/data" "$SROOT/objects"
  SPORT=$(free_port)
  SBS="127.0.0.1:$SPORT"
  SMPORT=$(free_port) # /metrics: bytes served from objects (cold reads) per run
}
metric() { # NAME -> the broker's unlabelled metric NAME (0 when unreachable)
  curl -s --max-time 2 "http://127.0.0.1:$SMPORT/metrics" 2>/dev/null \
    | awk -v n="$1" '$1 == n {v = $2} END {printf "%.0f", v + 0}'
}
cold_bytes() { metric stratus_cold_read_bytes_total; } # bytes served from objects
heap_kb() { # STATE -> the allocator's bytes in that state, in KiB (0 when not reported)
  echo $(( $(metric "stratus_allocator_bytes{state=\"$1\"}") / 1024 ))
}
stratus_start() { # extra --set args...
  local t0; t0=$(now_ns)
  "$BUILD/stratusd" --config "$REPO/conf/stratus.ini" \
    --set "broker.listeners=PLAINTEXT://$SBS" --set "broker.data_dir=$SROOT/data" \
    --set "broker.plugin_dir=$BUILD/plugins" --set "storage.path=$SROOT/objects" \
    --set "metrics.listen=127.0.0.1:$SMPORT" \
    "${EXTRA_SETS[@]}" "$@" >> "$SROOT/broker.log" 2>&1 < /dev/null &
  SPID=$!
  if ! wait_port 127.0.0.1 "$SPORT" 120 "$SPID"; then
    echo "run.sh: stratusd did not start; log tail:" >&2; tail -20 "$SROOT/broker.log" >&2
    exit 1
  fi
  SSTART_MS=$(( ($(now_ns) - t0) / 1000000 ))
}
stratus_stop() {
  [ -n "$SPID" ] || return 0
  kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=""
}
stratus_kill9() {
  [ -n "$SPID" ] || return 0
  kill -KILL "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=""
}

# ---- mock ------------------------------------------------------------------------------------
MBS=""
mock_start() { # mockbroker args (topics)
  local out="$WORK/mock.out"
  "$BIN/stratus-mockbroker" "$@" > "$out" 2>&1 < /dev/null &
  MPID=$!
  local t0; t0=$(now_ns)
  for _ in $(seq 1 1800); do # creating 10,000 partitions can take the mock a minute
    grep -q '^BOOTSTRAP ' "$out" && break
    kill -0 "$MPID" 2>/dev/null || { cat "$out" >&2; exit 1; }
    sleep 0.05
  done
  MBS=$(awk '/^BOOTSTRAP /{print $2}' "$out")
  [ -n "$MBS" ] || { echo "run.sh: the mock did not start" >&2; exit 1; }
  MSTART_MS=$(( ($(now_ns) - t0) / 1000000 ))
}
mock_stop() { [ -n "$MPID" ] && kill -TERM "$MPID" 2>/dev/null; wait "$MPID" 2>/dev/null; MPID=""; }

# ---- one measured run -------------------------------------------------------------------------
# measure TARGET(stratus|mock) WL RUN -- stratus-bench args (without -b)
# Runs stratus-bench against the target, reading the target's CPU and RSS before and after,
# and the object count (Stratus); appends one JSON line to results.jsonl.
measure() {
  local target="$1" wl="$2" run="$3"; shift 4
  local pid bs perfpid=""
  if [ "$target" = stratus ]; then pid=$SPID; bs=$SBS; else pid=$MPID; bs=$MBS; fi
  local c0 o0 c1 o1 out t0 t1 k0=0 k1=0
  [ "$target" = stratus ] && k0=$(cold_bytes)
  c0=$(cpu_ticks "$pid"); o0=$( [ "$target" = stratus ] && count_objects || echo 0 )
  if [ "$PERF" = 1 ] && [ "$target" = stratus ] && command -v perf >/dev/null; then
    perf record -g -o "$WORK/perf-$wl-$run.data" -p "$pid" > "$WORK/perf-$wl-$run.log" 2>&1 &
    perfpid=$!
  fi
  t0=$(now_ns)
  out=$("$BIN/stratus-bench" "$@" -b "$bs" --tag "$target/$wl/$run") || true
  t1=$(now_ns)
  c1=$(cpu_ticks "$pid"); o1=$( [ "$target" = stratus ] && count_objects || echo 0 )
  [ "$target" = stratus ] && k1=$(cold_bytes)
  if [ -n "$perfpid" ]; then
    kill -INT "$perfpid" 2>/dev/null; wait "$perfpid" 2>/dev/null
    echo "--- perf: top functions of stratusd during $wl/$run (self time)" >&2
    perf report -i "$WORK/perf-$wl-$run.data" --no-children --stdio --percent-limit 1.5 \
      2>/dev/null | grep -E '^ +[0-9.]+%' | head -25 >&2
  fi
  local res; res=$(printf '%s\n' "$out" | sed -n 's/^RESULT //p' | tail -1)
  [ -n "$res" ] || res='{}'
  local ha=0 hr=0 # the heap at the end of the run: held by the broker / resident (jemalloc)
  if [ "$target" = stratus ]; then ha=$(heap_kb allocated); hr=$(heap_kb resident); fi
  record "$(printf '{"kind":"bench","target":"%s","wl":"%s","run":"%s","cpu_s":%s,"wall_s":%s,"hwm_kb":%s,"rss_kb":%s,"heap_alloc_kb":%s,"heap_resident_kb":%s,"objects":%s,"cold_bytes":%s,"bench":%s}' \
    "$target" "$wl" "$run" "$(awk "BEGIN{printf \"%.3f\", ($c1-$c0)/$TCK}")" \
    "$(awk "BEGIN{printf \"%.3f\", ($t1-$t0)/1e9}")" "$(hwm_kb "$pid")" "$(rss_kb "$pid")" \
    "$ha" "$hr" "$((o1 - o0))" "$((k1 - k0))" "$res")"
  LAST="$res"
}
jget() { printf '%s' "$1" | jq -r "$2"; }
value() { # wl name value [unit]
  record "$(printf '{"kind":"value","wl":"%s","name":"%s","value":%s}' "$1" "$2" "$3")"
  printf '    %-34s %s %s\n' "$2" "$3" "${4:-}" >&2
}

# workload 1; topics are created with --create on Stratus and on the mock's command line
W1=(produce -t w1 -p 8 -n 2 -s 1024 --acks all --linger 5 --batch 1048576)

# ---- workloads ----------------------------------------------------------------------------------
wl_limits() {
  log "limits: loopback TCP, O_DIRECT|O_DSYNC writes on /var/tmp, first touch of memory"
  "$BIN/stratus-limits" -d /var/tmp -t 3 | sed -n 's/^RESULT //p' | while read -r l; do
    record "$(printf '{"kind":"limit","limit":%s}' "$l")"
  done
}

wl_startup() {
  log "startup: empty WAL; WAL replay after kill -9"
  stratus_new startup
  stratus_start
  value startup first_start_ms "$SSTART_MS" ms   # creates (preallocates) the WAL
  stratus_stop
  stratus_start
  value startup empty_wal_start_ms "$SSTART_MS" ms
  value startup empty_hwm_kb "$(hwm_kb "$SPID")" kB
  local empty_ms=$SSTART_MS
  stratus_stop
  # hold uploads back so the WAL keeps everything, then crash and time the replay
  stratus_start --set upload.interval=1h --set upload.object_size=1GiB
  "$BIN/stratus-bench" produce -b "$SBS" -t replay -p 8 --create -n 2 -c 300000 -q >/dev/null 2>&1
  stratus_kill9
  stratus_start --set upload.interval=1h --set upload.object_size=1GiB
  local bytes
  bytes=$(grep -o 'replayed [^ ]*: [0-9]* records, [0-9]* bytes' "$SROOT/broker.log" | tail -1 | awk '{print $5}')
  value startup replay_start_ms "$SSTART_MS" ms
  value startup replay_bytes "${bytes:-0}" B
  # replay time = start-up time with this WAL minus start-up time with an empty one
  local rms=$(( SSTART_MS - empty_ms ))
  [ "$rms" -gt 0 ] || rms=1
  value startup replay_ms "$rms" ms
  [ -n "$bytes" ] && value startup replay_mb_s "$(awk "BEGIN{printf \"%.1f\", $bytes/1000/$rms}")" MB/s
  stratus_stop
}

W1_RATE=0
wl_produce() {
  log "1 produce: ${W1[*]} -d $DUR"
  stratus_new produce
  stratus_start
  measure stratus produce main -- "${W1[@]}" --create -d "$DUR"
  W1_RATE=$(jget "$LAST" '.msgs_s // 0')
  # uploads settle (interval 2s), then count PUTs over 10 idle seconds
  sleep 4
  local o0 o1; o0=$(count_objects); sleep 10; o1=$(count_objects)
  value produce idle_puts_10s "$((o1 - o0))"
  value produce objects_total "$o1"
  value produce objects_bytes "$(du -sb "$SROOT/objects" | awk '{print $1}')" B
  stratus_stop
  if [ "$MOCK" = 1 ]; then
    mock_start -t w1:8
    measure mock produce main -- "${W1[@]}" -d "$DUR"
    mock_stop
  fi
}

wl_consume() {
  local cdur=$((DUR + 4))
  for target in stratus mock; do
    [ "$target" = mock ] && [ "$MOCK" = 0 ] && continue
    log "2 consume tail ($target): 2 consumers from the end while workload 1 runs"
    if [ "$target" = stratus ]; then stratus_new consume; stratus_start
      "$BIN/stratus-bench" metadata -b "$SBS" >/dev/null 2>&1
      "$BIN/stratus-bench" produce -b "$SBS" -t w2 -p 8 --create -c 8 -q >/dev/null 2>&1
      "$BIN/stratus-bench" produce -b "$SBS" -t w2c -p 128 --create -c 128 -q >/dev/null 2>&1
    else mock_start -t w2:8 -t w2c:128; fi
    local pid bs; if [ "$target" = stratus ]; then pid=$SPID; bs=$SBS; else pid=$MPID; bs=$MBS; fi
    local pout="$WORK/w2-producer-$target.out"
    ( sleep 2; exec "$BIN/stratus-bench" produce -b "$bs" -t w2 -n 2 -s 1024 --acks all --linger 5 \
        --batch 1048576 -d "$DUR" -q --tag "$target/consume/producer" > "$pout" 2>/dev/null ) &
    BGPIDS+=($!)
    measure "$target" consume tail -- consume -t w2 -n 2 --from end -d "$cdur"
    wait "${BGPIDS[@]}" 2>/dev/null; BGPIDS=()
    local pres; pres=$(sed -n 's/^RESULT //p' "$pout" | tail -1); [ -n "$pres" ] || pres='{}'
    record "$(printf '{"kind":"bench","target":"%s","wl":"consume","run":"tail-producer","bench":%s}' "$target" "$pres")"
    log "2c consume cached ($target): 256 MiB written to 128 partitions, then 2 consumers flat out, 4 passes"
    "$BIN/stratus-bench" produce -b "$bs" -t w2c -n 2 -c 262144 -q >/dev/null 2>&1
    wait_idle "$pid" # the uploads of the tail run and of this data are ingest, not serving
    measure "$target" consume cached -- consume -t w2c -n 2 --from beginning --eof --passes 4 -d 120
    if [ "$target" = stratus ]; then stratus_stop; else mock_stop; fi
  done
}

catchup_reader_loop() { # bs seconds: re-read the catch-up topic from the start until time is up
  local end=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    "$BIN/stratus-bench" consume -b "$1" -t w3 -n 1 --from beginning --eof \
      -d $(( end - $(date +%s) )) -q --tag "stratus/isolation/reader" 2>/dev/null \
      | sed -n 's/^RESULT //p' >> "$WORK/w4-reader.jsonl"
  done
}

wl_catchup_and_isolation() { # $1: run catchup, $2: run isolation
  local n; n=$(awk "BEGIN{printf \"%d\", $CATCHUP_GIB * 1048576}")
  log "3 catch-up: write $CATCHUP_GIB GiB ($n x 1 KiB), restart, read it from objects"
  stratus_new catchup
  stratus_start
  "$BIN/stratus-bench" produce -b "$SBS" -t w3 -p 8 --create -n 2 -c "$n" -q 2>/dev/null \
    | sed -n 's/^RESULT //p' | while read -r l; do
      record "$(printf '{"kind":"bench","target":"stratus","wl":"catchup","run":"write","bench":%s}' "$l")"; done
  sleep 5 # the last upload (interval 2s)
  stratus_stop
  stratus_start
  value catchup restart_ms "$SSTART_MS" ms
  if [ "$1" = 1 ]; then
    measure stratus catchup read -- consume -t w3 -n 1 --from beginning --eof -d 600
  fi
  if [ "$2" = 1 ]; then
    if [ "$W1_RATE" = 0 ]; then
      log "4 isolation: measuring workload 1's flat-out rate first"
      measure stratus isolation flatout -- "${W1[@]/w1/w4f}" --create -d "$DUR"
      W1_RATE=$(jget "$LAST" '.msgs_s // 0')
    fi
    local half; half=$(awk "BEGIN{printf \"%d\", $W1_RATE / 2}")
    log "4 isolation: workload 1 at $half msgs/s alone, then beside the catch-up reader"
    # each of the three runs starts from an idle broker: the upload backlog of the run before
    # (a flat-out run leaves gigabytes) otherwise lands in one of them and not the others
    wait_idle "$SPID"
    measure stratus isolation alone -- "${W1[@]/w1/w4}" --create --rate "$half" -d "$DUR"
    wait_idle "$SPID"
    : > "$WORK/w4-reader.jsonl"
    catchup_reader_loop "$SBS" $((DUR + 6)) &
    BGPIDS+=($!)
    sleep 2
    sleep 3
    measure stratus isolation with_reader -- "${W1[@]/w1/w4}" --rate "$half" -d "$DUR"
    wait "${BGPIDS[@]}" 2>/dev/null; BGPIDS=()
    # control: the same produce beside one core of plain CPU contention (a shell busy loop,
    # no broker work at all): how much of the rise is the two shared cores, not the broker
    wait_idle "$SPID"
    timeout $((DUR + 4)) sh -c 'while :; do :; done' &
    BGPIDS+=($!)
    sleep 2
    measure stratus isolation with_hog -- "${W1[@]/w1/w4}" --rate "$half" -d "$DUR"
    wait "${BGPIDS[@]}" 2>/dev/null; BGPIDS=()
    while read -r l; do
      record "$(printf '{"kind":"bench","target":"stratus","wl":"isolation","run":"reader","bench":%s}' "$l")"
    done < "$WORK/w4-reader.jsonl"
  fi
  stratus_stop
}

wl_latency() {
  local args=(produce -t w5 -p 8 -n 2 -s 1024 --acks all --linger "$LAT_LINGER" --mbps 20 -d "$LAT_SECS")
  log "5 latency: ${args[*]}"
  stratus_new latency; stratus_start
  local w0 b0 w1 b1
  w0=$(metric stratus_wal_write_duration_seconds_count); b0=$(metric stratus_wal_write_bytes_total)
  measure stratus latency main -- "${args[@]}" --create
  w1=$(metric stratus_wal_write_duration_seconds_count); b1=$(metric stratus_wal_write_bytes_total)
  stratus_stop
  local wps=$(( (w1 - w0) / LAT_SECS )) wsz=$(( w1 > w0 ? (b1 - b0) / (w1 - w0) : 0 ))
  value latency wal_writes_per_s "$wps"
  value latency wal_write_bytes "$wsz" bytes
  if [ "$MOCK" = 1 ]; then
    mock_start -t w5:8
    measure mock latency main -- "${args[@]}"
    # The reference with durability's disk traffic: the mock again, beside one thread making
    # the WAL's writes of the Stratus run (same rate and size, O_DIRECT|O_DSYNC) and nothing
    # else. What it adds to the mock's tail is what those writes cost this machine's two
    # cores (interrupts, context switches, the writes' own CPU), before any broker work.
    if [ "$wps" -gt 0 ] && [ "$wsz" -gt 0 ]; then
      "$BIN/stratus-limits" -d /var/tmp -t "$((LAT_SECS + 2))" paced "$wps" "$wsz" \
        > "$WORK/paced.out" 2> /dev/null &
      local lpid=$!
      measure mock latency with_disk -- "${args[@]}"
      wait "$lpid"
      sed -n 's/^RESULT //p' "$WORK/paced.out" | while read -r l; do
        record "$(printf '{"kind":"limit","limit":%s}' "$l")"
      done
    fi
    mock_stop
  fi
}

wl_partitions() {
  # 2,000 records/s in all, one every 5 s to each partition: librdkafka itself cannot keep
  # 10,000 records/s over 10,000 partitions on this machine (measured against the mock too)
  local args=(produce -t w6 --topics 100 -p 100 -n 2 --split -s 1024 --acks all --linger 5 --rate 2000 -d "$DUR")
  log "6 many partitions: 100 topics x 100 partitions, a record every 5 s to each"
  stratus_new partitions; stratus_start
  local t0; t0=$(now_ns)
  "$BIN/stratus-bench" produce -b "$SBS" -t w6 --topics 100 -p 100 --create -c 1 -q >/dev/null 2>&1
  value partitions create_10k_ms "$(( ($(now_ns) - t0) / 1000000 ))" ms
  measure stratus partitions trickle -- "${args[@]}"
  stratus_stop
  stratus_start
  value partitions restart_ms "$SSTART_MS" ms
  local m; m=$("$BIN/stratus-bench" metadata -b "$SBS" 2>/dev/null | sed -n 's/^RESULT //p')
  [ -n "$m" ] || m='{}'
  value partitions restart_partitions "$(jget "$m" '.partitions // 0')"
  value partitions restart_hwm_kb "$(hwm_kb "$SPID")" kB
  stratus_stop
  if [ "$MOCK" = 1 ]; then
    mock_start -T w6:100:100
    value partitions mock_start_ms "$MSTART_MS" ms
    measure mock partitions trickle -- "${args[@]}"
    mock_stop
  fi
}

# ---- main ------------------------------------------------------------------------------------------
has() { local w; for w in "${WLS[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }
record "$(printf '{"kind":"meta","date":"%s","host":"%s","cpus":%s,"cpu_model":"%s","mem_gb":%s,"kernel":"%s","args":"%s","dur":%s,"repeat":%s,"catchup_gib":%s,"lat_secs":%s,"lat_linger":%s,"load_start":"%s","commit":"%s"}' \
  "$(date -u +%Y-%m-%dT%H:%MZ)" "$(hostname)" "$(nproc)" \
  "$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo | tr -d '"')" \
  "$(awk '/MemTotal/{printf "%.1f", $2/1048576}' /proc/meminfo)" "$(uname -r)" "${WLS[*]}" \
  "$DUR" "$REPEAT" "$CATCHUP_GIB" "$LAT_SECS" "$LAT_LINGER" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "$(cat "$REPO/.git/HEAD" 2>/dev/null | sed 's/ref: //' | while read -r r; do cat "$REPO/.git/$r" 2>/dev/null || echo "$r"; done | cut -c1-12)")"

case "$REPEAT" in ''|*[!0-9]*|0) echo "run.sh: --repeat needs a positive count" >&2; exit 2 ;; esac
for ((round = 1; round <= REPEAT; round++)); do
  [ "$REPEAT" -gt 1 ] && log "round $round of $REPEAT"
  has limits && wl_limits
  has startup && wl_startup
  has produce && wl_produce
  has consume && wl_consume
  if has catchup || has isolation; then
    wl_catchup_and_isolation "$(has catchup && echo 1 || echo 0)" "$(has isolation && echo 1 || echo 0)"
  fi
  has latency && wl_latency
  has partitions && wl_partitions
done

record "$(printf '{"kind":"value","wl":"machine","name":"load_avg_at_end","value":"%s"}' "$(cut -d' ' -f1-3 /proc/loadavg)")"
log "report"
"$PY" "$HERE/report.py" "$RES" ${OUT:+--out "$OUT"} --command "tests/bench/run.sh $ORIG_ARGS"
