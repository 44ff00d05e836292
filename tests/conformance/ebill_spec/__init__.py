"""An independent implementation of ebill's byte formats, written from docs/spec alone.

Modules: codec (docs/spec/encoding.md), ed25519 (signatures.md), model (text, money,
credit codes, bills, transactions, headers, certificates, genesis, state tree values:
their JSON forms and canonical bytes), merkle (merkle.md), state_tree (state-tree.md),
verify (proof-bundle.md, absence.md), keyfile (keyfile.md).
"""
