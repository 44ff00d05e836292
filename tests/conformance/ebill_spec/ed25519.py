"""The one signature rule (docs/spec/signatures.md).

`cryptography` (OpenSSL) checks S < L and the cofactorless equation [S]B - [k]A == R
by comparing encodings, but accepts small-order A and R. This module adds what the spec
requires on top: A and R must decode (RFC 8032 section 5.1.3, which also refuses
non-canonical encodings) and must not be of small order ([8]P is not the identity).
"""

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def decode_point(b):
    """The affine point (x, y) of a 32-byte encoding, or None if it is not a canonical
    encoding of a curve point (RFC 8032 section 5.1.3)."""
    if len(b) != 32:
        return None
    n = int.from_bytes(b, "little")
    sign = n >> 255
    y = n & ((1 << 255) - 1)
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        if sign:
            return None
        return (0, y)
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y)


def _add(p1, p2):
    (x1, y1), (x2, y2) = p1, p2
    t = D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P
    return (x3, y3)


def is_small_order(point):
    q = point
    for _ in range(3):
        q = _add(q, q)
    return q == (0, 1)


def usable_key(pk):
    """Whether a 32-byte public key may be registered and verify (signatures.md 1)."""
    pt = decode_point(pk)
    return pt is not None and not is_small_order(pt)


def verify(pk, msg, sig):
    """The signature rule of signatures.md section 2."""
    if len(sig) != 64 or not usable_key(pk):
        return False
    r = decode_point(sig[:32])
    if r is None or is_small_order(r):
        return False
    if int.from_bytes(sig[32:], "little") >= L:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key(seed):
    """The RFC 8032 public key of a 32-byte seed."""
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def sign(seed, msg):
    return Ed25519PrivateKey.from_private_bytes(seed).sign(msg)
