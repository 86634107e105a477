"""The torch ops on CUDA tensors (turboquant.cuda.TorchDeviceKvCache), against the CPU op.

Needs a package built with TQ_CUDA=ON and a GPU; skips, saying which is missing, otherwise.
Checked: the CPU op's records fed the same tokens give the same attention (float32 sums in
another order), and both match float64 attention over the decoded records; bf16 inputs; a
calibrated preset (tq3, sinks); sliding windows (the last `window` tokens of each row, against
the CPU op's window); torch.compile(fullgraph=True) equals eager; a decode step
captured in a CUDA graph and replayed equals the same steps run eagerly; errors; the C++
kernel of attend (_torch_ops.so, where the package has it) takes decode calls without Python
and gives the Python kernel's output bit for bit.
"""
import gc
import glob
import math
import os
import sys

try:
    import torch

    import turboquant as tq
    import turboquant.cuda
    from turboquant.cuda import TorchDeviceKvCache, available
    from turboquant.ops import TorchKvCache

    SKIP = None if available() else (
        "the CUDA ops need a turboquant package built with TQ_CUDA=ON and a CUDA device "
        f"(has_cuda={tq._turboquant.has_cuda}, torch sees a GPU: {torch.cuda.is_available()})")
except ImportError as e:
    SKIP = f"the CUDA op tests need torch: {e}"

if SKIP is not None and __name__ != "__main__":
    import pytest

    pytest.skip(SKIP, allow_module_level=True)

LAYERS, KV_HEADS, HEADS, DIM, BATCH, MAX = 2, 2, 8, 128, 3, 256
# ‖cuda − cpu‖ / ‖cpu‖ over the same records: the CUDA tests' bound (tests/cuda).
TOL = 1e-3


def randn(*shape, seed, device="cuda"):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(device)


def caches(k_codec, v_codec, profile=None):
    dev = TorchDeviceKvCache(LAYERS, KV_HEADS, DIM, k_codec, v_codec, batch=BATCH, max_tokens=MAX, block_tokens=16,
                             profile=profile)
    cpu = TorchKvCache(tq.KvCache(LAYERS, KV_HEADS, DIM, k_codec=k_codec, v_codec=v_codec, block_tokens=16,
                                  max_tokens=BATCH * MAX, profile=profile, context=MAX), batch=BATCH)
    return dev, cpu


