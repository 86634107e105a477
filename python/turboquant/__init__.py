"""turboquant: KV-cache compression for transformer inference.

The codec table (``codecs()``), vector encode/decode with a named codec (``Codec``), and the
CPU paged cache with attention read directly from the compressed records (``KvCache``), all
on NumPy arrays; the calibration profiles the calibrated presets (tq2.5 ... tq4) are built
from (``KvProfile``; ``turboquant.calibrate`` measures one on a transformers model). Library errors raise ``turboquant.Error``; wrong array shapes raise
``ValueError``. See docs/PYTHON.md.
"""
from ._turboquant import (Codec, Error, KvCache, KvProfile, KvProfileBuilder, calibration_text, codecs,
                          presets)

__all__ = ["Codec", "Error", "KvCache", "KvProfile", "KvProfileBuilder", "calibration_text", "codecs", "presets"]
