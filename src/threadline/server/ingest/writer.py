"""The writer: the one thread of the server process that writes spans into the store.

Every export's records, whichever receiver and worker process they came through, are
committed here, one batch at a time, each batch in one transaction with the rollups it
changes (``Store.write_spans``). One writer means no lock between writers: SQLite's
own lock is met only by the CLI (``threadline keys``, ``projects``) writing the same
file now and then. The pipeline answers an export once its batch is committed.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from threadline.server.errors import StorageFull
from threadline.server.ingest.prepare import Prepared
from threadline.server.store import Store


class SpanWriter:
    def __init__(self, store: Store) -> None:
        self.store = store
        # One thread: batches are committed in the order they are given.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="threadline-writer")
        # Why the last write failed, when the disk was full (None since one succeeded):
        # /healthz says it.
        self.disk_full: str | None = None

    async def write(self, project_id: int, prepared: Prepared) -> int:
        """Commit the records of ``prepared`` for ``project_id``; how many were new."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._write, project_id, prepared)

    def _write(self, project_id: int, prepared: Prepared) -> int:
        try:
            new = self.store.write_spans(project_id, prepared.normalized.spans, prepared.for_store)
        except StorageFull as error:
            self.disk_full = error.message
            raise
        self.disk_full = None
        return new

    def close(self) -> None:
        """Commit what was given; take nothing after."""
        self._thread.shutdown(wait=True)
