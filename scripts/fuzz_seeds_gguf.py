#!/usr/bin/env python3
"""Seed inputs for fuzz/gguf_fuzz: small valid GGUF files covering every metadata kind,
several tensor types and a tiny tokenizer of each family, written with struct from the
format itself (so they do not depend on the reader under test).
usage: scripts/fuzz_seeds_gguf.py OUT_DIR"""
import os, struct, sys
out = sys.argv[1]

def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b

def kv(key, vtype, payload):
    return s(key) + struct.pack("<I", vtype) + payload

def arr(etype, items):
    return struct.pack("<IQ", etype, len(items)) + b"".join(items)

def gguf(kvs, tensors):
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    infos, data, off = b"", b"", 0
    for name, shape, ttype, blob in tensors:
        infos += s(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        infos += struct.pack("<IQ", ttype, off)
        pad = (-len(blob)) % 32
        data += blob + b"\0" * pad
        off += len(blob) + pad
    body = head + infos
    return body + b"\0" * ((-len(body)) % 32) + data

scalars = [kv("u8", 0, b"\x07"), kv("i8", 1, b"\xf9"), kv("u16", 2, b"\x01\x02"), kv("i16", 3, b"\xff\xff"),
           kv("u32", 4, struct.pack("<I", 30)), kv("i32", 5, struct.pack("<i", -3)), kv("f32", 6, struct.pack("<f", 1.5)),
           kv("b", 7, b"\x01"), kv("str", 8, s("hello")), kv("u64", 10, struct.pack("<Q", 2**63 + 5)),
           kv("i64", 11, struct.pack("<q", -9)), kv("f64", 12, struct.pack("<d", 2.5)),
           kv("nested", 9, arr(9, [arr(4, [struct.pack("<I", 1)])]))]
tensors = [("f32", [4, 2], 0, struct.pack("<8f", *range(8))), ("f16", [2], 1, b"\x00\x3c\x00\xc0"),
           ("q8_0", [32], 8, b"\x00\x30" + bytes(range(32))), ("q4_0", [32], 2, b"\x00\x38" + bytes(range(16))),
           ("q4_k", [256], 12, bytes(range(144))), ("q6_k", [256], 14, bytes((i * 7) % 256 for i in range(210))),
           ("q5_0", [32], 6, bytes(range(22))), ("q2_k", [256], 10, bytes(range(84))), ("q3_k", [256], 11, bytes(range(110))),
           ("bf16", [2], 30, b"\xc0\x3f\x10\xc1")]
open(os.path.join(out, "seed_all_kinds.gguf"), "wb").write(gguf(scalars, tensors))

bpe_tokens = ["<|im_start|>", "<|im_end|>", "a", "b", "Ġ", "ab", "Ġa", "1", "2"]
bpe = [kv("tokenizer.ggml.model", 8, s("gpt2")), kv("tokenizer.ggml.pre", 8, s("smollm")),
       kv("tokenizer.ggml.tokens", 9, arr(8, [s(t) for t in bpe_tokens])),
       kv("tokenizer.ggml.token_type", 9, arr(5, [struct.pack("<i", 3 if i < 2 else 1) for i in range(len(bpe_tokens))])),
       kv("tokenizer.ggml.merges", 9, arr(8, [s("a b"), s("Ġ a")])),
       kv("tokenizer.ggml.eos_token_id", 4, struct.pack("<I", 1)),
       kv("tokenizer.chat_template", 8, s("<|im_start|>{{ m }}<|im_end|>"))]
open(os.path.join(out, "seed_bpe.gguf"), "wb").write(gguf(bpe, []))

spm_tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "\n", "<0xFF>", "\u2581", "a", "\u2581a"]
spm = [kv("tokenizer.ggml.model", 8, s("llama")),
       kv("tokenizer.ggml.tokens", 9, arr(8, [s(t) for t in spm_tokens])),
       kv("tokenizer.ggml.scores", 9, arr(6, [struct.pack("<f", -i) for i in range(len(spm_tokens))])),
       kv("tokenizer.ggml.token_type", 9, arr(5, [struct.pack("<i", t) for t in [3, 3, 3, 2, 3, 4, 6, 1, 1, 1]])),
       kv("tokenizer.ggml.bos_token_id", 4, struct.pack("<I", 2)),
       kv("tokenizer.chat_template", 8, s("<start_of_turn>"))]
open(os.path.join(out, "seed_spm.gguf"), "wb").write(gguf(spm, []))
