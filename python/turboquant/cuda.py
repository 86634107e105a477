"""turboquant.cuda: the torch ops over the CUDA paged cache (packages built with TQ_CUDA=ON).

``TorchDeviceKvCache`` holds a ``DeviceKvCache`` (cuda.h) and the small device tensors that
describe its batch rows; ``torch.ops.turboquant.append`` / ``attend`` (turboquant/ops.py) run on
it when given CUDA tensors::

    cache = TorchDeviceKvCache(n_layers=32, n_kv_heads=8, head_dim=128, k_codec="turbo3",
                               v_codec="turbo3", batch=8, max_tokens=4096)
    torch.ops.turboquant.append(cache.state, layer, k, v)      # (8, 8, tokens, 128), quantize on write
    out = torch.ops.turboquant.attend(cache.state, layer, q)   # (8, 32, 1, 128), decode attention

Layout: row b owns blocks [b * blocks_per_row, (b + 1) * blocks_per_row) of every layer's
pool, so its block table is fixed, and its length per layer is a device int32 tensor
(``seq_lens[layer, b]``) that ``append`` advances on the device. Everything an op launches
goes on torch's current stream, reads and writes device memory only, and never waits for the
device: a decode step (append of one token, attend) can be captured in a CUDA graph and
replayed, each replay appending at the then-current length. Decode attention is sized for
``max_tokens`` (``max_seq_len``), so its split count and workspace do not depend on the lengths.

What is checked where. Shapes, dtypes, devices and the capacity are checked when an op runs
eagerly (or is captured), against host-side lengths; a replayed graph runs no Python, so
its appends are not counted there: replaying past ``max_tokens`` is the caller's to prevent
(``lengths()`` reads the device lengths). NaN/Inf inputs are refused by the kernel (the
vector is not written) and reported by ``check_writes()`` (a wait), not by ``append``.
"""
from __future__ import annotations

import glob
import os
import warnings
import weakref
from typing import Any, Optional

try:
    import torch
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("turboquant.cuda needs torch (pip install torch): " + str(e)) from e

from . import Error, KvProfile, _turboquant
from .ops import register

__all__ = ["TorchDeviceKvCache", "available", "native_attend"]

_DTYPES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


def available() -> bool:
    """True when this package has the CUDA cache and the CUDA runtime sees a device."""
    return bool(_turboquant.has_cuda) and _turboquant.cuda_available()


def _load_native_attend() -> bool:
    """Load _torch_ops.so, the C++ CUDA kernel of turboquant::attend, when the package has it (built
    where a CUDA torch was importable, python/CMakeLists.txt). A library that no longer loads (torch
    changed since the build) is reported, and the op keeps its Python kernel."""
    if not _turboquant.has_cuda:
        return False
    found = glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "_torch_ops*.so"))
    if not found:
        return False
    try:
        torch.ops.load_library(found[0])
    except (OSError, RuntimeError) as e:
        warnings.warn(f"turboquant.cuda: {found[0]} does not load with this torch ({e}); turboquant::attend on CUDA "
                      "tensors runs its Python kernel (~5 us more host time per call). Rebuild the package against "
                      "this torch (docs/PYTHON.md).", RuntimeWarning, stacklevel=2)
        return False
    return True


_NATIVE_ATTEND = _load_native_attend()


def native_attend() -> bool:
    """True when turboquant::attend on CUDA tensors runs its C++ kernel (_torch_ops.so: no Python
    per call), False when it runs its Python kernel (same results, more host time per call)."""
    return _NATIVE_ATTEND


# torch's current stream of a device as a raw cudaStream_t, without building a Stream object
# (what inductor's generated code calls); the public route where a torch lacks it.
_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None) or (
    lambda index: torch.cuda.current_stream(index).cuda_stream)


