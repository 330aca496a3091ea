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


def semantic_recall(settings: Settings, model: ChatModel) -> SemanticRecall:
    """The configured embeddings deployment; else, in the embedded default (SQLite), the local
    model that ships with the bot (offline, CPU), with its word vectors. On Cosmos DB without a
    deployment, none: comparing there means reading a person's newest embeddings in every
    turn's request, which costs request units an operator did not ask for. None, and lexical
    recall only, also if the local model cannot be read."""
    if model.can_embed:
        return {"embed": model.embed}
    if settings.memory_store != "sqlite":
        return {}
    try:
        return local_recall()
    except LocalEmbeddingsUnavailable as error:
        log.warning("no local embeddings (%s): recall is lexical only", error)
        return {}


def local_recall() -> SemanticRecall:
    """The embedded default's semantic recall: the local model's sentence and word vectors."""
    local = local_embeddings()
    return {"embed": local.embed, "words": local.words}


def describe_embeddings(settings: Settings, model: ChatModel) -> str:
    """For the start-up line: which embeddings semantic recall uses."""
    if model.can_embed:
        return "the configured embeddings deployment"
    if settings.memory_store != "sqlite":
        return "none (configure an embeddings deployment)"
    try:
        return local_embeddings().describe()
    except LocalEmbeddingsUnavailable:
        return "none (lexical recall only)"


@lru_cache(maxsize=1)
def local_embeddings() -> LocalEmbeddings:
    """The local model, loaded once per process (about 0.15 s, 16 MB, read-only: shared)."""
    embeddings = LocalEmbeddings()
    embeddings.load()
    return embeddings
