"""An evaluator's definition checked before it is stored (the API, the web UI and the
CLI apply the same rules)."""

from __future__ import annotations

from threadline.server import scoring
from threadline.server.errors import BadRequest, Conflict
from threadline.server.evaluation.key_urls import KeyUrls
from threadline.server.evaluation.model import EvaluatorIn
from threadline.server.score_types import name_types
from threadline.server.store import Store


def check_evaluator(
    store: Store, project_id: int, evaluator: EvaluatorIn, key_urls: KeyUrls
) -> EvaluatorIn:
    """A definition that can work, or ``BadRequest`` saying why not (a key variable
    bound to other URLs than its judge's among them); ``Conflict`` when its score's name
    holds values of another type, which every run would fail to write."""
    scoring.check_config(evaluator.score)
    configs = {c.name: c for c in store.list_score_configs(project_id)}
    configured = configs.get(evaluator.score.name)
    if configured is not None and configured.data_type != evaluator.score.data_type:
        raise BadRequest(
            f"score {evaluator.score.name!r} is configured as {configured.data_type},"
            f" not {evaluator.score.data_type}"
        )
    held = name_types(store, project_id, configs).held(evaluator.score.name)
    if held is not None and held != evaluator.score.data_type:
        raise Conflict(
            f"score {evaluator.score.name!r} holds {held} values: an evaluator writing"
            f" {evaluator.score.data_type} ones would fail every run (name another score)"
        )
    url = evaluator.judge.base_url
    if url.scheme not in ("http", "https"):
        raise BadRequest("the judge's base_url must be http or https")
    # The judge is called at base_url + "/chat/completions": a query or fragment would
    # end up before that path or be dropped, and a user:password would be a secret
    # stored in the definition (listed to every full key) and sent to the judge.
    if url.username is not None or url.password is not None:
        raise BadRequest(
            "the judge's base_url must hold no user or password: name the environment"
            " variable holding the judge's key in api_key_env"
        )
    if url.query is not None or url.fragment is not None:
        raise BadRequest("the judge's base_url must have no query (?...) nor fragment (#...)")
    if evaluator.judge.api_key_env:
        refusal = key_urls.refusal(evaluator.judge.api_key_env, str(evaluator.judge.base_url))
        if refusal is not None:
            raise BadRequest(refusal)
    return evaluator
