#!/usr/bin/env python3
"""Passkey margins of several `tq eval --json` runs as one Markdown table: a row per
compressed cache (the first run's f16 row first, as the reference), a column per depth
with the trial's margin in nats (✗: the key was not found).

usage: passkey_table.py [--labels] "DESCRIPTION=RESULT.json" ...
  DESCRIPTION names the run's compressed rows in the table (with --labels, followed by
  each row's own label, for runs of several codecs).
"""
import json
import sys


def trials_by_depth(row):
    return {(t["length"], t["depth"]): t for t in row["passkey"]["trials"]}


def cell(t):
    return f'{t["margin"]:+.2f}' + ("" if t["found"] else " ✗")


def table(runs, with_labels=False):
    """runs: [(description, report dict)]; the Markdown table (ValueError on trials that differ)."""
    keys = None
    lines = []
    for i, (desc, rep) in enumerate(runs):
        for row in rep["rows"]:
            if not row.get("passkey") or not row["passkey"]["trials"]:
                continue
            t = trials_by_depth(row)
            if keys is None:
                keys = sorted(t)
            if set(t) != set(keys):
                raise ValueError(f"{desc}: passkey trials {sorted(t)} differ from the first run's {keys}")
            if row["label"] == "f16":
                if i > 0:
                    continue  # the reference once
                name, kl = "f16 (reference)", "—"
            else:
                name, kl = (f'{desc}: {row["label"]}' if with_labels else desc), f'{row["kl"]:.4f}'
            found = sum(t[k]["found"] for k in keys)
            lines.append(f"| {name} | {kl} | {found}/{len(keys)} | " + " | ".join(cell(t[k]) for k in keys) + " |")
    if keys is None:
        raise ValueError("no passkey trials in these runs")
    head = "| cache | KL | found | " + " | ".join(f"{n} @ {d:g}" for n, d in keys) + " |"
    return "\n".join([head, "|---|---:|---:|" + "---:|" * len(keys)] + lines)


def main():
    args = sys.argv[1:]
    with_labels = "--labels" in args
    args = [a for a in args if a != "--labels"]
    if not args or any("=" not in a for a in args):
        sys.exit(__doc__)
    runs = []
    for a in args:
        desc, path = a.split("=", 1)
        try:
            with open(path) as f:
                runs.append((desc, json.load(f)))
        except (OSError, ValueError) as e:
            sys.exit(f"passkey_table: {path}: {e}")
    try:
        print(table(runs, with_labels))
    except ValueError as e:
        sys.exit(f"passkey_table: {e}")


if __name__ == "__main__":
    main()
