"""Local sentence embeddings for semantic recall when no embeddings deployment is configured.

MemoryBot's memory ranks archived messages lexically (BM25) and, when it is given an `embed`
call, also by cosine similarity, so that a question worded differently from the fact can still
find it. In Azure the `embed` call is an embeddings deployment; in the embedded default
(nothing configured, offline, CPU only) there is none. This module is that default's model.

It is a *static* embeddings model: a token -> vector table, and a sentence's vector is the mean
of its tokens' vectors, L2-normalised. Only the content words are embedded
(`memory.terms.content_words`): in a plain mean, "what", "did", "the" and "to" weigh as much as
"greyhound", and every question then resembles every message that shares its grammar (dropping
them raised what the recall benchmark's questions found among their 60 closest messages from
0.43 to 0.49). There is no network to run, so an embedding costs a tokenizer call and a table
lookup (tens of microseconds for a short message on one core), cheap enough to run on the event
loop for the few short texts a turn embeds. `words` gives the vectors of a text's words one by
one, for memory to compare a question with a message word by word
(`memory.recall.rank_by_words`). A transformer such as all-MiniLM-L6-v2 ranks better but costs
tens of milliseconds per text on a CPU in numpy.

The model is WordLlama's `l2_supercat` at 256 dimensions (the `wordllama` package on PyPI, MIT;
the weights and the tokenizer ship inside the wheel: 32,000 tokens x 256 float16, 16 MB, plus the
LLaMA-2 BPE tokenizer, read with the `tokenizers` package). The vector of a text's content words
equals what WordLlama's own `embed(..., norm=True)` returns for them. Nothing is ever downloaded:
the files are read from the installed package and, when they are missing,
`LocalEmbeddingsUnavailable` says so.

The package is located with `importlib.util.find_spec`, not imported: importing `wordllama`
calls `logging.basicConfig(level=INFO)` (it would reconfigure the bot's logging), and its
`WordLlama.load()` looks for the tokenizer under a folder name the wheel does not use, then
tries to download it from the Hugging Face hub.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from memory.recall import Indexes, Words
from memory.terms import content_words

PACKAGE = "wordllama"
WEIGHTS = "weights/l2_supercat_256.safetensors"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
TENSOR = "embedding.weight"
# Tokens past this many are not read: a static model's mean settles long before, and it keeps the
# cost of a very long message bounded (as model2vec's default does).
MAX_TOKENS = 512
# Distinct words whose vectors are kept for `words` (16,384 x 256 float32: 16 MB); when they
# are all taken, the cache starts over.
WORD_CACHE = 16_384
MAX_WORDS = 64  # of one text, for `words`
TEXT_CACHE = 8192  # texts whose words' rows are kept, for `words`
TEXT_CHARS = 2000  # of those at most this long (a longer one is read again each time)

Table = npt.NDArray[np.float16]
Vectors = npt.NDArray[np.float32]


class LocalEmbeddingsUnavailable(RuntimeError):
    """The local model's package or one of its files is missing or unreadable."""


@dataclass(frozen=True)
class _Model:
    table: Table
    tokenizer: Any  # tokenizers.Tokenizer


class LocalEmbeddings:
    """Static sentence embeddings from the installed `wordllama` package; pure CPU, offline.

    The weights load on first use (about 0.1 s, 16 MB), or now with `load()`. Safe to share
    between tasks and threads.
    """

    def __init__(self) -> None:
        self._model: _Model | None = None
        self._lock = threading.Lock()
        self._words = _WordCache(WORD_CACHE)

    @property
    def dimensions(self) -> int:
        return int(self._loaded().table.shape[1])

    def describe(self) -> str:
        return f"local static embeddings: WordLlama l2_supercat, 256 dimensions ({PACKAGE})"

    def load(self) -> None:
        """Read the weights and the tokenizer now (they load on first use otherwise).

        Raises LocalEmbeddingsUnavailable when the package or its files are missing.
        """
        self._loaded()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One L2-normalised vector per text, in order. Runs on the calling thread (no awaits):
        tens of microseconds per short text. A text with no tokens (the empty string) gets the
        zero vector, similar to nothing."""
        return self.embed_sync(texts)

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = self.vectors(texts).tolist()
        return vectors

    def vectors(self, texts: Sequence[str]) -> Vectors:
        """The embeddings as a (len(texts), dimensions) float32 array."""
        model = self._loaded()
        result = np.zeros((len(texts), model.table.shape[1]), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = model.tokenizer.encode(_content(text), add_special_tokens=False).ids
            ids = ids[:MAX_TOKENS]
            if ids:
                # The mean's direction is the sum's: normalising makes dividing by len(ids) moot.
                total = model.table[ids].astype(np.float32).sum(axis=0)
                norm = float(np.sqrt(total @ total))
                if norm > 0:
                    result[row] = total / norm
        return result

    def words(self, texts: Sequence[str]) -> Words:
        """The content words of `texts`, each as its unit vector (the mean of its tokens'),
        texts one after another; at most MAX_WORDS a text. Cached by word: a few hundred
        short texts take well under a millisecond once their words have been seen."""
        model = self._loaded()
        with self._lock:
            return self._words.words(model, texts)

    def _loaded(self) -> _Model:
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    self._model = _load(_package_folder())
                model = self._model
        return model


class _WordCache:
    """Unit vectors of the words seen lately, one row each, and each text's rows (by the text
    itself, so that a text seen before costs one look-up); guarded by the caller's lock. When a
    call's new words do not fit, it starts over."""

    def __init__(self, capacity: int, texts: int | None = None) -> None:
        self.capacity = capacity
        self.texts = TEXT_CACHE if texts is None else texts
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._id_of_row = np.zeros(capacity, dtype=np.int64)
        self._rows: dict[str, int] = {}
        self._ids: dict[str, int] = {}  # by the word in lower case
        self._texts: dict[str, Indexes] = {}  # a text -> its content words' rows

    def words(self, model: _Model, texts: Sequence[str]) -> Words:
        if self._vectors.shape != (self.capacity, model.table.shape[1]):
            self._vectors = np.zeros((self.capacity, model.table.shape[1]), dtype=np.float32)
        known, seen = self._texts, self._rows
        new = {text: content_words(text, MAX_WORDS) for text in texts if text not in known}
        missing = list(
            dict.fromkeys(word for words in new.values() for word in words if word not in seen)
        )
        if len(seen) + len(missing) > self.capacity or len(known) + len(new) > self.texts:
            new = {text: content_words(text, MAX_WORDS) for text in texts}
            missing = list(dict.fromkeys(word for words in new.values() for word in words))
            if len(missing) > self.capacity or len(new) > self.texts:
                # More than it holds: this call's words alone.
                return _WordCache(max(len(missing), 1), len(new)).words(model, texts)
            self._rows.clear()
            self._ids.clear()
            self._texts.clear()
        if missing:
            start = len(self._rows)
            self._vectors[start : start + len(missing)] = _unit_vectors(model, missing)
            for row, word in enumerate(missing, start):
                self._rows[word] = row
                self._id_of_row[row] = self._ids.setdefault(word.lower(), len(self._ids))
        rows_of = self._rows
        fresh = {
            text: np.array([rows_of[word] for word in words], dtype=np.int64)
            for text, words in new.items()
        }
        known.update((text, rows) for text, rows in fresh.items() if len(text) <= TEXT_CHARS)
        per_text = [fresh[text] if text in fresh else known[text] for text in texts]
        every = np.concatenate(per_text) if per_text else np.zeros(0, dtype=np.int64)
        distinct, rows = np.unique(every, return_inverse=True)
        return Words(
            vectors=self._vectors[distinct],
            ids=self._id_of_row[distinct],
            rows=rows.reshape(-1),
            counts=np.array([len(rows) for rows in per_text], dtype=np.int64),
        )


