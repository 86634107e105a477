"""turboquant.hf: a Hugging Face transformers ``Cache`` that keeps the KV cache compressed.

``TurboQuantCache("turbo3")`` stores every layer's keys and values as records of a codec of the
table, in one ``turboquant.KvCache`` for the whole model (one sequence per batch row), quantized
when the model writes them. What an update returns depends on the model's attention:

- ``attn_implementation="turboquant"`` (registered by importing this module; see
  turboquant/hf_attention.py): attention reads the records (``KvCache.attend``), and an update
  returns the new keys and values themselves, which that attention writes; no history is
  decoded. The cache must know the model's attention before the first update: pass
  ``config=model.config`` (it reads ``_attn_implementation`` on each update), or it learns it at
  the first turboquant attention call.
- any other attention (eager, SDPA, ...): every update decodes the layer's whole history back
  to the model's dtype and device and returns it, and the model's attention runs over that
  (memory of the records at rest, a decoded copy of one layer while it attends). Writes go
  through the ``turboquant::append`` torch op (turboquant/ops.py).

Needs torch and transformers >= 4.56 (the per-layer ``Cache`` API). See docs/PYTHON.md.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

try:
    import torch
    from transformers.cache_utils import Cache, CacheLayerMixin
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "turboquant.hf needs torch and transformers >= 4.56 (pip install torch transformers): " + str(e)
    ) from e

from . import Codec, Error, KvCache, KvProfile, codecs, presets
from .calibrate import calibrate
from .hf_attention import ATTENTION, records_attention
from .ops import _append_rows, _rows, register

__all__ = ["TurboQuantCache", "TurboQuantLayer", "calibrate", "ATTENTION", "records_attention"]

_CodecPair = Union[str, Sequence[str]]


def _pair(codec: _CodecPair, what: str) -> tuple[str, str]:
    if isinstance(codec, str):
        return codec, codec
    pair = tuple(codec)
    if len(pair) != 2 or not all(isinstance(c, str) for c in pair):
        raise ValueError(f"{what} must be a codec name or a (k codec, v codec) pair, got {codec!r}")
    return pair  # type: ignore[return-value]


def _check_codec(name: str, profile: Optional[KvProfile]) -> None:
    """Refuse a name that is not a row of the codec table, or a calibrated preset without its
    profile, with the library's reason."""
    if name in {row["name"] for row in codecs()}:
        return
    if name in presets():
        if profile is None:
            raise Error(f"TurboQuantCache: '{name}' is a calibrated preset, built per model: pass profile= "
                        "(turboquant.hf.calibrate(model, tokenizer), or turboquant.KvProfile.load of a tq calibrate file)")
        return
    try:
        Codec(name, 128)
    except Error as e:
        raise Error(f"TurboQuantCache: {e}; use a codec of turboquant.codecs() or a preset of turboquant.presets()") from None
    raise Error(f"TurboQuantCache: codec '{name}' is not in the codec table")


def _text_config(config: Any) -> Any:
    return config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config


def _layer_count(config: Any) -> int:
    n = getattr(_text_config(config), "num_hidden_layers", None)
    if not isinstance(n, int) or n <= 0:
        raise ValueError(f"config has no positive num_hidden_layers (got {n!r})")
    return n


class _Tag:
    """Hung on the key tensor an update returns (as ``key._turboquant``), so that the turboquant
    attention function, which gets only tensors, finds the store and layer they came from.
    written: whether the update already wrote them (decode-history mode) or left the write to
    that function (records mode, where it knows the padding)."""

    __slots__ = ("store", "layer", "written")

    def __init__(self, store: "_Store", layer: int, written: bool):
        self.store, self.layer, self.written = store, layer, written


