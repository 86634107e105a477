#!/usr/bin/env python3
"""Writes a copy of a GGUF file with every tensor dequantized to F32 (metadata unchanged,
general.file_type set to 0 = all F32), using the gguf-py package vendored by llama.cpp.

scripts/compare_llama_cpp.sh runs both tq and llama.cpp on this copy as well: with F32
weights llama.cpp multiplies in f32 instead of quantizing activations to 8 bits for its
quantized dot products, so the remaining difference is the implementations' own.

usage: gguf_to_f32.py GGUF_PY_DIR IN.gguf OUT.gguf
"""
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    gguf_py, src, dst = sys.argv[1:]
    sys.path.insert(0, gguf_py)
    import numpy as np
    import gguf
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(src)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(dst, arch=arch)
    for field in reader.fields.values():
        # The writer adds the architecture and the GGUF.* header fields itself.
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        if field.name == gguf.Keys.General.FILE_TYPE:
            writer.add_file_type(gguf.LlamaFileType.ALL_F32)
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type).astype(np.float32)
        # numpy order is ggml order reversed: shape[0] (contiguous) last.
        writer.add_tensor(t.name, values.reshape([int(d) for d in reversed(t.shape)]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
