"""Read SCALE-Sim v3 input files: the ``.cfg`` architecture config and the topology ``.csv``.

Formats as SCALE-Sim 3.0.0 (PyPI ``scalesim``) reads them (``scalesim/scale_config.py
read_conf_file`` and ``scalesim/topology_utils.py load_arrays_{conv,gemm}``), with these deliberate
differences, all towards failing loudly instead of simulating something else:

- A malformed file is a :class:`~accelsim.errors.ConfigError` naming the file, the line and the
  field (SCALE-Sim prints a warning for an invalid dataflow and goes on, or raises a bare
  ``ValueError``/``AssertionError``).
- Unknown sections or keys are errors (a typo must not silently fall back to a default).
- Keys SCALE-Sim 3.0.0 requires but that do not change the compute model (offsets, request buffers,
  ``[layout]``, ``[sparsity]``, ``UseRamulatorTrace``) may be omitted; they then take the defaults of
  SCALE-Sim's ``scale_config.__init__``. The official ``configs/scale.cfg`` of the v3 repository
  lacks ``[layout]`` and ``[sparsity]`` and so crashes 3.0.0; it loads here.
- A topology row's trailing comma is optional (SCALE-Sim drops the last comma-separated field, so
  without it the stride would be lost).

Topology formats (first line is a header):

- conv: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
  Strides[, N:M sparsity],``. A layer whose name contains ``DP`` (depthwise) becomes ``Channels``
  single-channel layers named ``<name>Channel_<i>``, as SCALE-Sim does.
- gemm (SCALE-Sim's ``-i gemm``): ``Layer, M, N, K[, N:M],`` with ``M`` output rows, ``N`` output
  columns (filters), ``K`` the reduction. SCALE-Sim stores it as a conv layer with IFMAP ``M x K``,
  a ``1 x K`` filter, 1 channel, ``N`` filters and stride 1; so do we.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from accelsim._io import read_text
from accelsim.errors import ConfigError
from accelsim.ir.graph import MAX_DIM

TopologyFormat = Literal["conv", "gemm", "auto"]


@dataclass(frozen=True)
class ScaleSimConfig:
    """A SCALE-Sim architecture config (``.cfg``). Sizes in KiB, bandwidth in words per cycle."""

    run_name: str
    array_rows: int
    array_cols: int
    dataflow: Literal["os", "ws", "is"]
    ifmap_sram_kb: int = 256
    filter_sram_kb: int = 256
    ofmap_sram_kb: int = 128
    ifmap_offset: int = 0
    filter_offset: int = 10_000_000
    ofmap_offset: int = 20_000_000
    #: ``"USER"``: ``bandwidth`` is the DRAM interface bandwidth; ``"CALC"``: SCALE-Sim computes
    #: the bandwidth that makes the run stall-free (what "unconstrained memory" means here).
    interface_bandwidth: Literal["USER", "CALC"] = "CALC"
    bandwidth: tuple[int, ...] = ()
    read_request_buffer: int = 60
    write_request_buffer: int = 60
    use_ramulator_trace: bool = False
    sparsity_support: bool = False
    topology_path: str | None = None


@dataclass(frozen=True)
class ScaleSimLayer:
    """One layer of a SCALE-Sim topology, in SCALE-Sim's conv terms (GEMM rows converted as it does).

    Attributes:
        line: 1-based line of the topology file the layer came from (for error messages).
        sparsity: ``(N, M)`` of an ``N:M`` structured-sparsity ratio; ``(1, 1)`` is dense.
    """

    name: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filters: int
    stride_h: int
    stride_w: int
    sparsity: tuple[int, int] = (1, 1)
    line: int = 0

    @property
    def ofmap_h(self) -> int:
        """Output height, ``ceil((ifmap_h - filter_h + stride_h) / stride_h)`` (no padding)."""
        return math.ceil((self.ifmap_h - self.filter_h + self.stride_h) / self.stride_h)

    @property
    def ofmap_w(self) -> int:
        """Output width, as :attr:`ofmap_h`."""
        return math.ceil((self.ifmap_w - self.filter_w + self.stride_w) / self.stride_w)

    def gemm_dims(self) -> tuple[int, int, int]:
        """``(M, K, N)`` of the im2col GEMM exactly as SCALE-Sim builds its operand matrices.

        ``M`` = output pixels of one filter, ``K`` = window ``filter_h*filter_w*channels``,
        ``N`` = filters (``scalesim/compute/operand_matrix.py``; batch 1).
        """
        return (
            self.ofmap_h * self.ofmap_w,
            self.filter_h * self.filter_w * self.channels,
            self.num_filters,
        )

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the layer (dense)."""
        m, k, n = self.gemm_dims()
        return m * k * n