def _unit_vectors(model: _Model, words: Sequence[str]) -> Vectors:
    """Each word's vector: the mean of its tokens', L2-normalised (zero for no tokens)."""
    result = np.zeros((len(words), model.table.shape[1]), dtype=np.float32)
    for row, word in enumerate(words):
        # One `encode` a word, never `encode_batch`: a batch goes to the tokenizer's thread
        # pool, whose threads then spin waiting for more work, on the core the bot runs on
        # (with the bot pinned to one core, twice the CPU and three times the wall time).
        ids = model.tokenizer.encode(word, add_special_tokens=False).ids[:MAX_TOKENS]
        total = model.table[ids].astype(np.float32).sum(axis=0)
        norm = float(np.sqrt(total @ total))
        if norm > 0:
            result[row] = total / norm
    return result


def _content(text: str) -> str:
    """What of `text` is embedded: its content words, or, when it has none ("Hi!"), itself;
    no more of either than MAX_TOKENS could use."""
    return " ".join(content_words(text, MAX_TOKENS)) or text[: MAX_TOKENS * 8]


def _package_folder() -> Path:
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError) as error:
        raise LocalEmbeddingsUnavailable(f"cannot look up {PACKAGE!r}: {error}") from error
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise LocalEmbeddingsUnavailable(
            f"the {PACKAGE!r} package is not installed (it ships the local embeddings model)"
        )
    return Path(locations[0])


def _load(folder: Path) -> _Model:
    try:
        from tokenizers import Tokenizer
    except ImportError as error:
        raise LocalEmbeddingsUnavailable("the 'tokenizers' package is not installed") from error
    weights, tokenizer_file = folder / WEIGHTS, folder / TOKENIZER
    for path in (weights, tokenizer_file):
        if not path.is_file():
            raise LocalEmbeddingsUnavailable(f"the local embeddings model file {path} is missing")
    try:
        table = _read_table(weights)
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
    except Exception as error:  # OSError, a malformed header, or the tokenizer's own Exception
        raise LocalEmbeddingsUnavailable(
            f"cannot read the local embeddings model in {folder}: {error}"
        ) from error
    tokenizer.no_padding()
    tokenizer.no_truncation()
    if tokenizer.get_vocab_size() > table.shape[0]:
        raise LocalEmbeddingsUnavailable(
            f"the tokenizer's {tokenizer.get_vocab_size()} tokens do not fit the "
            f"{table.shape[0]}-row table in {weights}"
        )
    return _Model(table, tokenizer)


def _read_table(path: Path) -> Table:
    """The float16 table out of a safetensors file (8-byte header length, JSON header, data)."""
    with path.open("rb") as file:
        (header_size,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(header_size))
        entry = header[TENSOR]
        if entry["dtype"] != "F16" or len(entry["shape"]) != 2:
            raise ValueError(f"{TENSOR} is {entry['dtype']} {entry['shape']}, not a float16 table")
        start, end = entry["data_offsets"]
        file.seek(8 + header_size + start)
        data = file.read(end - start)
    rows, columns = entry["shape"]
    if len(data) != rows * columns * 2:
        raise ValueError(f"{TENSOR} holds {len(data)} bytes, not {rows} x {columns} float16")
    table: Table = np.frombuffer(data, dtype="<f2").reshape(rows, columns)
    return table
