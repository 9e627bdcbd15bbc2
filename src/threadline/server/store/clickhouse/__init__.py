"""The ClickHouse store: one database shared by any number of Threadline servers."""

from threadline.server.store.clickhouse.store import ClickHouseStore

__all__ = ["ClickHouseStore"]
