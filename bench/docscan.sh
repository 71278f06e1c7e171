#!/usr/bin/env bash
# Benchmark: haetae scan vs ClamAV's no-signature heuristics vs oletools' olevba, in one run
# on the same files from ../shared/corpora. Prints MB/s of each (and per core), the ratios,
# and what each flags on PngSuite x*, POI fuzz-crash files and the valid sets.
#
#   bench/docscan.sh            (needs: cargo, python3, clamscan from Debian `clamav`;
#                                olevba is installed from PyPI into target/docscan-bench-venv)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CORPUS=${HAETAE_SHARED:-$ROOT/../shared}/corpora
OUT=$ROOT/target/docscan-bench
mkdir -p "$OUT"
[ -d "$CORPUS" ] || { echo "no corpus at $CORPUS (set HAETAE_SHARED)" >&2; exit 2; }
command -v clamscan >/dev/null || { echo "clamscan missing: apt-get install clamav" >&2; exit 2; }

# HAETAE=path uses a binary built elsewhere; otherwise the release build of this checkout.
if [ -z "${HAETAE:-}" ]; then
  cargo build --release -q -p haetae
  HAETAE=${CARGO_TARGET_DIR:-$ROOT/target}/release/haetae
fi
VENV=$ROOT/target/docscan-bench-venv
if [ ! -x "$VENV/bin/olevba" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q oletools
fi

# One-line signature database: ClamAV then runs only its format heuristics.
printf 'HaetaeBenchNothing:0:*:68616574616562656e63686e6f7468696e67\n' > "$OUT/one.ndb"

# The file lists (documents and images; the WAF YAML is not for these tools).
find "$CORPUS/office" -type f | sort > "$OUT/office.list"
find "$CORPUS/office" "$CORPUS/images" "$CORPUS/hwp" "$CORPUS/pdf" -type f | sort > "$OUT/all.list"
find "$CORPUS/pdf" -type f | sort > "$OUT/pdf.list"

now() { date +%s.%N; }
# cpu LABEL CMD...: runs CMD (stdout and stderr as the caller redirects them outside) and
# appends "LABEL user+sys seconds" to cpu.tsv. CPU time is what one core spent, which a
# loaded machine inflates far less than wall-clock time.
: > "$OUT/cpu.tsv"
cpu() {
  local label=$1 t
  shift
  t=$( { TIMEFORMAT='%U %S'; time "$@" >&3 2>&4; } 2>&1 ) || true
  echo "$label $t" >> "$OUT/cpu.tsv"
}
cat "$OUT/all.list" | xargs cat > /dev/null   # warm the page cache for everyone
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)

t0=$(now)
"$HAETAE" scan --json $(cat "$OUT/all.list") > "$OUT/haetae.jsonl" 2>/dev/null || true
t1=$(now)
cpu haetae-office "$HAETAE" scan --json -j 1 $(cat "$OUT/office.list") 3> "$OUT/haetae-office-1core.jsonl" 4>/dev/null
t2=$(now)
cpu haetae-all "$HAETAE" scan --json -j 1 $(cat "$OUT/all.list") 3> "$OUT/haetae-1core.jsonl" 4>/dev/null
t3=$(now)
cpu clamscan-all clamscan --no-summary -d "$OUT/one.ndb" --alert-broken --alert-broken-media --alert-encrypted \
  --alert-exceeds-max --heuristic-alerts --file-list="$OUT/all.list" 3> "$OUT/clamscan.txt" 4>"$OUT/clamscan.err"
t4=$(now)
cpu clamscan-office clamscan --no-summary -d "$OUT/one.ndb" --alert-broken --alert-broken-media --alert-encrypted \
  --alert-exceeds-max --heuristic-alerts --file-list="$OUT/office.list" 3>/dev/null 4>/dev/null
t5=$(now)
# olevba aborts the whole run on some malformed files; run it per file so one error
# costs one file, and time the office set only (it is an Office tool).
: > "$OUT/olevba.tsv"
while read -r f; do
  if json=$("$VENV/bin/olevba" -j "$f" 2>/dev/null); then rc=0; else rc=$?; fi
  printf '%s\t%s\t%s\n' "$rc" "$f" "$(printf '%s' "$json" | tr -d '\n\t')" >> "$OUT/olevba.tsv"
