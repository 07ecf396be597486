"""The ``accelsim`` command line: it parses arguments and calls the public API, nothing more.

Every :class:`~accelsim.errors.AccelsimError` becomes one line on stderr and exit code 2 (3 for a
:class:`~accelsim.errors.ResourceError`: a design that does not fit its board). Only the standard
library is imported before a command runs, and each command imports what it uses, late (a bad
argument is refused before numba or pydantic load): ``benchmarks/bench_cold_start.py`` times it.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

from accelsim._io import check_outputs, strict_json, write_text_atomic
from accelsim._progress import set_quiet
from accelsim.errors import AccelsimError, ResourceError

if TYPE_CHECKING:  # pragma: no cover
    from accelsim.pipeline import WorkloadReport
    from accelsim.sim import Report

log = logging.getLogger("accelsim")


def _write_json(path: str, data: Any) -> None:
    write_text_atomic(path, strict_json(data, indent=2) + "\n")


def _is_graph_file(target: str) -> bool:
    return target.endswith(".json") or Path(target).is_file()


def _lowering_options(args: argparse.Namespace) -> list[str]:
    given = (
        ("--img-size", args.img_size),
        ("--wbits", args.wbits),
        ("--abits", args.abits),
        ("--batch", args.batch),
    )
    return [flag for flag, value in given if value is not None]


def _check_simulate_inputs(args: argparse.Namespace) -> None:
    """One input per run, and no option that the chosen input would silently ignore (the report
    would then describe a design the user did not ask for)."""
    scalesim = bool(args.scalesim_config or args.topology)
    chosen = [
        name
        for name, given in (
            ("MODEL|graph.json", args.target is not None),
            ("--workload", args.workload is not None),
            ("--scalesim-config/--topology", scalesim),
        )
        if given
    ]
    if len(chosen) > 1:
        raise AccelsimError(f"simulate takes one input, got {' and '.join(chosen)}")
    if scalesim and not (args.scalesim_config and args.topology):
        raise AccelsimError("--scalesim-config and --topology go together")
    if args.accuracy and args.workload is None:
        raise AccelsimError("--accuracy needs --workload (a model with its weights and a dataset)")
    if args.sqnr_csv and not args.accuracy:
        raise AccelsimError("--sqnr-csv needs --accuracy (the table comes from the bit-true run)")
    lowering = _lowering_options(args)
    if not lowering:
        return
    if args.workload is not None:
        why = "--workload: its recipe sets the bit widths and its model the input size"
    elif scalesim:
        why = "--scalesim-config/--topology: the topology file sets the shapes"
    elif args.target is not None and _is_graph_file(args.target):
        why = (
            f"{args.target}: a saved graph keeps the shapes, batch and bit widths it was lowered with "
            "(re-lower it with `accelsim lower`)"
        )
    else:
        return
    raise AccelsimError(f"options for lowering a model ({', '.join(lowering)}) do not apply to {why}")


def _load_or_lower(args: argparse.Namespace) -> Any:
    """A saved graph (no torch import) or a timm model name lowered on the fly."""
    if _is_graph_file(args.target):
        from accelsim.ir import Graph

        return Graph.load(args.target)
    return _lower(args, args.target)


def _lower(args: argparse.Namespace, model: str) -> Any:
    from accelsim.models import check_model_name

    check_model_name(model)  # a typo is refused before torch loads (seconds)
    _collect_from_here()
    from accelsim.lower import lower

    opts = {
        k: v
        for k, v in (("wbits", args.wbits), ("abits", args.abits), ("batch", args.batch))
        if v is not None
    }
    return lower(model, img_size=args.img_size, **opts)


def _collect_from_here() -> None:
    """Turn the cyclic garbage collector back on for the command's own work, past what it has
    loaded so far (a no-op where :func:`main` left the collector on).

    :func:`main` turns it off at the start of a simulate in the command's own process: importing
    numpy and building the config's pydantic classes leave ~60,000 container objects and next to
    no garbage, and the collector walked them ~90 times (~35 ms of CPU in a 0.45 s cold simulate
    of a saved graph; ~90 ms for a dataflow design, whose report ran a full collection).
    Frozen (``gc.freeze``), what is loaded is not walked again; what comes after (torch tracing a
    model, numba compiling kernels, the simulation) is collected as usual."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


