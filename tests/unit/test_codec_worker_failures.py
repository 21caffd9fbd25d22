"""Codec worker processes that fail (issue #28, finding 5): a worker that answers garbage, dies, or stops
answering is a dead worker. Only that worker is replaced, a call running on another worker goes on, nothing is
run again in the task process, and no wait is unbounded. The workers here are small scripts with the real
worker's protocol (one JSON request line in, one answer line out) that misbehave on request."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from deltaglider_core.codec import pool
from deltaglider_core.codec.pool import ProcessRunner, WorkerDied

from tests.codec_workers import alive, pyxdelta_library

FAKE = """
import json, os, sys, time
for line in sys.stdin:
    ident, args = json.loads(line)
    if "garbage" in args:
        print("<html>not a result</html>", flush=True)
    elif "die" in args:
        os._exit(3)
    elif "hang" in args:
        time.sleep(3600)
    elif "half" in args:
        sys.stdout.write('[%d, 0, "hal' % ident)
        sys.stdout.flush()
        time.sleep(3600)
    elif "twice" in args:
        print(json.dumps([ident, 0, "first"]), flush=True)
        print(json.dumps([ident, 0, "second"]), flush=True)
    elif "slow" in args:
        time.sleep(1.5)
        print(json.dumps([ident, 0, "slow"]), flush=True)
    else:
        print(json.dumps([ident, 0, "ok %d" % os.getpid()]), flush=True)
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE)
    monkeypatch.setattr(pool, "worker_command", lambda _library: [sys.executable, str(script)])
    made = ProcessRunner(pyxdelta_library(), workers=2, budget=1 << 40)
    local: list[list[str]] = []
    monkeypatch.setattr(made._local, "run", lambda args: local.append(args) or (0, "local"))
    monkeypatch.setattr(made._local, "try_run", lambda args: local.append(args) or (0, "local"))
    made.warm()  # every call in a worker process
    made.local_calls = local
    yield made
    made.close()


def _soon(fn: Any, *args: Any) -> Any:
    """Run ``fn`` and fail (instead of hanging the suite) if it does not return within 20 s: on a daemon thread,
    so a call that never returns cannot hold the test up either."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test below
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    if thread.is_alive():
        pytest.fail(f"{fn.__name__}{args} did not return within 20 s")
    if "error" in box:
        raise box["error"]
    return box["result"]


def test_an_answer_that_is_not_a_result_is_a_dead_worker_and_frees_its_slot(runner: Any) -> None:
    with pytest.raises(WorkerDied, match="answered .*not a result.* stopped"):
        _soon(runner.run, ["-e", "garbage"])
    assert _soon(runner.run, ["-e"])[1].startswith("ok")
    assert _soon(runner.run, ["-e"])[1].startswith("ok")  # both slots serve again
    assert runner.local_calls == []


def test_a_dying_worker_is_replaced_alone_and_its_call_is_not_replayed_here(runner: Any) -> None:
    before = set(runner.worker_pids)
    assert len(before) == 2
    slow: dict[str, Any] = {}
    started = threading.Event()

    def slow_call() -> None:
        started.set()
        slow["result"] = runner.run(["-e", "slow"])

    thread = threading.Thread(target=slow_call)
    thread.start()
    started.wait()
    with pytest.raises(WorkerDied, match="ended with exit status 3"):
        _soon(runner.run, ["-e", "die"])
    thread.join(20)
    assert slow["result"] == (0, "slow")  # the other worker's call was not cut short
    assert len(set(runner.worker_pids) & before) == 1  # the survivor is still there
    assert runner.local_calls == []  # nothing ran in the task process
    assert _soon(runner.run, ["-e"])[1].startswith("ok")


def test_a_worker_that_does_not_answer_is_stopped_after_the_call_timeout(
    runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "CALL_TIMEOUT_S", 1.0)
    before = set(runner.worker_pids)
    with pytest.raises(WorkerDied, match="did not answer within 1 s and was stopped"):
        _soon(runner.run, ["-e", "hang"])
    gone = before - set(runner.worker_pids)
    assert len(gone) == 1 and not any(alive(pid) for pid in gone)
    assert runner.local_calls == []


def test_a_read_through_a_dead_worker_names_the_worker_not_a_corrupt_delta(
    moto_s3: Any, builds: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deltaglider_core import DeltaStore

    store = DeltaStore(moto_s3.client)
    store.put(builds(0), moto_s3.bucket, "rel/app-1.0.0.zip")
    store.put(builds(1), moto_s3.bucket, "rel/app-1.0.1.zip")
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE.replace('"die" in args', '"-d" in args'))
    monkeypatch.setattr(pool, "worker_command", lambda _library: [sys.executable, str(script)])
    reader = DeltaStore(moto_s3.client)
    if not isinstance(getattr(reader.codec, "runner", None), ProcessRunner):
        pytest.skip("one core: the store runs no codec worker processes")
    try:
        reader.warm_up()  # every call in a worker process, as in a multi-file download
        with pytest.raises(WorkerDied, match="ended with exit status 3"):
            reader.get(moto_s3.bucket, "rel/app-1.0.1.zip", tmp_path / "out.zip")
        assert list(tmp_path.glob("*out.zip*")) == []
    finally:
        reader.close()
        store.close()


def test_a_partial_line_then_silence_is_stopped_at_the_deadline(runner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by an outside probe: the answer's first bytes came, then nothing, and the call waited forever."""
    monkeypatch.setattr(pool, "CALL_TIMEOUT_S", 1.0)
    with pytest.raises(WorkerDied, match="did not answer within 1 s"):
        _soon(runner.run, ["-e", "half"])
    assert _soon(runner.run, ["-e"])[1].startswith("ok")


def test_answers_never_slip_out_of_step(runner: Any) -> None:
    """Found by an outside probe: a worker writing two lines per call made each later call take the previous
    call's spare line as its own answer."""
    results: list[Any] = []
    for _ in range(6):
        try:
            results.append(_soon(runner.run, ["-e", "twice"]))
        except WorkerDied as exc:
            results.append(str(exc))
    answers = [r for r in results if not isinstance(r, str)]
    assert all(a == (0, "first") for a in answers), results  # never another call's answer ("second")
    assert len(answers) < len(results)  # the spare line is caught: that worker is replaced
    assert all(
        "more than one line" in r or "call 1, not 2" in r or "not a result" in r for r in results if isinstance(r, str)
    )
    # Each of the two workers may still hold one spare line: its next call stops it, and then the pool serves.
    served = []
    for _ in range(3):
        try:
            served.append(_soon(runner.run, ["-e"]))
        except WorkerDied as exc:
            assert "not a result" in str(exc) or "more than one line" in str(exc)
    assert served and all(result[1].startswith("ok") for result in served)
