"""Tests of the Python package against known properties of the codecs and the cache.

Runs under pytest (`python -m pytest tests/python`) or alone (`python tests/python/test_turboquant.py`).
Needs the package installed: `pip install .` from the repository root.
"""
import math
import os
import tempfile

import numpy as np

import turboquant as tq


def raises(exc_type, fn, *args, contains="", **kwargs):
    """Assert fn(*args) raises exc_type whose message contains `contains`; returns the message."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        assert contains in str(e), f"message {str(e)!r} lacks {contains!r}"
        return str(e)
    raise AssertionError(f"{fn} did not raise {exc_type.__name__}")


def unit_vectors(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_codec_table():
    rows = tq.codecs(128)
    names = [r["name"] for r in rows]
    for want in ("f16", "q8_0", "q4_0", "turbo3", "turbo4p", "rht3", "v3g32"):
        assert want in names
    by_name = {r["name"]: r for r in rows}
    assert by_name["f16"]["record_bytes"] == 256 and by_name["f16"]["bits_per_coord"] == 16.0
    assert by_name["q8_0"]["record_bytes"] == 4 * 34  # per 32 coordinates: fp16 scale + 32 int8
    assert by_name["turbo3"]["rotation"] == "dense" and by_name["turbo3"]["quant"] == "mse"
    # A dimension a codec cannot take is reported, not raised.
    q8 = {r["name"]: r for r in tq.codecs(100)}["q8_0"]
    assert q8["record_bytes"] is None and q8["error"]


def test_f16_is_exact_to_f16_rounding():
    x = np.random.default_rng(1).standard_normal((64, 128)).astype(np.float32) * 3
    c = tq.Codec("f16", 128)
    y = c.decode(c.encode(x))
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.array_equal(y, x.astype(np.float16).astype(np.float32))


def test_q8_0_error_bound():
    x = np.random.default_rng(2).standard_normal((200, 128)).astype(np.float32)
    c = tq.Codec("q8_0", 128)
    err = np.abs(c.decode(c.encode(x)) - x).reshape(200, 4, 32)
    amax = np.abs(x).reshape(200, 4, 32).max(axis=2, keepdims=True)
    # Half a step (amax/127/2) of rounding, plus the fp16 rounding of the scale (2^-11
    # relative) times up to 127 steps: under 0.57 steps in all.
    assert np.all(err <= 0.57 * amax / 127), float((err / (amax / 127)).max())


def test_turbo3_mse_near_lloyd_max():
    # TurboQuant_mse at 3 bits on random unit vectors, d = 128: the rotated coordinates are
    # close to N(0, 1/d), whose 3-bit Lloyd-Max distortion is 0.03454 per unit of norm^2.
    x = unit_vectors(4000, 128, 3)
    c = tq.Codec("turbo3", 128, seed=5)
    mse = float(np.mean(np.sum((c.decode(c.encode(x)) - x) ** 2, axis=1)))
    assert 0.031 < mse < 0.038, mse


def test_codec_batching_and_shapes():
    c = tq.Codec("turbo4", 64, seed=9)
    x = np.random.default_rng(4).standard_normal((3, 5, 64)).astype(np.float32)
    rec = c.encode(x)
    assert rec.dtype == np.uint8 and rec.shape == (3, 5, c.record_bytes)
    # Batched equals one at a time, and float64 input is converted.
    assert np.array_equal(rec[1, 2], c.encode(x[1, 2]))
    assert np.array_equal(c.encode(x.astype(np.float64)), rec)
    assert c.decode(rec).shape == (3, 5, 64)
    # Same seed, same codec; another seed, another rotation.
    assert np.array_equal(tq.Codec("turbo4", 64, seed=9).encode(x), rec)
    assert not np.array_equal(tq.Codec("turbo4", 64, seed=10).encode(x), rec)
    assert repr(c) == "Codec('turbo4', dim=64, seed=9)"
    assert c.bits_per_coord == 8 * c.record_bytes / 64


def test_codec_errors_name_the_problem():
    raises(tq.Error, tq.Codec, "turbo9", 128, contains="turbo9")
    raises(tq.Error, tq.Codec, "q8_0", 100)
    c = tq.Codec("turbo3", 32)
    raises(ValueError, c.encode, np.zeros((4, 31), np.float32), contains="(..., 32)")
    raises(ValueError, c.decode, np.zeros((4, 3), np.uint8), contains="records must have shape")
    bad = np.zeros((3, 32), np.float32)
    bad[1, 4] = np.nan
    raises(tq.Error, c.encode, bad, contains="vector 1 coordinate 4 is NaN or Inf")


def random_kv_q(t, n_kv, n_heads, d, seed):
    """Keys and values (t, n_kv, d) and one decode query (n_heads, d), float32."""
    rng = np.random.default_rng(seed)
    k, v = (rng.standard_normal((t, n_kv, d)).astype(np.float32) for _ in range(2))
    return k, v, rng.standard_normal((n_heads, d)).astype(np.float32)


def softmax_attention(q, k, v, scale):
    """q (n_heads, d), k, v (t, n_kv, d): plain softmax attention with grouped heads."""
    n_heads, n_kv = q.shape[0], k.shape[1]
    out = np.empty_like(q, dtype=np.float64)
    for h in range(n_heads):
        kv = h // (n_heads // n_kv)
        s = (k[:, kv, :].astype(np.float64) @ q[h].astype(np.float64)) * scale
        w = np.exp(s - s.max())
        out[h] = (w / w.sum()) @ v[:, kv, :].astype(np.float64)
    return out


def test_f16_cache_attention_equals_numpy():
    n_kv, n_heads, d, t = 2, 8, 64, 37
    k, v, q = random_kv_q(t, n_kv, n_heads, d, seed=6)
    cache = tq.KvCache(n_layers=1, n_kv_heads=n_kv, head_dim=d, block_tokens=16, max_tokens=64)
    seq = cache.add_sequence()
    cache.append(0, seq, k[:30], v[:30])  # prefill, then one token at a time
    for i in range(30, t):
        cache.append(0, seq, k[i], v[i])
    assert cache.length(0, seq) == t
    out = cache.attend(0, seq, q)  # decode step: the query sits at the last position
    want = softmax_attention(q, k.astype(np.float16), v.astype(np.float16), 1 / math.sqrt(d))
    assert out.shape == q.shape and out.dtype == np.float32
    assert np.allclose(out, want, atol=2e-5), np.abs(out - want).max()
    assert np.allclose(cache.attend(0, seq, q, reference=True), out, atol=1e-5)
    # An earlier position sees only the keys up to it (causal).
    early = cache.attend(0, seq, q[None], q_pos0=9)[0]
    want9 = softmax_attention(q, k[:10].astype(np.float16), v[:10].astype(np.float16), 1 / math.sqrt(d))
    assert np.allclose(early, want9, atol=2e-5)


def test_compressed_cache_attention_is_close_and_small():
    n_kv, n_heads, d, t = 2, 4, 128, 64
    k, v, q = random_kv_q(t, n_kv, n_heads, d, seed=7)
    cache = tq.KvCache(1, n_kv, d, k_codec="turbo4", v_codec="turbo4", max_tokens=t, threads=2)
    seq = cache.add_sequence()
    cache.append(0, seq, k, v)
    out = cache.attend(0, seq, q)
    want = softmax_attention(q, k, v, 1 / math.sqrt(d))
    rel = np.linalg.norm(out - want) / np.linalg.norm(want)
    assert rel < 0.15, rel
    assert cache.bytes_per_token < 2 * n_kv * d * 2 / 3  # well under a third of f16


def test_cache_errors_and_sequences():
    cache = tq.KvCache(2, 1, 32, k_codec="q8_0", v_codec="q4_0", block_tokens=4, max_tokens=8)
    a, b = cache.add_sequence(), cache.add_sequence()
    assert cache.sequences() == [a, b]
    cache.remove_sequence(a)
    assert cache.sequences() == [b]
    raises(tq.Error, cache.remove_sequence, a, contains="no live sequence")
    x = np.ones((9, 1, 32), np.float32)
    raises(tq.Error, cache.append, 0, b, x, x, contains="pool full")
    assert cache.length(0, b) == 0  # nothing written
    raises(ValueError, cache.append, 0, b, x[:, :, :16], x[:, :, :16], contains="k must have shape")
    raises(ValueError, cache.append, 0, b, x[:2], x[:3], contains="same number of tokens")
    raises(tq.Error, cache.append, 5, b, x[:1], x[:1], contains="out of range")
    raises(tq.Error, tq.KvCache, 1, 1, 32, k_codec="nope", contains="nope")
    raises(ValueError, tq.KvCache, 1, 1, 32, threads=-1, contains="threads must be >= 0")
    cache.append(0, b, x[:2], x[:2])
    raises(tq.Error, cache.attend, 0, b, np.ones((1, 32), np.float32), q_pos0=2)


def test_read_records_and_layer_codecs():
    rng = np.random.default_rng(9)
    cache = tq.KvCache(3, 2, 64, k_codec="turbo3", v_codec="turbo3", block_tokens=8, max_tokens=64,
                       layer_codecs={2: ("f16", "q8_0")})
    assert cache.layer_codecs == {2: ("f16", "q8_0")} and cache.num_blocks == 8 == cache.free_blocks
    assert (cache.k_record_bytes(0), cache.k_record_bytes(2), cache.v_record_bytes(2)) == (26, 128, 68)
    seq = cache.add_sequence()
    k, v = rng.standard_normal((2, 20, 2, 64)).astype(np.float32)
    for layer in range(3):
        cache.append(layer, seq, k, v)
    assert cache.free_blocks == 8 - 3  # 20 tokens in blocks of 8, one table for every layer
    # read gives what attention sees: f16 keys exactly, and the decode of each record.
    k2, v2 = cache.read(2, seq)
    assert k2.shape == (20, 2, 64) and np.array_equal(k2, k.astype(np.float16).astype(np.float32))
    assert np.abs(v2 - v).max() < 0.05
    k0, _ = cache.read(0, seq, 5, 3)
    assert np.array_equal(k0, cache.read(0, seq)[0][5:8])
    # Records copied into a cache of the same configuration decode and attend the same.
    kr, vr = cache.records(0, seq)
    assert kr.shape == (20, 2, 26) and kr.dtype == np.uint8
    other = tq.KvCache(3, 2, 64, k_codec="turbo3", v_codec="turbo3", block_tokens=8, max_tokens=32,
                        layer_codecs={2: ("f16", "q8_0")})
    s2 = other.add_sequence()
    other.append_records(0, s2, kr, vr)
    assert np.array_equal(other.read(0, s2)[0], cache.read(0, seq)[0])
    q = rng.standard_normal((4, 64)).astype(np.float32)
    assert np.array_equal(other.attend(0, s2, q), cache.attend(0, seq, q))
    raises(tq.Error, cache.read, 0, seq, 15, 6, contains="positions [15, 21) outside layer 0")
    raises(ValueError, other.append_records, 0, s2, kr[:, :, :20], vr, contains="(n, 2, 26)")
    raises(tq.Error, tq.KvCache, 2, 1, 32, layer_codecs={2: ("f16", "f16")}, contains="layer 2")


def test_save_load_round_trip():
    rng = np.random.default_rng(8)
    cache = tq.KvCache(2, 2, 64, k_codec="turbo3", v_codec="v3g32", seed=3, max_tokens=128)
    seq = cache.add_sequence()
    for layer in range(2):
        cache.append(layer, seq, rng.standard_normal((20, 2, 64)), rng.standard_normal((20, 2, 64)))
    q = rng.standard_normal((4, 64)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cache.tqc")
        cache.save(path)
        raises(tq.Error, cache.save, path, contains=path)  # never replaced silently
        cache.save(path, overwrite=True)
        loaded = tq.KvCache.load(path)
        assert (loaded.k_codec, loaded.v_codec, loaded.seed) == ("turbo3", "v3g32", 3)
        assert loaded.sequences() == [seq] and loaded.length(1, seq) == 20
        for layer in range(2):
            assert np.array_equal(loaded.attend(layer, seq, q), cache.attend(layer, seq, q))
        with open(path, "r+b") as f:
            f.truncate(100)
        raises(tq.Error, tq.KvCache.load, path)
    raises(tq.Error, tq.KvCache.load, os.path.join(tmp, "missing.tqc"), contains="missing.tqc")


def random_profile(n_layers, n_heads, n_kv, d, seed):
    """A profile built from random Gaussian rows (no model): RoPE over every coordinate at
    Llama's base, W_o = identity."""
    rng = np.random.default_rng(seed)
    b = tq.KvProfileBuilder(n_layers, n_heads, n_kv, d)
    for layer in range(n_layers):
        q, k, v = (rng.standard_normal((200, h, d)).astype(np.float32) for h in (n_heads, n_kv, n_kv))
        b.add(layer, q, k, v)
    theta = np.tile(np.concatenate([10000.0 ** (-2 * np.arange(d // 2) / d)] * 2), (n_layers, 1))
    return b.finish(theta, np.tile(np.eye(d), (n_layers, n_kv, 1, 1)), model_name="random")


def test_calibrated_preset_cache():
    n_kv, n_heads, d, t = 2, 4, 64, 40
    profile = random_profile(2, n_heads, n_kv, d, seed=11)
    assert (profile.n_layers, profile.n_heads, profile.n_kv_heads, profile.head_dim, profile.tokens) == (2, 4, 2, 64, 200)
    assert "tq3" in tq.presets() and "ferry" in tq.calibration_text()
    raises(tq.Error, tq.KvCache, 2, n_kv, d, k_codec="tq3", v_codec="tq3", contains="profile=")
    raises(tq.Error, tq.KvCache, 2, n_kv, d, k_codec="tq3", v_codec="tq4", profile=profile, contains="two calibrated")
    raises(ValueError, tq.KvProfileBuilder(1, 4, 2, d).add, 0, np.zeros((3, 4, d), np.float32),
           np.zeros((3, 2, d), np.float32), np.zeros((2, 2, d), np.float32), contains="v must have shape (3, 2, 64)")
    cache = tq.KvCache(2, n_kv, d, k_codec="tq3", v_codec="tq3", max_tokens=64, profile=profile, context=64)
    assert cache.sink_tokens == 1 and cache.bytes_per_token < 2 * 2 * n_kv * d * 2 / 4  # under a quarter of f16
    k, v, q = random_kv_q(t, n_kv, n_heads, d, seed=12)
    seq = cache.add_sequence()
    cache.append(1, seq, k, v)
    out = cache.attend(1, seq, q)
    assert np.allclose(out, cache.attend(1, seq, q, reference=True), atol=1e-5)
    # Isotropic random rows leave calibration nothing to exploit: tq3 is then a 2.5-bit codec
    # (20 B per 64-dim vector). Measured relative error 0.42 (tq4: 0.20, turbo3: 0.26).
    want = softmax_attention(q, k, v, 1 / math.sqrt(d))
    assert np.linalg.norm(out - want) / np.linalg.norm(want) < 0.5
    # The sink position reads back exactly; records and sinks copy into a second cache.
    kd, _ = cache.read(1, seq)
    assert np.allclose(kd[0], k[0], atol=1e-5) and not np.allclose(kd[1:], k[1:], atol=1e-3)
    other = tq.KvCache(2, n_kv, d, k_codec="tq3", v_codec="tq3", max_tokens=64, profile=profile, context=64)
    s2 = other.add_sequence()
    kr, vr = cache.records(1, seq)
    ks, vs = cache.sinks(1, seq)
    assert ks.shape[:2] == (1, n_kv)
    raises(tq.Error, other.append_records, 1, s2, kr, vr, contains="sink")
    other.append_records(1, s2, kr, vr, ks, vs)
    assert np.array_equal(other.attend(1, s2, q), out)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.tqc")
        cache.save(path)
        raises(tq.Error, tq.KvCache.load, path, contains="profile=")
        assert np.array_equal(tq.KvCache.load(path, profile=profile).attend(1, seq, q), out)
        profile.save(os.path.join(tmp, "p.tqprof"))
        again = tq.KvProfile.load(os.path.join(tmp, "p.tqprof"))
        assert np.array_equal(tq.KvCache.load(path, profile=again).attend(1, seq, q), out)


if __name__ == "__main__":
    from standalone import run_tests

    run_tests(globals())
