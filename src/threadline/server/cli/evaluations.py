"""``threadline evaluators list|create|delete`` and ``threadline evaluate``.

They open the store the server uses, like ``threadline keys``. ``evaluate`` queues its
runs there and judges them in this process (the judge's key variable must be set in
its environment), with a progress bar; interrupted, the runs left stay queued for a
server to judge.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from threadline.server.cli.terminal import visible_in_a_line
from threadline.server.errors import ThreadlineError
from threadline.server.evaluation import ondemand
from threadline.server.evaluation.batch import judge_all
from threadline.server.evaluation.model import (
    DEFAULT_PROMPT,
    EvaluationRun,
    Evaluator,
    EvaluatorFilter,
    EvaluatorIn,
)
from threadline.server.evaluation.runner import RunnerConfig
from threadline.server.evaluation.selection import parse_filters
from threadline.server.model import Project
from threadline.server.settings import Settings
from threadline.server.store import Store, open_store

AddSettings = Callable[..., None]  # (parser, setting names, help texts by name)
_STORE = ["data_dir", "store"]
_JUDGING = ["evaluation_concurrency", "judge_timeout_seconds", "judge_attempts", "judge_key_urls"]
# What creating an evaluator that judges the sessions ended already reads, as the server.
_QUEUEING = ["session_idle_seconds", "evaluation_max_waiting_runs"]


def add_commands(commands: Any, add_settings: AddSettings, default_project: str) -> None:
    evaluators = commands.add_parser("evaluators", help="Manage a project's LLM evaluators.")
    actions = evaluators.add_subparsers(metavar="ACTION")

    listing = actions.add_parser("list", help="List evaluators, with their runs and cost.")
    create = actions.add_parser(
        "create", help="Create (or with --replace, replace) an evaluator; see docs/evaluations.md."
    )
    delete = actions.add_parser("delete", help="Delete an evaluator (its scores stay).")
    for parser in (listing, create, delete):
        add_settings(parser, _STORE)
        parser.add_argument(
            "--project", default=default_project, help="Project name (default: %(default)s)."
        )
    add_settings(create, ["judge_key_urls", *_QUEUEING])  # a key for another URL is refused
    listing.set_defaults(run=_list)
    delete.add_argument("name", help="The evaluator's name.")
    delete.set_defaults(run=_delete)

    create.add_argument("name", help="The evaluator's name (and its score's, unless --score).")
    create.add_argument("--from-json", metavar="FILE", help="The whole definition as JSON.")
    create.add_argument(
        "--target",
        choices=["session", "trace"],
        default="session",
        help="What one run judges: a whole session (default) or one trace.",
    )
    create.add_argument(
        "--prompt",
        help="Instructions; {{transcript}} marks where it goes. Default, for a boolean score:"
        " the Evaluators form's, whether the assistant resolved the user's problem.",
    )
    create.add_argument("--prompt-file", metavar="FILE", help="Read the prompt from a file.")
    create.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. .../v1.")
    create.add_argument("--model", help="The judge model.")
    create.add_argument("--api-key-env", help="Environment variable holding the judge's key.")
    create.add_argument(
        "--score", metavar="NAME", help="Name of the score written (default: the evaluator's)."
    )
    create.add_argument(
        "--score-type",
        choices=["boolean", "numeric", "categorical"],
        default="boolean",
        help="The score's kind (default: boolean); numeric takes --min and --max,"
        " categorical --labels.",
    )
    create.add_argument("--min", type=float, dest="min_value", help="Numeric: lowest score.")
    create.add_argument("--max", type=float, dest="max_value", help="Numeric: highest score.")
    create.add_argument("--labels", help="Categorical: comma-separated labels.")
    create.add_argument("--sampling-rate", type=float, default=1.0, help="0 to 1 (default 1).")
    create.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="tag=NAME, user=ID or metadata.KEY=VALUE; repeatable, all must hold.",
    )
    create.add_argument("--offline", action="store_true", help="Judge only on demand.")
    create.add_argument(
        "--judge-existing-since",
        metavar="WHEN",
        help="Also judge the sessions active since then that ended already (30m, 12h, 7d,"
        " or an ISO time; at most 30 days back, the newest 1,000): queued for the server,"
        " as judge_existing_since in the API. Online evaluators only.",
    )
    create.add_argument("--replace", action="store_true", help="Replace one of that name.")
    create.set_defaults(run=_create)

    evaluate = commands.add_parser(
        "evaluate", help="Judge past sessions with an evaluator now, with a progress bar."
    )
    add_settings(
        evaluate,
        _STORE + _JUDGING,
        {"evaluation_concurrency": "Judge calls in flight at once in this command (0: one)."},
    )
    evaluate.add_argument("evaluator", help="The evaluator's name.")
    evaluate.add_argument(
        "--project", default=default_project, help="Project name (default: %(default)s)."
    )
    evaluate.add_argument(
        "--since",
        default="7d",
        help="Sessions active since: 30m, 12h, 7d, or an ISO time (default 7d).",
    )
    evaluate.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="tag=NAME, user=ID or metadata.KEY=VALUE; repeatable, all must hold.",
    )
    evaluate.set_defaults(run=_evaluate)


def _settings(args: argparse.Namespace) -> Settings:
    names = _STORE + _JUDGING + _QUEUEING
    return Settings.resolve({name: getattr(args, name, None) for name in names})


def _project(store: Store, name: str) -> Project:
    for project in store.list_projects():
        if project.name == name:
            return project
    sys.exit(f"threadline: no project named {name!r}")


def _list(args: argparse.Namespace) -> None:
    store = open_store(_settings(args).store_url)
    try:
        evaluators = store.list_evaluators(_project(store, args.project).id)
    finally:
        store.close()
    print("name\tjudges\tmode\tmodel\tdone\tfailed\twaiting\tjudge tokens\tjudge cost")
    for e in evaluators:
        t = e.totals
        cost = "unknown" if t.cost_usd is None else f"${t.cost_usd:.4f}"
        mode = "online" if e.online else "on demand"
        print(
            f"{e.name}\t{e.target}\t{mode}\t{visible_in_a_line(e.judge.model)}\t{t.runs_done}\t"
            f"{t.runs_failed}\t{t.runs_pending}\t{t.input_tokens + t.output_tokens}\t{cost}"
        )


def _delete(args: argparse.Namespace) -> None:
    store = open_store(_settings(args).store_url)
    try:
        if not store.delete_evaluator(_project(store, args.project).id, args.name):
            sys.exit(f"threadline: no evaluator {args.name!r} in project {args.project!r}")
    finally:
        store.close()
    print(f"Deleted evaluator {args.name!r}.")


def _definition(args: argparse.Namespace) -> EvaluatorIn:
    if args.from_json:
        body = json.loads(Path(args.from_json).read_text())
        body.setdefault("name", args.name)
        return EvaluatorIn.model_validate(body)
    prompt = Path(args.prompt_file).read_text() if args.prompt_file else args.prompt
    if prompt is None and args.score_type == "boolean":
        prompt = DEFAULT_PROMPT  # it asks for true or false
    if not prompt:
        sys.exit(
            f"threadline evaluators create: give --prompt (or --prompt-file) for a"
            f" {args.score_type} score: the default prompt asks for true or false"
        )
    if not args.base_url or not args.model:
        sys.exit("threadline evaluators create: give --base-url and --model")
    labels = [label.strip() for label in args.labels.split(",")] if args.labels else []
    return EvaluatorIn.model_validate(
        {
            "name": args.name,
            "target": args.target,
            "prompt": prompt,
            "judge": {
                "base_url": args.base_url,
                "model": args.model,
                "api_key_env": args.api_key_env,
            },
            "score": {
                "name": args.score or args.name,
                "data_type": args.score_type,
                "min_value": args.min_value,
                "max_value": args.max_value,
                "labels": labels,
            },
            "sampling_rate": args.sampling_rate,
            "filter": parse_filters(args.filter).model_dump(),
            "online": not args.offline,
        }
    )


def _create(args: argparse.Namespace) -> None:
    from threadline.server.evaluation.key_urls import KeyUrls
    from threadline.server.evaluation.saving import save_evaluator

    settings = _settings(args)
    now = datetime.now(UTC)
    since = (
        parse_since(args.judge_existing_since, now, "evaluators create --judge-existing-since")
        if args.judge_existing_since
        else None
    )
    store = open_store(settings.store_url)
    try:
        project = _project(store, args.project)
        try:
            definition = _definition(args)
            if store.get_evaluator(project.id, definition.name) and not args.replace:
                sys.exit(
                    f"threadline: evaluator {definition.name!r} exists (--replace replaces it)"
                )
            made, queued = save_evaluator(
                store,
                project.id,
                definition,
                KeyUrls.of(settings),
                since,
                settings.session_idle_seconds,
                now,
                settings.evaluation_max_waiting_runs,
            )
        except ValidationError as error:
            sys.exit(f"threadline evaluators create: {_problems(error)}")
        except ThreadlineError as error:
            sys.exit(f"threadline evaluators create: {error.message}")
    finally:
        store.close()
    mode = "judges each matching session once it ends" if made.online else "judges on demand"
    model = visible_in_a_line(made.judge.model)
    print(f"Evaluator {made.name!r} ({made.target}s, {model}) {mode}.")
    if since is not None:
        print(
            f"{queued} runs queued for the sessions ended since"
            f" {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC (a running server judges them)."
        )
    variable = made.judge.api_key_env
    lacking = _server_lacking_key(made)
    if variable is not None and lacking is not None:
        print(
            f"threadline evaluators create: warning: the server at {lacking} does not have"
            f" {variable} set: it fails each run of {made.name!r} it judges. Set the variable"
            " in the server's environment and restart it.",
            file=sys.stderr,
        )


def _problems(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())


def _asked(evaluator: Evaluator, extra: EvaluatorFilter) -> str:
    """What the sessions had to match, as ``--filter`` says it (empty: anything), so
    that "nothing to judge" says why: a filter no session matches is the usual cause."""
    wanted = [f"tag={tag}" for tag in [*evaluator.filter.tags, *extra.tags]]
    for selection in (evaluator.filter, extra):
        if selection.user_id:
            wanted.append(f"user={selection.user_id}")
        wanted += [f"metadata.{key}={value}" for key, value in selection.metadata.items()]
    return f" matching {' '.join(wanted)}" if wanted else ""


def _server_lacking_key(evaluator: Evaluator) -> str | None:
    """The base URL of the server this command's client settings reach
    (THREADLINE_BASE_URL, THREADLINE_API_KEY) when it says the judge's key variable is
    not set in its environment (``judge_key_set``), else None: also when the judge takes
    no key, or no server can be asked (no key, none there, another project's key)."""
    from threadline.server.cli.api_client import ApiClient, ApiError

    if evaluator.judge.api_key_env is None:
        return None
    try:
        client = ApiClient.from_args(None, None)
        found = client.call("GET", f"/api/v1/evaluators/{urllib.parse.quote(evaluator.name)}")
    except ApiError:
        return None
    if isinstance(found, dict) and found.get("judge_key_set") is False:
        return client.base_url
    return None


def _check_judge_key(evaluator: Evaluator, project: str) -> None:
    """Refuse, before any run is queued, when the judge's key variable is missing here,
    or missing on the server this command's client settings reach (THREADLINE_BASE_URL,
    THREADLINE_API_KEY): a server on the same store claims queued runs too, and fails
    them without it. A server that cannot be asked is not checked."""

    variable = evaluator.judge.api_key_env
    if variable is None:
        return
    if not os.environ.get(variable):
        sys.exit(
            f"threadline evaluate: the judge's key variable {variable} is not set in this"
            " command's environment: set it here (and on the server, which judges runs too)"
        )
    lacking = _server_lacking_key(evaluator)
    if lacking is not None:
        sys.exit(
            f"threadline evaluate: the server at {lacking} does not have {variable}"
            f" set: it would claim some of the runs of {evaluator.name!r} ({project}) and"
            " fail them. Set the variable in the server's environment and restart it (or"
            " stop the server), then run this again; nothing was queued."
        )


_AGO = re.compile(r"^(\d+)\s*([mhdw])$")


def parse_since(
    text: str, now: datetime | None = None, option: str = "evaluate --since"
) -> datetime:
    """``30m``, ``12h``, ``7d``, ``2w`` ago, or an ISO 8601 time (``option``: what a
    refusal names)."""
    now = now or datetime.now(UTC)
    match = _AGO.match(text.strip())
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[match[2]]
        return now - timedelta(**{unit: int(match[1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        sys.exit(f"threadline {option} {text!r}: use 30m, 12h, 7d, 2w or an ISO time")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _evaluate(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    settings = _settings(args)
    since = parse_since(args.since)
    store = open_store(settings.store_url)
    try:
        project = _project(store, args.project)
        evaluator = store.get_evaluator(project.id, args.evaluator)
        if evaluator is None:
            sys.exit(f"threadline: no evaluator {args.evaluator!r} in project {args.project!r}")
        try:
            extra = parse_filters(args.filter)
        except ThreadlineError as error:
            sys.exit(f"threadline evaluate: {error.message}")
        _check_judge_key(evaluator, args.project)
        runs = ondemand.runs_since(store, project.id, evaluator, since, extra)
        if not runs:
            print(
                f"No session to judge since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
                f"{_asked(evaluator, extra)}."
            )
            return
        counts = {"done": 0, "failed": 0}
        reasons: dict[str, int] = {}
        config = RunnerConfig.from_settings(settings)
        if config.concurrency < 1:
            config = RunnerConfig(1, config.policy, config.transcript_max_chars)
        started = time.monotonic()
        with tqdm(total=len(runs), unit="run", desc=f"{evaluator.name}") as bar:

            def finished(run: EvaluationRun) -> None:
                counts[run.status] = counts.get(run.status, 0) + 1
                if run.status == "failed" and run.reason:
                    reasons[run.reason] = reasons.get(run.reason, 0) + 1
                bar.set_postfix(done=counts["done"], failed=counts["failed"])
                bar.update(1)

            try:
                asyncio.run(judge_all(store, config, project.id, runs, finished))
            except KeyboardInterrupt:
                sys.exit("\nthreadline evaluate: interrupted; the runs left stay queued")
    finally:
        store.close()
    seconds = time.monotonic() - started
    print(f"{counts['done']} judged, {counts['failed']} failed, in {seconds:.1f} s.")
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1])[:5]:
        print(f"  {count} × {visible_in_a_line(reason)}")  # a judge's words among them
    if counts["failed"]:
        raise SystemExit(1)
