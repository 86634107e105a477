#!/usr/bin/env python3
"""Seed inputs for fuzz/tokenizer_fuzz: byte 0 picks the vocabulary (0-2 byte-level BPE
under the smollm, llama-bpe and qwen2 pre-tokenizers, 3 SentencePiece), the rest is text:
words, digits, contractions, whitespace runs, special tokens, CJK, emoji, invalid UTF-8.
usage: scripts/fuzz_seeds_tokenizer.py OUT_DIR"""
import os, sys

out = sys.argv[1]
texts = [
    b"the cat sat on the mat",
    b"  leading and trailing spaces  \n\n\ttabs",
    b"x=12345+678, 3.14159; I'm don't IT'S",
    b"<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    b"<start_of_turn>user\nthe<end_of_turn>",
    "na\u00efve \u65e5\u672c\u8a9e \U0001F642 caf\u00e9".encode(),
    b"\xff\xfe\xc3 broken \xe2\x82 utf8 \xf0\x9f",
    b"",
]
for vocab in range(4):
    for i, t in enumerate(texts):
        with open(os.path.join(out, f"v{vocab}_t{i}"), "wb") as f:
            f.write(bytes([vocab]) + t)
