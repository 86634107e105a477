#!/usr/bin/env python3
"""Plot `tq eval --json` results as Pareto plots: ΔPPL and KL(f16 || codec) against bits
per value. The grey step line is the Pareto frontier (no codec left of it has a lower
error); the calibrated presets (tq*) are joined by a line; the horizontal lines mark
q4_0h's error (solid) and half of it (dashed), the references the presets are judged by.

usage: plot_eval.py RESULT.json [MORE.json ...] OUT.png

Each JSON file (one model) becomes one row of two panels. Codec families share a
marker so rotations of the same width are easy to compare; the f16 reference is left
out (it sits at 16 bits with zero error).
"""
import json
import sys

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit("plot_eval.py needs matplotlib: pip install matplotlib")

MARKERS = {"q": "s", "turbo": "o", "rht": "D", "rotor": "^", "iso": "v", "planar": "P", "v": "X", "sq": "*", "tq": "*"}


def pareto(points):
    """The points no other point beats at fewer or equal bits, by bits."""
    front, best = [], float("inf")
    for x, y in sorted(points):
        if y < best:
            front.append((x, y))
            best = y
    return front


def family(label):
    name = label.split()[0].split("/")[0]
    for prefix in sorted(MARKERS, key=len, reverse=True):
        if name.startswith(prefix):
            return prefix
    return "other"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    inputs, out = sys.argv[1:-1], sys.argv[-1]
    reports = [json.load(open(p)) for p in inputs]
    fig, axes = plt.subplots(len(reports), 2, figsize=(12, 4.5 * len(reports)), squeeze=False)
    for row, rep in zip(axes, reports):
        rows = [r for r in rep["rows"] if r["label"] != "f16"]
        title = f'{rep["model"]["name"]}: {rep["windows"]} windows x {rep["ctx"]} tokens'
        for ax, key, ylabel, log in ((row[0], "dppl_pct", "ΔPPL vs f16 cache (%)", False),
                                     (row[1], "kl", "mean KL(f16 || codec)", True)):
            for r in rows:
                y = r[key]
                if log:
                    y = max(y, 1e-6)
                ax.scatter(r["bits_per_value"], y, marker=MARKERS.get(family(r["label"]), "o"), s=45)
                ax.annotate(r["label"], (r["bits_per_value"], y), fontsize=7, xytext=(4, 3),
                            textcoords="offset points")
            # Errors span four decades, hence log (KL) and symmetric-log (ΔPPL, which can be
            # slightly negative) axes.
            pts = [(r["bits_per_value"], max(r[key], 1e-6) if log else r[key]) for r in rows]
            front = pareto(pts)
            if len(front) > 1:
                ax.step([x for x, _ in front], [y for _, y in front], where="post", color="grey", lw=0.8, zorder=0,
                        label="Pareto frontier")
            presets = sorted(p for p, r in zip(pts, rows) if family(r["label"]) == "tq")
            if len(presets) > 1:
                ax.plot([x for x, _ in presets], [y for _, y in presets], color="black", lw=0.8, zorder=0,
                        label="calibrated presets")
            ref = [p for p, r in zip(pts, rows) if r["label"] == "q4_0h"]
            if ref:
                ax.axhline(ref[0][1], color="green", lw=0.8, ls="-", label="q4_0h")
                if log:
                    ax.axhline(ref[0][1] / 2, color="green", lw=0.8, ls="--", label="q4_0h / 2")
            ax.legend(fontsize=7, loc="upper right")
            if log:
                ax.set_yscale("log")
            else:
                ax.axhline(0, color="grey", lw=0.6)
                ax.set_yscale("symlog", linthresh=0.1)
                ax.set_ylim(bottom=min(-0.1, 2 * min(r[key] for r in rows)))
            ax.set_xlabel("bits per value (K+V, norms and scales included)")
            ax.set_ylabel(ylabel)
            ax.set_title(title, fontsize=10)
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"plot_eval: wrote {out}")


if __name__ == "__main__":
    main()
