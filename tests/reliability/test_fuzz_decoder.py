"""A short run of ``bench/fuzz_decoder.py``'s seeded mutation fuzzer in CI: the longer
runs (tens of thousands of cases, or atheris) are in the script itself."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from threadline.server.ingest.decode import decode_request

_PATH = Path(__file__).resolve().parents[2] / "bench" / "fuzz_decoder.py"
_spec = importlib.util.spec_from_file_location("fuzz_decoder", _PATH)
fuzz_decoder = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz_decoder)


def test_seeds_are_valid_otlp():
    for case in fuzz_decoder.seed_corpus():
        fuzz_decoder.run_case(case)
        assert case[0] in range(6)


@pytest.mark.parametrize("seed", [1, 2026])
def test_mutated_bodies_raise_only_threadline_errors(seed):
    tally = fuzz_decoder.fuzz_mutations(400, seed)
    assert tally.cases == 400
    assert not tally.failures, dict(tally.failures)


def test_field_name_with_a_lone_surrogate_is_a_bad_request():
    """Found by the fuzzer: upb raised SystemError (a 500) for such a name."""
    from threadline.server.errors import BadRequest

    with pytest.raises(BadRequest):
        decode_request(b'{"resourceSpans": [{"\\ud800": 1}]}', "application/json")
