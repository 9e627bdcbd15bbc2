"""A browser's ``scores`` key racing a full key for one score id, on each store,
through the real server: it may replace end users' scores only, so when both writes
are answered 200 the score left is the full key's (written first, the browser's would
have been refused; written last, it replaces the browser's)."""

from __future__ import annotations

import base64
import threading

import httpx
import pytest

pytestmark = pytest.mark.slow


def test_a_scores_key_never_replaces_a_score_written_beside_it(server_on_each_store):
    server = server_on_each_store
    browser_key = server.new_key("scores")
    langfuse = "Basic " + base64.b64encode(f"pk:{browser_key}".encode()).decode()
    replaced = []
    for round_number in range(30):
        score_id = f"race-{round_number}"
        answers: dict[str, int] = {}

        def write(
            who: str,
            round_number: int = round_number,
            score_id: str = score_id,
            answers: dict[str, int] = answers,
        ) -> None:
            score = {"id": score_id, "name": "quality", "value": 0, "session_id": "s"}
            with httpx.Client(base_url=server.base_url, timeout=60) as client:
                if who == "reviewer":
                    score["value"] = 5
                    response = client.post(
                        "/api/v1/scores", json=score, headers=server.http.headers
                    )
                elif round_number % 2:  # the browser through Langfuse's route
                    score["sessionId"] = score.pop("session_id")
                    response = client.post(
                        "/api/public/scores", json=[score], headers={"Authorization": langfuse}
                    )
                    errors = (
                        response.json().get("errors", []) if response.status_code == 207 else []
                    )
                    answers[who] = 403 if errors else response.status_code
                    return
                else:
                    response = client.post(
                        "/api/v1/scores",
                        json=score,
                        headers={"Authorization": f"Bearer {browser_key}"},
                    )
                answers[who] = response.status_code

        threads = [threading.Thread(target=write, args=(who,)) for who in ("reviewer", "browser")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers["reviewer"] == 200, answers
        assert answers["browser"] in (200, 202, 403), answers
        stored = server.get(f"/api/v1/scores/{score_id}")
        if answers["browser"] != 403 and stored["source"] != "api":
            replaced.append(score_id)
    assert replaced == [], f"the browser's key replaced the reviewer's score: {replaced}"
