from __future__ import annotations

from deltaglider_core.storage.policy import (
    DEFAULT_DELTA_EXTENSIONS,
    BaseHistory,
    delta_is_poor,
    is_delta_eligible,
    normalise_extensions,
    should_rebase,
)


def test_archive_extensions() -> None:
    for name in ("a.zip", "A.ZIP", "b.tar.gz", "c.whl", "d.nupkg", "e.msi", "f.jar", "g.tar.xz"):
        assert is_delta_eligible(name, DEFAULT_DELTA_EXTENSIONS), name
    for name in ("notes.txt", "image.png", "zip", "a.zip.sig"):
        assert not is_delta_eligible(name, DEFAULT_DELTA_EXTENSIONS), name
    assert is_delta_eligible("x.bin", normalise_extensions(["bin"]))


def test_max_ratio_rule() -> None:
    assert not delta_is_poor(50, 100, 0.5)
    assert delta_is_poor(51, 100, 0.5)
    assert not delta_is_poor(0, 0, 0.5)


def test_rent_or_buy() -> None:
    # no history: the first delta against a reference never re-bases
    assert not should_rebase(BaseHistory(()), 900, 1000)
    # steady small deltas pay no rent
    assert not should_rebase(BaseHistory((30,) * 50), 30, 1000)
    # drifting deltas: rent 0+30+60+...; re-base once it reaches 1.25 x (file - delta)
    drift = tuple(30 * i for i in range(1, 9))  # 30..240, rent so far 840
    assert not should_rebase(BaseHistory(drift[:6]), 210, 1000)  # rent 450+180=630 < 1.25*790
    assert not should_rebase(BaseHistory(drift[:7]), 240, 1000)  # rent 630+210=840 < 1.25*760=950
    assert should_rebase(BaseHistory(drift), 270, 1000)  # rent 840+240=1080 >= 1.25*730=912.5


def test_progress_lines() -> None:
    import logging

    from deltaglider_core.support.progress import Progress

    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    log = logging.getLogger("test-progress")
    log.addHandler(Capture())
    log.setLevel(logging.INFO)
    known = Progress("upload", 4, 4 << 20, log, interval=0.0)
    known.advance(1, 1 << 20)
    assert lines[-1].startswith("upload: 1/4 objects, 1.0 MiB/4.0 MiB, ") and "ETA" in lines[-1]
    unknown = Progress("stats", 0, None, log, interval=0.0)
    unknown.advance(1000)
    unknown.finish()
    assert lines[-1].startswith("stats: 1000 objects, 0 B, ") and lines[-1].endswith("ETA ? (done)")