#: the largest graph whose one simulate runs the kernels as plain Python (accelsim/_numba.py):
#: a transformer at batch 1 (its only convolution the patch embedding) of at most this many MACs.
#: Interpreted, DeiT-Tiny's kernels take 0.04 s of CPU, DeiT-Base's 0.08, Swin-T's 0.09, DeiT-Base
#: at 384 px 0.17 (55 GMACs), against ~0.55 s for numba to load; EfficientViT-B1's 52 convolutions
#: and depthwise stages take 0.47 s, so convolutional graphs compile.
_INTERPRET_MAX_MACS = 100e9


def _interpret_pays(graph: Any) -> bool:
    from accelsim.ir import OpKind

    shape = graph.meta.get("input_shape")
    batch = shape[0] if isinstance(shape, list | tuple) and shape and isinstance(shape[0], int) else 1
    kinds = [op.kind for op in graph.ops()]
    convolutions = sum(k in (OpKind.CONV2D, OpKind.DWCONV2D, OpKind.LINEAR_ATTENTION) for k in kinds)
    return (
        batch == 1
        and kinds.count(OpKind.CONV2D) == convolutions <= 1
        and graph.total_macs <= _INTERPRET_MAX_MACS
    )


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``--set array.rows=48`` items as ``{"array.rows": 48}``; the value is read as YAML
    (``48`` an int, ``true`` a bool, ``[ws, os]`` a list, ``{macs: 576}`` a whole section)."""
    import yaml

    changes: dict[str, Any] = {}
    for item in items:
        field, sep, text = item.partition("=")
        field = field.strip()
        if not sep or not field or not text.strip():
            raise AccelsimError(f"--set {item!r}: give FIELD=VALUE, e.g. --set array.rows=48")
        try:
            changes[field] = yaml.safe_load(text)
        except yaml.YAMLError as e:
            problem = str(e).splitlines()[0]
            raise AccelsimError(f"--set {field}: {text!r} is not a value ({problem})") from None
    return changes


def _config_fields(data: Any, prefix: str = "") -> list[str]:
    """Dotted names of every field of a dumped config (what ``--set`` may name)."""
    out = []
    for k, v in data.items():
        out.append(prefix + k)
        if isinstance(v, dict):
            out += _config_fields(v, f"{prefix}{k}.")
    return out


def _hardware(args: argparse.Namespace, base: Any = None) -> Any:
    """``--hw`` (or ``base``) with ``--set`` applied; the name says what was changed (a report
    of ``sa32x64_ws.zcu102`` with 48 rows would otherwise claim 32)."""
    from accelsim._names import unknown
    from accelsim.config.hardware import HardwareConfig

    hw = base if base is not None else HardwareConfig.load(args.hw)
    if not args.set:
        return hw
    changes = _parse_set(args.set)
    fields = _config_fields(hw.model_dump())
    for field in changes:
        if field.replace("__", ".") not in fields:
            raise AccelsimError(f"--set: {unknown('config field', field, fields)}")
    changed = hw.with_changes(**changes)
    label = ", ".join(f"{k}={v}" for k, v in changes.items())
    return changed.model_copy(update={"name": f"{hw.name} [{label}]"})


def _hw_files(hw: str) -> list[Path]:
    """The files ``--hw`` may name: the path itself, or the shipped config of that name."""
    from accelsim._paths import data_dir

    return [Path(hw), data_dir("hw_configs") / f"{hw}.yaml"]


def _workload_files(workload: str | None) -> list[Path]:
    """A workload YAML and every file it names (checkpoint, recipe, teacher, dataset folder)."""
    if workload is None:
        return []
    from accelsim.config.workload import Workload

    return [Path(workload), *Workload.load(workload).files()]


# -- commands ---------------------------------------------------------------------------------
def _cmd_lower(args: argparse.Namespace) -> int:
    check_outputs({"--output": args.output})
    graph = _lower(args, args.model)
    if args.format == "json":
        text = graph.to_json()
    elif args.format == "dot":
        text = graph.to_dot()
    else:
        text = str(graph.summary())
    if args.output:
        write_text_atomic(args.output, text)
        print(f"wrote {args.output}: {graph.summary().ops} ops, {graph.total_macs / 1e9:.3f} GMACs")
    else:
        print(text)
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    shown: Report | WorkloadReport  # what is printed and written; ``timing`` is its simulation
    _check_simulate_inputs(args)
    check_outputs(
        {"--json": args.json, "--csv": args.csv, "--trace": args.trace, "--sqnr-csv": args.sqnr_csv},
        inputs=[
            args.target if args.target is not None and _is_graph_file(args.target) else None,
            *_hw_files(args.hw),
            args.scalesim_config,
            args.topology,
            *_workload_files(args.workload),
        ],
    )
    if args.workload:
        from accelsim.pipeline import simulate_workload

        shown = simulate_workload(args.workload, hw=_hardware(args), accuracy=args.accuracy)
        timing, schedule = shown.report, shown.schedule
        result = None
    else:
        if args.scalesim_config or args.topology:
            from accelsim.sim.scalesim.bridge import load_scalesim

            hw, graph = load_scalesim(args.scalesim_config, args.topology)
            hw = _hardware(args, hw)
        elif args.target is None:
            raise AccelsimError(
                "simulate needs a MODEL name or a graph.json (or --scalesim-config/--topology)"
            )
        else:
            hw = _hardware(args)
            if hw.dataflow is not None:
                return _simulate_dataflow(args, hw)
            graph = _load_or_lower(args)
            if args.own_process and _interpret_pays(graph):
                from accelsim._numba import interpret_kernels

                interpret_kernels()
        # after the inputs are read: a bad one is refused before numba loads
        from accelsim.sim import build_report, map_graph, run
        from accelsim.sim.report import graph_frames

        _collect_from_here()
        schedule = map_graph(graph, hw)
        result = run(schedule, record=bool(args.trace))
        shown = timing = build_report(schedule, result, frames=graph_frames(graph.meta))
    print(shown.table())
    if args.json:
        _write_json(args.json, shown.to_dict())
    if args.csv:
        shown.save_csv(args.csv)
    if args.sqnr_csv:
        # checked above: --sqnr-csv needs --accuracy, which needs --workload
        cast("WorkloadReport", shown).save_sqnr_csv(args.sqnr_csv)
    if args.trace:
        from accelsim.sim import save_trace

        save_trace(schedule, args.trace, result)
    if not timing.fits:
        raise ResourceError(f"design does not fit {timing.board}: {'; '.join(timing.overflow)}")
    return 0


def _simulate_dataflow(args: argparse.Namespace, hw: Any) -> int:
    """A dataflow design simulates its own stages (their shapes are in its config)."""
    if args.own_process and not args.event:
        from accelsim._numba import interpret_kernels

        interpret_kernels()  # the analytic timing calls no kernel: numba need not load
    from accelsim.sim.dataflow.report import simulate_dataflow

    _collect_from_here()
    report = simulate_dataflow(hw, events=args.event)
    print(f"{args.target}: the design's own stage shapes are simulated (see its config)")
    print(report.table())
    if args.json:
        _write_json(args.json, report.to_dict())
    if not report.fits:
        raise ResourceError(f"design does not fit {report.board}: {'; '.join(report.overflow)}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from accelsim.eval import evaluate_workload

    check_outputs({"--json": args.json}, inputs=_workload_files(args.workload))
    result = evaluate_workload(args.workload)
    print(result.table())
    if args.json:
        _write_json(args.json, result.to_dict())
    return 0


def _cmd_configs(args: argparse.Namespace) -> int:
    # configs only (no simulator import): a listing answers at once
    from accelsim.config.hardware import HardwareConfig, get_board, list_boards, list_configs

    print("hardware configs (--hw NAME; hw_configs/):")
    for name in list_configs():
        hw = HardwareConfig.load(name)
        a = hw.array
        units = [k for k, v in hw.units.model_dump().items() if v is not None]
        print(
            f"  {name:<30} {hw.board.name:<7} {a.rows}x{a.cols} {a.dataflow_label}, {hw.clock_mhz:g} MHz, "
            f"array {a.dsps:,} of {hw.board.dsp:,} DSP, units: {', '.join(units) or 'none'}"
        )
    print("boards (board: NAME in a config; hw_configs/boards/):")
    for name in list_boards():
        b = get_board(name)
        print(
            f"  {name:<8} {b.device:<10} {b.dsp:>6,} DSP {b.bram36:>6,} BRAM36 {b.uram:>5,} URAM "
            f"{b.lut:>9,} LUT  {b.dram_bandwidth_gbs:g} GB/s {b.dram_kind}"
        )
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    """Run the search, print the front's summary and where the files are; exit 0, or 3 when no
    design point fits the board and 2 when none meets the constraints (the files are written, and
    the error line alone says why and where: no summary of an empty front before it)."""
    from accelsim.config.search import SearchSpace
    from accelsim.search import check_feasible, search
    from accelsim.search.outputs import front_summary

    space = SearchSpace.load(args.space)
    check_outputs({}, inputs=[args.space, *space.files()], folders={"--out": args.out})
    study = search(
        space, trials=args.trials, storage=args.storage, out=args.out, backend=args.backend, seed=args.seed
    )
    check_feasible(study, space, Path(args.out))
    print(front_summary(study, space, Path(args.out)))
    return 0


# -- parser -----------------------------------------------------------------------------------
def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--img-size", type=int, default=None, help="input resolution (default: the model's)")
    p.add_argument("--wbits", type=int, default=None, help="weight bits of the lowered graph (default 8)")
    p.add_argument("--abits", type=int, default=None, help="activation bits of the lowered graph (default 8)")
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="frames per run (default 1): the graph computes a batch, and FPS is the throughput",
    )


_COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], int]]] = {
    "simulate": (
        "time a model or a saved graph on an accelerator: latency, FPS, DSP use, power",
        _cmd_simulate,
    ),
    "lower": ("turn a timm model into a dataflow graph (save it once, simulate it fast)", _cmd_lower),
    "configs": ("list the shipped accelerator configs and boards", _cmd_configs),
    "eval": ("measure the accuracy of a workload (model + compression + data)", _cmd_eval),
    "search": ("co-design search over compression and hardware", _cmd_search),
}

_DESCRIPTION = """\
How fast does a ViT run on an FPGA accelerator, how well does it use the DSPs, and how accurate
is it once compressed? accelsim lowers timm models to a dataflow graph, simulates them cycle by
cycle on systolic-array accelerators, and searches compression and hardware together."""

_EPILOG = """\
examples:
  accelsim simulate deit_tiny_patch16_224                  # on the default ZCU102 design
  accelsim simulate deit_tiny_patch16_224 --hw zcu104 --set array.rows=48 --csv layers.csv
  accelsim lower deit_small_patch16_224 -o deit_small.json # once (needs torch), then:
  accelsim simulate deit_small.json --hw vcu118            # fast, no torch
  accelsim simulate deit_tiny_patch16_224 --batch 8        # throughput mode
  accelsim configs                                         # what --hw takes
  accelsim eval --workload workloads/ref_deit_w8a8.yaml
  accelsim search --space workloads/search_small.yaml --trials 8

