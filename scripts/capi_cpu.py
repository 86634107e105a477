"""ctypes over libturboquant's CPU cache C API (include/turboquant/c_api.h), for
scripts/bench_torch_op.py's CPU rows: the raw C API side of the torch op comparison.

    lib = capi_cpu.load("build-capi/src/capi/libturboquant.so")
    cache = capi_cpu.Cache(lib, "turbo3", "turbo3", n_kv_heads=8, head_dim=128, max_tokens=...)
    seq = cache.add_sequence(); cache.append(seq, k, v)     # float32 NumPy [n][n_kv_heads][head_dim]
    call = cache.attend_call(seqs, q, out)                    # one decode step over rows `seqs`
A failing call raises RuntimeError with tq_last_error()'s message.
"""
import ctypes

import numpy as np

from capi_cuda import CacheConfig, check, create_cache, declare

_vp, _i, _f = ctypes.c_void_p, ctypes.c_int, ctypes.c_float


class AttentionParams(ctypes.Structure):
    _fields_ = [("n_heads", _i), ("scale", _f), ("window", _i), ("softcap", _f)]


def load(path):
    P = ctypes.POINTER
    return declare(path, {
        "tq_cache_create": (_i, [P(CacheConfig), P(_vp)]),
        "tq_cache_destroy": (None, [_vp]),
        "tq_cache_add_sequence": (_i, [_vp, P(_i)]),
        "tq_cache_append": (_i, [_vp, _i, _i, _i, _vp, _vp]),
        "tq_cache_attend": (_i, [_vp, _i, _i, _vp, _i, _i, P(AttentionParams), _vp]),
    })


class Cache:
    """A tq_cache of one layer and one k/v codec pair; arrays are float32 NumPy arrays."""

    def __init__(self, lib, k_codec, v_codec, *, n_kv_heads, head_dim, max_tokens, block_tokens=32, seed=0,
                 threads=1, profile=None, context=0):
        """profile: path of a `tq calibrate` file, needed by a calibrated preset (tq3, ...)."""
        self.lib = lib
        cfg = lib.tq_cache_config_default()
        cfg.n_layers, cfg.n_kv_heads, cfg.head_dim = 1, n_kv_heads, head_dim
        cfg.k_codec, cfg.v_codec = k_codec.encode(), v_codec.encode()
        cfg.block_tokens, cfg.max_tokens, cfg.seed, cfg.n_threads, cfg.context = (block_tokens, max_tokens, seed,
                                                                                  threads, context)
        self.h = create_cache(lib, lib.tq_cache_create, cfg, profile)
        self.lengths = {}

    def _ok(self, status):
        check(self.lib, status)

    def add_sequence(self):
        seq = _i()
        self._ok(self.lib.tq_cache_add_sequence(self.h, ctypes.byref(seq)))
        self.lengths[seq.value] = 0
        return seq.value

    def append(self, seq, k, v):
        k, v = np.ascontiguousarray(k, np.float32), np.ascontiguousarray(v, np.float32)
        self._ok(self.lib.tq_cache_append(self.h, 0, seq, k.shape[0], k.ctypes.data, v.ctypes.data))
        self.lengths[seq] += k.shape[0]

    def attend_call(self, seqs, q, out, scale=0.0):
        """A ready decode step: q, out float32 [len(seqs)][n_heads][head_dim], row b at the last
        position of seqs[b]. The arguments are built once, so timing it measures the C calls."""
        rows, heads, d = q.shape
        p = AttentionParams(heads, scale or d ** -0.5, 0, 0.0)
        ref, fn, h, stride = ctypes.byref(p), self.lib.tq_cache_attend, self.h, heads * d * 4
        args = [(seq, q.ctypes.data + b * stride, self.lengths[seq] - 1, out.ctypes.data + b * stride)
                for b, seq in enumerate(seqs)]

        def call():
            for seq, qp, pos, op in args:
                if fn(h, 0, seq, qp, 1, pos, ref, op):
                    raise RuntimeError(self.lib.tq_last_error().decode())
        call.keep = (p, q, out)  # the struct and buffers live as long as the call
        return call

    def attend(self, seq, q, position, scale=0.0):
        """One query token at `position` of seq (q float32 [n_heads][head_dim]) over its keys
        0..position: the reference a device cache of the same codecs and seed is checked against."""
        q = np.ascontiguousarray(q, np.float32)
        out = np.empty_like(q)
        p = AttentionParams(q.shape[0], scale or q.shape[1] ** -0.5, 0, 0.0)
        self._ok(self.lib.tq_cache_attend(self.h, 0, seq, q.ctypes.data, 1, position, ctypes.byref(p), out.ctypes.data))
        return out

    def close(self):
        self.lib.tq_cache_destroy(self.h)