class _Store:
    """The model's compressed KV: one KvCache, one sequence per batch row, equal lengths per layer.

    The KvCache has a fixed pool; when a write would not fit, or a layer beyond the known count
    arrives (no config given), a larger cache is built and the records are copied byte for
    byte (the codecs' seeds depend only on seed, layer and head, so the bytes stay valid).

    Lengths are the model's (padding included); row b holds no record for its first pads[b]
    positions (left padding the turboquant attention dropped; 0 in decode-history mode).
    """

    device = None  # a host cache, for the turboquant:: ops

    def __init__(self, k_codec: str, v_codec: str, keep: dict[int, tuple[str, str]], n_layers: Optional[int],
                 block_tokens: int, max_tokens: Optional[int], seed: int, threads: int,
                 profile: Optional[KvProfile], context: int, attn_config: Any):
        self.k_codec, self.v_codec = k_codec, v_codec
        self.profile, self.context = profile, context
        self.keep = keep  # {layer >= 0: (k, v)}
        self.n_layers = n_layers  # None until known
        self.block_tokens = block_tokens
        self.reserve = max_tokens or 0  # tokens per row to reserve up front
        self.seed, self.threads = seed, threads
        self.attn_config = attn_config  # the model's (text) config: its _attn_implementation picks the mode
        self.kv: Optional[KvCache] = None
        self.seqs: list[int] = []  # KvCache sequence of each batch row
        self.lengths: list[int] = []  # tokens per layer (every row holds the same count)
        self.pads: list[int] = []  # leading positions of each row without records
        self.capacity = 0  # tokens per row the pool holds
        self.heads = self.head_dim = 0
        self.state = register(self)  # the handle of the turboquant:: torch ops (turboquant/ops.py)

    def attends_records(self) -> bool:
        return getattr(self.attn_config, "_attn_implementation", None) == ATTENTION

    def records_held(self, row: int, n: int) -> int:
        """Records row `row` holds for a layer of n positions."""
        return max(n - self.pads[row], 0)

    # ---- the KvCache and its growth ----

    def _build(self, n_layers: int, rows: int, capacity: int) -> tuple[KvCache, list[int]]:
        blocks = -(-capacity // self.block_tokens)
        layer_codecs = {l: kv for l, kv in self.keep.items() if l < n_layers}
        kv = KvCache(n_layers, self.heads, self.head_dim, k_codec=self.k_codec, v_codec=self.v_codec,
                     block_tokens=self.block_tokens, max_tokens=max(1, rows * blocks * self.block_tokens),
                     seed=self.seed, threads=self.threads, layer_codecs=layer_codecs, profile=self.profile,
                     context=self.context)
        return kv, [kv.add_sequence() for _ in range(rows)]

    def rebuild(self, n_layers: int, capacity: int, rows: Optional[Sequence[int]] = None,
                keep_tokens: Optional[int] = None) -> None:
        """A new KvCache of n_layers and `capacity` tokens per row, holding old row rows[i] as
        row i and at most keep_tokens tokens of every layer; records are copied, not re-encoded."""
        rows = list(range(len(self.seqs))) if rows is None else [int(r) for r in rows]
        old, old_seqs, old_pads = self.kv, self.seqs, self.pads
        lengths = [min(n, keep_tokens) if keep_tokens is not None else n for n in self.lengths]
        capacity = max(capacity, max(lengths, default=0), 1)
        kv, seqs = self._build(n_layers, len(rows), capacity)
        for layer, n in enumerate(lengths):
            if old is None:
                break
            for new_seq, src in zip(seqs, rows):
                held = self.records_held(src, n)
                if held == 0:
                    continue
                k, v = old.records(layer, old_seqs[src], 0, held)
                ks, vs = old.sinks(layer, old_seqs[src])  # a preset's exact first positions
                kv.append_records(layer, new_seq, k, v, ks[:held], vs[:held])
        self.kv, self.seqs, self.capacity = kv, seqs, -(-capacity // self.block_tokens) * self.block_tokens
        self.pads = [min(old_pads[src], keep_tokens) if keep_tokens is not None else old_pads[src] for src in rows]
        self.lengths = lengths + [0] * (n_layers - len(lengths))

    def _ensure(self, layer: int, rows: int, heads: int, head_dim: int, new_tokens: int) -> None:
        if self.kv is None:
            self.heads, self.head_dim = heads, head_dim
            n_layers = self.n_layers or layer + 1
            self.seqs, self.lengths, self.pads = [], [0] * n_layers, [0] * rows
            self.capacity = max(self.reserve, new_tokens)
            self.kv, self.seqs = self._build(n_layers, rows, self.capacity)
            self.capacity = self.kv.num_blocks // rows * self.block_tokens
        if (heads, head_dim) != (self.heads, self.head_dim):
            raise Error(f"TurboQuantCache: layer {layer} has {heads} KV heads of dimension {head_dim}, the cache "
                        f"{self.heads} of {self.head_dim}: one KvCache needs the same shape in every layer")
        if rows != len(self.seqs):
            raise Error(f"TurboQuantCache: layer {layer} got a batch of {rows} rows, the cache holds {len(self.seqs)} "
                        "(a new batch needs a new cache, or batch_select_indices / batch_repeat_interleave)")
        n_layers = self.kv.n_layers
        if layer >= n_layers:
            if self.n_layers is not None:
                raise Error(f"TurboQuantCache: layer {layer} is beyond the config's {self.n_layers} layers")
            n_layers = layer + 1  # no config: the layer count is learnt during the first forward pass
        needed = self.lengths[layer] + new_tokens if layer < len(self.lengths) else new_tokens
        capacity = self.capacity if needed <= self.capacity else max(needed, 2 * self.capacity)
        if n_layers != self.kv.n_layers or capacity != self.capacity:
            self.rebuild(n_layers, capacity)

    # ---- what the layers call ----

    def update(self, layer: int, key_states: torch.Tensor, value_states: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        if key_states.dim() != 4 or key_states.shape != value_states.shape:
            raise ValueError("TurboQuantCache: keys and values must both be (batch, kv_heads, tokens, head_dim), "
                             f"got {tuple(key_states.shape)} and {tuple(value_states.shape)}")
        if self.attends_records():
            # The turboquant attention function writes them (it knows the padding) and attends
            # over the records: the new tokens are all it needs, nothing is decoded.
            rows, heads, new_tokens, head_dim = key_states.shape
            self._ensure(layer, rows, heads, head_dim, new_tokens)
            key_states._turboquant = _Tag(self, layer, written=False)
            return key_states, value_states
        # The write is the quantize-on-write op (it calls write below); this store is a CPU
        # KvCache, so tensors on a GPU are brought to the host here, where it is documented.
        torch.ops.turboquant.append(self.state, layer, key_states.detach().cpu(), value_states.detach().cpu())
        keys, values = self.read(layer)
        keys = keys.to(device=key_states.device, dtype=key_states.dtype)
        keys._turboquant = _Tag(self, layer, written=True)
        return keys, values.to(device=value_states.device, dtype=value_states.dtype)

    def write(self, layer: int, key: torch.Tensor, value: torch.Tensor, pads: Optional[Sequence[int]] = None) -> None:
        """turboquant::append's work: quantize (batch, kv_heads, tokens, head_dim) CPU tensors into
        `layer` of every row, growing the pool first when it is full. Positions below a row's
        pads are padding: not written (pads are fixed by the first write into an empty cache)."""
        rows, heads, new_tokens, head_dim = key.shape
        self._ensure(layer, rows, heads, head_dim, new_tokens)
        if pads is not None and list(pads) != self.pads:
            if any(self.lengths):
                raise Error(f"TurboQuantCache: the attention mask pads the rows by {list(pads)} positions, the cache "
                            f"holds them padded by {self.pads}: a row's left padding cannot change once written (a "
                            "cache filled without attn_implementation='turboquant' stores the padding as tokens; pass "
                            "config=model.config so the cache knows the attention from the first update)")
            self.pads = [int(p) for p in pads]
        start = self.lengths[layer]
        skip = [min(max(p - start, 0), new_tokens) for p in self.pads]  # leading new positions that are padding
        if new_tokens:
            k, v = _rows(key), _rows(value)
            if any(skip):
                # Finite first, as _append_rows: a bad row alone goes to the library, which
                # refuses it naming the position, before anything is written.
                bad = [row for row, s in enumerate(skip)
                       if not (np.isfinite(k[row, s:]).all() and np.isfinite(v[row, s:]).all())]
                for row in bad[:1] or range(rows):
                    if skip[row] < new_tokens:
                        self.kv.append(layer, self.seqs[row], k[row, skip[row]:], v[row, skip[row]:])
            else:
                _append_rows(self.kv, layer, self.seqs, k, v)
        self.lengths[layer] += new_tokens

    def attend(self, layer: int, query: torch.Tensor, scale: Optional[float], window: int, softcap: float
               ) -> torch.Tensor:
        """Causal attention of query (batch, heads, q_tokens, head_dim), the layer's last q_tokens
        positions, over each row's records: (batch, q_tokens, heads, head_dim) in the query's dtype
        and device (the layout transformers' attention functions return). Padding queries get 0."""
        rows, heads, n_q, dim = query.shape
        first = self.lengths[layer] - n_q  # position of the first query
        skip = [min(max(p - first, 0), n_q) for p in self.pads]  # leading queries that are padding
        q = torch.empty((rows, n_q, heads, dim), dtype=torch.float32)
        q.copy_(query.transpose(1, 2))  # the library's [row][q_token][head][dim], on the host
        out = torch.zeros_like(q)
        if not any(skip):
            self.kv._attend_rows(layer, self.seqs, q.data_ptr(), n_q, heads, out.data_ptr(), scale, window, softcap)
        else:
            for row, (seq, s) in enumerate(zip(self.seqs, skip)):
                if s < n_q:
                    out[row, s:] = torch.from_numpy(self.kv.attend(layer, seq, q[row, s:].numpy(), scale=scale,
                                                                   window=window, softcap=softcap))
        return out.to(device=query.device, dtype=query.dtype)

    def read(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's decoded history, float32 (batch, kv_heads, tokens, head_dim) on the CPU;
        positions without records (left padding) are 0 (the model's mask hides them)."""
        n = self.lengths[layer]
        k = np.zeros((len(self.seqs), n, self.heads, self.head_dim), np.float32)
        v = np.zeros_like(k)
        for row, seq in enumerate(self.seqs):
            p = n - self.records_held(row, n)
            k[row, p:], v[row, p:] = self.kv.read(layer, seq)
        return (torch.from_numpy(k).transpose(1, 2).contiguous(), torch.from_numpy(v).transpose(1, 2).contiguous())

    def length(self, layer: int) -> int:
        return self.lengths[layer] if layer < len(self.lengths) else 0


class TurboQuantLayer(CacheLayerMixin):
    """One model layer's view of the model's compressed store (TurboQuantCache). It holds no
    tensors: ``keys`` and ``values`` stay None; ``update`` returns the new keys and values
    (turboquant attention) or the decoded history (any other attention)."""

    is_sliding = False  # the whole history is kept; a sliding-window layer's mask drops what it must
    is_compileable = False
    is_croppable = True

    def __init__(self, store: _Store, layer_idx: int):
        super().__init__()
        self.keys = self.values = None
        self.is_initialized = False  # not set by the base class of transformers 4.56
        self._store = store
        self.layer_idx = layer_idx

    def lazy_initialization(self, key_states: torch.Tensor, value_states: Optional[torch.Tensor] = None) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
               ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        return self._store.update(self.layer_idx, key_states, value_states)

    def get_seq_length(self) -> int:
        return self._store.length(self.layer_idx)

    def get_mask_sizes(self, query_length: Union[int, torch.Tensor]) -> tuple[int, int]:
        # transformers >= 5 passes the query length, 4.56-4.57 the query's cache positions.
        if isinstance(query_length, torch.Tensor):
            query_length = query_length.shape[0]
        return self.get_seq_length() + query_length, 0

    def get_max_length(self) -> int:
        return -1

    get_max_cache_shape = get_max_length  # the name in transformers 4.56-4.57

    def _whole_cache_only(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("the layers of a TurboQuantCache share one store: call this on the cache")

    reset = crop = reorder_cache = batch_repeat_interleave = batch_select_indices = _whole_cache_only
    offload = prefetch = _whole_cache_only


class TurboQuantCache(Cache):
    """A transformers ``Cache`` whose keys and values live as turboquant records.

    Args:
        codec: codec of the table (``turboquant.codecs()``) for keys and values, e.g. "turbo3",
            "turbo4", "q4_0h", "q8_0", "f16", or a calibrated preset (``turboquant.presets()``) with
            ``profile``.
        k_codec, v_codec: separate key / value codecs (default: ``codec``).
        keep_layers: layers stored with ``keep_codec`` instead (e.g. ``[0, -1]``: the first and
            the last); negative indices count from the end and need ``config``.
        keep_codec: codec of the kept layers, a name or a (k, v) pair (default "q8_0").
        config: the model's config (``model.config``); gives the layer count up front, and the
            attention implementation (read on every update): with ``attn_implementation=
            "turboquant"`` attention reads the records and nothing is decoded. Without it the
            count is learnt during the first forward pass (one copy of the records per new
            layer in that pass), and the attention at the first turboquant attention call.
        block_tokens: tokens per cache block.
        max_tokens: tokens per batch row to reserve up front; the pool doubles when full.
        seed: codec seed (rotations), as in ``turboquant.KvCache``.
        threads: threads for encoding and decoding (1 = the caller only, 0 = all cores).
        profile: the model's ``KvProfile``, needed by a calibrated preset (tq2.5, tq3, tq3.5, tq4):
            ``turboquant.hf.calibrate(model, tokenizer)`` measures it on the model itself.
        context: cache length a preset's RoPE statistics are averaged over (``KvCache``'s).

    With ``attn_implementation="turboquant"`` (import turboquant.hf registers it) the model's
    attention reads the records (``KvCache.attend``); with any other attention each update
    decodes the layer's whole history (O(tokens) work per layer and step) to the model's dtype
    and device, and the model's attention runs over that.
    """

    def __init__(self, codec: str = "turbo3", *, k_codec: Optional[str] = None, v_codec: Optional[str] = None,
                 keep_layers: Iterable[int] = (), keep_codec: _CodecPair = "q8_0", config: Any = None,
                 block_tokens: int = 32, max_tokens: Optional[int] = None, seed: int = 0, threads: int = 1,
                 profile: Optional[KvProfile] = None, context: int = 2048):
        k_name, v_name = k_codec or codec, v_codec or codec
        keep_pair = _pair(keep_codec, "keep_codec")
        keep_layers = [int(l) for l in keep_layers]
        for name in {k_name, v_name, *(keep_pair if keep_layers else ())}:
            _check_codec(name, profile)
        n_layers = _layer_count(config) if config is not None else None
        keep: dict[int, tuple[str, str]] = {}
        for l in keep_layers:
            if l < 0 and n_layers is None:
                raise ValueError(f"keep_layers={keep_layers} counts from the end: pass config=model.config so the "
                                 "cache knows the layer count")
            idx = l + n_layers if l < 0 else l
            if idx < 0 or (n_layers is not None and idx >= n_layers):
                raise ValueError(f"keep_layers names layer {l}, the model has {n_layers} layers")
            keep[idx] = keep_pair
        if block_tokens <= 0:
            raise ValueError(f"block_tokens must be > 0, got {block_tokens}")
        attn_config = _text_config(config) if config is not None else None
        self._store = _Store(k_name, v_name, keep, n_layers, block_tokens, max_tokens, seed, threads, profile, context,
                             attn_config)
        super().__init__(layers=[TurboQuantLayer(self._store, i) for i in range(n_layers or 0)])

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        while len(self.layers) <= layer_idx:
            self.layers.append(TurboQuantLayer(self._store, len(self.layers)))
        return self.layers[layer_idx].update(key_states, value_states)

    # ---- operations on the whole cache (generate's beam search, assisted decoding, ...) ----

    def _rebuild(self, rows: Optional[Sequence[int]] = None, keep_tokens: Optional[int] = None) -> None:
        s = self._store
        if s.kv is not None:
            s.rebuild(s.kv.n_layers, s.capacity, rows, keep_tokens)

    def crop(self, tokens_to_remove: int) -> None:
        """Drop tokens from the end: a negative count removes that many; a positive one is the
        length to keep (the older transformers convention)."""
        n = max(self._store.lengths, default=0)
        keep = n + tokens_to_remove if tokens_to_remove < 0 else tokens_to_remove
        if keep < n:
            self._rebuild(keep_tokens=max(keep, 0))

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self._rebuild(rows=beam_idx.tolist())

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._rebuild(rows=torch.as_tensor(indices).tolist())

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._rebuild(rows=[r for r in range(len(self._store.seqs)) for _ in range(repeats)])

    def reset(self) -> None:
        s = self._store
        s.kv, s.seqs, s.lengths, s.pads, s.capacity = None, [], [], [], 0
        for layer in self.layers:
            layer.is_initialized = False

    # ---- accounting ----

    @property
    def state(self) -> torch.Tensor:
        """The handle of the torch ops (turboquant/ops.py): ``torch.ops.turboquant.attend(cache.state,
        layer, query)`` attends over a layer's records; it applies no mask (left padding included)."""
        return self._store.state

    @property
    def kv_cache(self) -> Optional[KvCache]:
        """The turboquant.KvCache holding the records (None before the first update)."""
        return self._store.kv

    def compressed_bytes(self) -> int:
        """Bytes of the records held: every row, layer and head, K + V (no block rounding)."""
        s = self._store
        if s.kv is None:
            return 0
        per_token = [s.heads * (s.kv.k_record_bytes(l) + s.kv.v_record_bytes(l)) for l in range(s.kv.n_layers)]
        return len(s.seqs) * sum(n * b for n, b in zip(s.lengths, per_token))

    def bytes_used(self) -> int:
        """Bytes of the cache blocks the rows hold (records plus the unfilled part of each row's last block)."""
        return self._store.kv.bytes_used if self._store.kv is not None else 0

    def bytes_reserved(self) -> int:
        """Bytes of the whole pool (every block, held or free)."""
        kv = self._store.kv
        return kv.num_blocks * kv.block_tokens * kv.bytes_per_token if kv is not None else 0

    def __repr__(self) -> str:
        s = self._store
        return (f"TurboQuantCache(k_codec='{s.k_codec}', v_codec='{s.v_codec}', keep={s.keep}, "
                f"layers={len(self.layers)}, rows={len(s.seqs)}, tokens={max(s.lengths, default=0)})")
