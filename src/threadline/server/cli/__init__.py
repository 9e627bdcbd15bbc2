"""The ``threadline`` command: commands.py parses the flags into Settings and runs the
commands on the store (serve, keys, projects, migrate, demo); evaluations.py,
project_rules.py, sql.py and data.py (``delete``, ``export``, through api_client.py)
add theirs. Only this package exits the process."""

from threadline.server.cli.commands import main

__all__ = ["main"]
