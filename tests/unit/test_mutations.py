"""The mutation check's list stays applicable: every snippet occurs once, every named test exists.

The check itself (``make mutate``) runs outside ``make test``; this keeps its list from rotting when the
code it breaks is rewritten (a mutation that no longer applies would otherwise guard nothing).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.mutations import MUTATIONS, Mutation

ROOT = Path(__file__).resolve().parents[2]


def test_names_are_unique_and_areas_cover_the_round() -> None:
    names = [m.name for m in MUTATIONS]
    assert len(names) == len(set(names))
    assert {"reads", "writes", "config", "paths", "sync", "releases", "sensor", "transport"} <= {
        m.area for m in MUTATIONS
    }


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_mutation_applies_and_names_real_tests(mutation: Mutation) -> None:
    source = (ROOT / mutation.path).read_text()
    assert source.count(mutation.old) == 1, f"{mutation.name}: snippet must occur exactly once in {mutation.path}"
    assert mutation.old != mutation.new
    for test in mutation.tests:
        path, _, name = test.partition("::")
        assert (ROOT / path).is_file(), f"{mutation.name}: no test file {test}"
        if name:  # a named test must still exist, or the mutation runs nothing
            assert f"def {name.split('[')[0]}(" in (ROOT / path).read_text(), f"{mutation.name}: no test {test}"
