# Typed interface of the turboquant package (the extension is turboquant._turboquant).
import os
from typing import Any, List, Optional, Union

import numpy as np
import numpy.typing as npt

__all__ = ["Codec", "Error", "KvCache", "KvProfile", "KvProfileBuilder", "calibration_text", "codecs", "presets"]

_Floats = npt.ArrayLike  # converted to C-contiguous float32
_Bytes = npt.NDArray[np.uint8]

class Error(RuntimeError):
    """A library error: unknown codec, bad dimension, pool full, NaN input, bad file."""

def codecs(dim: int = 128) -> list[dict[str, Any]]:
    """The codec table: one dict per codec with keys name, summary, quant, rotation, dim,
    record_bytes and bits_per_coord (exact at head dimension `dim`; None with the reason in
    'error' for a codec that cannot take `dim`)."""

class Codec:
    """A codec of the table for vectors of `dim` floats; `seed` picks the random rotation."""

    def __init__(self, name: str, dim: int, seed: int = 0) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def record_bytes(self) -> int:
        """Bytes per encoded vector, everything included."""
    @property
    def bits_per_coord(self) -> float:
        """8 * record_bytes / dim."""
    def encode(self, x: _Floats) -> _Bytes:
        """float32 (..., dim) -> uint8 records (..., record_bytes). Raises Error on NaN/Inf."""
    def decode(self, records: _Bytes) -> npt.NDArray[np.float32]:
        """uint8 records (..., record_bytes) -> float32 (..., dim)."""

def presets() -> list[str]:
    """Names of the calibrated presets (tq2.5, tq3, tq3.5, tq4), built per model from a KvProfile."""

def calibration_text() -> str:
    """The built-in calibration text (the one `tq calibrate` uses)."""

class KvProfile:
    """A model's calibration profile (kv_profile.h): what the calibrated presets are built from."""

    @staticmethod
    def load(path: Union[str, "os.PathLike[str]"]) -> "KvProfile": ...
    def save(self, path: Union[str, "os.PathLike[str]"]) -> None: ...
    @property
    def n_layers(self) -> int: ...
    @property
    def n_heads(self) -> int: ...
    @property
    def n_kv_heads(self) -> int: ...
    @property
    def head_dim(self) -> int: ...
    @property
    def tokens(self) -> int: ...
    @property
    def model_name(self) -> str: ...

class KvProfileBuilder:
    """Accumulates a KvProfile from pre-RoPE q, k and v rows of a forward pass."""

    def __init__(self, n_layers: int, n_heads: int, n_kv_heads: int, head_dim: int) -> None: ...
    def add(self, layer: int, q: _Floats, k: _Floats, v: _Floats) -> None:
        """q (n, n_heads, head_dim), k and v (n, n_kv_heads, head_dim)."""
    def finish(
        self, rope_theta: npt.ArrayLike, v_weight: npt.ArrayLike, rope_dim: Optional[int] = None, model_name: str = ""
    ) -> KvProfile:
        """rope_theta (n_layers, head_dim), v_weight (n_layers, n_kv_heads, head_dim, head_dim), float64."""

class KvCache:
    """The paged compressed KV cache (CPU): quantize on append, attend over the records."""

    def __init__(
        self,
        n_layers: int,
        n_kv_heads: int,
        head_dim: int,
        k_codec: str = "f16",
        v_codec: str = "f16",
        block_tokens: int = 32,
        max_tokens: int = 4096,
        seed: int = 0,
        threads: int = 1,
        layer_codecs: Optional[dict[int, tuple[str, str]]] = None,
        profile: Optional[KvProfile] = None,
        context: int = 2048,
    ) -> None: ...
    @property
    def n_layers(self) -> int: ...
    @property
    def n_kv_heads(self) -> int: ...
    @property
    def head_dim(self) -> int: ...
    @property
    def k_codec(self) -> str: ...
    @property
    def v_codec(self) -> str: ...
    @property
    def block_tokens(self) -> int: ...
    @property
    def max_tokens(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def threads(self) -> int: ...
    @property
    def sink_tokens(self) -> int:
        """Leading positions of each sequence kept exact (calibrated presets)."""
    @property
    def layer_codecs(self) -> dict[int, tuple[str, str]]:
        """Per-layer overrides {layer: (k codec, v codec)}."""
    @property
    def num_blocks(self) -> int:
        """Blocks in the pool: ceil(max_tokens / block_tokens)."""
    @property
    def free_blocks(self) -> int:
        """Blocks not held by any sequence."""
    def k_record_bytes(self, layer: int) -> int: ...
    def v_record_bytes(self, layer: int) -> int: ...
    @property
    def bytes_per_token(self) -> int:
        """Bytes one token takes over all layers, K + V."""
    @property
    def bytes_used(self) -> int:
        """Bytes of the pages in use."""
    def add_sequence(self) -> int:
        """A new empty sequence; returns its id."""
    def remove_sequence(self, seq: int) -> None: ...
    def sequences(self) -> list[int]:
        """Live sequence ids, ascending."""
    def length(self, layer: int, seq: int) -> int: ...
    def append(self, layer: int, seq: int, k: _Floats, v: _Floats) -> None:
        """Append tokens: k, v of shape (n_tokens, n_kv_heads, head_dim) or (n_kv_heads, head_dim)."""
    def read(
        self, layer: int, seq: int, start: int = 0, n: Optional[int] = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Decoded K and V of positions [start, start + n), each (n, n_kv_heads, head_dim)."""
    def records(self, layer: int, seq: int, start: int = 0, n: Optional[int] = None) -> tuple[_Bytes, _Bytes]:
        """Stored K and V records of positions [start, start + n), (n, n_kv_heads, record bytes)."""
    def sinks(self, layer: int, seq: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Exact code-space K and V of the sink positions, each (n, n_kv_heads, code_dim)."""
    def append_records(
        self, layer: int, seq: int, k_records: _Bytes, v_records: _Bytes,
        k_sinks: Optional[_Floats] = None, v_sinks: Optional[_Floats] = None,
    ) -> None:
        """Append records encoded by this layer's codecs, shaped as records() returns them
        (new sink positions also need their sinks() rows)."""
    def attend(
        self,
        layer: int,
        seq: int,
        q: _Floats,
        q_pos0: Optional[int] = None,
        scale: Optional[float] = None,
        window: int = 0,
        softcap: float = 0.0,
        reference: bool = False,
    ) -> npt.NDArray[np.float32]:
        """Causal attention; q (n_q, n_heads, head_dim) or (n_heads, head_dim), output shaped like q.
        Queries default to the sequence's last n_q positions; scale to 1/sqrt(head_dim)."""
    def _attend_rows(
        self, layer: int, seqs: List[int], q: int, n_q: int, n_heads: int, out: int,
        scale: Optional[float], window: int, softcap: float,
    ) -> None:
        """For turboquant.ops: attend() of several sequences at raw float32 addresses q and out
        ([rows][n_q][n_heads][head_dim] each), unchecked shapes; use attend()."""
    def save(self, path: Union[str, "os.PathLike[str]"], overwrite: bool = False) -> None: ...
    @staticmethod
    def load(
        path: Union[str, "os.PathLike[str]"], threads: int = 1, profile: Optional[KvProfile] = None
    ) -> "KvCache": ...
