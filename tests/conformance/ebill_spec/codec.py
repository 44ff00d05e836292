"""The canonical encoding (docs/spec/encoding.md)."""

import hashlib
import struct


class DecodeError(Exception):
    """The bytes are not a canonical encoding."""


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


class Encoder:
    def __init__(self, domain=None):
        self.buf = bytearray()
        if domain is not None:
            self.text(domain)

    def u8(self, v):
        self.buf += struct.pack(">B", v)
        return self

    def u16(self, v):
        self.buf += struct.pack(">H", v)
        return self

    def u32(self, v):
        self.buf += struct.pack(">I", v)
        return self

    def u64(self, v):
        self.buf += struct.pack(">Q", v)
        return self

    def i16(self, v):
        self.buf += struct.pack(">h", v)
        return self

    def i64(self, v):
        self.buf += struct.pack(">q", v)
        return self

    def fixed(self, b, n=None):
        if n is not None and len(b) != n:
            raise ValueError(f"fixed field of {n} bytes given {len(b)}")
        self.buf += b
        return self

    def bytes(self, b):
        self.u32(len(b))
        self.buf += b
        return self

    def text(self, s):
        return self.bytes(s.encode("utf-8"))

    def option(self, v, f):
        if v is None:
            self.u8(0)
        else:
            self.u8(1)
            f(self, v)
        return self

    def seq(self, items, f):
        self.u32(len(items))
        for x in items:
            f(self, x)
        return self

    def finish(self):
        return bytes(self.buf)


class Decoder:
    def __init__(self, buf):
        self.buf = bytes(buf)
        self.pos = 0

    def remaining(self):
        return len(self.buf) - self.pos

    def take(self, n, what="value"):
        if self.remaining() < n:
            raise DecodeError(f"input ends inside {what}")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self, what="u8"):
        return self.take(1, what)[0]

    def u16(self, what="u16"):
        return struct.unpack(">H", self.take(2, what))[0]

    def u32(self, what="u32"):
        return struct.unpack(">I", self.take(4, what))[0]

    def u64(self, what="u64"):
        return struct.unpack(">Q", self.take(8, what))[0]

    def i16(self, what="i16"):
        return struct.unpack(">h", self.take(2, what))[0]

    def i64(self, what="i64"):
        return struct.unpack(">q", self.take(8, what))[0]

    def bool(self, what="flag"):
        v = self.u8(what)
        if v not in (0, 1):
            raise DecodeError(f"{what}: flag {v} is neither 0 nor 1")
        return v == 1

    def bytes(self, max_len, what="bytes"):
        n = self.u32(what)
        if n > max_len:
            raise DecodeError(f"{what} is {n} bytes, over {max_len}")
        return self.take(n, what)

    def text(self, max_len, what="text"):
        raw = self.bytes(max_len, what)
        try:
            return raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise DecodeError(f"{what} is not UTF-8") from None

    def domain(self, tag):
        raw = self.bytes(len(tag), "domain tag")
        if raw != tag.encode():
            raise DecodeError(f"wrong domain tag, expected {tag}")

    def option(self, f, what="option"):
        return f(self) if self.bool(what) else None

    def seq(self, max_len, f, what="sequence"):
        n = self.u32(what)
        if n > max_len:
            raise DecodeError(f"{what} has {n} items, over {max_len}")
        if n > self.remaining():
            raise DecodeError(f"{what} claims {n} items in {self.remaining()} bytes")
        return [f(self) for _ in range(n)]

    def finish(self):
        if self.remaining():
            raise DecodeError(f"{self.remaining()} trailing bytes")


def decode_all(data, f):
    d = Decoder(data)
    v = f(d)
    d.finish()
    return v
