#!/usr/bin/env python3
"""Decode step through the torch op (torch.ops.turboquant.attend) against the raw C API through
ctypes, on the same shapes and the same records: on the CPU (TorchKvCache against tq_cache_attend,
scripts/capi_cpu.py) and, when torch sees a GPU and the package has CUDA, on CUDA
(TorchDeviceKvCache against tq_cuda_decode, scripts/capi_cuda.py).

  python3 scripts/bench_torch_op.py --lib build-capi/src/capi/libturboquant.so --commit $(git rev-parse --short HEAD)
(the package installed or on PYTHONPATH; --device cpu / cuda for one of them; a CUDA build of
libturboquant, TQ_CUDA=ON, for the CUDA rows.)

CPU rows: one thread on each side; raw = tq_cache_attend once per batch row (the C API has no
batch call), op = one torch.ops.turboquant.attend of the whole batch. The two calls alternate and
each is timed alone by the thread's CPU clock (time.thread_time_ns: other processes on a shared
machine do not count), medians over `reps` pairs; f32 queries (the C API's type).

CUDA rows:

Both caches get the same tokens at the same slots with the same seed, so they hold the same
records; the outputs are checked equal bit for bit before timing. Each time is the mean of
`reps` back-to-back calls between two CUDA events (no L2 flush: the same for both), after a
warm-up; "graph" times replay a CUDA graph holding `reps` captured calls, which removes the
host cost of each call (Python and the op dispatch on one side, ctypes on the other).
ratio = raw C API time / torch op time (>= 0.9: the op costs at most ~11% more).
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import capi_cpu  # noqa: E402
import capi_cuda  # noqa: E402

import turboquant as tq  # noqa: E402
import turboquant.cuda  # noqa: E402
from turboquant.cuda import TorchDeviceKvCache, available  # noqa: E402
from turboquant.ops import TorchKvCache  # noqa: E402

N_Q, N_KV, D, BLOCK = 32, 8, 128, 32


def mean_us(fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) * 1e3 / reps


def graphed_us(fn, reps):
    """Mean time per call of `reps` calls captured in one CUDA graph, replayed."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()
        stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            for _ in range(reps):
                fn()
    torch.cuda.current_stream().wait_stream(stream)
    return mean_us(graph.replay, 5) / reps


