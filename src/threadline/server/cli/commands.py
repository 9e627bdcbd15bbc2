"""The ``threadline`` command: ``serve``, ``keys``, ``projects``, ``migrate``, ``demo``,
``delete`` and ``export`` (among others).

The CLI only turns flags into ``Settings`` (and calls into the server); every setting's
default, environment variable and help come from the table in ``settings.py``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shlex
import sys
import urllib.parse
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from threadline.server.cli import data as data_commands
from threadline.server.cli import evaluations as cli_evaluations
from threadline.server.cli import project_rules as cli_project_rules
from threadline.server.cli import sql as cli_sql
from threadline.server.errors import ConfigurationError
from threadline.server.http import ports
from threadline.server.http.connections import raise_open_file_limit
from threadline.server.ingest.tuning import tune_allocator
from threadline.server.model import KeyScope, Project
from threadline.server.settings import SETTINGS, Settings, local_base_url
from threadline.server.store import Store, open_store, sqlite_path
from threadline.server.store.sqlite import driver
from threadline.server.version import VERSION

DEFAULT_PROJECT = "default"


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        raise SystemExit(2)
    try:
        args.run(args)
    except ConfigurationError as error:
        sys.exit(f"threadline: {error}")
    except BrokenPipeError:
        # Piped into e.g. head, which has what it wanted: stop quietly. Python would
        # flush stdout again at exit and fail once more, so it gets /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="threadline", description="Threadline: sessions-first LLM observability."
    )
    parser.add_argument(
        "--version", action="version", version=f"threadline {VERSION}, {driver.describe()}"
    )
    commands = parser.add_subparsers(metavar="COMMAND")

    serve = commands.add_parser("serve", help="Run the server (OTLP ingest, API, web UI).")
    _add_settings(serve, [s.name for s in SETTINGS])
    serve.set_defaults(run=_serve)

    keys = commands.add_parser("keys", help="Manage projects' API keys.")
    key_commands = keys.add_subparsers(metavar="ACTION")
    create = key_commands.add_parser("create", help="Create a key (and its project if new).")
    _add_settings(create, ["data_dir", "store"])
    create.add_argument(
        "--project", default=DEFAULT_PROJECT, help="Project name (default: %(default)s)."
    )
    only = create.add_mutually_exclusive_group()
    only.add_argument(
        "--ingest-only",
        action="store_true",
        help="A key that can send spans but read nothing: the one to ship inside an app.",
    )
    only.add_argument(
        "--scores-only",
        action="store_true",
        help="A key that can only send end-user scores, from the origins the project allows: "
        "the one to ship inside a browser app (see `projects allow-origin`).",
    )
    create.add_argument(
        "--create-store",
        action="store_true",
        help="Create the SQLite store if there is none yet. Without it, keys commands refuse "
        "a store that does not exist: the server in another folder would never read it.",
    )
    create.set_defaults(run=_keys_create)
    listing = key_commands.add_parser("list", help="List keys (never their secrets).")
    _add_settings(listing, ["data_dir", "store"])
    listing.set_defaults(run=_keys_list)
    revoke = key_commands.add_parser("revoke", help="Revoke a key by its id.")
    _add_settings(revoke, ["data_dir", "store"])
    revoke.add_argument("key_id", type=int, help="The key's id: the first column of `keys list`.")
    revoke.set_defaults(run=_keys_revoke)
    rotate = key_commands.add_parser(
        "rotate", help="Replace a key: revoke it and print its successor (same project, scope)."
    )
    _add_settings(rotate, ["data_dir", "store"])
    rotate.add_argument("key_id", type=int, help="The key's id: the first column of `keys list`.")
    rotate.set_defaults(run=_keys_rotate)

    projects = commands.add_parser(
        "projects",
        help="Projects' settings: the browser origins their scores keys serve, whether"
        " sessions are inferred, retention and redaction.",
    )
    project_commands = projects.add_subparsers(metavar="ACTION")
    for action, run, help_text in (
        ("allow-origin", _origins_allow, "Let browser apps at ORIGIN send scores (CORS)."),
        ("disallow-origin", _origins_disallow, "Stop allowing ORIGIN."),
        ("origins", _origins_list, "List the origins a project allows."),
    ):
        command = project_commands.add_parser(action, help=help_text)
        _add_settings(command, ["data_dir", "store"])
        command.add_argument(
            "--project", default=DEFAULT_PROJECT, help="Project name (default: %(default)s)."
        )
        if action != "origins":
            command.add_argument(
                "origins", nargs="+", metavar="ORIGIN", help="e.g. https://app.example.com"
            )
        command.set_defaults(run=run)
    inference = project_commands.add_parser(
        "infer-sessions",
        help="Group traces that carry no session id into inferred sessions (on by"
        " default), or stop; without on/off, show the project's choice.",
    )
    _add_settings(inference, ["data_dir", "store"])
    inference.add_argument(
        "--project", default=DEFAULT_PROJECT, help="Project name (default: %(default)s)."
    )
    inference.add_argument("choice", nargs="?", choices=("on", "off"))
    inference.set_defaults(run=_infer_sessions)
    cli_project_rules.add_commands(
        project_commands, _add_settings, DEFAULT_PROJECT, _existing_store, _existing_project
    )

    migrate = commands.add_parser(
        "migrate",
        help="Copy a store into another (projects, keys, spans, scores, notes), e.g. SQLite"
        " into ClickHouse.",
    )
    migrate.add_argument(
        "--from",
        dest="source",
        required=True,
        help="Storage URL to copy from, e.g. sqlite:///path/threadline.db.",
    )
    migrate.add_argument(
        "--to",
        dest="target",
        required=True,
        help="Storage URL to copy into, e.g. clickhouse://user:pw@host:8123/db.",
    )
    migrate.add_argument(
        "--batch-size", type=int, default=2000, help="Spans per write (default: %(default)s)."
    )
    migrate.set_defaults(run=_migrate)

    cli_evaluations.add_commands(commands, _add_settings, DEFAULT_PROJECT)
    cli_sql.add_command(commands, _add_settings)

    demo = commands.add_parser("demo", help="Send a realistic multi-session workload.")
    demo.add_argument(
        "--base-url",
        default=None,
        help=f"Server URL (or THREADLINE_BASE_URL; default {local_base_url()}).",
    )
    demo.add_argument("--api-key", default=None, help="Project key (or THREADLINE_API_KEY).")
    demo.add_argument(
        "--sessions", type=int, default=12, help="How many chat sessions (default: %(default)s)."
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=7,
        help="Picks the users, questions and timings (default: %(default)s); the session "
        "ids are new on every run, so a second run adds sessions beside the first.",
    )
    demo.set_defaults(run=_demo)

    delete = commands.add_parser(
        "delete", help="Delete a session, a trace, or every session a filter matches."
    )
    delete_commands = delete.add_subparsers(metavar="WHAT")
    for what in ("session", "trace"):
        one = delete_commands.add_parser(what, help=f"Delete one {what} (and what it holds).")
        one.add_argument("id", help=f"The {what}'s id.")
        data_commands.add_connection(one)
        one.set_defaults(run=data_commands.run_delete, what=what)
    many = delete_commands.add_parser(
        "sessions", help="Delete every session the filters match, after confirming the count."
    )
    many.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="A Sessions list filter, repeatable: "
        + ", ".join(data_commands.SESSION_FILTERS)
        + " (e.g. user_id=ana, metadata=env=prod, score=quality<3, filter=turns>=5).",
    )
    many.add_argument("--all", action="store_true", help="No filter: every session.")
    many.add_argument("--yes", action="store_true", help="Do not ask; delete what matches.")
    data_commands.add_connection(many)
    many.set_defaults(run=data_commands.run_delete, what="sessions")

    export = commands.add_parser(
        "export", help="Export the Sessions or Traces list, filtered, as CSV or JSON Lines."
    )
    export_commands = export.add_subparsers(metavar="WHAT")
    for what, names in (
        ("sessions", data_commands.SESSION_FILTERS + data_commands.EXPORT_EXTRA),
        ("traces", data_commands.TRACE_FILTERS + data_commands.EXPORT_EXTRA),
    ):
        listing = export_commands.add_parser(what, help=f"Every {what[:-1]} the filters match.")
        listing.add_argument(
            "--format", choices=["csv", "jsonl"], default="jsonl", help="Default: jsonl."
        )
        listing.add_argument(
            "--include-spans",
            action="store_true",
            help="JSONL only: each row carries its traces with every span (re-importable).",
        )
        listing.add_argument(
            "--filter",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help=f"A {what.title()} list filter, repeatable: "
            + ", ".join(names)
            + " (e.g. tag=support, filter=cost>0.5, window=all: the last 7 days unless"
            " given start, end or window).",
        )
        listing.add_argument("--output", "-o", default=None, help="File to write (default stdout).")
        data_commands.add_connection(listing)
        listing.set_defaults(run=data_commands.run_export, what=what)
    return parser


def _add_settings(
    parser: argparse.ArgumentParser, names: list[str], helps: dict[str, str] | None = None
) -> None:
    """The flags of the settings ``names``; ``helps`` words a setting for a command that
    uses it otherwise than the server does."""
    for setting in SETTINGS:
        if setting.name in names:
            text = (helps or {}).get(setting.name, setting.help)
            parser.add_argument(
                setting.flag,
                dest=setting.name,
                default=None,  # None: fall back to the environment, then the default
                help=f"{text} [env {setting.env}; default {setting.default!r}]",
            )


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.resolve({s.name: getattr(args, s.name, None) for s in SETTINGS})


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    settings = _settings(args)
    # The ports first: a clash must end the start before a key is made and shown.
    try:
        held = ports.claim(settings)
    except ports.PortUnavailable as exc:
        sys.exit(f"threadline: {exc}")
    try:
        store = open_store(settings.store_url, settings.retention_days)
        try:
            _first_start(store, settings)
        finally:
            store.close()
    finally:
        for sock in held:  # released just before uvicorn and gRPC bind them again
            sock.close()
    # The app is built from the environment (and the ingest worker processes are given
    # the settings it resolved): put the resolved settings there.
    os.environ.update(settings.to_environment())
    raise_open_file_limit()  # inherited by the workers; connections are capped below it
    tune_allocator()  # before uvicorn and gRPC start their threads
    uvicorn.run(
        "threadline.server.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Keep-alive longer than the OTLP exporters' batch interval, so a steady
        # exporter reuses its connection.
        timeout_keep_alive=30,
        # uvicorn's httptools protocol, plus header and body timeouts and a connection cap.
        http="threadline.server.http.protocol:GuardedHttpToolsProtocol",
    )


def _first_start(store: Store, settings: Settings) -> None:
    """With no project yet, make the default one and show its key, once.

    Only on loopback: a server reachable from other machines must not start before
    someone has made a key deliberately (``threadline keys create``).
    """
    print(f"Threadline {VERSION}, store: {_shown_store(settings)}", flush=True)
    if not _is_loopback(settings.host):
        if not any(key.revoked_at is None for key in store.list_keys()):
            sys.exit(
                f"threadline: refusing to listen on {settings.host}, reachable from other "
                "machines, with no API key yet. Create one first:\n"
                f"    threadline keys create --project NAME {_store_flags(settings)}"
            )
        return
    if store.list_projects():
        # A key is shown once, when made: say how to get another, in case it was lost.
        print(
            "API keys are shown only when made. A new one: threadline keys create "
            f"--project {DEFAULT_PROJECT} {_store_flags(settings)}",
            flush=True,
        )
        return
    project = store.create_project(DEFAULT_PROJECT)
    key = store.create_key(project.id)
    base_url = f"http://{settings.host}:{settings.port}"
    grpc = (
        f"OTLP/gRPC exporters: {settings.host}:{settings.grpc_port}, with the same key in\n"
        "the 'authorization' metadata.\n"
        if settings.grpc_port
        else ""
    )
    checkout = _checkout()
    source = shlex.quote(str(checkout)) if checkout else "/path/to/threadline"
    print(
        f"""
