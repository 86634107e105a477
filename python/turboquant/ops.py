"""turboquant.ops: torch custom ops over the paged compressed cache (namespace ``turboquant``).

    torch.ops.turboquant.append(state, layer, key, value)                quantize on write
    torch.ops.turboquant.attend(state, layer, query, scale, window, softcap) -> Tensor
                                                                          decode attention over the records

Tensors are laid out as the model holds them: keys and values ``(batch, kv_heads, tokens,
head_dim)``, queries and the output ``(batch, heads, q_tokens, head_dim)`` (as
``torch.nn.functional.scaled_dot_product_attention``), any float dtype; the output has the
query's dtype. Batch row b is sequence ``seqs[b]`` of the ``KvCache``; the queries sit at the
row's last ``q_tokens`` positions (causal; GQA when heads is a multiple of kv_heads). Both ops
have fake implementations, so a function calling them compiles with ``torch.compile``
(``fullgraph=True``).

The cache decides the device: a ``TorchKvCache`` (or turboquant.hf's cache) takes CPU tensors,
a ``turboquant.cuda.TorchDeviceKvCache`` (packages built with TQ_CUDA=ON) CUDA tensors of its
device, run on torch's current stream (CUDA-graph capturable). A tensor on another device is
refused with an error saying so, never copied behind the caller's back.

The cache handle. Ops take tensors and scalars, not Python objects, so a cache is registered
under an integer id and named by ``state``, a 2-element int64 CPU tensor ``[id, writes]``. A
tensor rather than a plain int because (1) torch.compile guards on int arguments but not on a
tensor's values, so one compiled graph serves every cache, and (2) ``append`` returns nothing:
declaring that it writes ``state`` (it counts its calls in ``state[1]``) keeps the compiler
from dropping it as dead code and orders it before an ``attend`` that reads the same state.
``torch.classes`` would need a libtorch C++ extension, which this nanobind package avoids.
"""
from __future__ import annotations

import itertools
import weakref
from typing import Any, Optional

import numpy as np

try:
    import torch
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("turboquant.ops needs torch (pip install torch): " + str(e)) from e

from . import KvCache

__all__ = ["TorchKvCache", "append", "attend", "attend_cpu", "register", "new_state"]

# id -> cache object (TorchKvCache, turboquant.hf's store, ...): anything with `device` (None
# on the host), `kv` (the KvCache), `seqs` (KvCache sequence of each batch row) and
# `write(layer, k, v)`; a device cache (turboquant.cuda) has `write` and `attend` of its own.
_REGISTRY: "weakref.WeakValueDictionary[int, Any]" = weakref.WeakValueDictionary()
# The same caches by the Python identity of their own state tensor: an eager call passes that
# very object, and reading the id out of the tensor (state[0]) costs a few microseconds per
# call, a fifth of a short decode step's kernel time. Checked with `is`, so a recycled id
# never matches; anything else (a compiled graph's own tensor) takes the tensor's id.
_BY_STATE: "weakref.WeakValueDictionary[int, Any]" = weakref.WeakValueDictionary()
_IDS = itertools.count(1)


def register(cache: Any) -> torch.Tensor:
    """Register `cache` and return its state tensor; the entries go when the cache is collected."""
    handle = next(_IDS)
    _REGISTRY[handle] = cache
    state = new_state(handle)
    _BY_STATE[id(state)] = cache
    return state


def new_state(handle: int) -> torch.Tensor:
    return torch.tensor([handle, 0], dtype=torch.int64)


def _lookup(state: torch.Tensor, op: str) -> Any:
    cache = _BY_STATE.get(id(state))
    if cache is not None and getattr(cache, "state", None) is state:
        return cache
    if state.dtype != torch.int64 or state.shape != (2,) or state.device.type != "cpu":
        raise ValueError(f"turboquant::{op}: state must be the int64 CPU tensor [id, writes] of a registered cache, "
                         f"got {state.dtype} {tuple(state.shape)} on {state.device}")
    handle = int(state[0])
    cache = _REGISTRY.get(handle)
    if cache is None:
        raise ValueError(f"turboquant::{op}: no cache is registered under id {handle} (closed or collected)")
    return cache


