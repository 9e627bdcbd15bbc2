"""Score comments and notes redacted by the project's rules as each store keeps them
(``redaction/annotations.py`` runs above the stores, with the rules a store keeps), on
every backend: what is read back is the redacted text, in the project with rules only."""

from __future__ import annotations

from tests.store import test_contract
from tests.store.test_deletion_contract import score
from threadline.server.model import NoteIn, ScoreQuery
from threadline.server.redaction import rules as redaction_rules
from threadline.server.redaction.annotations import redact_note, redact_scores
from threadline.server.store import Store

backend = test_contract.backend
store = test_contract.store

TEXT = "write to jane@example.com about TCK-42"


def test_comments_and_notes_are_stored_redacted(store: Store) -> None:
    a, b = store.create_project("a").id, store.create_project("b").id
    store.set_redaction_rules(a, redaction_rules.parse(["email"], [("ticket", r"TCK-\d+")]))
    for project in (a, b):
        rules = store.redaction_rules(project)
        record = score("c1", "quality", 3, "s1")
        record.comment = TEXT
        store.write_scores(project, redact_scores([record], rules))
        store.add_note(project, redact_note(NoteIn(session_id="s1", body=TEXT), rules))
    expected = {a: "write to [email] about [ticket]", b: TEXT}
    for project, text in expected.items():
        (stored,) = store.list_scores(project, ScoreQuery(limit=10)).items
        assert stored.comment == text
        assert [n.body for n in store.list_notes(project, "s1")] == [text]