`accelsim COMMAND -h` for a command's options; README.md for the rest."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a close-name suggestion for a mistyped command or choice."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is not None and value not in choices:
            from accelsim._names import unknown

            raise argparse.ArgumentError(action, unknown("choice", str(value), [str(c) for c in choices]))
        super()._check_value(action, value)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="accelsim",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars (they show only on a terminal anyway)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parsers = {
        name: sub.add_parser(name, help=help_, description=help_) for name, (help_, _) in _COMMANDS.items()
    }
    for name, (_, func) in _COMMANDS.items():
        parsers[name].set_defaults(func=func)
        # also after the command (`accelsim eval ... -q`); SUPPRESS keeps the global flag when absent
        parsers[name].add_argument(
            "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars"
        )

    p = parsers["lower"]
    p.add_argument("model", help="timm model name, e.g. deit_tiny_patch16_224")
    _add_model_options(p)
    p.add_argument("-o", "--output", help="write the graph here instead of stdout")
    p.add_argument("--format", choices=["json", "dot", "table"], default=None, help="output format")

    p = parsers["simulate"]
    p.add_argument("target", nargs="?", help="timm model name or a saved graph .json")
    p.add_argument(
        "--hw", default="zcu102", help="accelerator config: a name (see `accelsim configs`) or a YAML path"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change a field of the --hw config, e.g. --set array.rows=48 --set clock_mhz=250 "
        "(repeatable; the value is read as YAML: --set 'units.dwconv={macs: 576}')",
    )
    _add_model_options(p)
    p.add_argument("--json", help="write the report as JSON")
    p.add_argument("--csv", help="write the per-layer rows as CSV")
    p.add_argument("--trace", help="write a Chrome-trace/Perfetto timeline")
    p.add_argument("--scalesim-config", help="a SCALE-Sim .cfg file (with --topology)")
    p.add_argument("--topology", help="a SCALE-Sim topology .csv file (with --scalesim-config)")
    p.add_argument("--workload", help="a workload YAML (model + compression + data)")
    p.add_argument(
        "--accuracy",
        action="store_true",
        help="with --workload: also run it bit-true (accuracy, fidelity to FP32, per-layer SQNR)",
    )
    p.add_argument("--sqnr-csv", help="with --accuracy: write the bit-true per-layer SQNR rows as CSV")
    p.add_argument(
        "--event",
        action="store_true",
        help="dataflow designs: time with the event-level run (back-pressure; seconds on a whole network) "
        "instead of the analytic interval and closed-form first frame",
    )

    p = parsers["eval"]
    p.add_argument("--workload", required=True, help="a workload YAML (model + compression + data)")
    p.add_argument("--json", help="write the result as JSON")

    p = parsers["search"]
    p.add_argument("--space", required=True, help="a search-space YAML")
    p.add_argument("--trials", type=int, default=20, help="compression trials to run (default 20)")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite in --out)")
    p.add_argument("--out", default="runs/search", help="output folder (default runs/search)")
    p.add_argument("--backend", choices=["local", "ray"], default="local")
    p.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None, *, own_process: bool = False) -> int:
    """Run one command; ``own_process``: the process ends with it (:func:`console`), so a simulate
    may run its kernels interpreted (``accelsim/_numba.py``: a choice for the whole process, which
    a caller of ``main`` in its own process, a test suite, must not be left with)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.own_process = own_process
    if own_process and args.command == "simulate" and args.workload is None:
        gc.disable()  # until the inputs are loaded (_collect_from_here)
    if getattr(args, "format", "unset") is None:
        args.format = "json" if args.output else "table"
    set_quiet(args.quiet)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except ResourceError as e:  # the report was printed: the design just does not fit its board
        print(f"accelsim: error: {e}", file=sys.stderr)
        return 3
    except AccelsimError as e:
        print(f"accelsim: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("accelsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`accelsim simulate ... | head`): not an error to report. Point stdout
        # at /dev/null so that the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def console(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``accelsim`` command (``[project.scripts]``): :func:`main`, then the process ends without
    the interpreter's teardown where nothing else runs. Tearing down numba's LLVM objects and ~700
    modules takes ~0.25 s of CPU, a quarter of a cold ``accelsim simulate``, and does nothing a
    finished command needs: the ``atexit`` handlers (logging's flush, temporary folders, Ray) still
    run, and a command that leaves another thread alive ends the ordinary way.

    Pydantic plugins stay off in the command's process (unless ``PYDANTIC_DISABLE_PLUGINS`` is
    set): their discovery reads the metadata of every installed distribution (~10 ms with 170 of
    them) to instrument models that only parse the command's configs."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    rc = main(argv, own_process=True)
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(rc)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader went away after the command's last write: as in main
        rc = 128 + signal.SIGPIPE
    atexit._run_exitfuncs()
    os._exit(rc)


if __name__ == "__main__":  # pragma: no cover
    console()
