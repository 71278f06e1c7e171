#!/usr/bin/env python3
"""Checks testdata/vectors.json with an independent implementation (Python's hashlib/hmac
and, when installed, the `cryptography` package's AES-GCM): commitment, transcript, SAS,
HKDF keys and every sealed frame. Usage: python3 check_vectors.py [vectors.json]"""
import hashlib, hmac, json, os, struct, sys

path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "vectors.json")
v = json.load(open(path))
h, b = v["handshake"], bytes.fromhex


def H(*parts):
    m = hashlib.sha256()
    for p in parts:
        m.update(struct.pack(">I", len(p)))
        m.update(p)
    return m.digest()


sid = b(h["sid"])
commit = H(b"haetae-commit", sid, b(h["customer_public"]), b(h["customer_nonce"]))
assert commit.hex() == h["commit"], "commit"
tr = H(sid, commit, b(h["agent_public"]), b(h["agent_nonce"]), b(h["customer_public"]), b(h["customer_nonce"]))
assert tr.hex() == h["transcript"], "transcript"
sas = H(b"haetae-sas", tr, b(h["shared"]))
assert "%06d" % (int.from_bytes(sas[:4], "big") % 1000000) == h["sas"], "sas"
prk = hmac.new(tr, b(h["shared"]), hashlib.sha256).digest()  # HKDF-Extract(salt=transcript)
expand = lambda info: hmac.new(prk, info + b"\x01", hashlib.sha256).digest()  # one block
assert expand(b"haetae rs v1 a->c").hex() == h["key_a2c"], "key a->c"
assert expand(b"haetae rs v1 c->a").hex() == h["key_c2a"], "key c->a"
assert expand(b"haetae rs v1 resume").hex() == h["resume_secret"], "resume"
try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:
    print("handshake ok; sealed frames not checked (no `cryptography` module)")
    sys.exit(0)
for s in v["sealed"]:
    key = b(h["key_a2c"] if s["direction"] == "a->c" else h["key_c2a"])
    frame = b(s["frame"])
    ciphertext = frame[6 + 8 + 1 + 4:]  # frame header, seq, type, u32 length
    assert AESGCM(key).decrypt(b(s["nonce"]), ciphertext, b(s["aad"])) == b(s["body"]), s
print("handshake and %d sealed frames ok" % len(v["sealed"]))