def _cpu_only(op: str, *tensors: torch.Tensor) -> None:
    for t in tensors:
        if t.device.type != "cpu":
            raise NotImplementedError(
                f"turboquant::{op}: this cache is a CPU KvCache, so only CPU tensors are accepted; got a tensor on "
                f"{t.device}. For CUDA tensors use turboquant.cuda.TorchDeviceKvCache (a package built with "
                "TQ_CUDA=ON), or move the tensor with .cpu() if a host copy is wanted.")


def _on_device(cache: Any) -> bool:
    """Whether `cache` is a device cache (turboquant.cuda), which runs the ops itself. Host caches
    say device = None as a class attribute (a missing attribute costs an exception per call)."""
    return cache.device is not None


def _rows(t: torch.Tensor) -> np.ndarray:
    """(batch, heads, tokens, dim) -> float32 (batch, tokens, heads, dim): the KvCache's token-major rows."""
    return t.detach().to(torch.float32).transpose(1, 2).contiguous().numpy()


def _append_rows(kv: KvCache, layer: int, seqs: list[int], k: np.ndarray, v: np.ndarray) -> None:
    """Append row b of k, v (batch, tokens, heads, dim) to sequence seqs[b]. A NaN/Inf anywhere is
    refused before any row is written, with the library's message (which names the position)."""
    finite = np.isfinite(k).all(axis=(1, 2, 3)) & np.isfinite(v).all(axis=(1, 2, 3))
    order = range(len(seqs)) if finite.all() else [int(np.argmin(finite))]
    for row in order:
        kv.append(layer, seqs[row], k[row], v[row])


def append(state: torch.Tensor, layer: int, key: torch.Tensor, value: torch.Tensor) -> None:
    """Quantize keys and values (batch, kv_heads, tokens, head_dim) and append them to `layer`
    of every batch row's sequence. turboquant.Error when the pool is full or on NaN/Inf."""
    cache = _lookup(state, "append")
    if not _on_device(cache):
        _cpu_only("append", key, value)
    if key.dim() != 4 or key.shape != value.shape:
        raise ValueError("turboquant::append: key and value must both be (batch, kv_heads, tokens, head_dim), "
                         f"got {tuple(key.shape)} and {tuple(value.shape)}")
    cache.write(layer, key, value)
    state[1] += 1


def _append_fake(state: torch.Tensor, layer: int, key: torch.Tensor, value: torch.Tensor) -> None:
    return None


def attend(state: torch.Tensor, layer: int, query: torch.Tensor, scale: Optional[float] = None, window: int = 0,
           softcap: float = 0.0) -> torch.Tensor:
    """Causal attention of queries (batch, heads, q_tokens, head_dim) over `layer` of each row's
    compressed history, read from the records (KvCache.attend). Returns (batch, heads,
    q_tokens, head_dim) in the query's dtype."""
    cache = _lookup(state, "attend")
    if query.dim() != 4:
        raise ValueError(f"turboquant::attend: query must be (batch, heads, q_tokens, head_dim), got {tuple(query.shape)}")
    if _on_device(cache):
        return cache.attend(layer, query, scale, window, softcap)
    return attend_cpu(cache.kv, cache.seqs, layer, query, scale, window, softcap)


