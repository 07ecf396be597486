"""Progress bars show on a terminal only, and ``-q`` / ``ACCELSIM_QUIET`` silence them."""

from __future__ import annotations

import io

import pytest

from accelsim import _progress
from accelsim._progress import bar, enabled, progress, set_quiet
from accelsim.cli import main


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _terminal(monkeypatch: pytest.MonkeyPatch) -> _Terminal:
    # called in the test body: pytest's capture swaps sys.stderr back in between fixture and call
    term = _Terminal()
    monkeypatch.setattr("sys.stderr", term)
    monkeypatch.delenv("ACCELSIM_QUIET", raising=False)
    monkeypatch.setattr(_progress, "_quiet", False)
    return term


def test_a_bar_shows_on_a_terminal_and_passes_every_item(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _terminal(monkeypatch)
    assert enabled()
    assert list(progress(range(7), "work", limit=5)) == list(range(7))
    assert "work" in terminal.getvalue() and "/5" in terminal.getvalue()


def test_quiet_and_the_environment_silence_every_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _terminal(monkeypatch)
    set_quiet(True)
    assert list(progress(range(3), "work")) == [0, 1, 2]
    with bar(3, "steps") as b:
        b.update(3)
    assert terminal.getvalue() == ""
    set_quiet(False)
    monkeypatch.setenv("ACCELSIM_QUIET", "1")
    assert not enabled()


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    captured = io.StringIO()
    monkeypatch.setattr("sys.stderr", captured)
    monkeypatch.setattr(_progress, "_quiet", False)
    assert not enabled()
    assert list(progress(range(3), "work")) == [0, 1, 2]
    assert captured.getvalue() == ""


def test_the_cli_quiet_flag_reaches_the_bars(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from accelsim.ir.builders import vit_graph

    _terminal(monkeypatch)
    path = tmp_path / "g.json"
    vit_graph("tiny").save(str(path))
    assert main(["-q", "simulate", str(path)]) == 0
    assert not enabled()
    set_quiet(False)
    assert main(["simulate", str(path), "--quiet"]) == 0  # after the command too
    assert not enabled()
    assert main(["simulate", str(path)]) == 0
    assert enabled()
