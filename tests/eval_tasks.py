"""Three small MTEB task folders generated from templates (no hub): retrieval, classification
and STS, a few hundred examples each, the same every run (seeded)."""

from __future__ import annotations

import json
import random
from pathlib import Path

TOPICS = {
    "sports": (
        ["the striker", "our goalkeeper", "the tennis player", "the cycling team", "the coach"],
        ["scored twice in the final", "trained all week for the match", "won the championship",
         "lost the semi-final on penalties", "broke the national record"],
    ),
    "cooking": (
        ["the chef", "my grandmother", "the baker", "the new restaurant", "the food critic"],
        ["roasted the vegetables with garlic", "baked fresh bread this morning",
         "served a spicy curry", "simmered the tomato sauce for hours", "made pasta by hand"],
    ),
    "finance": (
        ["the central bank", "the investors", "the startup", "the stock market", "the accountant"],
        ["raised interest rates again", "reported higher quarterly profits",
         "fell sharply after the announcement", "secured new funding", "cut the annual budget"],
    ),
    "weather": (
        ["the storm", "the forecast", "a cold front", "the heatwave", "heavy rain"],
        ["flooded the coastal towns", "predicts snow for the weekend", "brought strong winds",
         "pushed temperatures above forty degrees", "closed the mountain roads"],
    ),
    "music": (
        ["the orchestra", "the band", "the young pianist", "the singer", "the drummer"],
        ["played a new symphony", "released a surprise album", "sold out the concert hall",
         "recorded a live session", "toured across the country"],
    ),
}  # fmt: skip
PLACES = ["in Paris", "yesterday", "last night", "on Sunday", "this season", "in the city"]
PLACE_WORDS = {
    "in Paris": "Paris",
    "yesterday": "the day before",
    "last night": "that evening",
    "on Sunday": "at the weekend",
    "this season": "this year",
    "in the city": "downtown",
}


def _sentence(rng: random.Random, topic: str) -> tuple[str, str, str]:
    subjects, actions = TOPICS[topic]
    return rng.choice(subjects), rng.choice(actions), rng.choice(PLACES)


def write_classification(folder: Path, seed: int = 1) -> Path:
    """300 texts, 5 topics (by the action; a third of the subjects mislead); 150 to train on,
    150 to test."""
    rng = random.Random(seed)
    rows = []
    for number in range(300):
        topic = list(TOPICS)[number % len(TOPICS)]
        subject, action, place = _sentence(rng, topic)
        if rng.random() < 0.35:
            subject = rng.choice(TOPICS[rng.choice(list(TOPICS))][0])
        rows.append({"text": f"{subject.capitalize()} {action} {place}.", "label": topic})
    rng.shuffle(rows)
    _write(folder, {"name": "LocalTopicClassification", "type": "Classification"})
    _jsonl(folder / "train.jsonl", rows[:150])
    _jsonl(folder / "test.jsonl", rows[150:])
    return folder


def write_sts(folder: Path, seed: int = 2) -> Path:
    """200 pairs scored 0-5 by construction: a paraphrase, the same subject, the same topic,
    or unrelated."""
    rng = random.Random(seed)
    rows = []
    for number in range(200):
        topic = rng.choice(list(TOPICS))
        subject, action, place = _sentence(rng, topic)
        first = f"{subject.capitalize()} {action} {place}."
        kind = number % 4
        if kind == 0:
            second, score = f"{place.capitalize()}, {subject} {action}.", 5.0
            second = second.replace(place, PLACE_WORDS[place]) if rng.random() < 0.5 else second
        elif kind == 1:
            second, score = f"{subject.capitalize()} {rng.choice(TOPICS[topic][1])}.", 3.0
        elif kind == 2:
            other_subject, other_action, _ = _sentence(rng, topic)
            second, score = f"{other_subject.capitalize()} {other_action}.", 2.0
        else:
            other = rng.choice([name for name in TOPICS if name != topic])
            other_subject, other_action, _ = _sentence(rng, other)
            second, score = f"{other_subject.capitalize()} {other_action}.", 0.0
        rows.append({"sentence1": first, "sentence2": second, "score": score})
    _write(folder, {"name": "LocalSTS", "type": "STS", "min_score": 0, "max_score": 5})
    _jsonl(folder / "test.jsonl", rows)
    return folder


def write_retrieval(folder: Path, seed: int = 3) -> Path:
    """150 documents (BEIR layout), 60 queries with one relevant document each."""
    rng = random.Random(seed)
    corpus, queries, qrels = [], [], []
    for number in range(150):
        topic = rng.choice(list(TOPICS))
        subject, action, place = _sentence(rng, topic)
        text = f"Report {number}: {subject} {action} {place}, according to local news."
        corpus.append({"_id": f"d{number}", "title": topic.capitalize(), "text": text})
        if number % 5 < 2:
            query = f"{rng.choice(['who', 'what', 'when'])} {action} {PLACE_WORDS[place]}"
            queries.append({"_id": f"q{number}", "text": query})
            qrels.append(f"q{number}\td{number}\t1")
    _write(folder, {"name": "LocalNewsRetrieval", "type": "Retrieval"})
    _jsonl(folder / "corpus.jsonl", corpus)
    _jsonl(folder / "queries.jsonl", queries)
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "\n".join(qrels) + "\n", encoding="utf-8"
    )
    return folder


def write_all(root: Path) -> list[Path]:
    """The three folders under `root`."""
    return [
        write_retrieval(root / "retrieval"),
        write_classification(root / "classification"),
        write_sts(root / "sts"),
    ]


def _write(folder: Path, spec: dict[str, object]) -> None:
    folder.mkdir(parents=True)
    (folder / "task.json").write_text(json.dumps(spec), encoding="utf-8")


def _jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
