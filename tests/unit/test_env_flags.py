"""Every ``DG_*`` switch is read one way (as the connection's boolean extras are): before, ``DG_FAST_TRANSPORT``
took only ``0`` as off (``false`` left the fast transport on) and ``DG_DELTAGLIDER_COMPATIBLE=on`` meant off."""

from __future__ import annotations

import pytest
from deltaglider_core import DeltaGliderError, StoreConfig
from deltaglider_core.ops import ec2
from deltaglider_core.support.env import env_flag, parse_flag
from deltaglider_core.transport import fast_http

TRUE = ["true", "TRUE", " True ", "1", "yes", "Yes", "on", "ON"]
FALSE = ["false", "False", "0", "no", "NO", "off", " Off"]


@pytest.mark.parametrize("word", TRUE)
def test_true_words(word: str) -> None:
    assert parse_flag(word) is True
    assert env_flag("DG_X", False, {"DG_X": word}) is True
    assert StoreConfig.from_env({"DG_DELTAGLIDER_COMPATIBLE": word}).deltaglider_compatible is True


@pytest.mark.parametrize("word", FALSE)
def test_false_words(word: str) -> None:
    assert parse_flag(word) is False
    assert env_flag("DG_X", True, {"DG_X": word}) is False
    assert StoreConfig.from_env({"DG_DELTAGLIDER_COMPATIBLE": word}).deltaglider_compatible is False


def test_unset_or_empty_gives_the_default() -> None:
    for env in ({}, {"DG_X": ""}, {"DG_X": "  "}):
        assert env_flag("DG_X", True, env) is True
        assert env_flag("DG_X", False, env) is False


@pytest.mark.parametrize("word", ["nope", "tru", "2", "enabled"])
def test_anything_else_is_refused_naming_the_variable(word: str) -> None:
    assert parse_flag(word) is None
    with pytest.raises(DeltaGliderError, match=rf"DG_DELTAGLIDER_COMPATIBLE='{word}' is not a boolean"):
        StoreConfig.from_env({"DG_DELTAGLIDER_COMPATIBLE": word})


@pytest.mark.parametrize(
    ("transport", "head", "off"),
    [(None, None, False), ("0", None, True), ("false", None, True), ("off", None, True), ("no", None, True),
     ("true", None, False), ("1", None, False), (None, "0", True), (None, "false", True), ("on", "off", True)],
)  # fmt: skip
def test_fast_transport_switch(monkeypatch: pytest.MonkeyPatch, transport: str | None, head: str | None,
                               off: bool) -> None:  # fmt: skip
    for name, value in (("DG_FAST_TRANSPORT", transport), ("DG_FAST_HEAD", head)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert fast_http.switched_off() is off


def test_fast_transport_typo_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DG_FAST_TRANSPORT", "disabled")
    with pytest.raises(DeltaGliderError, match="DG_FAST_TRANSPORT='disabled' is not a boolean"):
        fast_http.switched_off()


def test_ec2_detection_switches() -> None:
    assert ec2._disabled({"DG_DISABLE_EC2_DETECTION": "on"}) is True
    assert ec2._disabled({"DG_DISABLE_EC2_DETECTION": "off"}) is False
    assert ec2._disabled({"AWS_EC2_METADATA_DISABLED": "True"}) is True
    # botocore's own variable: not ours to refuse, and botocore reads anything but a true word as "enabled"
    assert ec2._disabled({"AWS_EC2_METADATA_DISABLED": "maybe"}) is False
    with pytest.raises(DeltaGliderError, match="DG_DISABLE_EC2_DETECTION='maybe' is not a boolean"):
        ec2._disabled({"DG_DISABLE_EC2_DETECTION": "maybe"})
