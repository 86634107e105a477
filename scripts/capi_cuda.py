"""ctypes over libturboquant's device-cache C API (include/turboquant/c_api_cuda.h), for the
CUDA benchmarks: scripts/bench_cuda.py, scripts/bench_torch_op.py, bench/cuda/*.py.

    lib = capi_cuda.load("build-cuda/src/capi/libturboquant.so")
    cache = capi_cuda.DeviceCache(lib, "turbo3", "turbo3", n_kv_heads=8, head_dim=128, max_tokens=...)
    cache.quantize(k, v, slots)                          # torch CUDA tensors (data_ptr), unchecked
    cache.decode(q, tables, lens, max_seq_len, out, ws)  # one decode step
A failing call raises RuntimeError with tq_last_error()'s message.
"""
import ctypes

_vp, _i, _i64, _sz, _f = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_size_t, ctypes.c_float
DTYPES = {"float32": 0, "float16": 1, "bfloat16": 2}  # tq_dtype, by torch dtype name


class CacheConfig(ctypes.Structure):
    _fields_ = [("n_layers", _i), ("n_kv_heads", _i), ("head_dim", _i), ("k_codec", ctypes.c_char_p),
                ("v_codec", ctypes.c_char_p), ("block_tokens", _i), ("max_tokens", _i), ("seed", ctypes.c_uint64),
                ("n_threads", _i), ("profile", _vp), ("context", _i)]
API_VERSION = 4  # TQ_API_VERSION of the header these structs mirror
QUANTIZE_KERNELS = ["auto", "tiled", "warp", "tensor"]  # tq_cuda_quantize_kernel's order


class QuantizeParams(ctypes.Structure):
    _fields_ = [("layer", _i), ("k", _vp), ("v", _vp), ("dtype", _i), ("n_tokens", _i), ("token_stride", _i64),
                ("slots", _vp), ("positions", _vp), ("seq_ids", _vp), ("stream", _vp), ("check", _i),
                ("kernel", _i)]


class DecodeParams(ctypes.Structure):
    _fields_ = [("layer", _i), ("q", _vp), ("q_dtype", _i), ("batch", _i), ("n_q_heads", _i), ("block_tables", _vp),
                ("max_blocks_per_seq", _i), ("seq_lens", _vp), ("max_seq_len", _i), ("scale", _f),
                ("num_splits", _i), ("out", _vp), ("workspace", _vp), ("workspace_bytes", _sz), ("seq_ids", _vp),
                ("stream", _vp), ("window", _i), ("out_dtype", _i)]


def declare(path, sigs):
    """libturboquant at `path` with the C API calls both wrappers use and `sigs` ({name:
    (restype, argtypes)}) declared, its version checked against these structs'."""
    lib = ctypes.CDLL(path)
    P = ctypes.POINTER
    common = {
        "tq_last_error": (ctypes.c_char_p, []),
        "tq_api_version": (_i, []),
        "tq_profile_load": (_i, [ctypes.c_char_p, P(_vp)]),
        "tq_profile_destroy": (None, [_vp]),
        "tq_cache_config_default": (CacheConfig, []),
    }
    for name, (res, args) in {**common, **sigs}.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    if lib.tq_api_version() != API_VERSION:
        raise RuntimeError(f"{path}: C API version {lib.tq_api_version()}, these bindings mirror version {API_VERSION}")
    return lib


def load(path):
    P = ctypes.POINTER
    return declare(path, {
        "tq_cuda_available": (_i, []),
        "tq_cuda_cache_create": (_i, [P(CacheConfig), P(_vp)]),
        "tq_cuda_cache_destroy": (None, [_vp]),
        "tq_cuda_cache_record_bytes": (_i, [_vp, _i, _i, P(_sz)]),
        "tq_cuda_cache_pool": (_i, [_vp, _i, _i, P(_vp), P(_sz)]),
        "tq_cuda_quantize_params_default": (QuantizeParams, []),
        "tq_cuda_quantize": (_i, [_vp, P(QuantizeParams)]),
        "tq_cuda_check_writes": (_i, [_vp]),
        "tq_cuda_decode_params_default": (DecodeParams, []),
        "tq_cuda_decode_workspace_bytes": (_i, [_vp, P(DecodeParams), P(_sz)]),
        "tq_cuda_decode_num_splits": (_i, [_vp, P(DecodeParams), P(_i)]),
        "tq_cuda_decode": (_i, [_vp, P(DecodeParams)]),
    })


def check(lib, status):
    if status:
        raise RuntimeError(lib.tq_last_error().decode())


def create_cache(lib, create, cfg, profile):
    """The handle create(&cfg, &handle) makes, with the profile file `profile` (a calibrated
    preset's, or None) loaded for the call: the cache keeps the codecs built from it."""
    prof = _vp()
    if profile is not None:
        check(lib, lib.tq_profile_load(str(profile).encode(), ctypes.byref(prof)))
        cfg.profile = prof
    h = _vp()
    try:
        check(lib, create(ctypes.byref(cfg), ctypes.byref(h)))
    finally:
        lib.tq_profile_destroy(prof)
    return h


