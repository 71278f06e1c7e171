#!/usr/bin/env python3
"""Usage: bench/waf-replay.py <crs-tests-dir> <host> <port>

First step towards bench/waf-eval.sh (issue 7): replays OWASP CRS regression tests (YAML, ftw format) against an HTTP endpoint and counts,
per rule family, attack stages (output.log_contains) and negative stages
(output.no_log_contains) that did not reach the application (anything but its 200).
The application behind the endpoint must answer 200 to everything. Stages given as
raw_request/encoded_request are skipped. Not yet: starting the gateway, the backend and
nginx + ModSecurity + CRS (PL1, PL2) itself, as bench/waf-eval.sh is to do."""
import glob, os, socket, sys, yaml
from collections import defaultdict

def send(host, port, stage):
    inp = stage.get("input", {})
    if "raw_request" in inp or "encoded_request" in inp:
        return None
    method = inp.get("method", "GET")
    uri = inp.get("uri", "/")
    version = inp.get("version", "HTTP/1.1")
    headers = dict(inp.get("headers") or {})
    data = inp.get("data", "")
    if isinstance(data, list):
        data = "\r\n".join(data) + "\r\n"
    body = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
    if body and not any(k.lower() == "content-length" for k in headers):
        headers["Content-Length"] = str(len(body))
    if not any(k.lower() == "host" for k in headers):
        headers["Host"] = "localhost"
    headers["Connection"] = "close"
    if version.upper() == "HTTP/0.9" or " " in uri:
        version = "HTTP/1.1"
    req = f"{method} {uri} {version}\r\n".encode("utf-8", "surrogateescape")
    for k, v in headers.items():
        req += f"{k}: {v}\r\n".encode("utf-8", "surrogateescape")
    req += b"\r\n" + body
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(req)
            resp = b""
            while b"\r\n" not in resp:
                chunk = s.recv(4096)
                if not chunk:
                    break
                resp += chunk
        parts = resp.split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 else 0
    except Exception:
        return 0

def main():
    corpus, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    stats = defaultdict(lambda: [0, 0, 0, 0])  # attacks, attacks blocked, negatives, negatives blocked
    for path in sorted(glob.glob(os.path.join(corpus, "*", "*.yaml"))):
        rule_dir = os.path.basename(os.path.dirname(path))
        fam = rule_dir.split("-")[1]
        fam = fam if fam in ("941", "942") else "others"
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            try:
                doc = yaml.safe_load(f)
            except Exception:
                continue
        for test in doc.get("tests", []) or []:
            for st in test.get("stages", []) or []:
                stage = st.get("stage", st)
                out = stage.get("output", {}) or {}
                attack = "log_contains" in out
                negative = "no_log_contains" in out
                if not (attack or negative):
                    continue
                status = send(host, port, stage)
                if status is None:
                    continue
                s = stats[fam]
                if attack:
                    s[0] += 1; s[1] += status != 200
                else:
                    s[2] += 1; s[3] += status != 200
    print(f"{'family':8} {'attacks':>8} {'blocked':>8} {'rate':>6} {'negatives':>9} {'blocked':>8} {'rate':>6}")
    for fam in ("941", "942", "others"):
        a, ab, n, nb = stats[fam]
        print(f"{fam:8} {a:8} {ab:8} {100*ab/max(a,1):5.1f}% {n:9} {nb:8} {100*nb/max(n,1):5.1f}%")

if __name__ == "__main__":
    main()
