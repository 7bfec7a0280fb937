"""Replays the crash corpus: every input a fuzzer ever found failing (tests/corpus/images/, see its README) must now
decode or raise a typed, plain ``XRayReadError`` within the time limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.image_fuzz import CORPUS, check_reader

INPUTS = sorted(path for path in CORPUS.iterdir() if path.is_file() and path.name != "README.md")


def test_the_corpus_is_small_and_described():
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    assert INPUTS and all(path.stat().st_size <= 64_000 for path in INPUTS)
    assert all(path.name in readme for path in INPUTS)


@pytest.mark.parametrize("path", INPUTS, ids=[path.name for path in INPUTS])
def test_corpus_input_decodes_or_gets_a_typed_plain_error(path: Path):
    check_reader(path)
