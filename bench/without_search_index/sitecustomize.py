"""Loaded by every Python process started with this directory on ``PYTHONPATH`` (the
server and its spawned ingest workers alike): the SQLite store's search index gets no
documents, so neither the workers' preparation nor the writer's transaction does any of
its work. The "without" side of ``bench/search_server.py``; never used by the product."""

from threadline.server.store.sqlite import search

search.documents = lambda traces: search.Documents()
