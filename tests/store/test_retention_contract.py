"""The retention part of the storage contract, on every backend: which traces have
expired, a retention pass leaving exactly the store that the traces it keeps alone
would have made (partly expired sessions included), and each project's own data rules
(retention days, redaction rules) kept and read back."""

from __future__ import annotations

from tests.store import test_contract
from tests.store.test_contract import MS, T0
from tests.store.test_deletion_contract import DAY, fill, reference, snapshot, spans, tid
from threadline.server.model import TraceQuery
from threadline.server.redaction.rules import NO_RULES, parse
from threadline.server.retention import RetentionService
from threadline.server.store import Store

backend = test_contract.backend
store = test_contract.store

# Trace ends in the data set of test_deletion_contract: 1 at 50 ms, 2 at 150, 3 at 250,
# 4 at 350, 5 at 450, 6 at 550 (s1 holds 1-3, s2 holds 4-5).


def _pass(store: Store, default_days: int, now_ns: int) -> RetentionService:
    service = RetentionService(store, default_days, clock_ns=lambda: now_ns)
    service.run_pass()
    return service


def test_expired_traces_are_the_oldest_first_and_per_project(store: Store):
    project, other = store.create_project("p").id, store.create_project("q").id
    store.write_spans(project, spans())
    store.write_spans(other, spans())
    assert store.expired_traces(project, T0 + 260 * MS, 10) == [tid(1), tid(2), tid(3)]
    assert store.expired_traces(project, T0 + 260 * MS, 2) == [tid(1), tid(2)]
    assert store.expired_traces(project, T0 + 50 * MS, 10) == []  # ends exactly then: kept
    store.delete_traces(other, [tid(1), tid(2), tid(3)])
    assert store.expired_traces(other, T0 + 260 * MS, 10) == []
    assert store.expired_traces(project, T0 + 260 * MS, 10) == [tid(1), tid(2), tid(3)]


def test_a_retention_pass_leaves_what_the_kept_traces_alone_would(store: Store, backend, tmp_path):
    project = store.create_project("p").id
    fill(store, project)  # spans, scores (on sessions, traces, a span) and notes
    # One day of retention, a day and 175 ms after T0: traces 1 and 2 ended too long ago.
    # Session s1 is partly expired (it keeps trace 3); its totals come from trace 3 alone.
    service = _pass(store, 1, T0 + DAY + 175 * MS)
    assert service.deleted_traces == 2
    after = snapshot(store, project)
    assert after == reference(
        backend, tmp_path, lambda trace, session: trace not in (tid(1), tid(2))
    )
    s1 = next(s for s in after["sessions"] if s["session_id"] == "s1")
    assert s1["trace_count"] == 1 and s1["error_count"] == 0
    # A second pass at the same time finds nothing more.
    assert _pass(store, 1, T0 + DAY + 175 * MS).deleted_traces == 0


def test_a_projects_own_retention_wins_over_the_servers(store: Store):
    keep, short, default = (store.create_project(n).id for n in ("keep", "short", "default"))
    for project in (keep, short, default):
        store.write_spans(project, spans())
    store.set_retention_days(keep, 0)  # forever, whatever the server says
    store.set_retention_days(short, 1)
    assert store.retention_overrides() == {keep: 0, short: 1}
    # The server keeps 3 days; now is two days after every trace ended.
    _pass(store, 3, T0 + 2 * DAY + 600 * MS)
    assert len(store.list_traces(keep, TraceQuery(limit=50)).items) == 6
    assert store.list_traces(short, TraceQuery(limit=50)).items == []
    assert len(store.list_traces(default, TraceQuery(limit=50)).items) == 6
    store.set_retention_days(short, None)  # back to the server's
    assert store.retention_overrides() == {keep: 0}


def test_redaction_rules_are_kept_per_project(store: Store):
    project, other = store.create_project("p").id, store.create_project("q").id
    assert store.redaction_rules(project) == NO_RULES
    rules = parse(["email", "card"], [("ticket", r"TCK-\d+")])
    store.set_redaction_rules(project, rules)
    assert store.redaction_rules(project) == rules
    assert store.redaction_rules(other) == NO_RULES
    newer = parse(["phone"], [])
    store.set_redaction_rules(project, newer)
    assert store.redaction_rules(project) == newer
    store.set_redaction_rules(project, NO_RULES)
    assert store.redaction_rules(project) == NO_RULES
