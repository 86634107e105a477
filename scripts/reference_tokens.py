#!/usr/bin/env python3
"""Reference token ids for tests/model/test_tokenizer_real.cpp from independent
tokenizer implementations fed with the vocabulary stored in each GGUF file:

- gpt2 (byte-level BPE, SmolLM2): Hugging Face `tokenizers` (Rust) with the GGUF vocab and
  merges, pre-tokenizer Sequence[Digits(individual_digits), ByteLevel] as SmolLM2's
  tokenizer.json has it, special tokens added as special;
- llama (SentencePiece BPE, Gemma 3): the `sentencepiece` library with a BPE ModelProto
  built from the GGUF pieces, scores and types (byte fallback on, no dummy prefix, identity
  normalization), as in Gemma's tokenizer.model.

Special tokens (control, user-defined) are taken out of the text first, longest match
first, as llama.cpp does, and the text between them is encoded alone.

Not a project dependency; run by hand after changing the test strings:
  pip install gguf tokenizers sentencepiece protobuf
  scripts/reference_tokens.py ~/.cache/turboquant/models/smollm2-135m-instruct-q4_1.gguf
  scripts/reference_tokens.py ~/.cache/turboquant/models/gemma-3-270m-q4_k_m.gguf
prints one C++ initializer line per string: {"text", {ids...}},
  scripts/reference_tokens.py MODEL.gguf --crosscheck build/bin/tq [--text FILE] [--random N]
compares `tq inspect --tokenize-hex` with the reference on N random strings mixing
letters, digits, spaces, punctuation, Unicode and special tokens (default 3000) and on the
text of FILE; exits 1 on any difference.
"""
import argparse
import json
import random
import re
import subprocess
import sys
import tempfile

import gguf

# Keep in sync with kStrings in tests/model/test_tokenizer_real.cpp.
STRINGS = [
    "Hello world",
    "Hello, world! How are you?",
    " leading space",
    "trailing space ",
    "two  spaces and   three",
    "tabs\tand\nnewlines\n\nend",
    "I have 12345 apples and 3.14 pies.",
    "don't won't I'm we'll they've she'd it's",
    "CAPS'S and Mixed'Ll",
    "naïve café résumé",
    "日本語のテキスト",
    "Привет, мир",
    "emoji 🙂👍🏽 done",
    "x = a*b + (c/d) - e^2; // comment",
    "def f(x):\n    return x + 1\n",
    "http://example.com/path?q=1&r=2",
    "   ",
    "\n",
    "a",
    "",
]


def field_strings(r, key):
    f = r.fields[key]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]


def field_values(r, key):
    f = r.fields[key]
    return [f.parts[i][0].item() for i in f.data]


def special_tokens(r):
    tokens = field_strings(r, "tokenizer.ggml.tokens")
    types = field_values(r, "tokenizer.ggml.token_type")
    return {t: i for i, (t, ty) in enumerate(zip(tokens, types)) if ty in (2, 3, 4) and t}


def with_specials(r, encode_text):
    """Partition the text at special tokens (leftmost, longest first), encode the rest."""
    specials = special_tokens(r)
    pattern = re.compile("|".join(re.escape(t) for t in sorted(specials, key=len, reverse=True)))

    def encode(text):
        ids, pos = [], 0
        for m in pattern.finditer(text):
            if m.start() > pos:
                ids += encode_text(text[pos:m.start()])
            ids.append(specials[m.group(0)])
            pos = m.end()
        if pos < len(text):
            ids += encode_text(text[pos:])
        return ids
    return encode


def gpt2_reference(r):
    from tokenizers import Tokenizer, models, pre_tokenizers
    tokens = field_strings(r, "tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in field_strings(r, "tokenizer.ggml.merges")]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    return with_specials(r, lambda s: tok.encode(s, add_special_tokens=False).ids)


def spm_reference(r):
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb
    tokens = field_strings(r, "tokenizer.ggml.tokens")
    scores = field_values(r, "tokenizer.ggml.scores")
    types = field_values(r, "tokenizer.ggml.token_type")
    m = pb.ModelProto()
    for t, s, ty in zip(tokens, scores, types):
        p = m.pieces.add()
        p.piece, p.score, p.type = t, s, ty
    m.trainer_spec.model_type = pb.TrainerSpec.BPE
    m.trainer_spec.byte_fallback = True
    m.trainer_spec.unk_id = 3
    m.trainer_spec.bos_id = 2
    m.trainer_spec.eos_id = 1
    m.trainer_spec.pad_id = 0
    m.trainer_spec.allow_whitespace_only_pieces = True
    m.trainer_spec.split_digits = True
    m.trainer_spec.split_by_whitespace = False  # llama.cpp merges across spaces too
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = False
    m.normalizer_spec.remove_extra_whitespaces = False
    m.normalizer_spec.escape_whitespaces = True
    sp = spm.SentencePieceProcessor(model_proto=m.SerializeToString())
    return with_specials(r, lambda s: sp.encode(s))


RANDOM_ALPHABET = list("abcXYZ019 '\n\t.,!?-_()[]{}<>/\\\"") + [
    "  ", "   ", "'s", "'LL", "é", "ñ", "ß", "日", "本", "語", "한", "😀", "👍🏽", "١", "²", "Ω", "\u00a0", "\u3000",
    "\u2581", "\r\n", "don't", "The", " the", "<b>", "<|im_start|>", "<start_of_turn>", "1234567"]


def crosscheck(model, encode, tq, text_file, n_random):
    rng = random.Random(1)
    cases = ["".join(rng.choice(RANDOM_ALPHABET) for _ in range(rng.randint(1, 25))) for _ in range(n_random)]
    if text_file:
        cases.append(open(text_file, encoding="utf-8").read())
    with tempfile.NamedTemporaryFile("w", suffix=".hex") as f:
        f.write("\n".join(c.encode().hex() for c in cases) + "\n")
        f.flush()
        out = subprocess.run([tq, "inspect", model, "--tokenize-hex", f.name], check=True,
                             capture_output=True, text=True).stdout.split("\n")
    bad = 0
    for case, line in zip(cases, out):
        ours, ref = [int(x) for x in line.split()], encode(case)
        if ours != ref:
            bad += 1
            if bad <= 5:
                print(f"{case[:80]!r}\n  tq        {ours[:20]}\n  reference {ref[:20]}")
    tokens = sum(len(l.split()) for l in out)
    print(f"{len(cases) - bad} of {len(cases)} strings ({tokens} tokens) identical to the reference")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--crosscheck", metavar="TQ", help="the tq binary to compare with")
    ap.add_argument("--text", help="a text file to compare on as a whole (with --crosscheck)")
    ap.add_argument("--random", type=int, default=3000, help="random strings to compare (with --crosscheck)")
    args = ap.parse_args()
    r = gguf.GGUFReader(args.model)
    model = bytes(r.fields["tokenizer.ggml.model"].parts[-1]).decode()
    encode = gpt2_reference(r) if model == "gpt2" else spm_reference(r)
    if args.crosscheck:
        return crosscheck(args.model, encode, args.crosscheck, args.text, args.random)
    for s in STRINGS:
        print("    {%s, {%s}}," % (json.dumps(s, ensure_ascii=False), ", ".join(map(str, encode(s)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
