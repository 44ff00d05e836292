"""Key files (docs/spec/keyfile.md): plaintext and sealed with a passphrase."""

import struct

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from .codec import Encoder
from . import ed25519, model
from .model import Invalid


def read_plain(obj):
    o = model.fields(obj, ["type", "public_key", "seed"], ["credit_code", "role"], what="key file")
    if o["type"] != "ebill-key/v1":
        raise Invalid("not an ebill-key/v1 file")
    seed = model.hex_bytes(o["seed"], 32, "seed")
    if ed25519.public_key(seed) != model.hex_bytes(o["public_key"], 32, "public_key"):
        raise Invalid("public key is not the seed's")
    return seed


def _kdf_fields(o):
    k = model.fields(o["kdf"], ["alg", "m_kib", "t", "p", "salt"], what="kdf")
    a = model.fields(o["aead"], ["alg", "nonce"], what="aead")
    if k["alg"] != "argon2id" or a["alg"] != "xchacha20poly1305":
        raise Invalid("unknown kdf or aead")
    m, t, p = (model.integer(k[x], 32, x) for x in ("m_kib", "t", "p"))
    if not (1 <= p <= 16 and 8 * p <= m <= 1024 * 1024 and 1 <= t <= 32 and m * t <= 4 * 1024 * 1024):
        raise Invalid("argon2id cost out of bounds")
    return m, t, p, model.hex_bytes(k["salt"], 16, "salt"), model.hex_bytes(a["nonce"], 24, "nonce")


def associated_data(obj):
    o = model.fields(obj, ["type", "public_key", "kdf", "aead", "ciphertext"], ["credit_code", "role"],
                     what="sealed key file")
    if o["type"] != "ebill-key-sealed/v1":
        raise Invalid("not an ebill-key-sealed/v1 file")
    role = o.get("role")
    if role is not None and len(model.string(role, "role").encode()) > 64:
        raise Invalid("role over 64 bytes")
    m, t, p, salt, nonce = _kdf_fields(o)
    cc = o.get("credit_code")
    e = Encoder("ebill-key-sealed/v1").fixed(model.hex_bytes(o["public_key"], 32, "public_key"), 32)
    e.option(None if cc is None else model.credit_code(cc), lambda e, c: e.text(c))
    e.option(role, lambda e, r: e.text(r))
    e.text("argon2id").u32(m).u32(t).u32(p).fixed(salt, 16).text("xchacha20poly1305").fixed(nonce, 24)
    return e.finish()


def _rotl(v, n):
    return ((v << n) | (v >> (32 - n))) & 0xFFFFFFFF


def hchacha20(key, nonce16):
    """HChaCha20 (draft-irtf-cfrg-xchacha section 2.2)."""
    s = list(struct.unpack("<4I", b"expand 32-byte k")) + list(struct.unpack("<8I", key)) \
        + list(struct.unpack("<4I", nonce16))

    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def open_sealed(obj, passphrase):
    """The seed of a sealed key file; raises Invalid on a wrong passphrase or damage."""
    ad = associated_data(obj)
    m, t, p, salt, nonce = _kdf_fields(obj)
    key = Argon2id(salt=salt, length=32, iterations=t, lanes=p, memory_cost=m).derive(passphrase)
    sub = hchacha20(key, nonce[:16])
    ct = model.hex_bytes(obj["ciphertext"], 48, "ciphertext")
    try:
        seed = ChaCha20Poly1305(sub).decrypt(b"\0\0\0\0" + nonce[16:], ct, ad)
    except Exception:
        raise Invalid("wrong passphrase or damaged file") from None
    if ed25519.public_key(seed) != bytes.fromhex(obj["public_key"]):
        raise Invalid("public key is not the seed's")
    return seed
