"""The share-link part of the storage contract, on every backend: links stored by
their token's digest, listed per project, revoked once."""

from __future__ import annotations

from tests.store import test_contract
from threadline.server.store import Store
from threadline.server.store.base import StoredShare

backend = test_contract.backend
store = test_contract.store


def share(project: int, n: int, **changes) -> StoredShare:
    fields = {
        "id": f"link-{n}",
        "project_id": project,
        "token_hash": bytes([n]) * 32,
        "kind": "session",
        "target_id": f"s-{n}",
        "created_ns": 1_000 + n,
        "expires_ns": 10**19 // 2,
        "revoked_ns": None,
        "hide_io": bool(n % 2),
        "hide_metadata": ("secret", "email") if n == 2 else (),
    }
    return StoredShare(**{**fields, **changes})


def test_share_links(store: Store):
    a = store.create_project("a").id
    b = store.create_project("b").id
    for n in (1, 2):
        store.add_share(share(a, n))
    store.add_share(share(b, 3, kind="trace"))
    assert [s.id for s in store.list_shares(a)] == ["link-2", "link-1"]
    assert store.list_shares(a)[0] == share(a, 2)
    assert store.share_by_token_hash(bytes([3]) * 32) == share(b, 3, kind="trace")
    assert store.share_by_token_hash(bytes([9]) * 32) is None
    # Only its own project revokes a link, and only once.
    assert not store.revoke_share(b, "link-1")
    assert store.revoke_share(a, "link-1")
    assert not store.revoke_share(a, "link-1")
    revoked = store.share_by_token_hash(bytes([1]) * 32)
    assert revoked is not None and revoked.revoked_ns is not None
    assert store.list_shares(a)[1].revoked_ns == revoked.revoked_ns
    assert store.share_by_token_hash(bytes([2]) * 32).revoked_ns is None


def test_share_links_come_in_pages_newest_first(store: Store):
    """A page of links is the next ``limit`` after a (created_ns, id) keyset, ties on the
    creation time broken by id, revoked links in their place."""
    a = store.create_project("a").id
    b = store.create_project("b").id
    for n in range(1, 8):
        # 4 and 5 made in the same nanosecond: the id orders them.
        store.add_share(share(a, n, created_ns=1_004 if n == 5 else 1_000 + n))
    store.add_share(share(b, 9))
    assert store.revoke_share(a, "link-3")
    whole = [s.id for s in store.list_shares(a)]
    assert whole == ["link-7", "link-6", "link-5", "link-4", "link-3", "link-2", "link-1"]
    pages, after = [], None
    while True:
        found = store.list_shares(a, limit=3, after=after)
        if not found:
            break
        assert len(found) <= 3
        pages.append([s.id for s in found])
        after = (found[-1].created_ns, found[-1].id)
    assert pages == [["link-7", "link-6", "link-5"], ["link-4", "link-3", "link-2"], ["link-1"]]
    assert store.list_shares(a, limit=2, after=(1_004, "link-5"))[0].id == "link-4"
    third = store.list_shares(a, limit=1, after=(1_004, "link-4"))
    assert [s.id for s in third] == ["link-3"] and third[0].revoked_ns is not None
