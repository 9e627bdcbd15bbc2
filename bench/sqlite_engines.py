"""Which SQLite build writes Threadline's rows fastest, and is it the engine or the module?

    python bench/sqlite_engines.py --spans 100000 --rounds 2

The rows of ``--spans`` workload spans are made once (decoded, normalised and packed as
the server does, untimed) and then written by each DB-API module in a process of its
own, in turn, ``--rounds`` times in the order given and then reversed (A B B A), so that
a drift of the shared machine falls on both alike. Each process measures, on a fresh
file in WAL mode with ``synchronous=NORMAL``, 512 rows a transaction:

- ``executemany``: the rows bound from Python, into a table of the spans alone keyed as
  before trace keys (``sqlite_ceiling.py``'s raw ceiling uses the store's own table);
- ``SQL only``: the same rows copied by ``INSERT ... SELECT`` from a staging table
  (filled untimed), so no Python value is bound: the engine's own cost.

Each as spans/s (wall) and CPU µs a span (the process's, which a loaded machine
disturbs less). The difference between the two is the module's (binding and stepping from Python).
Modules: ``stdlib`` (CPython's ``sqlite3``, linked to the system's SQLite),
``pysqlite3`` (``pysqlite3-binary``'s bundled SQLite), ``sqlean`` (``sqlean.py``), each
when installed; ``--adapters on`` (or ``both``) registers the adapters of
``store/sqlite/binding.py`` in the child first. A benchmark, not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import importlib
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

MODULES = {"stdlib": "sqlite3", "pysqlite3": "pysqlite3.dbapi2", "sqlean": "sqlean"}


def _measure(module_name: str, rows_path: Path, tmp: Path, batch: int, adapters: bool) -> None:
    """In a process of its own: print this module's two rates as one line."""
    from threadline.server.store.columns import SPANS
    from threadline.server.store.sqlite.binding import skip_adaptation

    sqlite = importlib.import_module(MODULES[module_name])
    if adapters:
        skip_adaptation(sqlite)
    rows = pickle.loads(rows_path.read_bytes())
    columns = ", ".join(SPANS.names)
    # The spans alone, keyed as the store keyed them before trace keys (migration 0018).
    raw_insert = (
        f"INSERT OR IGNORE INTO spans ({columns}) VALUES ({', '.join('?' * len(SPANS.names))})"
    )
    rates = []
    for how in ("executemany", "sql"):
        path = tmp / f"{module_name}-{how}.db"
        conn = sqlite.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"CREATE TABLE spans ({columns}, PRIMARY KEY (project_id, trace_id, span_id))")
        if how == "sql":
            conn.execute(f"CREATE TABLE stage ({columns})")
            conn.execute("BEGIN")
            conn.executemany(
                f"INSERT INTO stage VALUES ({', '.join('?' * len(SPANS.names))})", rows
            )
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        started, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(rows), batch):
            conn.execute("BEGIN")
            if how == "sql":
                conn.execute(
                    f"INSERT OR IGNORE INTO spans SELECT {columns} FROM stage"
                    " WHERE rowid > ? AND rowid <= ?",
                    (i, i + batch),
                )
            else:
                conn.executemany(raw_insert, rows[i : i + batch])
            conn.execute("COMMIT")
        rates.append(len(rows) / (time.perf_counter() - started))
        rates.append((time.process_time() - cpu) / len(rows) * 1e6)
        conn.close()
    version = sqlite.sqlite_version
    name = f"{module_name}{'+adapt' if adapters else ''}"
    print(
        f"{name:16s} SQLite {version:8s} {rates[0]:>12,.0f} {rates[1]:>7.1f}"
        f" {rates[2]:>12,.0f} {rates[3]:>7.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--modules", default="stdlib,pysqlite3,sqlean")
    parser.add_argument(
        "--adapters",
        default="off",
        choices=("off", "on", "both"),
        help="bind None and bytes through registered adapters (store/sqlite/binding.py)",
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child's module
    parser.add_argument("--rows", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--adapt", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        _measure(args.measure, args.rows, args.tmp, args.batch, args.adapt)
        return

    import workload
    from sqlite_ceiling import make_ready, span_rows

    modules: list[tuple[str, bool]] = []
    for name in args.modules.split(","):
        try:
            importlib.import_module(MODULES[name])
        except ImportError:
            print(f"{name}: not installed, skipped")
            continue
        if args.adapters in ("off", "both"):
            modules.append((name, False))
        if args.adapters in ("on", "both"):
            modules.append((name, True))
    with tempfile.TemporaryDirectory(prefix="sqlite-engines-rows-") as tmp:
        # The rows as the workers make them (the first export's went into the store that
        # trained the payload dictionary, and are left out).
        rows = span_rows(make_ready(list(workload.batches(args.spans, 512)), Path(tmp)))
    print(
        f"{'module':16s} {'engine':15s} {'executemany':>12} {'µs CPU':>7} {'SQL only':>12}"
        f" {'µs CPU':>7}  (spans/s, and CPU µs a span)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="sqlite-engines-") as tmp:
        rows_path = Path(tmp) / "rows.pickle"
        rows_path.write_bytes(pickle.dumps(rows))
        for round_ in range(args.rounds):
            order = modules if round_ % 2 == 0 else modules[::-1]
            for name, adapt in order:
                each = Path(tmp) / f"{round_}"
                each.mkdir(exist_ok=True)
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--measure",
                        name,
                        "--rows",
                        str(rows_path),
                        "--tmp",
                        str(each),
                        "--batch",
                        str(args.batch),
                        *(["--adapt"] if adapt else []),
                    ],
                    check=True,
                )
                for leftover in each.iterdir():
                    leftover.unlink()


if __name__ == "__main__":
    main()
