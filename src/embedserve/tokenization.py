"""Text -> token ids with the model's fast tokenizer; checks on token-id inputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tokenizers import Encoding, Tokenizer

from embedserve.errors import ContextLengthExceeded, InvalidTokenId
from embedserve.models.spec import ModelSpec

TokenIds = list[int]


class TextTokenizer:
    """Tokenizes whole batches; never pads, truncates only when asked to (keeping special tokens).

    The model's `tokenizer.json` may carry its own padding/truncation defaults (the bundled one pads
    to 128); they are switched off here so that the model's metadata alone decides the limits.
    """

    def __init__(self, spec: ModelSpec) -> None:
        self._tokenizer = Tokenizer.from_file(str(spec.tokenizer_file))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        processor = self._tokenizer.post_processor
        self.num_special_tokens = processor.num_special_tokens_to_add(False) if processor else 0
        self.num_pair_special_tokens = processor.num_special_tokens_to_add(True) if processor else 0

    def encode(
        self,
        texts: Sequence[str],
        *,
        truncate_to: int | None = None,
        add_special_tokens: bool = True,
        keep_end: bool = False,
    ) -> list[TokenIds]:
        """Token ids for each text; with `truncate_to`, at most that many ids per text (special
        tokens kept), cut at the end, or at the start with `keep_end`."""
        if truncate_to is None:
            encodings = self._tokenizer.encode_batch(
                list(texts), add_special_tokens=add_special_tokens
            )
            return [encoding.ids for encoding in encodings]
        raw = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        specials = self.num_special_tokens if add_special_tokens else 0
        return [
            self._truncated(encoding, truncate_to, specials, add_special_tokens, keep_end)
            for encoding in raw
        ]

    def encode_pairs(
        self,
        pairs: Sequence[tuple[str, str]],
        max_length: int,
        *,
        keep_end: bool = False,
        cut: bool = True,
        max_document_tokens: int | None = None,
    ) -> list[TokenIds]:
        """`[CLS] query [SEP] document [SEP]` ids (the model's pair template) per (query,
        document) pair, at most `max_length` each, in one batch (each distinct query tokenized
        once): only the document is cut (at its end, or its start with `keep_end`), also to
        `max_document_tokens` when given; without `cut`, a pair over `max_length` is refused,
        as is a query that leaves no room for any document."""
        distinct = list(dict.fromkeys(query for query, _ in pairs))
        encoded_queries = self._tokenizer.encode_batch(distinct, add_special_tokens=False)
        asked = dict(zip(distinct, encoded_queries, strict=True))
        specials = self.num_pair_special_tokens
        documents = self._tokenizer.encode_batch(
            [document for _, document in pairs], add_special_tokens=False
        )
        direction = "left" if keep_end else "right"
        encoded = []
        for (query, _), found in zip(pairs, documents, strict=True):
            query_ids = asked[query]
            room = max_length - specials - len(query_ids.ids)
            if room < 1:
                raise ContextLengthExceeded(
                    f"a query has {len(query_ids.ids)} tokens; with {specials} special tokens "
                    f"it leaves no room for a document in this model's {max_length}; shorten it",
                    param="query",
                )
            if not cut and len(found.ids) > room:
                raise ContextLengthExceeded(
                    f"a document has {len(found.ids)} tokens: with its query's "
                    f"{len(query_ids.ids)} and {specials} special tokens its pair is over this "
                    f"model's {max_length}; shorten it, or let documents be cut (truncate: true)",
                    param="documents",
                )
            limit = room if max_document_tokens is None else min(room, max_document_tokens)
            found.truncate(limit, direction=direction)
            processed = self._tokenizer.post_process(query_ids, found, add_special_tokens=True)
            encoded.append(processed.ids)
        return encoded

    def encode_windows(
        self, texts: Sequence[str], window: int, overlap: int
    ) -> list[list[TokenIds]]:
        """For each text, its tokens in windows of at most `window` ids, special tokens included
        in each, every window sharing `overlap` content tokens with the previous one."""
        content = window - self.num_special_tokens
        if not 0 <= overlap < content:
            raise ValueError(f"a chunk overlap of {overlap} tokens leaves no room in {content}")
        windows = []
        for encoding in self._tokenizer.encode_batch(list(texts), add_special_tokens=False):
            if len(encoding) > content:
                encoding.truncate(content, stride=overlap)
            done = self._tokenizer.post_process(encoding, add_special_tokens=True)
            windows.append([done.ids, *(part.ids for part in done.overflowing)])
        return windows

    def _truncated(
        self,
        encoding: Encoding,
        limit: int,
        specials: int,
        add_special_tokens: bool,
        keep_end: bool,
    ) -> TokenIds:
        if len(encoding) + specials > limit:
            direction = "left" if keep_end else "right"
            encoding.truncate(max(limit - specials, 0), direction=direction)
        if add_special_tokens:
            encoding = self._tokenizer.post_process(encoding, add_special_tokens=True)
        return list(encoding.ids[:limit])


def check_token_ids(inputs: Sequence[Sequence[int]], vocab_size: int) -> None:
    """Reject token ids outside `[0, vocab_size)`, naming the first offending input."""
    for index, ids in enumerate(inputs):
        try:
            array = np.asarray(ids, dtype=np.int64)
        except OverflowError:
            array = None
        if array is None or (array.size and (array.min() < 0 or array.max() >= vocab_size)):
            bad = next(t for t in ids if not 0 <= t < vocab_size)
            raise InvalidTokenId(
                f"input[{index}] contains token id {bad}, outside this model's vocabulary "
                f"[0, {vocab_size}); send ids from the model's own tokenizer",
                param="input",
            )
