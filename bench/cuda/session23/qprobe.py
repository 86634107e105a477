# One timed-free quantize call per codec at 262144 vectors (for ncu): warm-up, then the profiled call.
import os, sys, torch
sys.path.insert(0, "scripts")
import capi_cuda
lib = capi_cuda.load(os.path.abspath(sys.argv[1]))
D, NKV, n_tok = 128, 8, 262144 // 16
g = torch.Generator(device="cuda").manual_seed(3)
k = torch.randn(n_tok, NKV, D, device="cuda", generator=g).half()
v = torch.randn(n_tok, NKV, D, device="cuda", generator=g).half()
slots = torch.arange(n_tok, dtype=torch.int32, device="cuda")
for codec in sys.argv[2].split(","):
    c = capi_cuda.DeviceCache(lib, codec, codec, n_kv_heads=NKV, head_dim=D, max_tokens=n_tok, block_tokens=32)
    c.quantize(k, v, slots); torch.cuda.synchronize()
    c.quantize(k, v, slots); torch.cuda.synchronize()
    c.close()