done < "$OUT/office.list"
t6=$(now)
# olevba in one process over the whole set (it stops at the first file it cannot handle).
"$VENV/bin/olevba" -j $(cat "$OUT/office.list") > "$OUT/olevba.json" 2>/dev/null || true
t7=$(now)
# PDFs alone, one core each: haetae, then ClamAV's PDF parser with the same flags.
cpu haetae-pdf "$HAETAE" scan --json -j 1 $(cat "$OUT/pdf.list") 3> "$OUT/haetae-pdf.jsonl" 4>/dev/null
t8=$(now)
cpu clamscan-pdf clamscan --no-summary -d "$OUT/one.ndb" --alert-broken --alert-broken-media --alert-encrypted \
  --alert-exceeds-max --heuristic-alerts --file-list="$OUT/pdf.list" 3>/dev/null 4>/dev/null
t9=$(now)

LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
python3 - "$CORPUS" "$OUT" "$LOAD_START" "$LOAD_END" "$t0" "$t1" "$t2" "$t3" "$t4" "$t5" "$t6" "$t7" "$t8" "$t9" <<'PY'
import json, os, sys
corpus, out = sys.argv[1], sys.argv[2]
load = max(float(sys.argv[3]), float(sys.argv[4]))
t = [float(x) for x in sys.argv[5:]]
cpu = {}
for line in open(os.path.join(out, "cpu.tsv")):
    f = line.split()
    if len(f) == 3:
        cpu[f[0]] = float(f[1]) + float(f[2])
labels = {}
with open(os.path.join(corpus, "MANIFEST.tsv"), encoding="utf-8") as f:
    next(f)
    for line in f:
        p, _, size, _, label = line.rstrip("\n").split("\t")
        labels[p] = label
rel = lambda p: os.path.relpath(p, corpus)
size = lambda lst: sum(os.path.getsize(l.strip()) for l in open(os.path.join(out, lst)))
all_mb, office_mb = size("all.list") / 1e6, size("office.list") / 1e6
pdf_mb = size("pdf.list") / 1e6

haetae = {}
for line in open(os.path.join(out, "haetae.jsonl")):
    r = json.loads(line)
    haetae[rel(r["path"])] = r["verdict"] != "clean"
clam = {}
for line in open(os.path.join(out, "clamscan.txt")):
    if ": " in line:
        p, res = line.rstrip("\n").rsplit(": ", 1)
        clam[rel(p)] = res.endswith("FOUND")
olevba, ole_err = {}, 0
for line in open(os.path.join(out, "olevba.tsv"), encoding="utf-8", errors="replace"):
    rc, p, js = (line.rstrip("\n").split("\t", 2) + ["", ""])[:3]
    p = rel(p)
    try:
        items = [i for i in json.loads(js) if i.get("file")]
    except ValueError:
        items = []
    if int(rc) != 0 or not items or any(i.get("type") == "error" for i in items):
        ole_err += 1
    olevba[p] = any(i.get("macros") or any(a.get("type") in ("AutoExec", "Suspicious", "IOC")
                                           for a in (i.get("analysis") or [])) for i in items)
try:
    one = [i for i in json.load(open(os.path.join(out, "olevba.json"))) if i.get("file")]
except ValueError:
    one = []
