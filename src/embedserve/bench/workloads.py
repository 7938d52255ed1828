"""Seeded text workloads: `short` (~10 tokens), `mixed` (5-120 words), `long` (~250 tokens)."""

from __future__ import annotations

import random
from pathlib import Path

# Common English words: WordPiece vocabularies keep each of them as one token.
_WORDS = (  # noqa: SIM905
    "the of and to in is was for on that with as by at from his it an were are which be this "
    "has also had not first one their its new after but who they have her she two been other "
    "when there all during into school time may years more most only over city some world would "
    "where later up such used many can state about national out known university united then "
    "made these three team year film while part well both between people under since any "
    "through before water number system music government being following city history family "
    "season became series against because them game work life high long way back second house "
    "several called north south east west early group each early place public end name found "
    "small large area company however general until around without members based album song "
    "local three four five best left right great major must good very river church named best "
    "village began include early still country main power day night light dark open close book "
    "road army war field line center market model data human energy heart mind story point "
    "question answer simple common every study language computer science music art nature sea"
).split()

WORKLOADS = ("short", "mixed", "long")
_WORDS_PER_KIND = {"short": (8, 8), "mixed": (5, 120), "long": (246, 246)}


def generate_texts(kind: str, count: int, *, seed: int = 0) -> list[str]:
    """`count` texts of the named workload, the same for the same seed."""
    if kind not in _WORDS_PER_KIND:
        raise ValueError(f"unknown workload {kind!r}; choose one of {', '.join(WORKLOADS)}")
    low, high = _WORDS_PER_KIND[kind]
    rng = random.Random(f"{kind}-{seed}")
    texts = []
    for _ in range(count):
        words = rng.choices(_WORDS, k=rng.randint(low, high))
        texts.append(" ".join(words).capitalize())
    return texts


def load_texts(spec: str, count: int, *, seed: int = 0) -> list[str]:
    """A workload name, or `file:PATH` (one text per line, cycled to `count`)."""
    if spec.startswith("file:"):
        lines = [
            line.strip()
            for line in Path(spec[5:]).read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        if not lines:
            raise ValueError(f"{spec[5:]} has no non-empty lines")
        return [lines[i % len(lines)] for i in range(count)]
    return generate_texts(spec, count, seed=seed)
