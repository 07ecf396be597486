"""The ``accelsim`` command line: it parses arguments and calls the public API, nothing more.

Every :class:`~accelsim.errors.AccelsimError` becomes one line on stderr and exit code 2 (3 for a
:class:`~accelsim.errors.ResourceError`: a design that does not fit its board).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

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
    given = (("--img-size", args.img_size), ("--wbits", args.wbits), ("--abits", args.abits))
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
            f"{args.target}: a saved graph keeps the shapes and bit widths it was lowered with "
            "(re-lower it with `accelsim lower`)"
        )
    else:
        return
    raise AccelsimError(f"options for lowering a model ({', '.join(lowering)}) do not apply to {why}")


def _load_or_lower(args: argparse.Namespace) -> Any:
    """A saved graph (no torch import) or a timm model name lowered on the fly."""
    from accelsim.ir import Graph

    if _is_graph_file(args.target):
        return Graph.load(args.target)
    return _lower(args, args.target)


def _lower(args: argparse.Namespace, model: str) -> Any:
    from accelsim.lower import lower

    bits = {k: v for k, v in (("wbits", args.wbits), ("abits", args.abits)) if v is not None}
    return lower(model, img_size=args.img_size, **bits)


def _hw_files(hw: str) -> list[Path]:
    """The files ``--hw`` may name: the path itself, or the shipped config of that name."""
    from accelsim._paths import data_dir

    return [Path(hw), data_dir("hw_configs") / f"{hw}.yaml"]


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
    from accelsim.sim import build_report, map_graph, run, save_trace

    shown: Report | WorkloadReport  # what is printed and written; ``timing`` is its simulation
    _check_simulate_inputs(args)
    check_outputs(
        {"--json": args.json, "--csv": args.csv, "--trace": args.trace, "--sqnr-csv": args.sqnr_csv},
        inputs=[
            args.target if args.target is not None and _is_graph_file(args.target) else None,
            *_hw_files(args.hw),
            args.scalesim_config,
            args.topology,
            args.workload,
        ],
    )
    if args.workload:
        from accelsim.pipeline import simulate_workload

        shown = simulate_workload(args.workload, hw=args.hw, accuracy=args.accuracy)
        timing, schedule = shown.report, shown.schedule
        result = None
    else:
        if args.scalesim_config or args.topology:
            from accelsim.sim.scalesim.bridge import load_scalesim

            hw, graph = load_scalesim(args.scalesim_config, args.topology)
        elif args.target is None:
            raise AccelsimError(
                "simulate needs a MODEL name or a graph.json (or --scalesim-config/--topology)"
            )
        else:
            from accelsim.config.hardware import HardwareConfig

            hw = HardwareConfig.load(args.hw)
            if hw.dataflow is not None:
                return _simulate_dataflow(args, hw)
            graph = _load_or_lower(args)
        schedule = map_graph(graph, hw)
        result = run(schedule, record=bool(args.trace))
        shown = timing = build_report(schedule, result)
    print(shown.table())
    if args.json:
        _write_json(args.json, shown.to_dict())
    if args.csv:
        shown.save_csv(args.csv)
    if args.sqnr_csv:
        # checked above: --sqnr-csv needs --accuracy, which needs --workload
        cast("WorkloadReport", shown).save_sqnr_csv(args.sqnr_csv)
    if args.trace:
        save_trace(schedule, args.trace, result)
    if not timing.fits:
        raise ResourceError(f"design does not fit {timing.board}: {'; '.join(timing.overflow)}")
    return 0


def _simulate_dataflow(args: argparse.Namespace, hw: Any) -> int:
    """A dataflow design simulates its own stages (their shapes are in its config)."""
    from accelsim.sim.dataflow.report import simulate_dataflow

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

    check_outputs({"--json": args.json}, inputs=[args.workload])
    result = evaluate_workload(args.workload)
    print(result.table())
    if args.json:
        _write_json(args.json, result.to_dict())
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from accelsim.search import run_search_cli

    return run_search_cli(
        space=args.space,
        trials=args.trials,
        storage=args.storage,
        out=args.out,
        backend=args.backend,
        seed=args.seed,
    )


# -- parser -----------------------------------------------------------------------------------
def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--img-size", type=int, default=None, help="input resolution (default: the model's)")
    p.add_argument("--wbits", type=int, default=None, help="weight bits of the lowered graph (default 8)")
    p.add_argument("--abits", type=int, default=None, help="activation bits of the lowered graph (default 8)")


_COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], int]]] = {
    "lower": ("lower a timm model to a dataflow graph", _cmd_lower),
    "simulate": ("simulate a model or graph on an accelerator config", _cmd_simulate),
    "eval": ("measure the accuracy of a workload (model + compression + data)", _cmd_eval),
    "search": ("co-design search over compression and hardware", _cmd_search),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="accelsim", description=__doc__.splitlines()[0])
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
    p.add_argument("--hw", default="zcu102", help="accelerator config: a name in hw_configs/ or a YAML path")
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
