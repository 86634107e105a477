"""turboquant: KV-cache compression for transformer inference.

The codec table (``codecs()``), vector encode/decode with a named codec (``Codec``), and the
CPU paged cache with attention read directly from the compressed records (``KvCache``), all
on NumPy arrays. Library errors raise ``turboquant.Error``; wrong array shapes raise
``ValueError``. See docs/PYTHON.md.
"""
from ._turboquant import Codec, Error, KvCache, codecs

__all__ = ["Codec", "Error", "KvCache", "codecs"]
