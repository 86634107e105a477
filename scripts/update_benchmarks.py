#!/usr/bin/env python3
"""Replace one generated section of BENCHMARKS.md.

usage: update_benchmarks.py SECTION_ID FILE_WITH_MARKDOWN

The section lives between '<!-- BEGIN SECTION_ID -->' and '<!-- END SECTION_ID -->';
it is appended at the end when absent. Only generated text goes between the markers.
"""
import pathlib
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    section, src = sys.argv[1], pathlib.Path(sys.argv[2])
    body = src.read_text().rstrip() + "\n"
    path = pathlib.Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\nEvery table here is written by the command shown with it; none is edited by hand.\n"
    begin, end = f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"
    block = f"{begin}\n{body}{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
    print(f"BENCHMARKS.md: section '{section}' updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
