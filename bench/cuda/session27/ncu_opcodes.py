"""Sums an Nsight Compute per-SASS-line CSV (--page source --print-source sass --csv) by
opcode: warp instructions executed and warp-stall samples, with the top lines by samples.
Usage: ncu_opcodes.py CSV [VECTORS]  (VECTORS: divide the instruction counts per vector)"""
import csv
import sys
from collections import defaultdict

rows = list(csv.reader(open(sys.argv[1], errors="replace")))
per = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
hdr = next((i for i, r in enumerate(rows) if "Source" in r), None)
if hdr is None:
    print("no source table; first lines:")
    for r in rows[:8]:
        print(",".join(r)[:200])
    sys.exit()
h = rows[hdr]
src = h.index("Source")
stall = next((i for i, c in enumerate(h) if c.startswith("Warp Stall Sampling (All")), None)
inst = next((i for i, c in enumerate(h) if c == "Instructions Executed"), None)
body = [r for r in rows[hdr + 1:] if len(r) == len(h)]
if inst is None or stall is None:
    print("columns:", h)


def num(x):
    try:
        return float(x.replace(",", ""))
    except ValueError:
        return 0.0


by_op = defaultdict(lambda: [0.0, 0.0])
for r in body:
    text = r[src].strip()
    words = [w for w in text.replace(";", " ").split() if not w.startswith("@")]
    op = words[0].split(".")[0] if words else "?"
    by_op[op][0] += num(r[inst]) if inst is not None else 0
    by_op[op][1] += num(r[stall]) if stall is not None else 0
tot_i = sum(v[0] for v in by_op.values()) or 1
tot_s = sum(v[1] for v in by_op.values()) or 1
print(f"warp instructions {tot_i:.0f}" + (f" ({tot_i / per:.1f} per vector)" if per else "") + f", stall samples {tot_s:.0f}")
print(f"{'opcode':12} {'instr':>12} {'per vec':>8} {'% instr':>8} {'% stalls':>8}")
for op, (i, s) in sorted(by_op.items(), key=lambda kv: -kv[1][0])[:30]:
    print(f"{op:12} {i:12.0f} {i / per if per else 0:8.1f} {100 * i / tot_i:8.1f} {100 * s / tot_s:8.1f}")
if stall is not None:
    print("top lines by stall samples:")
    for r in sorted(body, key=lambda r: -num(r[stall]))[:25]:
        print(f"{100 * num(r[stall]) / tot_s:5.1f}%  {num(r[inst]) if inst is not None else 0:10.0f}  {r[src][:100]}")
