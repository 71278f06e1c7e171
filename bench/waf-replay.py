#!/usr/bin/env python3
"""Usage: bench/waf-replay.py [--dump FILE] <crs-tests-dir> NAME=HOST:PORT [NAME=HOST:PORT ...]

Replays OWASP CRS regression tests (YAML, go-ftw format: CRS 3.x and CRS 4) against one or more HTTP
endpoints in one run (bench/waf-eval.sh starts them) and prints, per target and per rule
family (941 XSS, 942 SQLi, others), the attack stages (output.log_contains) and negative
stages (output.no_log_contains) that did not reach the application: any status but the
application's 200 counts as blocked (a 400 from the proxy's own HTTP parser too, for every
target alike). The application behind each endpoint must answer 200 to everything.

Stages are sent byte for byte as the YAML describes them (method, uri, version, headers,
data); stages given only as raw_request/encoded_request are sent as those bytes. Each
stage is sent once per target, over a fresh connection, targets in parallel.

--dump FILE writes one JSON line per stage and target (test title, family, kind, status)
so two runs can be compared stage by stage."""
import base64, glob, json, os, socket, sys, threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import yaml


def to_bytes(s):
    if isinstance(s, bytes):
        return s
    return str(s).encode("utf-8", "surrogateescape")


def build_request(stage):
    inp = stage.get("input", {}) or {}
    if "encoded_request" in inp:
        try:
            return base64.b64decode(inp["encoded_request"])
        except Exception:
            return None
    if "raw_request" in inp:
        raw = to_bytes(inp["raw_request"])
        return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    method = str(inp.get("method", "GET"))
    uri = str(inp.get("uri", "/"))
    version = str(inp.get("version", "HTTP/1.1"))
    headers = dict(inp.get("headers") or {})
    data = inp.get("data", "")
    if isinstance(data, list):
        data = "\r\n".join(str(d) for d in data) + "\r\n"
    body = to_bytes(data) if data is not None else b""
    if body and not any(k.lower() == "content-length" for k in headers):
        headers["Content-Length"] = str(len(body))
    if not any(k.lower() == "host" for k in headers):
        headers["Host"] = "localhost"
    headers = {k: v for k, v in headers.items() if k.lower() != "connection"}
    headers["Connection"] = "close"
    # HTTP/0.9 and spaces in the URI make a request no proxy here parses; send it as HTTP/1.1.
    if version.upper() in ("HTTP/0.9", "") or " " in uri:
        version = "HTTP/1.1"
    req = to_bytes(f"{method} {uri} {version}\r\n")
    for k, v in headers.items():
        req += to_bytes(f"{k}: {v}\r\n")
    return req + b"\r\n" + body


def send(addr, req):
    host, port = addr
    try:
        with socket.create_connection((host, port), timeout=10) as s:
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


def family_of(rule_dir):
    parts = rule_dir.split("-")
    fam = parts[1] if len(parts) > 1 else "?"
    return fam if fam in ("941", "942") else "others"


def load_stages(corpus):
    stages = []
    for path in sorted(glob.glob(os.path.join(corpus, "*", "*.yaml"))):
        fam = family_of(os.path.basename(os.path.dirname(path)))
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            try:
                doc = yaml.safe_load(f)
            except Exception as e:
                print(f"waf-replay: {path}: {e}", file=sys.stderr)
                continue
        for test in (doc or {}).get("tests", []) or []:
            for i, st in enumerate(test.get("stages", []) or []):
                stage = st.get("stage", st)
                out = stage.get("output", {}) or {}
                log = out.get("log", {}) or {}
                # CRS 3.x: log_contains / no_log_contains; CRS 4 (go-ftw 1.x):
                # log.expect_ids / log.no_expect_ids.
                if "log_contains" in out or log.get("expect_ids"):
                    kind = "attack"
                elif "no_log_contains" in out or log.get("no_expect_ids"):
                    kind = "negative"
                else:
                    continue
                req = build_request(stage)
                if req is None:
                    continue
                title = test.get("test_title") or f"{doc.get('rule_id', '?')}-{test.get('test_id', '?')}"
                stages.append((f"{title}#{i}", fam, kind, req))
    return stages


def main():
    args = sys.argv[1:]
    dump = None
    if len(args) >= 2 and args[0] == "--dump":
        dump, args = args[1], args[2:]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    corpus = args[0]
    targets = []
    for t in args[1:]:
        name, _, addr = t.partition("=")
        host, _, port = addr.rpartition(":")
        targets.append((name, (host, int(port))))
    stages = load_stages(corpus)
    # stats[target][family] = [attacks, attacks blocked, negatives, negatives blocked]
    stats = {name: defaultdict(lambda: [0, 0, 0, 0]) for name, _ in targets}
    lock = threading.Lock()
    rows = []

    def run(job):
        (name, addr), (title, fam, kind, req) = job
        status = send(addr, req)
        blocked = status != 200
        with lock:
            s = stats[name][fam]
            if kind == "attack":
                s[0] += 1
                s[1] += blocked
            else:
                s[2] += 1
                s[3] += blocked
            if dump:
                rows.append({"target": name, "test": title, "family": fam, "kind": kind, "status": status})

    jobs = [(t, st) for st in stages for t in targets]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(run, jobs))
    if dump:
        with open(dump, "w") as f:
            for r in sorted(rows, key=lambda r: (r["target"], r["test"])):
                f.write(json.dumps(r) + "\n")

    def pct(a, b):
        return f"{a}/{b} = {100 * a / b:.0f}%" if b else "-"

    print(f"| target | family | attack stages blocked | negative stages blocked |")
    print(f"|---|---|---|---|")
    for name, _ in targets:
        for fam, label in (("941", "941 XSS"), ("942", "942 SQLi"), ("others", "others")):
            a, ab, n, nb = stats[name][fam]
            print(f"| {name} | {label} | {pct(ab, a)} | {pct(nb, n)} |")


if __name__ == "__main__":
    main()
