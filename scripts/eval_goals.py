#!/usr/bin/env python3
"""Grades `tq eval --json` rows against the quality goals of issue 6 and prints them as a
markdown table (scripts/bench_eval.sh appends it below each model's table). The eval
itself only measures; the goals live here.

Goals, for codecs whose K and V share a 3- or 4-bit code width (the row's "code_bits",
from the codec table): 3-bit KL <= 0.008 and |dPPL| <= 0.5%; 4-bit KL <= 0.003 and
|dPPL| <= 0.2%; passkey equal to f16 (the first row); beat q4_0h (lower KL at fewer bits).

usage: eval_goals.py RESULT.json
"""
import json
import sys

GOALS = {3: (0.008, 0.5), 4: (0.003, 0.2)}  # code bits -> (KL, |dPPL| in %)


def ok(good):
    return "ok" if good else "miss"


def verdict(row, rows):
    kl_goal, ppl_goal = GOALS[row["code_bits"]]
    cells = [f"KL {ok(row['kl'] <= kl_goal)}", f"ΔPPL {ok(abs(row['dppl_pct']) <= ppl_goal)}"]
    trials = row["passkey"]["trials"]
    if trials:
        cells.append(f"passkey {ok(row['passkey']['found'] >= rows[0]['passkey']['found'])}")
    q4 = next((r for r in rows if r["label"] == "q4_0h"), None)
    if q4:
        beats = row["bits_per_value"] < q4["bits_per_value"] and row["kl"] < q4["kl"]
        cells.append(("beats" if beats else "loses to") + " q4_0h")
    return ", ".join(cells)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rows = json.load(open(sys.argv[1]))["rows"]
    if any("code_bits" not in r for r in rows):
        sys.exit(f"{sys.argv[1]}: rows without code_bits (written by a tq eval older than the goals script)")
    graded = [r for r in rows if r["code_bits"] in GOALS]
    if not graded:
        return
    print("Goals (issue 6): 3-bit K+V KL ≤ 0.008 and |ΔPPL| ≤ 0.5%; 4-bit KL ≤ 0.003 and |ΔPPL| ≤ 0.2%;"
          " passkey equal to f16; beat q4_0h (lower KL at fewer bits). Graded by `scripts/eval_goals.py`.")
    print()
    print("| codec (K/V) | code bits | goals |")
    print("|---|---:|---|")
    for r in graded:
        print(f"| {r['label']} | {r['code_bits']} | {verdict(r, rows)} |")


if __name__ == "__main__":
    main()
