#!/usr/bin/env bash
# Installs the evaluation text for `tq eval`: Jane Austen's six novels (public domain,
# from Project Gutenberg) as shipped by Debian's r-cran-janeaustenr package. Only the
# .deb is downloaded and unpacked (no R install); scripts/extract_austen.py reads its
# R data file and writes plain text to $TQ_TEXT_DIR/austen.txt
# (default ~/.cache/turboquant/text). Idempotent: does nothing when the text is there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out_dir="${TQ_TEXT_DIR:-$HOME/.cache/turboquant/text}"
out="$out_dir/austen.txt"
if [[ -s "$out" ]]; then
  echo "setup_text: $out already present"
  exit 0
fi
mkdir -p "$out_dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
data=/usr/lib/R/site-library/janeaustenr/data
if [[ ! -f "$data/Rdata.rdb" ]]; then
  (cd "$work" && { apt-get download r-cran-janeaustenr >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get download r-cran-janeaustenr >/dev/null; }; })
  dpkg-deb -x "$work"/r-cran-janeaustenr_*.deb "$work/root"
  data="$work/root/usr/lib/R/site-library/janeaustenr/data"
fi
python3 "$here/extract_austen.py" "$data" "$out.tmp"
mv "$out.tmp" "$out"
echo "setup_text: wrote $out ($(wc -w <"$out") words)"
