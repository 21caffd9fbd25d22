from __future__ import annotations

from deltaglider_core.policy import (
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
