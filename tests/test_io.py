"""accelsim._io: how every input file is read and every output file is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelsim._io import check_outputs, decode, strict_json, write_text_atomic
from accelsim.errors import AccelsimError, ConfigError


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_text_is_decoded_by_its_byte_order_mark(encoding: str) -> None:
    data = "rows: 32 # café\n".encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    assert decode(data, "f.yaml") == "rows: 32 # café\n"


def test_undecodable_bytes_are_our_error_naming_the_file() -> None:
    with pytest.raises(ConfigError, match=r"f\.yaml: not valid UTF-8 text \(byte 0xe9 at offset 3\)"):
        decode("caf\u00e9".encode("latin-1"), "f.yaml", ConfigError)


def test_strict_json_writes_null_for_nan_and_infinity() -> None:
    text = strict_json({"fps": float("inf"), "x": [float("nan"), 1.5], "n": 2})
    assert json.loads(text) == {"fps": None, "x": [None, 1.5], "n": 2}


def test_a_write_cut_short_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")

    def killed(*args: object) -> None:
        raise KeyboardInterrupt  # as Ctrl-C between writing the temporary file and renaming it

    monkeypatch.setattr("accelsim._io.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_an_output_folder_under_a_file_is_refused_and_a_new_one_not_created(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(AccelsimError, match=r"--out .*f/sub: .*f is a file, not a folder"):
        check_outputs({}, folders={"--out": tmp_path / "f" / "sub"})
    check_outputs({}, folders={"--out": tmp_path / "new" / "sub"})  # checked, not made
    assert not (tmp_path / "new").exists()