class TorchDeviceKvCache:
    """A CUDA paged cache for batches of torch tensors: batch row b is sequence b, up to
    ``max_tokens`` tokens per row. Codecs as ``turboquant.KvCache`` (presets with ``profile``)."""

    def __init__(self, n_layers: int, n_kv_heads: int, head_dim: int, k_codec: str = "turbo3",
                 v_codec: Optional[str] = None, *, batch: int = 1, max_tokens: int = 4096, block_tokens: int = 32,
                 seed: int = 0, profile: Optional[KvProfile] = None, context: Optional[int] = None,
                 device: Any = None):
        if not _turboquant.has_cuda:
            raise NotImplementedError("turboquant.cuda: this turboquant package is built without CUDA; rebuild it with "
                                      "pip install . -C cmake.define.TQ_CUDA=ON (docs/PYTHON.md)")
        if batch <= 0 or max_tokens <= 0 or block_tokens <= 0:
            raise ValueError(f"batch, max_tokens and block_tokens must be > 0, got {batch}, {max_tokens}, {block_tokens}")
        self.device = torch.device(device) if device is not None else torch.device("cuda")
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        if self.device.type != "cuda":
            raise ValueError(f"TorchDeviceKvCache lives on a CUDA device, got {self.device}")
        self.blocks_per_row = -(-max_tokens // block_tokens)
        self.capacity = self.blocks_per_row * block_tokens  # tokens per row
        with torch.cuda.device(self.device):
            self.dev = _turboquant.DeviceKvCache(n_layers, n_kv_heads, head_dim, k_codec, v_codec or k_codec,
                                                 block_tokens, batch * self.capacity, seed, profile,
                                                 context or self.capacity)
        self.n_layers, self.n_kv_heads, self.head_dim, self.batch = n_layers, n_kv_heads, head_dim, batch
        self.k_codec, self.v_codec = k_codec, v_codec or k_codec
        i32 = dict(dtype=torch.int32, device=self.device)
        self.block_tables = torch.arange(batch * self.blocks_per_row, **i32).view(batch, self.blocks_per_row)
        self.row_base = torch.arange(batch, **i32) * self.capacity  # slot of each row's position 0
        self.seq_ids = torch.arange(batch, **i32)
        self.seq_lens = torch.zeros(n_layers, batch, **i32)  # advanced on the device by append
        self._lengths = [0] * n_layers  # host count of eager/captured appends (capacity checks)
        # Decode workspace for the most query heads a KV head may have (8): allocated here, not in
        # an op, so a captured graph never owns it. The split count depends only on (batch,
        # n_kv_heads, max_tokens), so fewer query heads need no more, nor does a window. The largest
        # over layers: keys in RoPE frames (calibrated presets) add one query set per frame.
        self._max_q_heads = 8 * n_kv_heads
        n = max(self.dev.workspace_bytes(l, batch, self._max_q_heads, self.blocks_per_row, self.capacity)
                for l in range(n_layers))
        self._workspace = torch.empty(max(n, 1), dtype=torch.uint8, device=self.device)
        self._workspace_ok: set = set()  # (layer, query heads) whose workspace size was checked
        # What every decode call passes, fixed for the cache's life (the tensors are never
        # reallocated: seq_lens is advanced in place), so a call builds no views to get them.
        self._index = self.device.index
        self._seq_lens_at = [self.seq_lens[l].data_ptr() for l in range(n_layers)]
        self._tables_at, self._seq_ids_at = self.block_tables.data_ptr(), self.seq_ids.data_ptr()
        self._workspace_at, self._workspace_bytes = self._workspace.data_ptr(), self._workspace.numel()
        self.state = register(self)
        if _NATIVE_ATTEND:  # the C++ kernel finds this cache by its handle
            handle = int(self.state[0])
            torch.ops.turboquant._register_device_cache(handle, [
                self.dev.address, _turboquant.decode_entry(), self._index, batch, n_kv_heads, head_dim,
                self.capacity, self.blocks_per_row, self._max_q_heads, self._tables_at, self._seq_ids_at,
                self._workspace_at, self._workspace_bytes] + self._seq_lens_at)
            weakref.finalize(self, torch.ops.turboquant._unregister_device_cache, handle).atexit = False

    # ---- what the ops call (turboquant/ops.py) ----

    def _check(self, op: str, layer: int, *tensors: torch.Tensor) -> None:
        if not 0 <= layer < self.n_layers:
            raise ValueError(f"turboquant::{op}: layer {layer} outside [0, {self.n_layers})")
        for t in tensors:
            if t.device != self.device:
                raise ValueError(f"turboquant::{op}: the cache lives on {self.device}, got a tensor on {t.device}")
            if t.dtype not in _DTYPES:
                raise ValueError(f"turboquant::{op}: CUDA tensors must be float32, float16 or bfloat16, got {t.dtype}")

    def write(self, layer: int, key: torch.Tensor, value: torch.Tensor) -> None:
        self._check("append", layer, key, value)
        b, h, t, d = key.shape
        if (b, h, d) != (self.batch, self.n_kv_heads, self.head_dim) or value.dtype != key.dtype:
            raise ValueError(f"turboquant::append: key and value must be ({self.batch}, {self.n_kv_heads}, tokens, "
                             f"{self.head_dim}) of one dtype, got {tuple(key.shape)} {key.dtype} and {value.dtype}")
        if self._lengths[layer] + t > self.capacity:
            raise Error(f"turboquant::append: layer {layer} holds {self._lengths[layer]} tokens per row, {t} more "
                        f"exceed max_tokens={self.capacity}")
        if t == 0:
            return
        # Token-major rows [b * t + i][kv_head][d], the kernel's layout (a copy on the device).
        k = key.transpose(1, 2).contiguous()
        v = value.transpose(1, 2).contiguous()
        pos = self.seq_lens[layer].unsqueeze(1) + torch.arange(t, dtype=torch.int32, device=self.device)
        slots = (self.row_base.unsqueeze(1) + pos).reshape(-1)
        seq_ids = self.seq_ids.unsqueeze(1).expand(b, t).reshape(-1)
        positions = pos.reshape(-1)
        self.dev.quantize(layer, k.data_ptr(), v.data_ptr(), _DTYPES[k.dtype], b * t, slots.data_ptr(),
                          positions.data_ptr(), seq_ids.data_ptr(), _raw_stream(self._index), False)
        self.seq_lens[layer] += t
        self._lengths[layer] += t

    def attend(self, layer: int, query: torch.Tensor, scale: Optional[float], window: int,
               softcap: float) -> torch.Tensor:
        # The per-call host work is most of a short decode step (docs/PYTHON.md): checks are
        # plain comparisons, and a contiguous query and the output are passed as they are.
        if not (0 <= layer < self.n_layers and query.is_cuda and query.get_device() == self._index
                and query.dtype in _DTYPES):
            self._check("attend", layer, query)
        b, hq, tq_, d = query.shape
        if b != self.batch or d != self.head_dim:
            raise ValueError(f"turboquant::attend: query must be ({self.batch}, heads, 1, {self.head_dim}), "
                             f"got {tuple(query.shape)}")
        if tq_ != 1:
            raise NotImplementedError(f"turboquant::attend: the CUDA cache attends one query token per row (decode), "
                                      f"got {tq_}; prefill attention runs in the model")
        if softcap:
            raise NotImplementedError(f"turboquant::attend: the CUDA decode kernel has no softcap (got softcap={softcap})")
        q = query if query.is_contiguous() else query.contiguous()  # (b, hq, 1, d) is the kernel's [b][hq][d]
        if (layer, hq) not in self._workspace_ok:  # the size depends only on these here: asked once
            if self.dev.workspace_bytes(layer, b, hq, self.blocks_per_row, self.capacity) > self._workspace_bytes:
                raise Error(f"turboquant::attend: {hq} query heads need a larger decode workspace than "
                            f"{self._max_q_heads} heads (a bug: please report)")
            self._workspace_ok.add((layer, hq))
        out = torch.empty((b, hq, 1, d), dtype=q.dtype, device=self.device)
        self.dev.decode(layer, q.data_ptr(), _DTYPES[q.dtype], b, hq, self._tables_at, self.blocks_per_row,
                        self._seq_lens_at[layer], self.capacity, float(scale) if scale is not None else 0.0,
                        out.data_ptr(), self._workspace_at, self._workspace_bytes, self._seq_ids_at,
                        _raw_stream(self._index), int(window), _DTYPES[q.dtype])
        return out  # written in the query's dtype by the kernel itself (no cast kernel)

    # ---- inspection ----

    def lengths(self) -> list:
        """Tokens per row of each layer, read from the device (replayed graphs included)."""
        return self.seq_lens.tolist()

    def check_writes(self) -> None:
        """Wait for the device; turboquant.Error naming the first NaN/Inf input a write refused."""
        self.dev.check_writes()
