"""SCALE-Sim .cfg / topology parsing: values, SCALE-Sim's conversions, and every error branch."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelsim.errors import ConfigError
from accelsim.sim.scalesim.io import ScaleSimConfig, read_scalesim_config, read_scalesim_topology

DATA = Path(__file__).parents[1] / "data" / "scalesim"

MIN_CFG = "[architecture_presets]\nArrayHeight: 4\nArrayWidth: 8\nDataflow: ws\n"


def test_example_config_without_layout_and_sparsity_sections() -> None:
    cfg = read_scalesim_config(DATA / "example.cfg")
    assert cfg == ScaleSimConfig(
        run_name="example_32x32_os",
        array_rows=32,
        array_cols=16,
        dataflow="os",
        ifmap_sram_kb=64,
        filter_sram_kb=32,
        ofmap_sram_kb=16,
        interface_bandwidth="USER",
        bandwidth=(10,),
        read_request_buffer=512,
        write_request_buffer=256,
    )


def test_reference_config_is_read_in_full() -> None:
    cfg = read_scalesim_config(DATA / "reference" / "sa12x14_is.cfg")
    assert (cfg.array_rows, cfg.array_cols, cfg.dataflow) == (12, 14, "is")
    assert cfg.interface_bandwidth == "CALC"
    assert cfg.ifmap_sram_kb == cfg.filter_sram_kb == cfg.ofmap_sram_kb == 65536
    assert cfg.sparsity_support is False


def test_minimal_config_takes_scalesim_defaults(tmp_path: Path) -> None:
    p = tmp_path / "m.cfg"
    p.write_text(MIN_CFG + '[network_presets]\nTopologyCsvLoc: "topo/x.csv"\n')
    cfg = read_scalesim_config(p)
    assert (cfg.run_name, cfg.ifmap_sram_kb, cfg.ofmap_sram_kb, cfg.filter_offset) == (
        "scale_run",
        256,
        128,
        10**7,
    )
    assert cfg.topology_path == "topo/x.csv"


def test_conv_topology_converts_like_scalesim() -> None:
    layers = read_scalesim_topology(DATA / "example_conv.csv")
    assert [x.name for x in layers] == ["Conv1", "Conv2", "DPConv3Channel_0", "DPConv3Channel_1"]
    conv1, conv2, dp0, _ = layers
    # patch embedding: 224/16 = 14 -> 196 pixels, window 16*16*3 = 768, 192 filters
    assert conv1.gemm_dims() == (196, 768, 192)
    assert conv1.macs == 196 * 768 * 192
    # ceil((15 - 3 + 2) / 2) = 7 -> 49 pixels; row written without the trailing comma
    assert (conv2.ofmap_h, conv2.ofmap_w, conv2.gemm_dims()) == (7, 7, (49, 36, 10))
    # depthwise: one single-channel layer per channel, ceil(8-3+1)=6 -> 36 pixels, window 9
    assert dp0.gemm_dims() == (36, 9, 4)
    assert dp0.sparsity == (2, 4)
    assert dp0.line == 4


def test_gemm_topology_is_stored_as_scalesim_stores_it() -> None:
    fc1, fc2 = read_scalesim_topology(DATA / "example_gemm.csv")
    # row "fc1, M=197, N=768, K=192" -> IFMAP 197 x 192, filter 1 x 192, 768 filters
    assert (fc1.ifmap_h, fc1.ifmap_w, fc1.filter_h, fc1.filter_w, fc1.channels, fc1.num_filters) == (
        197, 192, 1, 192, 1, 768,
    )  # fmt: skip
    assert fc1.gemm_dims() == (197, 192, 768)
    assert fc2.gemm_dims() == (197, 768, 192)
    assert read_scalesim_topology(DATA / "example_gemm.csv", "gemm") == [fc1, fc2]


def _write(tmp_path: Path, text: str, name: str = "f.cfg") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("ArrayHeight: 4\n", r"f.cfg:1: expected a \[section\] header first"),
        (MIN_CFG + "ArrayWidth: 3\n", r"f.cfg:5: duplicate key 'arraywidth' in \[architecture_presets\]"),
        (MIN_CFG + "[arch]\nx: 1\n", r"unknown section \[arch\]"),
        (MIN_CFG + "ArrayHieght: 4\n", r"f.cfg:5: \[architecture_presets\] unknown key 'arrayhieght'"),
        (
            MIN_CFG.replace("ArrayWidth: 8", "ArrayWidth: eight"),
            r"f.cfg:3: \[architecture_presets\] arraywidth: must be an integer \(got 'eight'\)",
        ),
        (
            MIN_CFG.replace("ArrayWidth: 8", "ArrayWidth: 0"),
            r"arraywidth: must be a positive integer \(got '0'\)",
        ),
        (
            MIN_CFG.replace("ws", "rs"),
            r"f.cfg:4: \[architecture_presets\] dataflow: must be one of os, ws, is \(got 'rs'\)",
        ),
        (MIN_CFG.replace("Dataflow: ws\n", ""), r"missing required key 'dataflow'"),
        (
            MIN_CFG + "[run_presets]\nInterfaceBandwidth: USER\n",
            r"f.cfg:6: InterfaceBandwidth: USER needs \[architecture_presets\] Bandwidth",
        ),
        (MIN_CFG + "[run_presets]\nInterfaceBandwidth: FAST\n", r"interfacebandwidth: must be USER or CALC"),
        (
            MIN_CFG + "[sparsity]\nSparsitySupport: maybe\n",
            r"f.cfg:6: \[sparsity\] sparsitysupport: must be True or False",
        ),
        (MIN_CFG + "Bandwidth: 10, x\n", r"bandwidth: must be an integer \(got '10, x'\)"),
        (MIN_CFG + "this line has no separator\n", r"f.cfg:5: not a 'key: value' line"),
        (MIN_CFG + "[architecture_presets]\n", r"f.cfg:5: duplicate section in \[architecture_presets\]"),
        (MIN_CFG + "[DEFAULT]\nArrayHeight: 4\n", r"unknown section \[DEFAULT\]"),
        (MIN_CFG + ": 4\n", r"f.cfg:5: not a 'key: value' line"),
    ],
)
def test_bad_config(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        read_scalesim_config(_write(tmp_path, text))


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.cfg: cannot read"):
        read_scalesim_config(tmp_path / "nope.cfg")
    with pytest.raises(ConfigError, match=r"nope.csv: cannot read"):
        read_scalesim_topology(tmp_path / "nope.csv")


CONV_HEAD = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
)


@pytest.mark.parametrize(
    ("text", "fmt", "match"),
    [
        ("\n\n", "auto", r"t.csv: empty topology file"),
        (CONV_HEAD, "auto", r"t.csv: topology has a header but no layers"),
        (CONV_HEAD + "c, 8, 8, 3, 3, 4,\n", "auto", r"t.csv:2: conv row needs 8 fields .* \(got 6\)"),
        (
            CONV_HEAD + "c, 8, 8, 3, x, 4, 4, 1,\n",
            "auto",
            r"t.csv:2: Filter Width: must be a positive integer, at most 2147483647 \(got 'x'\)",
        ),
        (
            CONV_HEAD + "c, 8, 8, 3, 3, 0, 4, 1,\n",
            "auto",
            r"t.csv:2: Channels: must be a positive integer, at most 2147483647 \(got '0'\)",
        ),
        (
            CONV_HEAD + "c, 8, 2, 3, 3, 4, 4, 1,\n",
            "auto",
            r"t.csv:2: Filter Width: 3 is larger than the IFMAP's 2",
        ),
        (
            CONV_HEAD + "c, 8, 8, 3, 3, 4, 4, 1, 3:2,\n",
            "auto",
            r"t.csv:2: sparsity: must be 'N:M' with 1 <= N <= M \(got '3:2'\)",
        ),
        ("Layer, M, N, K,\ng, 4, 4,\n", "auto", r"t.csv:2: gemm row needs 4 fields \(name, M, N, K\)"),
        (
            "Layer, M, N, K,\ng, 4, -4, 4,\n",
            "gemm",
            r"t.csv:2: N: must be a positive integer, at most 2147483647 \(got '-4'\)",
        ),
        (
            "Layer, M, N, K,\ng, 4, 4, 4,\n",
            "onnx",
            r"topology format: must be 'conv', 'gemm' or 'auto' \(got 'onnx'\)",
        ),
    ],
)
def test_bad_topology(tmp_path: Path, text: str, fmt: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        read_scalesim_topology(_write(tmp_path, text, "t.csv"), fmt)  # type: ignore[arg-type]


INI_CASES = [
    MIN_CFG,
    "[general]\nrun_name = a b ; not a comment\n\n# comment\n; comment\n[architecture_presets]\nArrayHeight : 4\n",
    "[general]\nrun_name: first\n  continued\n\n  after a blank line\n# a comment line\n  and more\n[x]\nk=v\n",
    "[general]\r\nrun_name: crlf\r\n\r\n[x]\r\n  k : v\r\n  j: w\r\n",
    "  [general]\n  run_name: indented\n    more\n  key2 = value2\n",
    "[a]\nk: v: w = x\nj = v: w\nempty:\n[b]]\nk = v\n[c: v\n[d] trailing]\n[e] x\n",
]


@pytest.mark.parametrize(
    "text", INI_CASES + [p.read_text() for p in sorted((DATA / "reference").glob("*.cfg"))]
)
def test_ini_reading_equals_configparser(text: str) -> None:
    import configparser

    from accelsim.sim.scalesim.io import _parse_ini

    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.read_string(text)
    sections, lines = _parse_ini(text, Path("f.cfg"))
    assert sections == {s: dict(parser.items(s)) for s in parser.sections()}
    numbered = text.split("\n")
    for (section, key), n in lines.items():  # each key's line starts with it
        assert numbered[n - 1].strip().lower().startswith(key), (section, key, n)
