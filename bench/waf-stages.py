#!/usr/bin/env python3
"""Usage: bench/waf-stages.py <crs-tests-dir>

Prints every stage of OWASP CRS regression tests (YAML, CRS 3.x or CRS 4 format) as one
JSON line: {"test": title#stage, "family": 941|942|others, "kind": attack|negative,
"request": the raw HTTP request, one character per byte (Latin-1)}, the requests exactly as bench/waf-replay.py
sends them. Feeds the `injection-verdicts` example, which prints what the `injection`
filter's detectors make of every value in each request without a gateway or network:

    python3 bench/waf-stages.py ../shared/corpora/waf/crs-v3.3.4 \\
      | cargo run -q --release -p haetae-gateway --example injection-verdicts
"""
import importlib.util, json, os, sys


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("waf_replay", os.path.join(here, "waf-replay.py"))
    replay = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(replay)
    out = sys.stdout
    for title, fam, kind, req in replay.load_stages(sys.argv[1]):
        out.write(json.dumps({"test": title, "family": fam, "kind": kind,
                              "request": req.decode("latin-1")}) + "\n")


if __name__ == "__main__":
    main()