Created project '{project.name}'. Its API key (shown once, stored hashed):

    {key}

Open {base_url} in a browser and sign in with it.

Trace your app: install the SDK into the app's own environment. It brings only
OpenTelemetry, and is not on PyPI: install it from {"this" if checkout else "the"} checkout.

    pip install {source}
    export THREADLINE_API_KEY={key}
    export THREADLINE_BASE_URL={base_url}

    from threadline import Threadline, observe
    Threadline.initialize()

For another machine, build a wheel to copy there: pip wheel --no-deps -w dist {source}

Or point any OpenTelemetry OTLP/HTTP exporter at {base_url}/v1/traces
with the header 'Authorization: Bearer {key}'.
{grpc}""",
        flush=True,
    )


def _checkout() -> Path | None:
    """The source checkout this server runs from (editable), or was installed from
    (``pip install .``, which pip records as the distribution's ``direct_url.json``)."""
    candidates = [Path(__file__).resolve().parents[4]]  # src/threadline/server/cli/ -> root
    try:
        direct = json.loads(distribution("threadline").read_text("direct_url.json") or "{}")
    except (PackageNotFoundError, ValueError):
        direct = {}
    url = urllib.parse.urlsplit(str(direct.get("url", "")))
    if url.scheme == "file" and "dir_info" in direct:
        candidates.append(Path(urllib.parse.unquote(url.path)))
    for root in candidates:
        if (root / "pyproject.toml").is_file() and (root / "src" / "threadline").is_dir():
            return root
    return None


def _shown_store(settings: Settings) -> str:
    """The store as it may be printed: a SQLite file's path, or the URL without password."""
    path = sqlite_path(settings.store_url)
    if path is not None:
        return path
    parts = urllib.parse.urlsplit(settings.store_url)
    if parts.password:
        return settings.store_url.replace(f":{parts.password}@", ":***@", 1)
    return settings.store_url


def _store_flags(settings: Settings) -> str:
    """The flags that point another ``threadline`` command at this store."""
    if not settings.store:
        return f"--data-dir {shlex.quote(str(settings.data_dir.resolve()))}"
    if urllib.parse.urlsplit(settings.store).password:
        return "--store '<the store URL>'"
    return f"--store {shlex.quote(settings.store)}"


def _existing_store(args: argparse.Namespace, *, create: bool = False) -> Store:
    """The store a keys or projects command acts on, said on stderr (stdout stays the
    command's answer). A SQLite store that does not exist is refused unless ``create``:
    made in the wrong folder, it would hold keys the running server never sees."""
    settings = _settings(args)
    path = sqlite_path(settings.store_url)
    if path is not None and not create and not Path(path).exists():
        sys.exit(
            f"threadline: no store at {path}. Run this command where the server keeps its "
            "data (the folder `threadline serve` started in, or its --data-dir / --store; "
            "it prints its store when it starts), or pass --data-dir or --store."
        )
    print(f"threadline: store {_shown_store(settings)}", file=sys.stderr)
    return open_store(settings.store_url)


def _keys_create(args: argparse.Namespace) -> None:
    store = _existing_store(args, create=args.create_store)
    try:
        project = store.create_project(args.project)
        scope: KeyScope = "ingest" if args.ingest_only else "scores" if args.scores_only else "full"
        key = store.create_key(project.id, scope)
    finally:
        store.close()
    kind = {"ingest": "ingest-only API key", "scores": "scores-only API key"}.get(scope, "API key")
    print(f"New {kind} for project '{project.name}' (shown once, stored hashed):")
    print(key)


def _keys_list(args: argparse.Namespace) -> None:
    store = _existing_store(args)
    try:
        print("id\tproject\tprefix\tscope\tcreated\tstate")
        for key in store.list_keys():
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            created = f"{key.created_at:%Y-%m-%d %H:%M}"
            print(f"{key.id}\t{key.project}\t{key.prefix}…\t{key.scope}\t{created}\t{state}")
    finally:
        store.close()


def _keys_revoke(args: argparse.Namespace) -> None:
    store = _existing_store(args)
    try:
        if not store.revoke_key(args.key_id):
            sys.exit(f"threadline: no active key with id {args.key_id}")
    finally:
        store.close()
    print(f"Revoked key {args.key_id}.")


def _keys_rotate(args: argparse.Namespace) -> None:
    store = _existing_store(args)
    try:
        key = store.rotate_key(args.key_id)
    finally:
        store.close()
    if key is None:
        sys.exit(f"threadline: no active key with id {args.key_id}")
    print(f"Revoked key {args.key_id}. Its successor (shown once, stored hashed):")
    print(key)


def _origin(text: str) -> str:
    """``text`` as a browser sends it in ``Origin`` (scheme://host[:port], lower case),
    or exit saying why it is not one: the server compares origins exactly."""
    parsed = urllib.parse.urlsplit(text.strip())
    if (
        parsed.scheme not in ("http", "https")
        or not parsed.hostname
        or parsed.path not in ("", "/")
        or parsed.query
        or parsed.fragment
        or parsed.username is not None
    ):
        sys.exit(f"threadline: {text!r} is not an origin like https://app.example.com")
    return f"{parsed.scheme}://{parsed.netloc.lower()}"


def _change_origins(args: argparse.Namespace, allow: bool) -> None:
    origins = [_origin(text) for text in args.origins]
    store = _existing_store(args)
    try:
        project = _existing_project(store, args.project)
        current = set(store.allowed_origins(project.id))
        changed = current | set(origins) if allow else current - set(origins)
        store.set_allowed_origins(project.id, sorted(changed))
    finally:
        store.close()
    print(f"Project '{project.name}' allows: " + (", ".join(sorted(changed)) or "no origin"))


def _origins_allow(args: argparse.Namespace) -> None:
    _change_origins(args, allow=True)


def _origins_disallow(args: argparse.Namespace) -> None:
    _change_origins(args, allow=False)


def _origins_list(args: argparse.Namespace) -> None:
    store = _existing_store(args)
    try:
        for origin in store.allowed_origins(_existing_project(store, args.project).id):
            print(origin)
    finally:
        store.close()


def _infer_sessions(args: argparse.Namespace) -> None:
    store = _existing_store(args)
    try:
        project = _existing_project(store, args.project)
        if args.choice is not None:
            store.set_session_inference(project.id, args.choice == "on")
        enabled = store.session_inference(project.id)
    finally:
        store.close()
    print(f"Project '{project.name}' infers sessions: {'on' if enabled else 'off'}")


def _existing_project(store: Store, name: str) -> Project:
    for project in store.list_projects():
        if project.name == name:
            return project
    sys.exit(f"threadline: no project named {name!r}")


def _migrate(args: argparse.Namespace) -> None:
    from threadline.server.migrate import copy_store

    if args.source == args.target:
        sys.exit("threadline migrate: --from and --to name the same store")
    if args.batch_size < 1:
        sys.exit("threadline migrate: --batch-size must be at least 1")
    source_file = sqlite_path(args.source)
    if source_file is not None and not os.path.exists(source_file):
        sys.exit(f"threadline migrate: no SQLite store at {source_file}")
    source = open_store(args.source)
    try:
        target = open_store(args.target)
        try:
            copied = copy_store(source, target, args.batch_size)
        finally:
            target.close()
    finally:
        source.close()
    print(
        f"Copied {copied.projects} projects, {copied.keys} keys and {copied.spans} spans"
        f" ({copied.new_spans} new to the target), {copied.scores} scores,"
        f" {copied.score_configs} score configurations and {copied.notes} notes;"
        f" {copied.evaluators} evaluators and {copied.runs} evaluation runs;"
        f" the data rules of {copied.data_rules} projects; {copied.share_links} share links."
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable


def _demo(args: argparse.Namespace) -> None:
    from threadline.server.demo import DemoFailed, run_demo

    # The same variables the SDK reads, which the first start tells the user to export.
    base_url = args.base_url or os.environ.get("THREADLINE_BASE_URL") or local_base_url()
    key = args.api_key or os.environ.get("THREADLINE_API_KEY")
    if not key:
        sys.exit("threadline demo: give --api-key or set THREADLINE_API_KEY")
    if args.sessions < 1:
        sys.exit("threadline demo: --sessions must be at least 1")
    try:
        print(run_demo(base_url, key, sessions=args.sessions, seed=args.seed))
    except DemoFailed as exc:
        sys.exit(f"threadline demo: {exc}")


if __name__ == "__main__":
    main()
