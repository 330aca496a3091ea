"""What semantic recall uses, as the settings say: the one place that decides it."""

from collections.abc import Sequence

import pytest

import local_embeddings
from wiring import local_embeddings as shared_model
from wiring import recall_for

pytestmark = pytest.mark.unit


async def deployment(texts: Sequence[str]) -> list[list[float]]:
    return [[1.0, 0.0] for _ in texts]


def test_each_store_recalls_word_by_word_and_only_sqlite_embeds_locally() -> None:
    model = shared_model()
    sqlite = recall_for("sqlite", None)
    assert sqlite == {"embed": model.embed, "words": model.words, "embed_is_local": True}
    # Cosmos DB without a deployment: no embeddings (they would cost request units), but the
    # lexical matches it reads anyway are ranked word by word.
    assert recall_for("cosmos", None) == {"words": model.words}
    for store in ("sqlite", "cosmos"):
        assert recall_for(store, deployment) == {"embed": deployment, "words": model.words}


def test_without_the_local_model_a_deployment_still_embeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unavailable() -> None:
        raise local_embeddings.LocalEmbeddingsUnavailable("the package is not installed")

    monkeypatch.setattr("wiring.local_embeddings", unavailable)
    assert recall_for("sqlite", deployment) == {"embed": deployment}
    assert recall_for("sqlite", None) == {}
    assert recall_for("cosmos", None) == {}
