#!/usr/bin/python3
"""kwire.py - a hand-written, minimal Kafka wire client for the raw integration tests.

Owns nothing but its sockets. Encodes by hand with struct.pack, independent of the broker's
codec: request header v1/v2, ApiVersions v0-3, Metadata v0/v1, Produce v3 with a record batch
v2 (CRC-32C computed here), Fetch v4, ListOffsets v1, CreateTopics v2. Decodes the responses
of those and the record batches inside a Fetch (uncompressed and gzip).
Wire format: every frame is int32 length + payload, big-endian (Kafka protocol guide).
SPDX-License-Identifier: Apache-2.0
"""
import gzip
import socket
import struct
import time

API_PRODUCE = 0
API_FETCH = 1
API_LISTOFFSETS = 2
API_METADATA = 3
API_APIVERSIONS = 18
API_CREATETOPICS = 19


# ---- CRC-32C (Castagnoli, reflected, poly 0x82F63B78) -----------------------------------
def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC_TABLE = _crc_table()


def crc32c(data, crc=0):
    c = crc ^ 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value


# ---- primitives --------------------------------------------------------------------------
def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def string(s):
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b)) + b


def kbytes(b):
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items):
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(items)


def uvarint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def varint(v):
    return uvarint((v << 1) ^ (v >> 63))  # zigzag


def compact_string(s):
    if s is None:
        return uvarint(0)
    b = s.encode() if isinstance(s, str) else s
    return uvarint(len(b) + 1) + b