def reference(cpu, layer, q, window=0):
    """float64 attention of q (batch, heads, 1, d) over each row's decoded records (the CPU cache),
    the last `window` of them when window > 0."""
    out = []
    for row, seq in enumerate(cpu.seqs):
        k, v = (torch.from_numpy(a).double()[-window if window else 0:] for a in cpu.kv.read(layer, seq))
        k, v = (x.transpose(0, 1).repeat_interleave(HEADS // KV_HEADS, 0) for x in (k, v))  # (heads, t, d)
        s = (q[row].double().cpu() @ k.transpose(1, 2)) / math.sqrt(DIM)
        out.append(torch.softmax(s, -1) @ v)
    return torch.stack(out)


def check_against_cpu(k_codec, v_codec, dtype, profile=None, window=0):
    dev, cpu = caches(k_codec, v_codec, profile)
    for i, t in enumerate((37, 1, 5)):  # prefill, a decode token, a short chunk
        for layer in range(LAYERS):
            k, v = randn(2, BATCH, KV_HEADS, t, DIM, seed=10 * i + layer).to(dtype)
            torch.ops.turboquant.append(dev.state, layer, k, v)
            torch.ops.turboquant.append(cpu.state, layer, k.cpu(), v.cpu())
    dev.check_writes()
    assert dev.lengths() == [[43] * BATCH] * LAYERS
    for layer in range(LAYERS):
        q = randn(BATCH, HEADS, 1, DIM, seed=50 + layer).to(dtype)
        got = torch.ops.turboquant.attend(dev.state, layer, q, None, window)
        assert got.dtype == dtype and got.shape == q.shape and got.is_cuda
        want = torch.ops.turboquant.attend(cpu.state, layer, q.cpu(), None, window)
        ref = reference(cpu, layer, q.cpu(), window)
        scale = float(ref.norm())
        err_cpu = float((got.cpu().double() - want.double()).norm()) / scale
        err_ref = float((got.cpu().double() - ref).norm()) / scale
        tol = TOL if dtype == torch.float32 else 1e-2  # a bf16 output rounds to 8 bits
        print(f"{k_codec}/{v_codec} {dtype} window {window} layer {layer}: |cuda - cpu op| {err_cpu:.1e}, "
              f"|cuda - f64| {err_ref:.1e}")
        assert err_cpu < tol and err_ref < tol, (err_cpu, err_ref)


def test_cuda_ops_match_cpu_op():
    check_against_cpu("turbo3", "turbo3", torch.float32)
    check_against_cpu("turbo4", "v3g32", torch.float32)
    check_against_cpu("q8_0", "f16", torch.bfloat16)


def test_cuda_preset_with_sinks_matches_cpu_op():
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from test_turboquant import random_profile

    check_against_cpu("tq3", "tq3", torch.float32, profile=random_profile(LAYERS, HEADS, KV_HEADS, DIM, seed=3))


def test_cuda_window_matches_cpu_op():
    # 43 tokens per row: windows of one token, inside the first 16-token tile, across tiles, and
    # longer than the rows (no effect); a preset with a sink outside the window.
    for window in (1, 7, 20, 100):
        check_against_cpu("turbo3", "turbo3", torch.float32, window=window)
    check_against_cpu("q8_0", "f16", torch.bfloat16, window=9)
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from test_turboquant import random_profile

    check_against_cpu("tq3", "tq3", torch.float32, profile=random_profile(LAYERS, HEADS, KV_HEADS, DIM, seed=3),
                      window=30)


def decode_step(state, k, v, q):
    torch.ops.turboquant.append(state, 0, k, v)
    out = torch.ops.turboquant.attend(state, 0, q)
    torch.ops.turboquant.append(state, 1, k * 0.5, v)
    return out + torch.ops.turboquant.attend(state, 1, out)


def prefill(cache, seed):
    for layer in range(LAYERS):
        k, v = randn(2, BATCH, KV_HEADS, 20, DIM, seed=seed + layer)
        torch.ops.turboquant.append(cache.state, layer, k, v)


def test_torch_compile_fullgraph_equals_eager():
    eager, _ = caches("turbo3", "turbo4")
    compiled, _ = caches("turbo3", "turbo4")
    prefill(eager, 1), prefill(compiled, 1)
    step = torch.compile(decode_step, fullgraph=True)
    for i in range(3):
        k, v = randn(2, BATCH, KV_HEADS, 1, DIM, seed=60 + i)
        q = randn(BATCH, HEADS, 1, DIM, seed=70 + i)
        want, got = decode_step(eager.state, k, v, q), step(compiled.state, k, v, q)
        assert torch.equal(got, want), float((got - want).abs().max())
    assert compiled.lengths() == eager.lengths() == [[23] * BATCH] * LAYERS


def test_cuda_graph_capture_and_replay():
    eager, _ = caches("turbo3", "turbo3")
    graphed, _ = caches("turbo3", "turbo3")
    prefill(eager, 2), prefill(graphed, 2)
    k_in, v_in = (torch.zeros(BATCH, KV_HEADS, 1, DIM, device="cuda") for _ in range(2))
    q_in = torch.zeros(BATCH, HEADS, 1, DIM, device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.stream(stream):
        decode_step(graphed.state, k_in, v_in, q_in)  # warm-up step (the graph's first token)
        torch.cuda.current_stream().synchronize()
        with torch.cuda.graph(graph, stream=stream):
            out = decode_step(graphed.state, k_in, v_in, q_in)
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    # Capture records the step without running it: only the warm-up's zero token was written.
    decode_step(eager.state, torch.zeros_like(k_in), torch.zeros_like(v_in), torch.zeros_like(q_in))
    for i in range(4):
        k, v = randn(2, BATCH, KV_HEADS, 1, DIM, seed=80 + i)
        q = randn(BATCH, HEADS, 1, DIM, seed=90 + i)
        k_in.copy_(k), v_in.copy_(v), q_in.copy_(q)
        graph.replay()
        want = decode_step(eager.state, k, v, q)
        torch.cuda.synchronize()
        assert torch.equal(out, want), (i, float((out - want).abs().max()))
    assert graphed.lengths() == eager.lengths() == [[25] * BATCH] * LAYERS


def test_cuda_errors_name_the_problem():
    dev, _ = caches("turbo3", "turbo3")
    k = randn(BATCH, KV_HEADS, 4, DIM, seed=100)
    for call, exc, text in (
            (lambda: torch.ops.turboquant.append(dev.state, 0, k.cpu(), k.cpu()), ValueError, "lives on cuda"),
            (lambda: torch.ops.turboquant.append(dev.state, 0, k.double(), k.double()), ValueError, "float64"),
            (lambda: torch.ops.turboquant.append(dev.state, 2, k, k), ValueError, "layer 2"),
            (lambda: torch.ops.turboquant.append(dev.state, 0, k[:1], k[:1]), ValueError, "(3, 2, tokens, 128)"),
            (lambda: torch.ops.turboquant.append(dev.state, 0, randn(BATCH, KV_HEADS, MAX + 1, DIM, seed=1),
                                                 randn(BATCH, KV_HEADS, MAX + 1, DIM, seed=2)), tq.Error, "max_tokens"),
            (lambda: torch.ops.turboquant.attend(dev.state, 0, randn(BATCH, HEADS, 2, DIM, seed=3)),
             NotImplementedError, "one query token"),
            (lambda: torch.ops.turboquant.attend(dev.state, 0, randn(BATCH, HEADS, 1, DIM, seed=3), None, 0, 30.0),
             NotImplementedError, "softcap"),
            (lambda: torch.ops.turboquant.attend(dev.state, 0, randn(BATCH, HEADS, 1, DIM, seed=3), None, -1),
             tq.Error, "window must be >= 0")):
        try:
            call()
        except exc as e:
            assert text in str(e), str(e)
        else:
            raise AssertionError(f"no {exc.__name__} for {text}")
    assert dev.lengths() == [[0] * BATCH] * LAYERS
    # NaN: the kernel refuses the vector; check_writes names it.
    torch.ops.turboquant.append(dev.state, 0, k * math.nan, k)
    try:
        dev.check_writes()
    except tq.Error as e:
        assert "NaN" in str(e), str(e)
    else:
        raise AssertionError("a NaN write was not reported")
    # A CPU cache refuses CUDA tensors (and the other way round above).
    _, cpu = caches("turbo3", "turbo3")
    try:
        torch.ops.turboquant.append(cpu.state, 0, k, k)
    except NotImplementedError as e:
        assert "TorchDeviceKvCache" in str(e), str(e)
    else:
        raise AssertionError("a CPU cache took CUDA tensors")


def test_native_attend_takes_decode_calls_without_python():
    built = glob.glob(os.path.join(os.path.dirname(turboquant.cuda.__file__), "_torch_ops*.so"))
    print(f"_torch_ops.so in the package: {built or 'none'}; native_attend(): {turboquant.cuda.native_attend()}")
    assert turboquant.cuda.native_attend() == bool(built), "the package has _torch_ops.so but it did not load"
    if not built:
        return  # the package was built without a CUDA torch: the Python kernel serves every call (tested above)
    dev, _ = caches("turbo3", "turbo4")
    prefill(dev, 3)

    def no_python(*args):
        raise AssertionError("the Python kernel of attend ran for a well-formed decode call")

    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for layer, scale, window in ((0, None, 0), (1, 0.05, 0), (0, None, 7)):
            q = randn(BATCH, HEADS, 1, DIM, seed=110 + layer).to(dtype)
            want = torch.ops.turboquant._attend_python(dev.state, layer, q, scale, window)
            saved, TorchDeviceKvCache.attend = TorchDeviceKvCache.attend, no_python
            try:
                got = torch.ops.turboquant.attend(dev.state, layer, q, scale, window)
            finally:
                TorchDeviceKvCache.attend = saved
            assert got.dtype == dtype and got.shape == q.shape
            assert torch.equal(got, want), (dtype, layer, float((got.float() - want.float()).abs().max()))
    # A non-contiguous query (a transposed view) is made contiguous by the C++ kernel too.
    q = randn(BATCH, 1, HEADS, DIM, seed=120).transpose(1, 2)
    assert torch.equal(torch.ops.turboquant.attend(dev.state, 0, q), torch.ops.turboquant._attend_python(dev.state, 0, q))
    # A collected cache leaves the C++ registry with it: its old handle is refused, not read.
    state = dev.state
    del dev
    gc.collect()
    try:
        torch.ops.turboquant.attend(state, 0, q)
    except ValueError as e:
        assert "no cache is registered" in str(e), str(e)
    else:
        raise AssertionError("a collected cache's handle was attended")


if __name__ == "__main__":
    from standalone import run_tests

    run_tests(globals(), skip=SKIP)
