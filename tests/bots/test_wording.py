"""The sentences in `bots.wording`: one for every model failure, whole, joined whole."""

from __future__ import annotations

import inspect

import pytest

import model_client
from bots.wording import KEPT, MODEL_FAILED, NOT_KEPT, model_failed
from model_client import ModelError, ModelTimeout

pytestmark = pytest.mark.unit

MODEL_ERRORS = [
    kind
    for _, kind in inspect.getmembers(model_client, inspect.isclass)
    if issubclass(kind, ModelError)
]


def test_every_model_error_has_its_own_sentence() -> None:
    assert set(MODEL_FAILED) == set(MODEL_ERRORS)
    assert len(set(MODEL_FAILED.values())) == len(MODEL_FAILED)


@pytest.mark.parametrize("kind", MODEL_ERRORS, ids=lambda kind: kind.__name__)
def test_a_model_failure_is_two_whole_sentences(kind: type[ModelError]) -> None:
    assert model_failed(kind("detail for the log"), kept=True) == f"{MODEL_FAILED[kind]} {KEPT}"
    assert model_failed(kind("detail"), kept=False) == f"{MODEL_FAILED[kind]} {NOT_KEPT}"
    # Forgotten while it was answered: neither "kept" nor "send it again".
    assert model_failed(kind("detail"), kept=None) == MODEL_FAILED[kind]


def test_a_model_error_without_a_sentence_of_its_own_reads_as_its_nearest_kind() -> None:
    class SlowFirstToken(ModelTimeout):
        pass

    class Unforeseen(ModelError):
        pass

    assert model_failed(SlowFirstToken(), kept=True).startswith(MODEL_FAILED[ModelTimeout])
    assert model_failed(Unforeseen(), kept=True).startswith(MODEL_FAILED[ModelError])


def test_the_detail_for_the_log_never_reaches_the_person() -> None:
    assert "HTTP 503" not in model_failed(model_client.ModelUnavailable("HTTP 503"), kept=True)