def _ptr(t):
    return None if t is None else t.data_ptr()


class DeviceCache:
    """A tq_cuda_cache of one k/v codec pair; tensors are torch CUDA tensors."""

    def __init__(self, lib, k_codec, v_codec, *, n_kv_heads, head_dim, max_tokens, block_tokens=32, n_layers=1,
                 seed=1, profile=None, context=0):
        """profile: path of a `tq calibrate` file, needed by a calibrated preset (tq3, ...)."""
        self.lib = lib
        cfg = lib.tq_cache_config_default()
        cfg.n_layers, cfg.n_kv_heads, cfg.head_dim = n_layers, n_kv_heads, head_dim
        cfg.k_codec, cfg.v_codec = k_codec.encode(), v_codec.encode()
        cfg.block_tokens, cfg.max_tokens, cfg.seed, cfg.context = block_tokens, max_tokens, seed, context
        self.h = create_cache(lib, lib.tq_cuda_cache_create, cfg, profile)
        self.rb = tuple(self.record_bytes(0, kv) for kv in (0, 1))

    def _ok(self, status):
        check(self.lib, status)

    def record_bytes(self, layer, kv):
        n = _sz()
        self._ok(self.lib.tq_cuda_cache_record_bytes(self.h, layer, kv, ctypes.byref(n)))
        return n.value

    def pool(self, layer, kv):
        """The device address and byte size of a layer's K (kv = 0) or V (kv = 1) pool."""
        ptr, size = _vp(), _sz()
        self._ok(self.lib.tq_cuda_cache_pool(self.h, layer, kv, ctypes.byref(ptr), ctypes.byref(size)))
        return ptr.value, size.value

    def quantize(self, k, v, slots, layer=0, check=False, positions=None, seq_ids=None, stream=None, kernel="auto"):
        """k, v [n][n_kv_heads][head_dim]; unchecked by default, so a timed call is the launch
        alone (close() reports NaN/Inf inputs). kernel: one of QUANTIZE_KERNELS."""
        p = self.lib.tq_cuda_quantize_params_default()
        p.kernel = QUANTIZE_KERNELS.index(kernel)
        p.layer, p.k, p.v, p.dtype, p.n_tokens = layer, k.data_ptr(), v.data_ptr(), DTYPES[str(k.dtype)[6:]], k.shape[0]
        p.slots, p.positions, p.seq_ids, p.stream, p.check = slots.data_ptr(), _ptr(positions), _ptr(seq_ids), stream, int(check)
        self._ok(self.lib.tq_cuda_quantize(self.h, ctypes.byref(p)))

    def decode_params(self, batch, n_q, tables, max_seq_len, num_splits=0, layer=0):
        p = self.lib.tq_cuda_decode_params_default()
        p.layer, p.batch, p.n_q_heads, p.max_blocks_per_seq = layer, batch, n_q, tables.shape[1]
        p.block_tables, p.max_seq_len, p.num_splits = tables.data_ptr(), max_seq_len, num_splits
        return p

    def workspace_bytes(self, batch, n_q, tables, max_seq_len, num_splits=0):
        n = _sz()
        p = self.decode_params(batch, n_q, tables, max_seq_len, num_splits)
        self._ok(self.lib.tq_cuda_decode_workspace_bytes(self.h, ctypes.byref(p), ctypes.byref(n)))
        return n.value

    def num_splits(self, batch, n_q, tables, max_seq_len):
        n = _i()
        p = self.decode_params(batch, n_q, tables, max_seq_len)
        self._ok(self.lib.tq_cuda_decode_num_splits(self.h, ctypes.byref(p), ctypes.byref(n)))
        return n.value

    def decode_call(self, q, tables, lens, max_seq_len, out, ws, scale=0.0, num_splits=0, seq_ids=None, stream=None,
                    layer=0, window=0):
        """A ready call of one decode step (q [batch][n_q][d]): the params are built once, so
        timing it measures the C call and the kernels, not ctypes' struct building."""
        p = self.decode_params(q.shape[0], q.shape[1], tables, max_seq_len, num_splits, layer)
        p.q, p.q_dtype, p.seq_lens, p.scale = q.data_ptr(), DTYPES[str(q.dtype)[6:]], lens.data_ptr(), scale
        p.out, p.workspace, p.workspace_bytes, p.seq_ids, p.stream = out.data_ptr(), ws.data_ptr(), ws.numel(), _ptr(seq_ids), stream
        p.window, p.out_dtype = window, DTYPES[str(out.dtype)[6:]]
        ref, fn, h = ctypes.byref(p), self.lib.tq_cuda_decode, self.h

        def call():
            if fn(h, ref):
                raise RuntimeError(self.lib.tq_last_error().decode())
        call.params = p  # keeps the struct alive with the call
        return call

    def decode(self, *args, **kwargs):
        self.decode_call(*args, **kwargs)()

    def close(self):
        status = self.lib.tq_cuda_check_writes(self.h)
        self.lib.tq_cuda_cache_destroy(self.h)
        self._ok(status)
