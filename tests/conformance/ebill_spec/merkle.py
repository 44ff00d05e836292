"""The RFC 6962 transaction tree (docs/spec/merkle.md)."""

from .codec import sha256


def leaf_hash(data):
    return sha256(b"\x00", data)


def node_hash(left, right):
    return sha256(b"\x01", left, right)


def root(leaf_hashes):
    n = len(leaf_hashes)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaf_hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(root(leaf_hashes[:k]), root(leaf_hashes[k:]))


def audit_path(leaf_hashes, index):
    """RFC 6962 section 2.1.1's PATH(m, D[n]), leaf to root."""
    n = len(leaf_hashes)
    if n <= 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if index < k:
        return audit_path(leaf_hashes[:k], index) + [root(leaf_hashes[k:])]
    return audit_path(leaf_hashes[k:], index - k) + [root(leaf_hashes[:k])]


def root_from_path(leaf, leaf_index, tree_size, path):
    """RFC 9162 section 2.1.3.2; None when the path cannot belong to such a tree."""
    if leaf_index >= tree_size:
        return None
    fn, sn, r = leaf_index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None
    return r
