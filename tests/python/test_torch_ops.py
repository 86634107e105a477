"""Tests of the torch custom ops turboquant::append and turboquant::attend (turboquant/ops.py).

They check the ops against the NumPy KvCache (same records, same attention output), against
a float64 torch attention over the dequantized cache, their fake implementations
(torch.library.opcheck) and a function calling them under torch.compile(fullgraph=True)
against eager. Skipped, with the reason, when torch is missing. Runs under pytest or alone
(`python tests/python/test_torch_ops.py`).
"""
import math

try:
    import torch

    from turboquant.ops import TorchKvCache

    SKIP = None
except ImportError as e:
    SKIP = f"turboquant.ops tests need torch (pip install torch): {e}"

if SKIP is not None and __name__ != "__main__":
    import pytest

    pytest.skip(SKIP, allow_module_level=True)

import numpy as np

import turboquant as tq

LAYERS, KV_HEADS, HEADS, DIM, BATCH = 2, 2, 4, 64, 2


def new_kv(k_codec="turbo4", v_codec="turbo3"):
    return tq.KvCache(LAYERS, KV_HEADS, DIM, k_codec=k_codec, v_codec=v_codec, block_tokens=16, max_tokens=512)


def randn(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def reference_attention(q, k, v, scale):
    """float64 causal attention. q (heads, n_q, d) at the last n_q of k, v's (t, kv_heads, d) positions."""
    heads, n_q, t = q.shape[0], q.shape[1], k.shape[0]
    k, v = k.double().transpose(0, 1), v.double().transpose(0, 1)  # (kv_heads, t, d)
    group = heads // k.shape[0]
    k, v = k.repeat_interleave(group, 0), v.repeat_interleave(group, 0)
    s = (q.double() @ k.transpose(1, 2)) * scale  # (heads, n_q, t)
    pos = torch.arange(t - n_q, t)[:, None]
    s = s.masked_fill(torch.arange(t)[None, :] > pos, float("-inf"))
    return torch.softmax(s, -1) @ v


# Measured here (torch 2.15 CPU, turbo4 keys / turbo3 values, head_dim 64): largest |op - float64
# reference over the decoded records| 4e-7 relative to max |out|; the bound leaves margin for
# other SIMD paths' float32 summation orders.
REFERENCE_TOL = 1e-5


def test_ops_match_numpy_cache_and_float64_reference():
    cache, numpy_cache = TorchKvCache(new_kv(), batch=BATCH), new_kv()
    numpy_seqs = [numpy_cache.add_sequence() for _ in range(BATCH)]
    chunks = [randn(2, BATCH, KV_HEADS, t, DIM, seed=10 + i) for i, t in enumerate((37, 1, 5))]
    for layer in range(LAYERS):
        for k, v in chunks:  # a prefill, then a decode token, then a short chunk
            torch.ops.turboquant.append(cache.state, layer, k, v)
            for row, seq in enumerate(numpy_seqs):
                numpy_cache.append(layer, seq, k[row].transpose(0, 1).numpy(), v[row].transpose(0, 1).numpy())
    assert int(cache.state[1]) == LAYERS * len(chunks) and cache.length(1) == 43
    q = randn(BATCH, HEADS, 3, DIM, seed=20)
    for layer in range(LAYERS):
        out = torch.ops.turboquant.attend(cache.state, layer, q)
        assert out.shape == q.shape and out.dtype == q.dtype
        for row, seq in enumerate(numpy_seqs):
            # The NumPy path: the same records, the same attention.
            for mine, theirs in zip(cache.kv.records(layer, cache.seqs[row]), numpy_cache.records(layer, seq)):
                assert np.array_equal(mine, theirs)
            want = numpy_cache.attend(layer, seq, q[row].transpose(0, 1).numpy())
            assert np.array_equal(out[row].transpose(0, 1).numpy(), want)
            # float64 attention over what the records decode to.
            k, v = (torch.from_numpy(a) for a in cache.kv.read(layer, cache.seqs[row]))
            ref = reference_attention(q[row], k, v, 1 / math.sqrt(DIM))
            err = float((out[row].double() - ref).abs().max() / ref.abs().max())
            assert err < REFERENCE_TOL, err
    # bf16 queries give a bf16 output; scale, window and softcap reach the kernel.
    out16 = torch.ops.turboquant.attend(cache.state, 0, q.bfloat16())
    assert out16.dtype == torch.bfloat16
    got = torch.ops.turboquant.attend(cache.state, 0, q, 0.05, 8, 30.0)
    want = numpy_cache.attend(0, numpy_seqs[0], q[0].transpose(0, 1).numpy(), scale=0.05, window=8, softcap=30.0)
    assert np.array_equal(got[0].transpose(0, 1).numpy(), want)


def test_opcheck_fake_implementations():
    # Schema, fake (meta) implementation and autograd registration checked by torch itself.
    cache = TorchKvCache(new_kv("q8_0", "turbo3"), batch=BATCH)
    k, v = randn(2, BATCH, KV_HEADS, 4, DIM, seed=30)
    torch.library.opcheck(torch.ops.turboquant.append.default, (cache.state, 0, k, v))
    q = randn(BATCH, HEADS, 2, DIM, seed=31)
    torch.library.opcheck(torch.ops.turboquant.attend.default, (cache.state, 0, q, None, 0, 0.0))


def decode_step(state, k, v, q):
    """What a model's attention layer does with the ops: write the step's K/V, attend."""
    torch.ops.turboquant.append(state, 0, k, v)
    out = torch.ops.turboquant.attend(state, 0, q)
    torch.ops.turboquant.append(state, 1, k * 0.5, v)
    return out + torch.ops.turboquant.attend(state, 1, out)


def test_torch_compile_fullgraph_equals_eager():
    eager, compiled = TorchKvCache(new_kv(), batch=BATCH), TorchKvCache(new_kv(), batch=BATCH)
    step = torch.compile(decode_step, fullgraph=True)
    for i in range(3):  # same shapes every step: one compilation, state given as a tensor
        k, v = randn(2, BATCH, KV_HEADS, 8, DIM, seed=40 + i)
        q = randn(BATCH, HEADS, 8, DIM, seed=50 + i)
        want, got = decode_step(eager.state, k, v, q), step(compiled.state, k, v, q)
        assert torch.equal(got, want), float((got - want).abs().max())
    for layer in range(LAYERS):
        assert compiled.length(layer) == eager.length(layer) == 24
        for mine, theirs in zip(compiled.kv.records(layer, 1), eager.kv.records(layer, 1)):
            assert np.array_equal(mine, theirs)
    assert int(compiled.state[1]) == int(eager.state[1]) == 6  # appends were not dropped


def test_op_errors_name_the_problem():
    cache = TorchKvCache(new_kv(), batch=BATCH)
    k = randn(BATCH, KV_HEADS, 4, DIM, seed=60)
    for call, exc, text in (
            (lambda: torch.ops.turboquant.append(cache.state, 0, k, k[:, :, :2]), ValueError, "key and value"),
            (lambda: torch.ops.turboquant.append(cache.state, 0, k[:1], k[:1]), ValueError, "batch rows"),
            (lambda: torch.ops.turboquant.append(torch.tensor([987654, 0]), 0, k, k), ValueError, "987654"),
            (lambda: torch.ops.turboquant.append(cache.state, 0, k * math.nan, k), tq.Error, "NaN"),
            (lambda: torch.ops.turboquant.attend(cache.state, 0, k[:1]), ValueError, "batch=2")):
        try:
            call()
        except exc as e:
            assert text in str(e), str(e)
        else:
            raise AssertionError(f"no {exc.__name__} for {text}")
    assert cache.length(0) == 0 and int(cache.state[1]) == 0  # refused writes leave nothing


def test_cuda_tensors_are_refused():
    if not torch.cuda.is_available():
        print("skipped: no CUDA device (the refusal is checked where torch sees one)")
        return
    cache = TorchKvCache(new_kv(), batch=BATCH)
    k = randn(BATCH, KV_HEADS, 4, DIM, seed=70)
    for call in (lambda: torch.ops.turboquant.append(cache.state, 0, k.cuda(), k.cuda()),
                 lambda: torch.ops.turboquant.attend(cache.state, 0, k.cuda())):
        try:
            call()
        except NotImplementedError as e:
            assert "only CPU tensors are accepted" in str(e), str(e)
        else:
            raise AssertionError("CUDA tensors were accepted")
    assert cache.length(0) == 0


if __name__ == "__main__":
    from standalone import run_tests

    run_tests(globals(), skip=SKIP, banner=lambda: f"torch {torch.__version__}")
