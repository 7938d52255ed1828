"""The parity corpus: handwritten edge cases, seeded phrases and paragraphs of 160-250 tokens
(some with exotic scripts and whitespace), and a few over-long texts for truncation."""

from __future__ import annotations

import random

_WORD_TEXT = (
    "the quick brown fox jumps over lazy dog river mountain city people time year day way man "
    "thing woman life child world school state family student group country problem hand part "
    "place case week company system program question work government number night point home "
    "water room mother area money story fact month right study book eye job word business issue "
    "side kind head house service friend father power hour game line end member law car name "
    "president team minute idea body information back parent face level office door health "
    "person art war history party result change morning reason research girl moment air teacher "
    "force education garden music window summer winter train bridge market doctor forest ocean"
)


_WORDS = _WORD_TEXT.split()


_EXOTIC = (
    "café",
    "naïve",
    "Zoë",
    "façade",
    "straße",
    "東京",
    "北京大学",
    "日本語",
    "한국어",
    "Привет",
    "Ελληνικά",
    "مرحبا",
    "😀",
    "🚀🎉",
    "3.14159",
    "1,000,000",
    "2024-05-06",
    "#42",
    "e-mail",
    "U.S.A.",
)


_SEPARATORS = (" ", " ", " ", "  ", "\t", "\n", " \n  ", "   ")


HANDWRITTEN = [
    "hello",
    "Hello",
    "HELLO WORLD",
    "HeLLo WoRLD",
    "a",
    "I",
    "ok",
    "embeddings",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "Hello, world!!! ... ??? ;-)",
    "a-b_c/d\\e|f~g^h",
    "\"quoted\" 'single' `backtick` «guillemets»",
    "(parentheses) [brackets] {braces} <angle>",
    "!@#$%^&*()_+-=",
    "3.14159 2.71828 1.41421",
    "0x1F 0b1010 1e-9 -42 +7",
    "Call 555-0100 before 10:30 on 2024-05-06.",
    "Order #12345 costs $99.99 (plus 20% VAT).",
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15",
    "café naïve résumé jalapeño",
    "Zoë's façade is très belle.",
    "Straße, Ärger, Öl, Übermut",
    "中文文本测试",
    "我喜欢在公园里散步。",
    "日本語のテキストです。",
    "한국어 문장입니다.",
    "Привет, мир! Как дела?",
    "Ελληνικά γράμματα: α β γ δ",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "😀🚀🎉",
    "I love pizza 🍕 and coffee ☕!",
    "e\u0301 (combining acute) vs é (precomposed)",
    "a    b\t\tc\n\nd",
    "   leading and trailing spaces   ",
    "line one\nline two\nline three",
    "tabs\tbetween\twords",
    " ",
    "\n\t\n",
    "...",
    "ALL CAPS SENTENCE ABOUT DATABASES AND INDEXES",
    "mIxEd CaSe iS sTiLl ThE sAmE wOrDs",
    "https://example.com/path?query=1&other=two#frag",
    "user@example.org wrote: def f(x): return x ** 2",
    "Machine learning models map text to dense vectors.",
    "Dense vectors allow semantic search over documents.",
]


def _cased(word: str, rng: random.Random) -> str:
    style = rng.random()
    if style < 0.15:
        return word.upper()
    if style < 0.35:
        return word.capitalize()
    if style < 0.45:
        return "".join(c.upper() if rng.random() < 0.5 else c for c in word)
    return word


def _phrase(rng: random.Random) -> str:
    words = [_cased(rng.choice(_WORDS), rng) for _ in range(rng.randint(1, 12))]
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words) + 1), rng.choice(_EXOTIC))
    text = rng.choice(_SEPARATORS).join(words)
    return text + rng.choice(("", "", ".", "!", "?", "...", ",", " :)"))


def _paragraph(rng: random.Random, n_words: int, exotic: bool) -> str:
    sentences: list[str] = []
    written = 0
    while written < n_words:
        length = min(rng.randint(6, 16), n_words - written)
        words = [rng.choice(_WORDS) for _ in range(length)]
        if exotic and rng.random() < 0.3:
            words[rng.randrange(length)] = rng.choice(_EXOTIC)
        words[0] = words[0].capitalize()
        sentences.append(" ".join(words) + rng.choice((".", ".", ".", "!", "?", ";", ",")))
        written += length
    return " ".join(sentences)


def make_corpus(seed: int = 20240606) -> tuple[list[str], list[str]]:
    """The texts that must fit (<= 256 tokens) and a few over-long ones (for truncation)."""
    rng = random.Random(seed)
    phrases = [_phrase(rng) for _ in range(30)]
    # 150-215 words: most sentences are one token per word plus punctuation, so these land
    # between ~160 and ~250 tokens (checked by test_corpus_covers_what_it_claims).
    paragraphs = [_paragraph(rng, rng.randint(150, 215), exotic=i % 3 == 0) for i in range(30)]
    overlong = [_paragraph(rng, rng.randint(300, 450), exotic=i == 0) for i in range(4)]
    return [*HANDWRITTEN, *phrases, *paragraphs], overlong


TEXTS, OVERLONG = make_corpus()


SINGLE_INDICES = tuple(range(0, len(TEXTS), 7))  # also embedded one per request
