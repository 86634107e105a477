#!/usr/bin/env python3
"""Write Jane Austen's six novels as plain UTF-8 text, read from the Debian package
r-cran-janeaustenr (public-domain Project Gutenberg texts stored as an R lazy-load
database). Only the two R serialization items that package uses are parsed: a
character vector (STRSXP) of lines, each a CHARSXP; nothing else is needed and
anything else is an error, so a changed package fails loudly instead of silently.

usage: extract_austen.py DATA_DIR OUT_FILE   (DATA_DIR holds Rdata.rdb / Rdata.rdx)
"""
import gzip
import struct
import sys
import zlib

# Reading order: the whole corpus is concatenated in this order; windows for
# perplexity are taken evenly across it.
BOOKS = ["prideprejudice", "sensesensibility", "emma", "mansfieldpark",
         "northangerabbey", "persuasion"]


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def int(self):
        v = struct.unpack_from(">i", self.d, self.p)[0]
        self.p += 4
        return v

    def bytes(self, n):
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def header(self):
        if self.bytes(2) != b"X\n":
            raise SystemExit("not an XDR R serialization")
        version = self.int()
        self.int(), self.int()  # writer R version, minimal reader version
        if version == 3:
            self.bytes(self.int())  # native encoding name


def read_strsxp(data):
    r = Reader(data)
    r.header()
    flags = r.int()
    if flags & 0xFF != 16:
        raise SystemExit(f"expected a character vector (type 16), got type {flags & 0xFF}")
    lines = []
    for _ in range(r.int()):
        cflags = r.int()
        if cflags & 0xFF != 9:
            raise SystemExit(f"expected CHARSXP (type 9), got {cflags & 0xFF}")
        n = r.int()
        lines.append("" if n < 0 else r.bytes(n).decode("utf-8", "replace"))
    return lines


def index(rdx_bytes):
    """Variable name -> (offset, length) from the gzip'd .rdx list."""
    d = gzip.decompress(rdx_bytes)
    names = []
    pos = 0
    # The names attribute lists each variable after a "names" tag; offsets are INTSXP
    # pairs (type 13, length 2) in the same order.
    pairs = []
    r = Reader(d)
    while True:
        pos = d.find(b"\x00\x00\x00\x0d\x00\x00\x00\x02", pos)
        if pos < 0:
            break
        r.p = pos + 8
        pairs.append((r.int(), r.int()))
        pos += 16
    tag = d.find(b"names")
    r.p = tag + len("names")
    if r.int() & 0xFF != 16:
        raise SystemExit("unexpected .rdx layout")
    for _ in range(r.int()):
        r.int()
        names.append(r.bytes(r.int()).decode())
    if len(pairs) < len(names):
        raise SystemExit("unexpected .rdx layout: fewer offsets than names")
    return dict(zip(names, pairs[:len(names)]))


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    data_dir, out = sys.argv[1], sys.argv[2]
    rdb = open(f"{data_dir}/Rdata.rdb", "rb").read()
    where = index(open(f"{data_dir}/Rdata.rdx", "rb").read())
    text = []
    for book in BOOKS:
        if book not in where:
            raise SystemExit(f"{book} not in the package index (have {sorted(where)})")
        off, length = where[book]
        blob = rdb[off:off + length]
        raw = zlib.decompress(blob[4:])
        if len(raw) != struct.unpack(">I", blob[:4])[0]:
            raise SystemExit(f"{book}: length mismatch after decompression")
        lines = read_strsxp(raw)
        # Gutenberg lines are hard-wrapped; join wrapped lines into paragraphs.
        paras, cur = [], []
        for line in lines:
            if line.strip():
                cur.append(line.strip())
            elif cur:
                paras.append(" ".join(cur))
                cur = []
        if cur:
            paras.append(" ".join(cur))
        text.append("\n\n".join(paras))
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n\n".join(text) + "\n")


if __name__ == "__main__":
    main()
