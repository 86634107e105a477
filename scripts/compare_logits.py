#!/usr/bin/env python3
"""Compares tq's next-token logits and greedy continuation with llama.cpp's.

Inputs (written by scripts/compare_llama_cpp.sh):
  TQ_LOGITS, LLAMA_LOGITS   raw little-endian f32 logits after the same prompt ids
  TQ_IDS                    tq run --dump-ids: prompt ids (line 1), generated ids (line 2)
  LLAMA_CONT                llama_dump's greedy continuation, one id per line
Prints one markdown table row: model, prompt tokens, max |diff|, mean |diff|,
max |logit|, top-1 agree, top-5 overlap, greedy tokens matching before the first divergence.
"""
import argparse
import struct
import sys


def read_f32(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) % 4:
        sys.exit(f"compare_logits: {path} is not a whole number of f32 values")
    return list(struct.unpack(f"<{len(data) // 4}f", data))


def top(values, k):
    return sorted(range(len(values)), key=lambda i: -values[i])[:k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("tq_logits")
    ap.add_argument("llama_logits")
    ap.add_argument("tq_ids")
    ap.add_argument("llama_cont")
    a = ap.parse_args()

    tq = read_f32(a.tq_logits)
    ll = read_f32(a.llama_logits)
    if len(tq) != len(ll):
        sys.exit(f"compare_logits: vocab sizes differ: tq {len(tq)}, llama.cpp {len(ll)}")
    with open(a.tq_ids) as f:
        lines = f.read().split("\n")
    prompt = lines[0].split()
    tq_gen = [int(x) for x in lines[1].split()] if len(lines) > 1 else []
    with open(a.llama_cont) as f:
        ll_gen = [int(x) for x in f.read().split()]

    diffs = [abs(x - y) for x, y in zip(tq, ll)]
    max_diff = max(diffs)
    mean_diff = sum(diffs) / len(diffs)
    scale = max(abs(x) for x in ll)
    top1 = top(tq, 1) == top(ll, 1)
    top5 = len(set(top(tq, 5)) & set(top(ll, 5)))
    n = min(len(tq_gen), len(ll_gen))
    match = next((i for i in range(n) if tq_gen[i] != ll_gen[i]), n)
    print(f"| {a.model} | {len(prompt)} | {max_diff:.4g} | {mean_diff:.4g} | {scale:.4g} | "
          f"{'yes' if top1 else 'no'} | {top5}/5 | {match}/{n} |")


if __name__ == "__main__":
    main()
