#!/usr/bin/env python3
"""Where a codec loses attention fidelity: per layer (mean over heads) and the worst
heads, from `tq eval --json` output.

usage: eval_layers.py RESULT.json [LABEL ...]   (default: every compressed row)
"""
import json
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rep = json.load(open(sys.argv[1]))
    want = set(sys.argv[2:])
    for row in rep["rows"]:
        att = row.get("attention")
        if not att or (want and row["label"] not in want):
            continue
        cos = att["per_layer_head_cosine"]
        layers = [sum(h) / len(h) for h in cos]
        heads = sorted((c, l, h) for l, hs in enumerate(cos) for h, c in enumerate(hs))
        print(f'{row["label"]}: mean {att["cosine"]:.4f}, KL {row["kl"]:.4f}, dPPL {row["dppl_pct"]:+.2f}%')
        print("  layer mean cosine: " + " ".join(f"{l}:{c:.3f}" for l, c in enumerate(layers)))
        print("  worst heads: " + ", ".join(f"L{l}h{h} {c:.3f}" for c, l, h in heads[:6]))


if __name__ == "__main__":
    main()
