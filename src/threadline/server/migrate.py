"""``threadline migrate``: copy one store into another, e.g. SQLite into ClickHouse.

Projects and keys first (key digests only: the secrets were never stored, and keep
working), then every span through the target's ``write_spans``, so the target builds
its own trace and session rollups with the same rules; then every score through
``write_scores`` (ids and times kept; the target rolls them up itself), and each
project's score configurations, notes and allowed origins, its evaluators'
definitions (not their runs) and its share links (by token digest, revoked ones as
revoked, so every link keeps opening, or not, as before). Running it again copies
nothing twice: projects are matched by name, keys by id or digest, spans are
idempotent on (project, trace, span), scores on their id, notes on theirs. Copy while
the source takes no more writes (stop its server, or point exporters at the new one
first) to leave nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tqdm import tqdm

from threadline.server.evaluation.model import EvaluatorIn
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


def copy_store(
    source: Store, target: Store, batch_size: int = 2000, progress: bool = True
) -> Copied:
    access = source.dump_access()
    project_ids = target.load_access(access)
    spans = 0
    # Counted, not summed from write_spans: a store that does not read before it writes
    # (ClickHouse) cannot tell which of a batch's spans it had.
    before = target.count_spans()
    with tqdm(total=source.count_spans(), unit="span", desc="spans", disable=not progress) as bar:
        for project_id, batch in source.iter_spans(batch_size):
            target.write_spans(project_ids[project_id], batch)
            spans += len(batch)
            bar.update(len(batch))
    scores = configs = notes = 0
    for project_id, records in source.iter_scores(batch_size):
        target.write_scores(project_ids[project_id], records)
        scores += len(records)
    evaluators = share_links = 0
    for project in access.projects:
        annotations = source.dump_annotations(project.id)
        target.load_annotations(project_ids[project.id], annotations)
        configs += len(annotations.configs)
        notes += len(annotations.notes)
        # Definitions only: runs and totals belong to the store that judged them.
        for evaluator in source.list_evaluators(project.id):
            definition = EvaluatorIn.model_validate(evaluator.model_dump())
            target.put_evaluator(project_ids[project.id], definition)
            evaluators += 1
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
    )
