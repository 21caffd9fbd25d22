"""The storage protocol against a model (#29): any sequence of puts (of new keys, of the same key, whole or as
deltas), deletes and prunes, each with any one of its S3 calls failing, never loses an acknowledged write and
never leaves a key unreadable. Hypothesis drives the sequence (a stateful test) on moto; every operation runs
through a store of its own (nothing cached between them), and the failure is injected into that store's client.

The model: per key, the contents a read may return. An acknowledged put makes it exactly the new contents; a
put that failed leaves it as it was or the new contents (the write may have landed before the failure); a
delete makes it absent (a failed one: absent or as it was). After every step every key must read back as one
of its allowed contents, byte for byte, or be absent only where that is allowed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core import DeltaGliderError, DeltaStore, NotFound, StorageError, StoreConfig
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.interleave import Intercept

KEYS = ("m/app.zip", "m/app.zip", "m/lib.zip", "m/notes.log")  # app twice: the same key, more often
CALLS = ("put_object", "delete_object", "head_object", "copy_object", "get_object", "list_objects_v2")
FAILURES = st.one_of(st.none(), st.sampled_from(CALLS), st.sampled_from(("put_object", "delete_object")))
ABSENT = "absent"
# In `make test`: 40 sequences of up to 10 steps, about 20 s. Longer runs explore further (each run draws new ones):
# DG_MODEL_EXAMPLES=1000 pytest tests/unit/test_protocol_model.py
EXAMPLES, STEPS = int(os.environ.get("DG_MODEL_EXAMPLES", "40")), 10


class Injected(StorageError):
    """The failure this test injects into one S3 call."""


TARGETS = ("any", ".delta", "reference.bin", "whole")  # which object's call fails: any, or the first of a kind


def _failing(client: Any, call: str | None, target: str, nth: int) -> Any:
    """``client``, with the ``nth`` ``call`` on ``target`` objects failing (None: nothing fails). ``whole``: a
    logical key's whole copy (not a delta, reference or internal object)."""
    if call is None:
        return client
    seen = {"n": 0}
    wrapped = Intercept(client)

    def aimed(key: str) -> bool:
        if target == "any":
            return True
        if target == "whole":
            return not key.endswith((".delta", "reference.bin")) and "/.deltaglider/" not in f"/{key}"
        return key.endswith(target)

    def fail(params: dict[str, Any]) -> None:
        if not aimed(str(params.get("Key", params.get("Prefix", "")))):
            return
        seen["n"] += 1
        if seen["n"] == nth:
            raise Injected(f"injected: {call} #{nth} on {target} failed")

    wrapped.before(call, fail, times=None)
    return wrapped


@pytest.mark.usefixtures("moto_s3")
def test_no_sequence_loses_an_acknowledged_write(moto_s3: Any, builds: Any, tmp_path: Path) -> None:
    contents = {i: builds(i).read_bytes() for i in range(4)}
    contents[4] = b"a log line\n" * 500  # not an archive: stored whole
    work = tmp_path / "model"
    work.mkdir()

    class Protocol(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.allowed: dict[str, set[str]] = {key: {ABSENT} for key in KEYS}
            self.prefix = f"run{id(self)}/"

        def _store(self, client: Any, **config: Any) -> DeltaStore:
            return DeltaStore(client, StoreConfig.from_env({}, **config))

        def _key(self, key: str) -> str:
            return self.prefix + key

        def _source(self, version: int) -> Path:
            path = work / f"v{version}"
            path.write_bytes(contents[version])
            return path

        @rule(
            key=st.sampled_from(KEYS), version=st.integers(0, 4), whole=st.booleans(),
            call=FAILURES, aim=st.sampled_from(TARGETS), nth=st.integers(1, 2),
        )  # fmt: skip
        def put(self, key: str, version: int, whole: bool, call: str | None, aim: str, nth: int) -> None:
            digest = hashlib.sha256(contents[version]).hexdigest()
            client = _failing(moto_s3.client, call, aim, nth)
            store = self._store(client, max_ratio=0.0001 if whole else None)
            try:
                store.put(self._source(version), moto_s3.bucket, self._key(key))
            except DeltaGliderError:
                self.allowed[key] = self.allowed[key] | {digest}
            else:
                self.allowed[key] = {digest}
            finally:
                store.close()

        @rule(
            key=st.sampled_from(KEYS), call=FAILURES,
            aim=st.sampled_from(TARGETS), nth=st.integers(1, 2),
        )  # fmt: skip
        def delete(self, key: str, call: str | None, aim: str, nth: int) -> None:
            store = self._store(_failing(moto_s3.client, call, aim, nth))
            try:
                store.delete(moto_s3.bucket, self._key(key))
            except NotFound:
                assert self.allowed[key] >= {ABSENT} or len(self.allowed[key]) > 1, f"{key} vanished"
                self.allowed[key] = {ABSENT}
            except DeltaGliderError:
                self.allowed[key] = self.allowed[key] | {ABSENT}
            else:
                self.allowed[key] = {ABSENT}
            finally:
                store.close()

        @rule(call=FAILURES, aim=st.sampled_from(TARGETS), nth=st.integers(1, 3))
        def prune(self, call: str | None, aim: str, nth: int) -> None:
            store = self._store(_failing(moto_s3.client, call, aim, nth))
            try:
                store.prune(moto_s3.bucket, self.prefix, grace=dt.timedelta(0))
            except DeltaGliderError:
                pass  # a prune that stops half-way must lose nothing either
            finally:
                store.close()

        @invariant()
        def every_key_reads_as_allowed(self) -> None:
            reader = DeltaStore(moto_s3.client)
            try:
                for key, allowed in self.allowed.items():
                    try:
                        got = reader.get(moto_s3.bucket, self._key(key), work / "read")
                    except NotFound:
                        assert ABSENT in allowed, f"{key}: acknowledged, now missing"
                        continue
                    assert got.sha256 in allowed, f"{key}: reads {got.sha256[:12]}, allowed {sorted(allowed)}"
                    assert hashlib.sha256((work / "read").read_bytes()).hexdigest() == got.sha256
                    self.allowed[key] = {got.sha256}  # what it reads now is what it is
            finally:
                reader.close()

    run_state_machine_as_test(
        Protocol,
        settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