class Reader:
    def __init__(self, buf, pos=0):
        self.buf = buf
        self.pos = pos

    def _take(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def i8(self):
        return self._take(">b")

    def i16(self):
        return self._take(">h")

    def i32(self):
        return self._take(">i")

    def u32(self):
        return self._take(">I")

    def i64(self):
        return self._take(">q")

    def raw(self, n):
        if self.pos + n > len(self.buf):
            raise ValueError("short buffer: want %d at %d of %d" % (n, self.pos, len(self.buf)))
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def string(self):
        n = self.i16()
        return None if n < 0 else self.raw(n).decode()

    def kbytes(self):
        n = self.i32()
        return None if n < 0 else self.raw(n)

    def array(self, fn):
        n = self.i32()
        return None if n < 0 else [fn(self) for _ in range(n)]

    def uvarint(self):
        shift = v = 0
        while True:
            b = self.buf[self.pos]
            self.pos += 1
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def varint(self):
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def remaining(self):
        return len(self.buf) - self.pos


# ---- record batch v2 ---------------------------------------------------------------------
def encode_record(offset_delta, ts_delta, key, value, headers=()):
    body = i8(0) + varint(ts_delta) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(len(headers))
    for hk, hv in headers:
        hk = hk.encode() if isinstance(hk, str) else hk
        body += varint(len(hk)) + hk
        body += varint(-1) if hv is None else varint(len(hv)) + hv
    return varint(len(body)) + body


def record_batch(records, base_ts=1700000000000, corrupt_crc=False):
    """records: [(key, value, headers)] or [(key, value, headers, timestamp_delta)].
    Returns a v2 batch with base offset 0."""
    recs = b"".join(encode_record(i, r[3] if len(r) > 3 else 0, r[0], r[1], r[2])
                    for i, r in enumerate(records))
    max_ts = base_ts + max([r[3] if len(r) > 3 else 0 for r in records] or [0])
    after_crc = (i16(0) + i32(len(records) - 1) + i64(base_ts) + i64(max_ts) + i64(-1) +
                 i16(-1) + i32(-1) + i32(len(records)) + recs)
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    after_len = i32(0) + i8(2) + struct.pack(">I", crc) + after_crc  # leader epoch, magic, crc
    return i64(0) + i32(len(after_len)) + after_len


def decode_batches(data, verify_crc=True):
    """The records of the v2 batches in data: [(offset, timestamp, key, value, headers)].
    A trailing partial batch (allowed in a Fetch response) is ignored."""
    out = []
    r = Reader(data)
    while r.remaining() >= 12:
        base_offset = r.i64()
        blen = r.i32()
        if blen > r.remaining():
            break
        b = Reader(r.raw(blen))
        b.i32()  # partition leader epoch
        magic = b.i8()
        if magic != 2:
            raise ValueError("batch at offset %d has magic %d" % (base_offset, magic))
        crc = b.u32()
        if verify_crc:
            got = crc32c(b.buf[b.pos:])
            if got != crc:
                raise ValueError("batch at offset %d: crc %08x, computed %08x" % (
                    base_offset, crc, got))
        attrs = b.i16()
        b.i32()  # last offset delta
        base_ts = b.i64()
        b.i64()  # max timestamp
        b.i64()
        b.i16()
        b.i32()
        count = b.i32()
        codec = attrs & 7
        rest = b.buf[b.pos:]
        if codec == 1:
            rest = gzip.decompress(rest)
        elif codec != 0:
            raise ValueError("codec %d not decodable here" % codec)
        if attrs & 0x20:  # control batch
            continue
        rr = Reader(rest)
        for _ in range(count):
            rr.varint()  # length
            rr.i8()
            tsd = rr.varint()
            od = rr.varint()
            kl = rr.varint()
            key = None if kl < 0 else rr.raw(kl)
            vl = rr.varint()
            val = None if vl < 0 else rr.raw(vl)
            hs = []
            for _ in range(rr.varint()):
                hk = rr.raw(rr.varint())
                hvl = rr.varint()
                hs.append((hk, None if hvl < 0 else rr.raw(hvl)))
            out.append((base_offset + od, base_ts + tsd, key, val, hs))
    return out


# ---- connection --------------------------------------------------------------------------
class Conn:
    def __init__(self, host, port, timeout=10.0, client_id="kwire"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.client_id = client_id
        self.corr = 0

    @classmethod
    def to(cls, bootstrap, **kw):
        h, _, p = bootstrap.rpartition(":")
        return cls(h, int(p), **kw)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def header(self, api_key, version, corr, flexible=False):
        h = i16(api_key) + i16(version) + i32(corr) + string(self.client_id)
        return h + (b"\x00" if flexible else b"")

    def frame(self, api_key, version, body, flexible=False, corr=None):
        if corr is None:
            self.corr += 1
            corr = self.corr
        payload = self.header(api_key, version, corr, flexible) + body
        return corr, i32(len(payload)) + payload

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def recv_frame(self):
        """(correlation id, rest of the response after the correlation id)."""
        n = struct.unpack(">i", self.recv_exact(4))[0]
        if n < 4 or n > 256 << 20:
            raise ValueError("bad response length %d" % n)
        p = self.recv_exact(n)
        return struct.unpack_from(">i", p)[0], p[4:]

    def request(self, api_key, version, body, flexible=False):
        corr, fr = self.frame(api_key, version, body, flexible)
        self.send_raw(fr)
        got, payload = self.recv_frame()
        if got != corr:
            raise ValueError("correlation id %d, want %d" % (got, corr))
        return payload

    # ---- APIs ----
    def api_versions(self, version=0):
        flexible = version >= 3
        body = b""
        if flexible:
            body = compact_string("kwire") + compact_string("0.1") + b"\x00"
        p = self.request(API_APIVERSIONS, version, body, flexible)
        return parse_api_versions(p, version)

    def metadata(self, topics=None, version=1):
        if version == 0:
            body = array([string(t) for t in (topics or [])])
        else:
            body = array(None if topics is None else [string(t) for t in topics])
        return parse_metadata(self.request(API_METADATA, version, body), version)

    def produce(self, topic, partition, batch, acks=-1, timeout_ms=10000):
        body = (string(None) + i16(acks) + i32(timeout_ms) +
                array([string(topic) + array([i32(partition) + kbytes(batch)])]))
        r = Reader(self.request(API_PRODUCE, 3, body))
        res = {}
        for _ in range(r.i32()):
            t = r.string()
            for _ in range(r.i32()):
                p = r.i32()
                res[(t, p)] = {"error": r.i16(), "base_offset": r.i64(), "log_append_time": r.i64()}
        return res

    def fetch(self, topic, partition, offset, max_bytes=8 << 20, max_wait_ms=100, min_bytes=1):
        body = (i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(max_bytes) + i8(0) +
                array([string(topic) + array([i32(partition) + i64(offset) + i32(max_bytes)])]))
        r = Reader(self.request(API_FETCH, 4, body))
        r.i32()  # throttle
        res = {}
        for _ in range(r.i32()):
            t = r.string()
            for _ in range(r.i32()):
                p = r.i32()
                err = r.i16()
                hw = r.i64()
                lso = r.i64()
                r.array(lambda x: (x.i64(), x.i64()))
                recs = r.kbytes()
                res[(t, p)] = {"error": err, "high_watermark": hw, "lso": lso,
                               "records": recs or b""}
        return res

    def fetch_all(self, topic, partition, start=0, end=None, verify_crc=False, timeout=60.0):
        """Every record from start up to end (default: the high watermark)."""
        out = []
        off = start
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = self.fetch(topic, partition, off)[(topic, partition)]
            if res["error"]:
                raise KafkaError(res["error"], "fetch %s/%d at %d" % (topic, partition, off))
            stop = res["high_watermark"] if end is None else end
            if off >= stop:
                return out
            recs = [x for x in decode_batches(res["records"], verify_crc) if x[0] >= off]
            if not recs:
                if off < stop:
                    continue  # nothing yet (e.g. a cold read on its way): ask again
            for x in recs:
                if x[0] < stop:
                    out.append(x)
            off = recs[-1][0] + 1 if recs else off
        raise RuntimeError("fetch_all %s/%d: stuck at offset %d (end %s) for %.0fs" % (
            topic, partition, off, end, timeout))

    def list_offsets(self, topic, partition, timestamp):
        body = i32(-1) + array([string(topic) + array([i32(partition) + i64(timestamp)])])
        r = Reader(self.request(API_LISTOFFSETS, 1, body))
        res = {}
        for _ in range(r.i32()):
            t = r.string()
            for _ in range(r.i32()):
                p = r.i32()
                res[(t, p)] = {"error": r.i16(), "timestamp": r.i64(), "offset": r.i64()}
        return res[(topic, partition)]

    def create_topic(self, name, partitions=1, configs=None, timeout_ms=10000):
        cfg = [string(k) + string(v) for k, v in (configs or {}).items()]
        body = (array([string(name) + i32(partitions) + i16(1) + array([]) + array(cfg)]) +
                i32(timeout_ms) + i8(0))
        r = Reader(self.request(API_CREATETOPICS, 2, body))
        r.i32()
        res = {}
        for _ in range(r.i32()):
            t = r.string()
            res[t] = (r.i16(), r.string())
        return res[name]


class KafkaError(Exception):
    def __init__(self, code, what):
        super().__init__("%s: Kafka error %d" % (what, code))
        self.code = code


def parse_api_versions(p, version):
    r = Reader(p)
    err = r.i16()
    keys = {}
    if version >= 3:
        n = r.uvarint() - 1
        for _ in range(max(n, 0)):
            k, lo, hi = r.i16(), r.i16(), r.i16()
            r.uvarint()  # tagged fields
            keys[k] = (lo, hi)
    else:
        for _ in range(r.i32()):
            k, lo, hi = r.i16(), r.i16(), r.i16()
            keys[k] = (lo, hi)
    return err, keys


def parse_metadata(p, version):
    r = Reader(p)
    brokers = []
    for _ in range(r.i32()):
        b = {"node_id": r.i32(), "host": r.string(), "port": r.i32()}
        if version >= 1:
            b["rack"] = r.string()
        brokers.append(b)
    controller = r.i32() if version >= 1 else None
    topics = {}
    for _ in range(r.i32()):
        err = r.i16()
        name = r.string()
        internal = r.i8() if version >= 1 else 0
        parts = {}
        for _ in range(r.i32()):
            perr = r.i16()
            pid = r.i32()
            leader = r.i32()
            replicas = r.array(lambda x: x.i32())
            isr = r.array(lambda x: x.i32())
            parts[pid] = {"error": perr, "leader": leader, "replicas": replicas, "isr": isr}
        topics[name] = {"error": err, "internal": internal, "partitions": parts}
    return {"brokers": brokers, "controller": controller, "topics": topics}
