"""Builds the product's parts from Settings, in one place: the store and the memory.

`app.py` and the replay tool (`python -m memory replay`) both call these, so the replay shows
what the bot would send with the same configuration, embeddings included.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import lru_cache
from typing import TypedDict

from config import Settings
from local_embeddings import LocalEmbeddings, LocalEmbeddingsUnavailable
from memory import ConversationMemory, MemoryStore
from memory.recall import Embed, WordVectors
from memory.sqlite_store import SQLiteStore
from model_client import ChatModel

log = logging.getLogger(__name__)


def create_store(settings: Settings) -> MemoryStore:
    """The store the settings ask for, not yet opened."""
    if settings.memory_store == "cosmos":
        from memory.cosmos import CosmosStore  # the Azure SDKs load only when they are used

        return CosmosStore(
            settings.cosmos_endpoint,
            key=settings.cosmos_key or None,
            database=settings.cosmos_database,
            container=settings.cosmos_container,
            verify_tls=settings.cosmos_verify_tls,
            create_if_missing=settings.cosmos_create_if_missing,
            ttl_seconds=settings.memory_ttl_days * 86_400,
            trust_env=settings.proxy_configured,
        )
    return SQLiteStore(settings.sqlite_path, ttl_seconds=settings.memory_ttl_days * 86_400)


def create_memory(
    settings: Settings,
    store: MemoryStore,
    model: ChatModel,
    *,
    context_tokens: int | None = None,
    summaries: bool = True,
) -> ConversationMemory:
    """Memory on `store`, summarising and embedding with `model` as the settings say.

    `context_tokens` overrides MEMORY_CONTEXT_TOKENS, and `summaries=False` turns summaries
    off (the replay tool's `--budget` and `--no-summary`).
    """
    # The offline model cannot summarise; an invented summary would be worse than none.
    summarise = summaries and settings.model_kind != "offline"
    return ConversationMemory(
        store,
        system_prompt=settings.system_prompt,
        max_messages=settings.memory_max_messages,
        context_tokens=context_tokens or settings.memory_context_tokens,
        summary_every=settings.memory_summary_every,
        summary_concurrency=settings.memory_summary_concurrency,
        extract_every=settings.memory_extract_every,
        item_ttl=timedelta(days=settings.memory_ttl_days),
        summarise=model.complete if summarise else None,
        **semantic_recall(settings, model),
    )


class SemanticRecall(TypedDict, total=False):
    """What ConversationMemory compares meanings with, besides lexical search."""

    embed: Embed
    words: WordVectors
    embed_is_local: bool
    """`embed` is the local model's, as `words` are."""


def semantic_recall(settings: Settings, model: ChatModel) -> SemanticRecall:
    """What memory compares meanings with, as the settings say (`recall_for`)."""
    return recall_for(settings.memory_store, model.embed if model.can_embed else None)


def recall_for(store: str, deployment: Embed | None) -> SemanticRecall:
    """Semantic recall on `store` ("sqlite" or "cosmos") with an embeddings `deployment` or none.

    - Word by word, with the local model that ships with the bot (offline, CPU), whatever the
      store and the deployment: it re-ranks the candidates the searches read anyway, with no
      request to any service.
    - Embeddings: the deployment; else, in the embedded default (SQLite), the local model's. On
      Cosmos DB without a deployment, none: comparing there means reading a person's newest
      embeddings in every turn's request, which costs request units an operator did not ask for.
    Without the local model (its package unreadable), the deployment's embeddings only."""
    recall: SemanticRecall = {"embed": deployment} if deployment is not None else {}
    try:
        local = local_embeddings()
    except LocalEmbeddingsUnavailable as error:
        log.warning("no local embeddings (%s): no word-by-word recall", error)
        return recall
    recall["words"] = local.words
    if deployment is None and store == "sqlite":
        recall["embed"] = local.embed
        recall["embed_is_local"] = True
    return recall


def local_recall() -> SemanticRecall:
    """The embedded default's semantic recall (SQLite, nothing configured)."""
    return recall_for("sqlite", None)


def describe_embeddings(settings: Settings, model: ChatModel) -> str:
    """For the start-up line: what semantic recall uses."""
    recall = semantic_recall(settings, model)
    if model.can_embed:
        embeddings = "the configured embeddings deployment"
    elif "embed" in recall:
        embeddings = local_embeddings().describe()
    else:
        embeddings = "none (configure an embeddings deployment)"
    return embeddings + ("; word by word with the local model" if "words" in recall else "")


@lru_cache(maxsize=1)
def local_embeddings() -> LocalEmbeddings:
    """The local model, loaded once per process (about 0.15 s, 16 MB, read-only: shared)."""
    embeddings = LocalEmbeddings()
    embeddings.load()
    return embeddings