office_files = sum(1 for _ in open(os.path.join(out, "office.list")))
rows = [
    ("haetae (2 cores)", t[1] - t[0], all_mb, None),
    ("haetae (1 core)", t[3] - t[2], all_mb, "haetae-all"),
    ("haetae office (1 core)", t[2] - t[1], office_mb, "haetae-office"),
    ("clamscan --alert-* (1 core)", t[4] - t[3], all_mb, "clamscan-all"),
    ("clamscan office (1 core)", t[5] - t[4], office_mb, "clamscan-office"),
    ("olevba office, per file", t[6] - t[5], office_mb, None),
    ("olevba office, one process*", t[7] - t[6], office_mb, None),
    ("haetae pdf (1 core)", t[8] - t[7], pdf_mb, "haetae-pdf"),
    ("clamscan pdf (1 core)", t[9] - t[8], pdf_mb, "clamscan-pdf"),
]
state = f"LOADED (load average {load:.2f} > 1.5: wall-clock MB/s are low)" if load > 1.5 else f"quiet (load average {load:.2f})"
print(f"\nmachine: {state}; 'CPU MB/s' = MB per second of user+sys CPU time of the one process")
print(f"{'run':<30} {'MB':>8} {'seconds':>8} {'MB/s':>8} {'CPU s':>7} {'CPU MB/s':>9}")
for name, secs, mb, key in rows:
    c = cpu.get(key) if key else None
    cs = f"{c:>7.2f} {mb / max(c, 1e-9):>9.1f}" if c else f"{'-':>7} {'-':>9}"
    print(f"{name:<30} {mb:>8.1f} {secs:>8.2f} {mb / secs:>8.1f} {cs}")
h1 = office_mb / (t[2] - t[1])
print(f"* olevba in one process stopped after {len(one)} of {office_files} files: its MB/s is not comparable")
print(f"\nper core on the office set: haetae {h1:.1f} MB/s = "
      f"{h1 / (office_mb / (t[5] - t[4])):.1f}x clamscan, {h1 / (office_mb / (t[6] - t[5])):.0f}x olevba (per file, with start-up)")
print(f"olevba errors (non-zero exit, no result or an error entry) on the office set: {ole_err} of {len(olevba)}")
print(f"per core on PDFs: haetae {pdf_mb / (t[8] - t[7]):.1f} MB/s = {(t[9] - t[8]) / (t[8] - t[7]):.1f}x clamscan")
if "haetae-office" in cpu and "clamscan-office" in cpu:
    print(f"per core by CPU time, office set: haetae {office_mb / cpu['haetae-office']:.1f} MB/s = "
          f"{cpu['clamscan-office'] / cpu['haetae-office']:.1f}x clamscan; PDFs: haetae "
          f"{pdf_mb / max(cpu.get('haetae-pdf', 0), 1e-9):.1f} MB/s")

# Per-file latency from the one-core runs (elapsed_ms in each report; files <= 20 MB).
def latencies(name):
    out = []
    for line in open(os.path.join(out_dir, name)):
        r = json.loads(line)
        if r.get("size", 0) <= 20 * 1024 * 1024:
            out.append((r["elapsed_ms"], rel(r["path"])))
    return sorted(out)
out_dir = out
for name, label in (("haetae-1core.jsonl", "all files"), ("haetae-pdf.jsonl", "PDFs")):
    lat = latencies(name)
    if lat:
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))][0]
        print(f"per-file latency, {label} (1 core, {len(lat)} files): p50 {lat[len(lat) // 2][0]:.1f} ms, "
              f"p99 {p99:.1f} ms, max {lat[-1][0]:.1f} ms ({lat[-1][1]})")

def group(p):
    l = labels.get(p)
    if p.startswith("images/pngsuite/png/x"):
        return "PngSuite x* (corrupt)"
    if l == "fuzz-crash" and p.startswith("office/poi"):
        return "POI fuzz-crash"
    if l == "fuzz-crash":
        return "PDF fuzz-crash"
    if l == "valid":
        return "valid (all sets)"
    if l == "active-content":
        return "active-content"
    return None

sets = {}
for p in labels:
    g = group(p)
    if g and p in haetae:
        sets.setdefault(g, []).append(p)
print(f"\n{'set':<24} {'files':>5} {'haetae':>8} {'clamscan':>9} {'olevba':>7}   (files flagged)")
for g in ["PngSuite x* (corrupt)", "POI fuzz-crash", "PDF fuzz-crash", "active-content", "valid (all sets)"]:
    ps = sets.get(g, [])
    n = len(ps)
    hv = sum(haetae.get(p, False) for p in ps)
    cv = sum(clam.get(p, False) for p in ps)
    ov = [olevba[p] for p in ps if p in olevba]
    ostr = f"{sum(ov)}/{len(ov)}" if ov else "-"
    print(f"{g:<24} {n:>5} {hv:>8} {cv:>9} {ostr:>7}")
PY