def attend_cpu(kv: KvCache, seqs: list[int], layer: int, query: torch.Tensor, scale: Optional[float], window: int,
               softcap: float) -> torch.Tensor:
    """turboquant::attend on a CPU KvCache whose batch row b is sequence seqs[b]: one library call
    for all rows, reading the query and writing the output in place (no per-row arrays)."""
    if not query.is_cpu:
        _cpu_only("attend", query)
    rows, heads, n_q, dim = query.shape
    if rows != len(seqs) or dim != kv.head_dim:
        raise ValueError(f"turboquant::attend: query must be (batch={len(seqs)}, heads, q_tokens, head_dim="
                         f"{kv.head_dim}), got {tuple(query.shape)}")
    # The library reads [row][q_token][head][dim] float32: a contiguous float32 query of one token
    # is already that; anything else is converted once.
    q = query
    if n_q != 1 or query.dtype != torch.float32 or not query.is_contiguous():
        q = torch.empty((rows, n_q, heads, dim), dtype=torch.float32)
        q.copy_(query.detach().transpose(1, 2))
    # The library writes [row][q_token][head][dim]; for one token that is the op's (batch, heads,
    # 1, dim) already, so the output is allocated in its final shape.
    out = torch.empty((rows, heads, 1, dim) if n_q == 1 else (rows, n_q, heads, dim), dtype=torch.float32)
    kv._attend_rows(layer, seqs, q.data_ptr(), n_q, heads, out.data_ptr(), scale, window, softcap)
    if n_q != 1:
        out = out.transpose(1, 2).contiguous()
    return out if query.dtype == torch.float32 else out.to(query.dtype)


def _attend_fake(state: torch.Tensor, layer: int, query: torch.Tensor, scale: Optional[float] = None,
                 window: int = 0, softcap: float = 0.0) -> torch.Tensor:
    return torch.empty_like(query, memory_format=torch.contiguous_format)


# The ops are defined with torch.library.Library, one CompositeExplicitAutograd kernel each (the
# functions above, for every device), rather than torch.library.custom_op: custom_op wraps each
# call in Python-level autograd and aliasing checks, which measured ~15 us more host time per
# call (torch 2.15, CPU: 21.6 us against 6.9 us for an op that returns at once), most of a short
# decode step's kernel time on a GPU. Neither op has a gradient.
_LIB = torch.library.Library("turboquant", "DEF")
_LIB.define("append(Tensor(a!) state, int layer, Tensor key, Tensor value) -> ()")
_LIB.define("attend(Tensor state, int layer, Tensor query, float? scale=None, int window=0, float softcap=0.0) "
            "-> Tensor")
_LIB.impl("append", append, "CompositeExplicitAutograd")
_LIB.impl("attend", attend, "CompositeExplicitAutograd")
# attend's Python kernel under a name of its own: the C++ CUDA kernel of attend (_torch_ops.so,
# turboquant/cuda.py) hands it every call it does not take, so errors read the same either way.
_LIB.define("_attend_python(Tensor state, int layer, Tensor query, float? scale=None, int window=0, "
            "float softcap=0.0) -> Tensor")
_LIB.impl("_attend_python", attend, "CompositeExplicitAutograd")
torch.library.register_fake("turboquant::append", _append_fake, lib=_LIB)
torch.library.register_fake("turboquant::attend", _attend_fake, lib=_LIB)


class TorchKvCache:
    """A ``KvCache`` for batches of torch tensors: batch row b is a sequence of its own.

    ``state`` is the handle the ops take::

        cache = TorchKvCache(KvCache(n_layers=2, n_kv_heads=2, head_dim=64, k_codec="turbo4",
                                     v_codec="turbo3"), batch=2)
        torch.ops.turboquant.append(cache.state, 0, k, v)       # (2, 2, tokens, 64)
        out = torch.ops.turboquant.attend(cache.state, 0, q)    # (2, heads, q_tokens, 64)
    """

    device = None  # a host cache (turboquant.cuda's caches name their GPU)

    def __init__(self, kv: KvCache, batch: int = 1):
        if batch <= 0:
            raise ValueError(f"batch must be > 0, got {batch}")
        self.kv = kv
        self.seqs = [kv.add_sequence() for _ in range(batch)]
        self.state = register(self)

    def write(self, layer: int, key: torch.Tensor, value: torch.Tensor) -> None:
        if key.shape[0] != len(self.seqs):
            raise ValueError(f"turboquant::append: the cache holds {len(self.seqs)} batch rows, got key "
                             f"{tuple(key.shape)}")
        _append_rows(self.kv, layer, self.seqs, _rows(key), _rows(value))

    def length(self, layer: int) -> int:
        return self.kv.length(layer, self.seqs[0])
