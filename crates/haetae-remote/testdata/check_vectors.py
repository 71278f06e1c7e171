#!/usr/bin/env python3
"""Checks testdata/vectors.json with an independent implementation (Python's hashlib/hmac
and, when installed, the `cryptography` package's AES-GCM): commitment, transcript, SAS,
HKDF keys and every sealed frame, and the resume (re-key MACs, new keys, the Resume frames
and the retransmitted chat). Usage: python3 check_vectors.py [vectors.json]"""
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

# Resume: each Rekey's MAC under the resume secret, the new keys, the frames under them.
r = v.get("resume")
if r:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

    def lp(*parts):
        return b"".join(struct.pack(">I", len(p)) + p for p in parts)

    resume = b(h["resume_secret"])
    halves = []
    for role, name in ((0, "agent"), (1, "customer")):
        body = b(r[name + "_rekey"])[6:]
        gen, pub, nonce, mac = body[:4], body[4:36], body[36:68], body[68:100]
        sk = X25519PrivateKey.from_private_bytes(b(r[name + "_secret"]))
        assert sk.public_key().public_bytes_raw() == pub, name + " rekey public key"
        assert nonce == b(r[name + "_nonce"]), name + " rekey nonce"
        want = hmac.new(resume, lp(b"haetae-rekey-mac", sid, bytes([role]), gen, pub, nonce), hashlib.sha256).digest()
        assert mac == want, name + " rekey mac"
        halves.append((sk, gen, pub, nonce))
    shared = halves[0][0].exchange(X25519PublicKey.from_public_bytes(halves[1][2]))
    assert shared.hex() == r["shared"], "rekey shared secret"
    salt = H(b"haetae-rekey", sid, resume, *halves[0][1:], *halves[1][1:])
    prk2 = hmac.new(salt, shared, hashlib.sha256).digest()
    k = lambda info: hmac.new(prk2, info + b"\x01", hashlib.sha256).digest()
    assert k(b"haetae rs v1 a->c").hex() == r["key_a2c"], "rekey a->c"
    assert k(b"haetae rs v1 c->a").hex() == r["key_c2a"], "rekey c->a"

    def open_frame(key, direction, frame):
        seq, kind = frame[6:14], frame[14]
        aad = sid + bytes([direction]) + seq + bytes([kind])
        return kind, AESGCM(key).decrypt(b"\0\0\0\0" + seq, frame[19:], aad)

    assert open_frame(b(r["key_c2a"]), 1, b(r["customer_resume"])) == (0x36, struct.pack(">Q", 2)), "customer Resume"
    assert open_frame(b(r["key_a2c"]), 0, b(r["agent_resume"])) == (0x36, struct.pack(">Q", 1)), "agent Resume"
    assert open_frame(b(r["key_a2c"]), 0, b(r["retransmitted"])) == (0x21, b(r["lost"]["body"])), "retransmitted chat"
    print("resume: re-key MACs, keys, Resume frames and the retransmission ok")
