"""Host time per call of one decode step (batch 1, 4K tokens, turbo3, f16 queries, 32 q / 8 KV
heads, d = 128) through each route from Python to the kernels: the raw C API (ctypes), the torch
op (whichever kernel of attend is in use), its Python kernel, and torch's own allocation for
scale. 200 calls without waits, median of 7; also the time until the GPU is done.

    python3 scripts/bench_op_host_cost.py build-cuda/src/capi/libturboquant.so
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
import bench_torch_op as B
import capi_cuda
from turboquant.cuda import TorchDeviceKvCache, native_attend

lib = capi_cuda.load(os.path.abspath(sys.argv[1]))
batch, ctx, codec = 1, 4096, "turbo3"
op = TorchDeviceKvCache(1, B.N_KV, B.D, codec, codec, batch=batch, max_tokens=ctx, block_tokens=B.BLOCK)
raw = capi_cuda.DeviceCache(lib, codec, codec, n_kv_heads=B.N_KV, head_dim=B.D, max_tokens=batch * op.capacity,
                            block_tokens=B.BLOCK, seed=0)
k = torch.randn(batch, B.N_KV, ctx, B.D, device="cuda", dtype=torch.float16)
torch.ops.turboquant.append(op.state, 0, k, k)
q = torch.randn(batch, B.N_Q, 1, B.D, device="cuda", dtype=torch.float16)
out = torch.empty(batch, B.N_Q, B.D, device="cuda", dtype=torch.float16)
ws = torch.empty(raw.workspace_bytes(batch, B.N_Q, op.block_tables, op.capacity), dtype=torch.uint8, device="cuda")
raw_call = raw.decode_call(q.view(batch, B.N_Q, B.D), op.block_tables, op.seq_lens[0], op.capacity, out, ws,
                           seq_ids=op.seq_ids)
state = op.state
attend, attend_default, attend_py = torch.ops.turboquant.attend, torch.ops.turboquant.attend.default, torch.ops.turboquant._attend_python
routes = {
    "raw C API (ctypes)": raw_call,
    "torch.ops.turboquant.attend": lambda: attend(state, 0, q),
    "torch.ops.turboquant.attend.default": lambda: attend_default(state, 0, q),
    "_attend_python (Python kernel)": lambda: attend_py(state, 0, q),
    "op.attend (Python, no dispatcher)": lambda: op.attend(0, q, None, 0, 0.0),
    "torch.empty_like(q) only": lambda: torch.empty_like(q),
    "torch.ops.aten.empty_like.default only": lambda: torch.ops.aten.empty_like.default(q),
}
print(f"native_attend {native_attend()}, torch {torch.__version__}")
N = 200
for name, fn in routes.items():
    res = []
    for rep in range(7):
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(N):
            fn()
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        res.append(((t1 - t0) / N * 1e6, (t2 - t0) / N * 1e6))
    res.sort()
    print(f"| {name} | host {res[3][0]:.1f} us | with the GPU {sorted(r[1] for r in res)[3]:.1f} us |")
