#!/usr/bin/env python3
"""Known-answer vectors of transfer_tree_test.c, computed independently of
the C code: Python's hashlib BLAKE2b and the recursive Merkle tree hash of
RFC 6962 section 2.1 (split at the largest power of two below n), with the
manifest and CID layout of docs/protocols/transfer.md section 2.
Run: python3 xfer_vectors.py  (prints the values the test embeds)."""
import base64
import hashlib


def h(b):
    return hashlib.blake2b(b, digest_size=32).digest()


def mth(leaves):
    n = len(leaves)
    if n == 0:
        return h(b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return h(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def data(n):
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def resource(blob, chunk, name=b""):
    chunks = [blob[i:i + chunk] for i in range(0, len(blob), chunk)]
    leaves = [h(b"\x00" + c) for c in chunks]
    root = mth(leaves)
    m = (varint(1) + varint(0xB220) + varint(len(blob)) + varint(chunk) + varint(len(leaves)) +
         root + varint(len(name)) + name)
    cid = b"\x01\x55" + varint(0xB220) + b"\x20" + h(m)
    s = "b" + base64.b32encode(cid).decode().lower().rstrip("=")
    return root, m, s


for label, blob, chunk, name in [
    ("empty", b"", 256 * 1024, b""),
    ("hello", b"hello world\n", 256 * 1024, b"hello.txt"),
    ("odd5", data(5 * 16384 + 100), 16384, b""),
    ("seven", data(7 * 16384), 16384, b"seven.bin"),
]:
    root, m, s = resource(blob, chunk, name)
    print(label, "root", root.hex())
    print(label, "manifest", m.hex())
    print(label, "cid", s)
