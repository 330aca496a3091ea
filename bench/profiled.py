"""Run a bot under cProfile, its event loop's thread and the SQLite store's thread apart.

    python -m bench.profiled OUT.prof app.py
    python -m bench.profiled OUT.prof -m bench.minimal_bot

On Python 3.11, `python -m cProfile` profiles only the thread that started it; MemoryBot's
SQLite store does its work (the searches, the write) on a thread of its own, about half the
bot's CPU in a long conversation. So each job the store hands its thread (`SQLiteStore._run`)
runs under a second profiler, written beside the first as OUT-store.prof when the bot exits (if
it ran any). From Python 3.12 a profiler sees every thread and only one may run: there the one
profile holds both. `bench.load --profile` starts the bots this way. For finding where time
goes, not for figures: profiling slows the bot.
"""

from __future__ import annotations

import cProfile
import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from memory.sqlite_store import SQLiteStore

T = TypeVar("T")


def profile_the_store_thread(profiler: cProfile.Profile) -> None:
    """Each job SQLite stores hand their thread from now on runs under `profiler`."""
    run = SQLiteStore._run

    async def profiled_run(
        self: SQLiteStore, what: str, work: Callable[..., T], *args: object
    ) -> T:
        def profiled(*inner: Any) -> T:
            profiler.enable()  # for the calling thread only: the store's
            try:
                return work(*inner)
            finally:
                profiler.disable()

        return await run(self, what, profiled, *args)

    SQLiteStore._run = profiled_run  # type: ignore[method-assign]


def main(arguments: list[str]) -> None:
    out, *command = arguments
    main_profile = Path(out)
    store_profile = main_profile.with_name(f"{main_profile.stem}-store{main_profile.suffix}")
    store = cProfile.Profile()
    if sys.version_info < (3, 12):  # one profiler a thread; from 3.12, one for every thread
        profile_the_store_thread(store)
    loop = cProfile.Profile()
    sys.argv = command[1:] if command[0] == "-m" else command
    loop.enable()
    try:
        if command[0] == "-m":
            runpy.run_module(command[1], run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(command[0], run_name="__main__")
    finally:
        loop.disable()
        loop.dump_stats(main_profile)
        if store.getstats():  # a bot on SQLite: MemoryBot's store ran jobs on its thread
            store.dump_stats(store_profile)


if __name__ == "__main__":
    main(sys.argv[1:])
