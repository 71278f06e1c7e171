#!/usr/bin/env python3
"""Evaluates `haetae scan` against the labelled corpus in ../shared/corpora.

Runs the scanner once over the corpus (JSON lines), joins the reports with MANIFEST.tsv
by path, and prints:
  * detection on files labelled corrupt / fuzz-crash (flagged = verdict not clean),
  * the `vulnerable` rate on files labelled valid,
  * with --show, every miss and every valid file judged vulnerable, with its findings.
Exit status 1 when a target is missed (by default issue 4's: >= 95% flagged, <= 1%
vulnerable; --min-flagged/--max-vulnerable set others), or on any panic or unreadable file.

usage: bench/docscan-eval.py [--haetae target/release/haetae] [--corpus ../shared/corpora] [--show]
"""
import argparse
import collections
import json
import os
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--haetae", default="target/release/haetae")
    ap.add_argument("--corpus", default=os.environ.get("HAETAE_SHARED", "../shared") + "/corpora")
    ap.add_argument("--show", action="store_true", help="list misses and false positives")
    ap.add_argument("--min-flagged", type=float, default=0.95,
                    help="fail below this share of PngSuite x* + POI fuzz-crash flagged")
    ap.add_argument("--max-vulnerable", type=float, default=0.01,
                    help="fail above this share of valid files judged vulnerable")
    ap.add_argument("--time-budget-ms", type=int, default=None,
                    help="per-file time budget passed to haetae scan (CI uses a debug build: "
                         "a generous budget keeps verdicts independent of its speed)")
    args = ap.parse_args()

    manifest = {}
    with open(os.path.join(args.corpus, "MANIFEST.tsv"), encoding="utf-8") as f:
        next(f)
        for line in f:
            path, _sha, _size, _source, label = line.rstrip("\n").split("\t")
            if path.startswith("waf/"):
                continue  # HTTP test cases, not documents
            manifest[path] = label

    dirs = sorted({p.split("/")[0] for p in manifest})
    cmd = [args.haetae, "scan", "--json"]
    if args.time_budget_ms is not None:
        cmd += ["--time-budget-ms", str(args.time_budget_ms)]
    cmd += [os.path.join(args.corpus, d) for d in dirs]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        print(proc.stderr, file=sys.stderr)
        print(f"haetae scan exited {proc.returncode}", file=sys.stderr)
        return 2
    reports = {}
    prefix = os.path.join(args.corpus, "")
    for line in proc.stdout.splitlines():
        r = json.loads(line)
        reports[r["path"][len(prefix):]] = r

    missing = [p for p in manifest if p not in reports]
    panics = [p for p, r in reports.items() if any(f["code"] == "INTERNAL-PANIC" for f in r["findings"])]
    limited = [p for p, r in reports.items() if any(f["code"] == "LIMIT-TIME" for f in r["findings"])]
    errors = [p for p, r in reports.items() if r.get("error")]

    def group(path):
        parts = path.split("/")
        return "/".join(parts[:2]) if parts[0] != "pdf" else "pdf"

    table = collections.defaultdict(lambda: collections.Counter())
    for path, label in manifest.items():
        r = reports.get(path)
        if r is None:
            continue
        table[(group(path), label)][r["verdict"]] += 1

    print(f"{'set':<28} {'label':<15} {'files':>5} {'clean':>6} {'susp':>6} {'vuln':>6} {'flagged%':>9}")
    for (g, label), c in sorted(table.items()):
        n = sum(c.values())
        flagged = c["suspicious"] + c["vulnerable"]
        print(f"{g:<28} {label:<15} {n:>5} {c['clean']:>6} {c['suspicious']:>6} {c['vulnerable']:>6} {100 * flagged / n:>8.1f}%")

    bad = [p for p, l in manifest.items() if l in ("corrupt", "fuzz-crash") and p in reports
           and (l == "fuzz-crash" or p.startswith("images/pngsuite"))]
    bad_target = [p for p in bad if p.startswith("images/pngsuite") or p.startswith("office/poi")]
    flagged = [p for p in bad_target if reports[p]["verdict"] != "clean"]
    valid = [p for p, l in manifest.items() if l == "valid" and p in reports]
    vuln = [p for p in valid if reports[p]["verdict"] == "vulnerable"]
    all_bad_flagged = [p for p in bad if reports[p]["verdict"] != "clean"]

    print()
    print(f"PngSuite x* + POI fuzz-crash flagged: {len(flagged)}/{len(bad_target)} = {100 * len(flagged) / max(1, len(bad_target)):.1f}%  (target >= 95%)")
    print(f"all corrupt/fuzz-crash flagged:       {len(all_bad_flagged)}/{len(bad)} = {100 * len(all_bad_flagged) / max(1, len(bad)):.1f}%")
    print(f"valid files judged vulnerable:        {len(vuln)}/{len(valid)} = {100 * len(vuln) / max(1, len(valid)):.2f}%  (target <= 1%)")
    print(f"internal panics: {len(panics)}   unreadable: {len(errors)}   not reported: {len(missing)}"
          f"   over the time budget: {len(limited)}")

    if args.show:
        def codes(p):
            return ", ".join(sorted({f["code"] for f in reports[p]["findings"]}))
        print("\nmisses (corrupt/fuzz-crash judged clean):")
        for p in sorted(set(bad) - set(all_bad_flagged)):
            print(f"  {p}: {codes(p) or '-'}")
        print("\nvalid files judged vulnerable:")
        for p in sorted(vuln):
            print(f"  {p}: {codes(p)}")

    ok = (len(flagged) >= args.min_flagged * len(bad_target)
          and len(vuln) <= args.max_vulnerable * len(valid)
          and not panics and not errors and not missing)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