# --------------------------------------------------------------------------------------------- cfg

_BOOL = {
    "1": True,
    "yes": True,
    "true": True,
    "on": True,
    "0": False,
    "no": False,
    "false": False,
    "off": False,
}
_DATAFLOWS = ("os", "ws", "is")

# section -> {lower-case key: (ScaleSimConfig field or None if read but unused, parser)}
_Parser = Callable[[str], object]


def _pos_int(v: str) -> int:
    x = int(v)
    if x < 1:
        raise ValueError("must be a positive integer")
    return x


def _nonneg_int(v: str) -> int:
    x = int(v)
    if x < 0:
        raise ValueError("must be a non-negative integer")
    return x


def _boolean(v: str) -> bool:
    try:
        return _BOOL[v.lower()]
    except KeyError:
        raise ValueError("must be True or False") from None


def _dataflow(v: str) -> str:
    if v not in _DATAFLOWS:
        raise ValueError("must be one of os, ws, is")
    return v


def _bw_mode(v: str) -> str:
    if v not in ("USER", "CALC"):
        raise ValueError("must be USER or CALC")
    return v


def _bandwidths(v: str) -> tuple[int, ...]:
    return tuple(_pos_int(x.strip()) for x in v.split(","))


def _text(v: str) -> str:
    return v


def _quoted_path(v: str) -> str:
    # SCALE-Sim writes TopologyCsvLoc: "path" and takes what is between the quotes
    return v.split('"')[1] if v.count('"') >= 2 else v


_CFG_KEYS: dict[str, dict[str, tuple[str | None, _Parser]]] = {
    "general": {"run_name": ("run_name", _text)},
    "architecture_presets": {
        "arrayheight": ("array_rows", _pos_int),
        "arraywidth": ("array_cols", _pos_int),
        "ifmapsramszkb": ("ifmap_sram_kb", _pos_int),
        "filtersramszkb": ("filter_sram_kb", _pos_int),
        "ofmapsramszkb": ("ofmap_sram_kb", _pos_int),
        "ifmapoffset": ("ifmap_offset", _nonneg_int),
        "filteroffset": ("filter_offset", _nonneg_int),
        "ofmapoffset": ("ofmap_offset", _nonneg_int),
        "dataflow": ("dataflow", _dataflow),
        "bandwidth": ("bandwidth", _bandwidths),
        "readrequestbuffer": ("read_request_buffer", _pos_int),
        "writerequestbuffer": ("write_request_buffer", _pos_int),
        "memorybanks": (None, _pos_int),  # in v3 repo configs; 3.0.0 does not read it
    },
    "run_presets": {
        "interfacebandwidth": ("interface_bandwidth", _bw_mode),
        "useramulatortrace": ("use_ramulator_trace", _boolean),
    },
    "network_presets": {"topologycsvloc": ("topology_path", _quoted_path), "layoutcsvloc": (None, _text)},
    "layout": {
        "ifmapcustomlayout": (None, _boolean),
        "filtercustomlayout": (None, _boolean),
        "ifmapsrambankbandwidth": (None, _pos_int),
        "ifmapsrambanknum": (None, _pos_int),
        "ifmapsrambankport": (None, _pos_int),
        "filtersrambankbandwidth": (None, _pos_int),
        "filtersrambanknum": (None, _pos_int),
        "filtersrambankport": (None, _pos_int),
        "onchipmemorybanks": (None, _pos_int),
        "onchipmemorybankports": (None, _pos_int),
    },
    "sparsity": {
        "sparsitysupport": ("sparsity_support", _boolean),
        "sparserep": (None, _text),
        "optimizedmapping": (None, _boolean),
        "blocksize": (None, _pos_int),
        "randomnumbergeneratorseed": (None, _nonneg_int),
        "nonzeroelems": (None, _pos_int),
    },
}
_REQUIRED = {("architecture_presets", "arrayheight"), ("architecture_presets", "arraywidth"),
             ("architecture_presets", "dataflow")}  # fmt: skip


