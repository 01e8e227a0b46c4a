"""Word-vector class embeddings (the AURL/E2E text side): the mean of unit word vectors."""

from __future__ import annotations

import glob
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from aurl.class_names import STOP_WORDS, content_words, split_words
from aurl.optional import import_optional
from aurl.paths import expand_path
from aurl.text_encoders.base import TextEncoder, fingerprint_path, register_text_encoder

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

log = logging.getLogger(__name__)

# File suffix (after an optional ".gz") -> how gensim reads it.
_FORMATS = {".bin": "binary", ".txt": "text", ".kv": "native"}
# Longest multi-word vocabulary entry tried when `phrases=True` ("table_tennis_shot").
_MAX_PHRASE_WORDS = 3


@register_text_encoder("word2vec")
class Word2VecEncoder(TextEncoder):
    """Embeds a class name as the mean of the unit-normalised vectors of its words.

    For a name with content words ``w_1..w_n`` (see :func:`aurl.class_names.content_words`:
    lower-case words without stop words), the embedding is
    ``(1/n) * sum_k v(w_k) / ||v(w_k)||``, as in the AURL code, which does not re-normalise the
    mean; ``normalize_mean=True`` divides it by its norm, as E2E does. Words are looked up
    lower-case and not lemmatised (see ``aurl.class_names``).

    Args:
        path: a local word-vector file: ``.bin`` (binary word2vec, e.g.
            GoogleNews-vectors-negative300.bin), ``.txt`` (text word2vec; a GloVe file without
            the "count dim" header also works) or ``.kv`` (gensim ``KeyedVectors.save``; this
            is a pickle, so load only files you trust). ``.bin.gz`` and ``.txt.gz`` are read
            compressed. Vectors are loaded once, on first use.
        oov: what to do with a word missing from the vocabulary: ``"error"`` raises a
            ValueError naming each class and its missing words; ``"skip"`` leaves the word out
            (with a warning). A class without any known word is an error in both modes.
        normalize_mean: L2-normalise the mean vector.
        phrases: first look up runs of 2-3 consecutive words joined with ``_`` (GoogleNews has
            entries such as ``table_tennis``), longest first, and use such an entry as one
            token. Off by default: the original code averaged single words only, and a phrase
            vector is a different embedding of the same name.

    Raises:
        FileNotFoundError: if ``path`` is not a file.
        ValueError: for an unknown file suffix or ``oov`` value.
    """

    def __init__(
        self,
        path: str | Path,
        oov: Literal["error", "skip"] = "error",
        normalize_mean: bool = False,
        phrases: bool = False,
    ) -> None:
        self.path = expand_path(path, "word2vec path")
        if not self.path.is_file():
            raise FileNotFoundError(f"word-vector file not found: {self.path}")
        uncompressed = self.path.name.removesuffix(".gz")
        suffix = Path(uncompressed).suffix
        if suffix not in _FORMATS or (uncompressed != self.path.name and suffix == ".kv"):
            raise ValueError(
                f"cannot tell the format of {self.path}: use a .bin, .txt, .bin.gz, .txt.gz "
                "or .kv file"
            )
        if oov not in ("error", "skip"):
            raise ValueError(f"oov must be 'error' or 'skip', got {oov!r}")
        self.format = _FORMATS[suffix]
        self.oov = oov
        self.normalize_mean = normalize_mean
        self.phrases = phrases
        # A large .kv is saved as several files ("x.kv", "x.kv.vectors.npy"): fingerprint all.
        files = [self.path, *sorted(self.path.parent.glob(f"{glob.escape(self.path.name)}.*"))]
        self._fingerprint = "+".join(fingerprint_path(file) for file in files)
        self._vectors: KeyedVectors | None = None

    @property
    def vectors(self) -> KeyedVectors:
        """The word vectors (read from ``path`` on first access)."""
        if self._vectors is None:
            self._vectors = self._load()
        return self._vectors

    @property
    def dim(self) -> int:
        return self.vectors.vector_size

    @property
    def cache_key(self) -> str:
        return (
            f"word2vec:{self.path.name}:{self._fingerprint}:oov={self.oov}"
            f":normalize_mean={self.normalize_mean}:phrases={self.phrases}"
        )

    def tokens(self, text: str) -> list[str]:
        """The vocabulary keys averaged for ``text`` (missing words included, unchecked)."""
        if not self.phrases:
            return content_words(text)
        words = split_words(text)
        vocabulary = self.vectors.key_to_index
        tokens = []
        start = 0
        while start < len(words):
            longest = min(_MAX_PHRASE_WORDS, len(words) - start)
            for length in range(longest, 1, -1):
                phrase = "_".join(words[start : start + length])
                if phrase in vocabulary:
                    tokens.append(phrase)
                    start += length
                    break
            else:
                if words[start] not in STOP_WORDS:
                    tokens.append(words[start])
                start += 1
        return tokens

    def _encode(self, texts: list[str]) -> Tensor:
        vectors = self.vectors
        rows = []
        problems = []
        for text in texts:
            tokens = self.tokens(text)
            known = [token for token in tokens if token in vectors.key_to_index]
            missing = [token for token in tokens if token not in vectors.key_to_index]
            if not tokens:
                problems.append(f"class {text!r} has no content words (all are stop words)")
            elif missing and self.oov == "error":
                problems.append(f"class {text!r}: missing word(s) {missing}")
            elif not known:
                problems.append(f"class {text!r}: none of its words {missing} is known")
            else:
                if missing:
                    log.warning("class %r: skipping words not in %s: %s", text, self.path, missing)
                unit = np.stack([vectors.get_vector(token, norm=True) for token in known])
                rows.append(unit.mean(axis=0))  # (n_words, D) -> (D,)
        if problems:
            hint = "" if self.oov == "skip" else ' (oov="skip" drops unknown words)'
            raise ValueError(
                f"cannot embed class names with the vocabulary of {self.path}{hint}: "
                + "; ".join(problems)
            )
        embeddings = torch.from_numpy(np.stack(rows)).float()  # (N, D)
        return F.normalize(embeddings, dim=1) if self.normalize_mean else embeddings

    def _load(self) -> KeyedVectors:
        # Imported here: gensim is slow to import, optional, and a cache hit never needs it.
        models = import_optional("gensim.models", extra="word2vec")

        log.info("loading word vectors from %s", self.path)
        try:
            if self.format == "native":
                loaded = models.KeyedVectors.load(str(self.path))
                # A saved full Word2Vec model keeps its vectors in `.wv`.
                loaded = getattr(loaded, "wv", loaded)
            else:
                loaded = models.KeyedVectors.load_word2vec_format(
                    str(self.path),
                    binary=self.format == "binary",
                    no_header=self.format == "text" and not _has_header(self.path),
                )
        except (OSError, ValueError, EOFError, UnicodeDecodeError) as error:
            raise ValueError(f"cannot read word vectors from {self.path}: {error}") from error
        if not isinstance(loaded, models.KeyedVectors):
            raise ValueError(f"{self.path} holds a {type(loaded).__name__}, not KeyedVectors")
        if len(loaded) == 0:
            raise ValueError(f"{self.path} holds no word vectors")
        return loaded


def _has_header(path: Path) -> bool:
    """Whether a text word-vector file starts with word2vec's "count dim" line (GloVe does not)."""
    utils = import_optional("gensim.utils", extra="word2vec")
    with utils.open(str(path), "rb") as handle:
        first = handle.readline().split()
    return len(first) == 2 and all(field.isdigit() for field in first)