def random_profile(path):
    """A calibration profile from random Gaussian rows (no model; the codecs' speed does not
    depend on the model), saved where the C API reads it. RoPE at Llama's base, W_o = identity."""
    rng = np.random.default_rng(5)
    b = tq.KvProfileBuilder(1, N_Q, N_KV, D)
    b.add(0, *(rng.standard_normal((256, h, D)).astype(np.float32) for h in (N_Q, N_KV, N_KV)))
    theta = np.tile(np.concatenate([10000.0 ** (-2 * np.arange(D // 2) / D)] * 2), (1, 1))
    profile = b.finish(theta, np.tile(np.eye(D), (1, N_KV, 1, 1)), model_name="random")
    profile.save(path)
    return profile


def bench(lib, codec, batch, ctx, reps, gen, profile_path):
    preset = codec in tq.presets()
    profile = random_profile(profile_path) if preset else None
    op = TorchDeviceKvCache(1, N_KV, D, codec, codec, batch=batch, max_tokens=ctx, block_tokens=BLOCK,
                            profile=profile, context=ctx)
    # The same codecs: the profile's file, and the context the op's cache was built for.
    raw = capi_cuda.DeviceCache(lib, codec, codec, n_kv_heads=N_KV, head_dim=D, max_tokens=batch * op.capacity,
                                block_tokens=BLOCK, seed=0, profile=profile_path if preset else None, context=ctx)
    chunk = 4096
    for t0 in range(0, ctx, chunk):  # the same tokens into both caches, at the same slots
        n = min(chunk, ctx - t0)
        k = torch.randn(batch, N_KV, n, D, device="cuda", generator=gen, dtype=torch.float16)
        v = torch.randn(batch, N_KV, n, D, device="cuda", generator=gen, dtype=torch.float16)
        torch.ops.turboquant.append(op.state, 0, k, v)
        slots = (op.row_base[:, None] + torch.arange(t0, t0 + n, device="cuda", dtype=torch.int32)).reshape(-1)
        positions = torch.arange(t0, t0 + n, device="cuda", dtype=torch.int32).repeat(batch)  # sinks (presets)
        rows = torch.arange(batch, device="cuda", dtype=torch.int32).repeat_interleave(n)
        raw.quantize(k.transpose(1, 2).reshape(batch * n, N_KV, D).contiguous(),
                     v.transpose(1, 2).reshape(batch * n, N_KV, D).contiguous(), slots, positions=positions,
                     seq_ids=rows)
    op.check_writes()
    q = torch.randn(batch, N_Q, 1, D, device="cuda", generator=gen, dtype=torch.float16)
    out = torch.empty(batch, N_Q, D, device="cuda", dtype=torch.float32)
    ws = torch.empty(raw.workspace_bytes(batch, N_Q, op.block_tables, op.capacity), dtype=torch.uint8, device="cuda")
    lens = op.seq_lens[0]

    def raw_step(stream=None):
        raw.decode(q.view(batch, N_Q, D), op.block_tables, lens, op.capacity, out, ws, seq_ids=op.seq_ids,
                   stream=stream)

    raw_call = raw.decode_call(q.view(batch, N_Q, D), op.block_tables, lens, op.capacity, out, ws,
                               seq_ids=op.seq_ids)
    op_step = lambda: torch.ops.turboquant.attend(op.state, 0, q)  # noqa: E731
    got = op_step()
    raw_step()
    torch.cuda.synchronize()
    assert torch.equal(got.float().view(batch, N_Q, D), out.half().float()), "op and C API outputs differ"
    times = {
        "raw": mean_us(raw_call, reps),
        "op": mean_us(op_step, reps),
        "raw_graph": graphed_us(lambda: raw_step(torch.cuda.current_stream().cuda_stream), reps),
        "op_graph": graphed_us(op_step, reps),
    }
    raw.close()
    del op
    torch.cuda.empty_cache()
    return times


def median_pair_us(raw, op, reps):
    """Median CPU time per call of raw and op, called alternately (thread clock, ns)."""
    for _ in range(3):
        raw(), op()
    clock, times = time.thread_time_ns, ([], [])
    for _ in range(reps):
        for fn, out in ((raw, times[0]), (op, times[1])):
            t0 = clock()
            fn()
            out.append(clock() - t0)
    return tuple(float(np.median(t)) / 1e3 for t in times)


def bench_cpu(lib, codec, batch, ctx, reps, profile_path):
    preset = codec in tq.presets()
    profile = random_profile(profile_path) if preset else None
    capacity = batch * (-(-ctx // BLOCK) * BLOCK)
    op = TorchKvCache(tq.KvCache(1, N_KV, D, k_codec=codec, v_codec=codec, block_tokens=BLOCK, max_tokens=capacity,
                                 profile=profile, context=ctx), batch=batch)
    raw = capi_cpu.Cache(lib, codec, codec, n_kv_heads=N_KV, head_dim=D, max_tokens=capacity, block_tokens=BLOCK,
                         profile=profile_path if preset else None, context=ctx)
    raw_seqs = [raw.add_sequence() for _ in range(batch)]
    rng = np.random.default_rng(7)
    for row in range(batch):  # the same tokens into both caches
        k = rng.standard_normal((ctx, N_KV, D), dtype=np.float32)
        v = rng.standard_normal((ctx, N_KV, D), dtype=np.float32)
        op.kv.append(0, op.seqs[row], k, v)
        raw.append(raw_seqs[row], k, v)
    q = torch.from_numpy(rng.standard_normal((batch, N_Q, 1, D), dtype=np.float32))
    out = np.empty((batch, N_Q, D), np.float32)
    raw_call = raw.attend_call(raw_seqs, q.numpy().reshape(batch, N_Q, D).copy(), out)
    op_step = lambda: torch.ops.turboquant.attend(op.state, 0, q)  # noqa: E731
    got = op_step()
    raw_call()
    assert np.array_equal(got.numpy().reshape(batch, N_Q, D), out), "op and C API outputs differ"
    t = median_pair_us(raw_call, op_step, reps)
    raw.close()
    return {"raw": t[0], "op": t[1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True, help="libturboquant.so (TQ_C_API=ON; TQ_CUDA=ON for the CUDA rows)")
    ap.add_argument("--device", choices=("all", "cpu", "cuda"), default="all",
                    help="all: the CPU rows, and the CUDA rows when a GPU and a CUDA package are there")
    ap.add_argument("--codecs", default="turbo3,tq3", help="codec table names; presets (tq3, ...) get a random profile")
    ap.add_argument("--contexts", default="4096,65536", help="CUDA contexts")
    ap.add_argument("--batch", type=int, default=8, help="CUDA batch")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--cpu-contexts", default="256,4096")
    ap.add_argument("--cpu-batch", default="1,8")
    ap.add_argument("--cpu-reps", type=int, default=200)
    ap.add_argument("--commit", default="")
    args = ap.parse_args()
    lib_path = os.path.abspath(args.lib)
    profile_path = os.path.join(tempfile.mkdtemp(), "random.tqprof")
    codecs = args.codecs.split(",")
    if args.device in ("all", "cpu"):
        lib = capi_cpu.load(lib_path)
        print(f"CPU, one thread, torch {torch.__version__}, commit {args.commit or '?'}; {N_Q} q heads, {N_KV} KV "
              f"heads, d={D}, f32 queries, block {BLOCK}, median thread CPU time of {args.cpu_reps} alternating calls")
        print("| codec | batch | context | raw C API us | torch op us | ratio |")
        print("|---|---|---|---|---|---|")
        for codec in codecs:
            for batch in (int(b) for b in args.cpu_batch.split(",")):
                for ctx in (int(c) for c in args.cpu_contexts.split(",")):
                    t = bench_cpu(lib, codec, batch, ctx, args.cpu_reps, profile_path)
                    print(f"| {codec} | {batch} | {ctx} | {t['raw']:.1f} | {t['op']:.1f} | {t['raw'] / t['op']:.3f} |",
                          flush=True)
    if args.device == "cpu" or (args.device == "all" and not available()):
        if args.device == "all":
            print("CUDA rows skipped: " + ("no CUDA device" if tq._turboquant.has_cuda else
                                           "this turboquant package is built without CUDA"))
        return
    lib = capi_cuda.load(lib_path)
    gen = torch.Generator(device="cuda").manual_seed(7)
    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}, commit {args.commit or '?'}; "
          f"{N_Q} q heads, {N_KV} KV heads, d={D}, batch {args.batch}, f16 queries, block {BLOCK}, "
          f"mean of {args.reps} calls; attend's CUDA kernel: "
          f"{'C++ (_torch_ops.so)' if turboquant.cuda.native_attend() else 'Python'}")
    print("| codec | context | raw C API us | torch op us | ratio | raw graph us | op graph us | graph ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for codec in codecs:
        for ctx in (int(c) for c in args.contexts.split(",")):
            t = bench(lib, codec, args.batch, ctx, args.reps, gen, profile_path)
            print(f"| {codec} | {ctx} | {t['raw']:.1f} | {t['op']:.1f} | {t['raw'] / t['op']:.2f} | "
                  f"{t['raw_graph']:.1f} | {t['op_graph']:.1f} | {t['raw_graph'] / t['op_graph']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