def _parse_ini(text: str, path: Path) -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], int]]:
    """``({section: {lower-case key: value}}, {(section, key): 1-based line})`` of ``text``, read
    as ``configparser.ConfigParser(interpolation=None, strict=True)`` reads it (``#``/``;`` comment
    lines, ``=`` or ``:``, indented continuation lines, duplicates an error), in one pass: that
    parser costs a short file a few hundred microseconds, which a SCALE-Sim run of a few GEMMs
    does not amortise. Stricter in one way: ``[DEFAULT]`` is a section like any other (configparser
    would copy its keys into every section)."""
    sections: dict[str, dict[str, list[str]]] = {}
    lines: dict[tuple[str, str], int] = {}
    cur: dict[str, list[str]] | None = None
    name = key = ""
    indent = 0
    for n, line in enumerate(text.split("\n"), start=1):
        value = line.strip()
        if not value or value[0] in "#;":
            if not value and cur is not None and key:
                cur[key].append("")  # a blank line inside a value (configparser keeps it, then strips)
            continue
        level = len(line) - len(line.lstrip())
        if cur is not None and key and level > indent:
            cur[key].append(value)
            continue
        indent = level
        end = value.rfind("]")
        if value[0] == "[" and end > 1:  # configparser's \[(?P<header>.+)\]: up to the last ]
            name, key = value[1:end], ""
            if name in sections:
                raise ConfigError(f"{path}:{n}: duplicate section in [{name}]")
            cur = sections[name] = {}
            continue
        if cur is None:
            raise ConfigError(f"{path}:{n}: expected a [section] header first")
        # configparser's (?P<option>.*?)\s*[=:]\s*(?P<value>.*)$: the key ends at the first = or :
        eq, colon = value.find("="), value.find(":")
        at = colon if eq < 0 or 0 <= colon < eq else eq
        key = value[:at].rstrip().lower() if at > 0 else ""
        if not key:
            raise ConfigError(f"{path}:{n}: not a 'key: value' line")
        if key in cur:
            raise ConfigError(f"{path}:{n}: duplicate key {key!r} in [{name}]")
        cur[key], lines[(name, key)] = [value[at + 1 :].strip()], n
    joined = {sec: {k: "\n".join(v).rstrip() for k, v in keys.items()} for sec, keys in sections.items()}
    return joined, lines


