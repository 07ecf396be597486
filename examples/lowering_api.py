"""Lower a timm ViT to accelsim's dataflow graph and walk it with networkx.

    python examples/lowering_api.py                       # EfficientViT-B1 at 224 px
    python examples/lowering_api.py deit_tiny_patch16_224 --img-size 160 --dot /tmp/deit.dot

Prints the graph summary, the ten heaviest ops, and the longest dependency chain weighted by
MACs (the critical path an accelerator cannot overlap away), then writes the graph as DOT.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import networkx as nx

import accelsim
from accelsim.ir import Graph


def critical_path(graph: Graph) -> tuple[list[str], int]:
    """The dependency chain with the most MACs: ``nx.dag_longest_path`` with each edge weighted
    by the MACs of the op it leads to; among chains of equal MACs, the one with more ops (so the
    MAC-free ops around the heavy ones stay on the path)."""
    scale = len(graph) + 1  # MACs dominate, op count breaks ties
    g = nx.DiGraph()
    g.add_nodes_from(graph.nx.nodes)
    g.add_weighted_edges_from((u, v, graph.op(v).macs * scale + 1) for u, v in graph.nx.edges)
    path = nx.dag_longest_path(g, weight="weight", default_weight=1)
    return path, sum(graph.op(n).macs for n in path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="efficientvit_b1", help="timm model name")
    parser.add_argument("--img-size", type=int, default=None)
    parser.add_argument("--dot", default="lowered.dot", help="where to write the DOT file")
    args = parser.parse_args(argv)

    graph = accelsim.lower(args.model, img_size=args.img_size)
    print(graph.summary())

    print("\nheaviest ops:")
    for op in sorted(graph.ops(), key=lambda o: -o.macs)[:10]:
        shape = "x".join(str(d) for d in graph.tensors[op.outputs[0]].shape)
        print(f"  {op.macs / 1e6:9.2f} MMACs  {op.kind.value:<17} {op.module or '<root>':<45} -> {shape}")

    path, macs = critical_path(graph)
    share = macs / graph.total_macs if graph.total_macs else 0.0
    print(f"\nlongest dependency path: {len(path)} ops, {macs / 1e9:.3f} GMACs ({share:.0%} of all)")
    heavy = [n for n in path if graph.op(n).macs]
    print(
        "  MAC ops on it:",
        ", ".join(graph.op(n).kind.value for n in heavy[:8]),
        "..." if len(heavy) > 8 else "",
    )

    Path(args.dot).write_text(graph.to_dot())
    print(f"\nwrote {args.dot} (render: dot -Tsvg {args.dot} -o graph.svg)")


if __name__ == "__main__":
    main()
