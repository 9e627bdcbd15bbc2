"""``threadline migrate``: copy one store into another, e.g. SQLite into ClickHouse.

Projects and keys first (key digests only: the secrets were never stored, and keep
working), then every span through the target's ``write_spans``, so the target builds
its own trace and session rollups with the same rules; then every score through
``write_scores`` (ids and times kept; the target rolls them up itself), and each
project's score configurations, notes and allowed origins, its data rules (its own
retention days, its redaction rules, whether it infers sessions; the sessions it
inferred are inferred again from the spans), its evaluators'
definitions and every evaluation run with its outcome (the runs list and the
evaluators' totals carry over; a run in progress is copied as pending, to be judged
again), and its share links (by token digest, revoked ones as revoked, so every link
keeps opening, or not, as before). Running it again copies nothing twice: projects are
matched by name, keys by id or digest, spans are idempotent on (project, trace, span),
scores on their id, notes and runs on theirs. Copy while
the source takes no more writes (stop its server, or point exporters at the new one
first) to leave nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tqdm import tqdm

from threadline.server.evaluation.model import EvaluatorIn
from threadline.server.ingest.session_signals import span_signals
from threadline.server.model import STORED, SpanRecord
from threadline.server.store import Store


@dataclass(frozen=True)
class Copied:
    projects: int
    keys: int
    spans: int  # spans read from the source (the target skips those it had)
    new_spans: int  # spans the target did not have
    scores: int = 0
    score_configs: int = 0
    notes: int = 0
    evaluators: int = 0
    share_links: int = 0
    runs: int = 0
    data_rules: int = 0  # projects whose retention, redaction or inference was copied


def copy_store(
    source: Store, target: Store, batch_size: int = 2000, progress: bool = True
) -> Copied:
    access = source.dump_access()
    project_ids = target.load_access(access)
    # Rules first: the spans copied next are rolled up, and sessions inferred, as the
    # project chose.
    data_rules = sum(
        copy_data_rules(source, target, p.id, project_ids[p.id]) for p in access.projects
    )
    spans = 0
    # Counted, not summed from write_spans: a store that does not read before it writes
    # (ClickHouse) cannot tell which of a batch's spans it had.
    before = target.count_spans()
    with tqdm(total=source.count_spans(), unit="span", desc="spans", disable=not progress) as bar:
        for project_id, batch in source.iter_spans(batch_size):
            target.write_spans(project_ids[project_id], with_session_signals(batch))
            spans += len(batch)
            bar.update(len(batch))
    scores = configs = notes = 0
    for project_id, records in source.iter_scores(batch_size):
        # As they were: a name that held two types before the rule still does.
        target.write_scores(project_ids[project_id], records, check_types=False)
        scores += len(records)
    evaluators = share_links = runs = 0
    for project in access.projects:
        annotations = source.dump_annotations(project.id)
        target.load_annotations(project_ids[project.id], annotations)
        configs += len(annotations.configs)
        notes += len(annotations.notes)
        for evaluator in source.list_evaluators(project.id):
            definition = EvaluatorIn.model_validate(evaluator.model_dump(), context=STORED)
            target.put_evaluator(project_ids[project.id], definition)
            evaluators += 1
        for run_batch in source.iter_runs(project.id, batch_size):
            target.load_runs(project_ids[project.id], run_batch)
            runs += len(run_batch)
        for share in source.list_shares(project.id):
            if target.share_by_token_hash(share.token_hash) is None:
                target.add_share(replace(share, project_id=project_ids[project.id]))
            share_links += 1
    return Copied(
        len(access.projects),
        len(access.keys),
        spans,
        target.count_spans() - before,
        scores,
        configs,
        notes,
        evaluators,
        share_links,
        runs,
        data_rules,
    )


def with_session_signals(spans: list[SpanRecord]) -> list[SpanRecord]:
    """The keys that tie traces without a session id to their conversation, which no
    store keeps (they are digests of the spans' messages), computed again as ingest
    does, so that the target infers the same sessions (by its own naming rules: a
    ClickHouse target names them differently from SQLite)."""
    explicit = {s.trace_id for s in spans if s.session_id is not None}
    for span in spans:
        if span.trace_id not in explicit:
            span.session_signals = span_signals(span)
    return spans


def copy_data_rules(source: Store, target: Store, source_id: int, target_id: int) -> bool:
    """Copy a project's own retention days, redaction rules and session inference
    choice; True if it had any that differ from a new project's."""
    copied = False
    days = source.retention_overrides().get(source_id)
    if days is not None:
        target.set_retention_days(target_id, days)
        copied = True
    rules = source.redaction_rules(source_id)
    if rules.active:
        target.set_redaction_rules(target_id, rules)
        copied = True
    if not source.session_inference(source_id):
        target.set_session_inference(target_id, False)
        copied = True
    return copied