def read_scalesim_config(path: str | Path) -> ScaleSimConfig:
    """Parse a SCALE-Sim v3 ``.cfg`` file.

    Args:
        path: the config file.

    Returns:
        The :class:`ScaleSimConfig`; omitted optional keys take SCALE-Sim's defaults.

    Raises:
        ConfigError: unreadable file, syntax error, unknown section or key, missing required key
            (``ArrayHeight``, ``ArrayWidth``, ``Dataflow``; ``Bandwidth`` when
            ``InterfaceBandwidth: USER``) or a bad value; the message gives file, line and key.
    """
    path = Path(path)
    parsed, lines = _parse_ini(read_text(path, ConfigError), path)

    values: dict[str, object] = {"run_name": "scale_run"}
    for section, items in parsed.items():
        if section not in _CFG_KEYS:
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(_CFG_KEYS)})")
        known = _CFG_KEYS[section]
        for key, raw in items.items():
            line = lines.get((section, key), "?")
            if key not in known:
                raise ConfigError(
                    f"{path}:{line}: [{section}] unknown key {key!r} (known: {', '.join(known)})"
                )
            field, parse = known[key]
            try:
                value = parse(raw.strip())
            except (ValueError, IndexError) as e:
                msg = str(e) if not str(e).startswith("invalid literal") else "must be an integer"
                raise ConfigError(f"{path}:{line}: [{section}] {key}: {msg} (got {raw.strip()!r})") from None
            if field is not None:
                values[field] = value
    for section, key in sorted(_REQUIRED):
        if _CFG_KEYS[section][key][0] not in values:
            raise ConfigError(f"{path}: [{section}] missing required key {key!r}")
    if values.get("interface_bandwidth") == "USER" and not values.get("bandwidth"):
        line = lines.get(("run_presets", "interfacebandwidth"), "?")
        raise ConfigError(f"{path}:{line}: InterfaceBandwidth: USER needs [architecture_presets] Bandwidth")
    return ScaleSimConfig(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- topology

_CONV_FIELDS = (
    "IFMAP Height",
    "IFMAP Width",
    "Filter Height",
    "Filter Width",
    "Channels",
    "Num Filter",
    "Strides",
)
_GEMM_FIELDS = ("M", "N", "K")


def _split_row(line: str) -> list[str]:
    fields = [f.strip() for f in line.split(",")]
    if fields and fields[-1] == "":
        fields.pop()  # the trailing comma SCALE-Sim's files carry
    return fields


def _sparsity(path: Path, n: int, raw: str) -> tuple[int, int]:
    parts = raw.split(":")
    try:
        ratio = (int(parts[0]), int(parts[1]))
        if len(parts) != 2 or not 1 <= ratio[0] <= ratio[1]:
            raise ValueError
    except (ValueError, IndexError):
        raise ConfigError(f"{path}:{n}: sparsity: must be 'N:M' with 1 <= N <= M (got {raw!r})") from None
    return ratio


def read_scalesim_topology(path: str | Path, fmt: TopologyFormat = "auto") -> list[ScaleSimLayer]:
    """Parse a SCALE-Sim topology ``.csv`` (conv layers or GEMMs) into layers.

    Args:
        path: the topology file.
        fmt: ``"conv"``, ``"gemm"`` (SCALE-Sim's ``-i gemm``), or ``"auto"``: gemm when the header's
            fields after the name are ``M, N, K``, conv otherwise.

    Returns:
        The layers in file order (depthwise ``DP`` layers expanded per channel).

    Raises:
        ConfigError: unreadable or empty file, wrong field count, a non-positive integer, a filter
            larger than its input, or a bad sparsity ratio; the message gives file, line and field.
    """
    path = Path(path)
    text = read_text(path, ConfigError)
    numbered = [(n, ln) for n, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if not numbered:
        raise ConfigError(f"{path}: empty topology file")
    header = [h.lower() for h in _split_row(numbered[0][1])]
    if fmt == "auto":
        fmt = "gemm" if header[1:4] == ["m", "n", "k"] else "conv"
    if fmt not in ("conv", "gemm"):
        raise ConfigError(f"topology format: must be 'conv', 'gemm' or 'auto' (got {fmt!r})")
    names = _GEMM_FIELDS if fmt == "gemm" else _CONV_FIELDS

    layers: list[ScaleSimLayer] = []
    for n, line in numbered[1:]:
        fields = _split_row(line)
        if len(fields) not in (len(names) + 1, len(names) + 2):
            raise ConfigError(
                f"{path}:{n}: {fmt} row needs {len(names) + 1} fields (name, {', '.join(names)}) "
                f"plus an optional N:M sparsity (got {len(fields)})"
            )
        vals = []
        for field, raw in zip(names, fields[1 : len(names) + 1], strict=True):
            try:
                v = int(raw)
            except ValueError:
                v = 0
            if not 1 <= v <= MAX_DIM:
                raise ConfigError(
                    f"{path}:{n}: {field}: must be a positive integer, at most {MAX_DIM} (got {raw!r})"
                )
            vals.append(v)
        sparsity = _sparsity(path, n, fields[-1]) if len(fields) == len(names) + 2 else (1, 1)
        name = fields[0]
        if fmt == "gemm":
            m, nn, k = vals
            layers.append(ScaleSimLayer(name, m, k, 1, k, 1, nn, 1, 1, sparsity, n))
            continue
        ih, iw, fh, fw, ch, nf, stride = vals
        for dim, f, i in (("Filter Height", fh, ih), ("Filter Width", fw, iw)):
            if f > i:
                raise ConfigError(f"{path}:{n}: {dim}: {f} is larger than the IFMAP's {i}")
        if "DP" in name:  # SCALE-Sim's depthwise convention: one single-channel layer per channel
            layers.extend(
                ScaleSimLayer(f"{name}Channel_{c}", ih, iw, fh, fw, 1, nf, stride, stride, sparsity, n)
                for c in range(ch)
            )
        else:
            layers.append(ScaleSimLayer(name, ih, iw, fh, fw, ch, nf, stride, stride, sparsity, n))
    if not layers:
        raise ConfigError(f"{path}: topology has a header but no layers")
    return layers
