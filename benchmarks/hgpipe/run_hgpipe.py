"""HG-PIPE's HLS-generated Verilog under Verilator: per-block II, first output, the whole chain.

Usage (from the repository root; needs git, Verilator >= 5 and g++)::

    python3 benchmarks/hgpipe/run_hgpipe.py --repo DIR                 # the four block types
    python3 benchmarks/hgpipe/run_hgpipe.py --repo DIR --chain         # and PATCH_EMBED -> 12 x (ATTN, MLP) -> HEAD
    python3 benchmarks/hgpipe/run_hgpipe.py --repo DIR --json tests/data/hgpipe/rtl_timing.json

DIR is a clone (or bare git directory) of github.com/OpenDarrenlu/HG-PIPE. Nothing of it enters this repository:
the Verilog is extracted with ``git show COMMIT:PATH`` into ``--work`` (a temporary directory by default), the
``$readmemh`` ROM images (git-ignored upstream, referenced by absolute Windows paths) are replaced by zero-filled
stand-ins there, and Verilator builds ``harness.cpp`` (ours) around the block. Zero data is enough for timing:
every loop of the design has fixed bounds at II = 1 and no branch on data, so the handshakes happen at the same
cycles whatever the values are.

The harness holds ap_start, ap_continue, i_stream_TVALID and o_stream_TREADY high (frames back to back) and
prints the cycle of every ap_done and of each frame's first and last input and output beat; cycle 0 is the first
cycle out of reset. The chain wraps the blocks in ``chain_top.v``-style Verilog written here (our own): a 128-deep
stream FIFO between blocks with the two-cycle write-to-read latency of SpinalHDL's StreamFifo, which upstream's
BlockSequence puts there. Only the numbers measured are written to ``--json``.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMIT = "638cc9b6c1a17e2b5314084ad7bbc28f122fbeaf"  # VCK190 (xcvc1902) build, 2024-11-29
SEQ_BEATS = 98 * 192  # 196 tokens / TP 2 x 192 channels / CP 1: a block's stream per frame
# beats in and out per frame of each block type (upstream BlockCfg: TI/TIP x CI/CIP, TO/TOP x CO/COP)
BEATS = {
    "PATCH_EMBED": (98 * 384, SEQ_BEATS),
    "ATTN0": (SEQ_BEATS, SEQ_BEATS),
    "MLP0": (SEQ_BEATS, SEQ_BEATS),
    "HEAD": (SEQ_BEATS, 1000),
}
README_II = {"PATCH_EMBED": 56449, "ATTN0": 57625, "MLP0": 56449, "HEAD": 48001}
README_CHAIN = {"first_in_to_last_out_image0": 816584, "steady_latency": 57624}
# Which stage sets each block's II, read from upstream's HLS sources at COMMIT (src/*.h loop nests, case/*.cpp
# parallelism); every stage is an II=1 loop nest and the measured block II is the slowest nest's trip count + 1.
STAGE_NOTES = {
    "PATCH_EMBED": "matmul CI 768 / CIP 16 x CO 192 / COP 16 x TT 98: 98 x 48 x 12 = 56,448 (+1 = 56,449)",
    "ATTN": (
        "softmax, one per head (3 in parallel): Softmax<T=196, TP=2, C=T=196, CP=RQ_CP=1> loops TT 98 x 3 states x "
        "CT 196 = 57,624 (+1 = 57,625). The 1,176 cycles above the LayerNorm (98 x 3 x 192 = 56,448) are "
        "98 x 3 x (196 - 192): the softmax row is 196 keys long, the LayerNorm row 192 channels. Other stages: "
        "Q/K/V (CIP 6, COP 12) and O (CIP 12, COP 6) 98 x 16 x 32 = 50,176; per-head QK^T (CH 64 / CIP 4, "
        "CO 196 / COP 7) 98 x 28 x 16 = 43,904; RV (196 / CIP 7, 64 / COP 4) 98 x 16 x 28 = 43,904"
    ),
    "MLP": "LayerNorm TT 98 x 3 passes x 192 = 56,448 (+1); M1 (CIP 12, COP 24) and M2 (CIP 24, COP 12) 50,176",
    "HEAD": "matmul CI 192 / CIP 1 x CO 1000 / COP 4 on one token: 192 x 250 = 48,000 (+1 = 48,001)",
}
_READMEM = re.compile(r'\$readmemh\("([^"]+)"')
_RANGE = re.compile(r"parameter\s+AddressRange\s*=\s*(\d+)")


def extract(repo: Path, block: str, work: Path) -> Path:
    """The block's all.v under work/block/, its $readmemh files replaced by zero-filled local ones."""
    out = work / block
    out.mkdir(parents=True, exist_ok=True)
    text = subprocess.run(
        ["git", "-C", str(repo), "show", f"{COMMIT}:SPINAL/src/main/verilog/{block}/all.v"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pieces, last = [], 0
    for m in _READMEM.finditer(text):
        ranges = _RANGE.findall(text, 0, m.start())
        depth = int(ranges[-1]) if ranges else 1  # the memory's AddressRange parameter, declared just above
        local = out / Path(m.group(1).replace("\\", "/")).name
        local.write_text("0\n" * depth)
        pieces += [text[last : m.start(1)], str(local)]
        last = m.end(1)
    (out / "all.v").write_text("".join(pieces) + text[last:])
    return out / "all.v"


def chain_verilog(blocks: list[str]) -> str:
    """Our wrapper: blocks in a row, a 128-deep stream FIFO between neighbours, all ap_start/ap_continue high."""
    fifo = """
module hgrtl_fifo128 (input clk, input rst_n, input [31:0] i_data, input i_valid, output i_ready,
                      output [31:0] o_data, output o_valid, input o_ready);
  // occupancy by pointers plus a "rising" flag; a written word is poppable two cycles after its push
  // (the RAM is read synchronously at the next read pointer), as in SpinalHDL's StreamFifo without bypass
  reg [31:0] ram [0:127];
  reg [6:0] wp, rp;
  reg rising, match_q;
  wire match = wp == rp;
  wire empty = match & ~rising, full = match & rising;
  wire push = i_valid & ~full;
  wire pop = o_valid & o_ready;
  wire [6:0] rp_next = rp + {6'd0, pop};
  reg [31:0] q;
  assign i_ready = ~full;
  assign o_valid = ~empty & ~(match_q & ~full);
  assign o_data = q;
  always @(posedge clk) begin
    if (!rst_n) begin wp <= 0; rp <= 0; rising <= 0; match_q <= 0; end
    else begin
      if (push) begin ram[wp] <= i_data; wp <= wp + 7'd1; end
      rp <= rp_next;
      if (push != pop) rising <= push;
      match_q <= rp_next == wp;
    end
    q <= ram[rp_next];
  end
endmodule
"""
    lines = [
        "module hgrtl_chain (input ap_clk, input ap_rst_n, input ap_start, input ap_continue,",
        "  output ap_done, output ap_ready, output ap_idle,",
        "  input [31:0] i_stream_TDATA, input i_stream_TVALID, output i_stream_TREADY,",
        "  output [31:0] o_stream_TDATA, output o_stream_TVALID, input o_stream_TREADY);",
    ]
    n = len(blocks)
    for i in range(n):
        lines.append(f"  wire [31:0] d{i}, e{i}; wire v{i}, r{i}, w{i}, s{i}, done{i}, ready{i}, idle{i};")
    for i, b in enumerate(blocks):
        src = "i_stream_TDATA" if i == 0 else f"e{i - 1}"
        vld = "i_stream_TVALID" if i == 0 else f"w{i - 1}"
        rdy = "i_stream_TREADY" if i == 0 else f"s{i - 1}"
        lines.append(
            f"  {b} b{i} (.ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .ap_start(ap_start), .ap_continue(ap_continue),"
            f" .ap_done(done{i}), .ap_ready(ready{i}), .ap_idle(idle{i}), .i_stream_TDATA({src}),"
            f" .i_stream_TVALID({vld}), .i_stream_TREADY({rdy}), .o_stream_TDATA(d{i}), .o_stream_TVALID(v{i}),"
            f" .o_stream_TREADY(r{i}));"
        )
        if i < n - 1:
            lines.append(
                f"  hgrtl_fifo128 f{i} (.clk(ap_clk), .rst_n(ap_rst_n), .i_data(d{i}), .i_valid(v{i}),"
                f" .i_ready(r{i}), .o_data(e{i}), .o_valid(w{i}), .o_ready(s{i}));"
            )
    last = n - 1
    lines += [
        f"  assign o_stream_TDATA = d{last}; assign o_stream_TVALID = v{last}; assign r{last} = o_stream_TREADY;",
        f"  assign ap_done = done{last}; assign ap_ready = ready0; assign ap_idle = idle{last};",
        "endmodule",
    ]
    return fifo + "\n".join(lines) + "\n"


def build(
    name: str, sources: list[Path], top: str, work: Path, extra: tuple[str, ...] = (), reuse: bool = False
) -> tuple[Path, float | None]:
    """Verilate and compile harness.cpp around `top`; returns the binary and the build's wall seconds
    (None: ``reuse`` found the binary of an earlier run in ``work`` and did not build)."""
    obj = work / f"obj_{name}"
    obj.mkdir(parents=True, exist_ok=True)
    (obj / "top.h").write_text(f'#include "V{top}.h"\ntypedef V{top} Top;\n')
    cmd = [
        "nice", "-n", "10", "verilator", "--cc", "--exe", "--build", "-j", "1", "-O3", "--x-assign", "fast",
        "-Wno-fatal", "-Wno-lint", "-Wno-style", *extra, "--top-module", top,
        "-Mdir", str(obj), "-CFLAGS", f"-O2 -I{obj}", "-o", "sim",
        *map(str, sources), str(HERE / "harness.cpp"),
    ]  # fmt: skip
    if reuse and (obj / "sim").exists():
        return obj / "sim", None
    t0 = time.time()
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"verilator build of {name} failed:\n{res.stderr[-3000:]}")
    return obj / "sim", time.time() - t0


def run(binary: Path, frames: int, in_per: int, out_per: int, max_cycles: int) -> dict:
    """The harness's events: ap_done cycles, per-frame first/last beats in and out, cycles and CPU seconds."""
    res = subprocess.run(
        ["nice", "-n", "10", str(binary), str(max_cycles), str(frames), str(in_per), str(out_per)],
        capture_output=True,
        text=True,
        check=True,
    )
    ev: dict = {"done": [], "in_first": {}, "in_last": {}, "out_first": {}, "out_last": {}}
    for line in res.stdout.splitlines():
        f = line.split()  # the design's own $display lines are neither of these and are skipped
        if not f:
            continue
        if f[0] == "done":
            ev["done"].append(int(f[1]))
        elif f[0] in ("in_first", "in_last", "out_first", "out_last"):
            ev[f[0]][int(f[1])] = int(f[2])
        elif f[0] == "cycles":
            ev["cycles"], ev["cpu_s"] = int(f[1]), float(f[3])
            ev["in_beats"], ev["out_beats"] = int(f[5]), int(f[7])
    return ev


def verilator_version() -> str:
    return subprocess.run(["verilator", "--version"], capture_output=True, text=True).stdout.strip()


def measure_block(repo: Path, block: str, work: Path, frames: int, reuse: bool = False) -> dict:
    src = extract(repo, block, work)
    binary, build_s = build(block, [src], block, work, reuse=reuse)
    in_per, out_per = BEATS[block]
    ev = run(binary, frames, in_per, out_per, max_cycles=frames * 70000 + 100000)
    done = ev["done"]
    gaps = [b - a for a, b in itertools.pairwise(done)]
    outs = [ev["out_last"][f] for f in sorted(ev["out_last"])]
    return {
        "block": block,
        "ii_cycles": gaps[-1],
        "ap_done_cycles": done,
        "ap_done_intervals": gaps,
        "first_input_cycle": ev["in_first"].get(0),
        "first_output_cycle": ev["out_first"].get(0),
        "last_output_cycles": outs,
        "output_intervals": [b - a for a, b in itertools.pairwise(outs)],
        "readme_ii_cycles": README_II[block],
        "simulated_cycles": ev["cycles"],
        "cpu_s": ev["cpu_s"],
        "cycles_per_cpu_s": round(ev["cycles"] / ev["cpu_s"]) if ev["cpu_s"] > 0 else None,
        "build_wall_s": None if build_s is None else round(build_s, 1),
    }


def measure_chain(repo: Path, work: Path, frames: int, layers: int, reuse: bool = False) -> dict:
    blocks = ["PATCH_EMBED"] + ["ATTN0", "MLP0"] * layers + ["HEAD"]
    srcs = []
    for b in ("PATCH_EMBED", "ATTN0", "MLP0", "HEAD"):
        src = extract(repo, b, work)
        # Verilate each block once as a hierarchical block that its instances share: flattened, the 26 instances
        # are 155 MB of C++ (hours to compile on two cores); without inlining, 130 MB
        text = src.read_text()
        head = text.index(f"module {b} (")
        ports_end = text.index(");", head) + 2
        hier = src.with_name("all_hier.v")
        hier.write_text(text[:ports_end] + " /*verilator hier_block*/" + text[ports_end:])
        srcs.append(hier)
    top = work / "chain.v"
    top.write_text(chain_verilog(blocks))
    binary, build_s = build(f"chainh{layers}", [*srcs, top], "hgrtl_chain", work, ("--hierarchical",), reuse)
    ev = run(binary, frames, BEATS["PATCH_EMBED"][0], BEATS["HEAD"][1], max_cycles=frames * 60000 + 1200000)
    nf = len(ev["out_last"])
    rows = [
        {
            "image": f,
            "first_in": ev["in_first"][f],
            "last_in": ev["in_last"][f],
            "first_out": ev["out_first"][f],
            "last_out": ev["out_last"][f],
            "first_in_to_last_in": ev["in_last"][f] - ev["in_first"][f],
            "first_out_to_last_out": ev["out_last"][f] - ev["out_first"][f],
            "first_in_to_first_out": ev["out_first"][f] - ev["in_first"][f],
            "first_in_to_last_out": ev["out_last"][f] - ev["in_first"][f],
        }
        for f in range(nf)
    ]
    outs = [r["last_out"] for r in rows]
    ins = [r["first_in"] for r in rows]
    return {
        "blocks": f"PATCH_EMBED -> {layers} x (ATTN0, MLP0) -> HEAD, 128-deep FIFOs between blocks",
        "verilator_extra": "--hierarchical (each block a hier_block)",
        "images": rows,
        "last_out_intervals": [b - a for a, b in itertools.pairwise(outs)],
        "first_in_intervals": [b - a for a, b in itertools.pairwise(ins)],
        "readme": README_CHAIN,
        "simulated_cycles": ev["cycles"],
        "cpu_s": ev["cpu_s"],
        "cycles_per_cpu_s": round(ev["cycles"] / ev["cpu_s"]) if ev["cpu_s"] > 0 else None,
        "build_wall_s": None if build_s is None else round(build_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", type=Path, required=True, help="HG-PIPE clone or bare git directory")
    ap.add_argument("--blocks", nargs="*", default=list(BEATS), choices=list(BEATS))
    ap.add_argument("--frames", type=int, default=4, help="frames per block run (>= 3 for a steady II)")
    ap.add_argument("--chain", action="store_true", help="also the whole network")
    ap.add_argument("--chain-layers", type=int, default=12)
    ap.add_argument("--chain-frames", type=int, default=2)
    ap.add_argument("--work", type=Path, help="build directory (default: a temporary one, removed after)")
    ap.add_argument("--json", type=Path, help="write the measurements here")
    ap.add_argument("--reuse-builds", action="store_true", help="run the simulators already built in --work")
    ap.add_argument(
        "--update", action="store_true", help="keep --json's other entries, replacing the ones measured now"
    )
    args = ap.parse_args(argv)
    if shutil.which("verilator") is None:
        sys.exit("verilator not found on PATH")
    work = args.work or Path(tempfile.mkdtemp(prefix="hgpipe-rtl-"))
    command = "python3 benchmarks/hgpipe/run_hgpipe.py " + " ".join(argv or sys.argv[1:])
    result: dict = {
        "source": "github.com/OpenDarrenlu/HG-PIPE",
        "commit": COMMIT,
        "verilator": verilator_version(),
        "stage_notes": STAGE_NOTES,
        "cycles": (
            "cycle 0 is the first cycle out of reset, with ap_start and every valid/ready high; a block accepts its "
            "first input beat at cycle 1, so first_output_cycle - 1 is first-in to first-out. ii_cycles: the last "
            "interval between ap_done pulses; output_intervals: between frames' last output beats"
        ),
        "runs": [],
        "blocks": [],
    }
    if args.update and args.json and args.json.exists():
        result.update(json.loads(args.json.read_text()))
    result["runs"].append(
        {
            "command": command,
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "host": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start",
        }
    )

    def save() -> None:  # after every measurement, so a long run keeps what it has
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1) + "\n")

    try:
        for b in args.blocks:
            r = measure_block(args.repo, b, work, args.frames, args.reuse_builds)
            print(
                f"{b:12s} II {r['ii_cycles']:6d} (README {r['readme_ii_cycles']}) first out {r['first_output_cycle']}"
                f" | {r['cycles_per_cpu_s']:,} cycles/CPU-s, build {r['build_wall_s']} s",
                flush=True,
            )
            r["run"] = len(result["runs"]) - 1
            result["blocks"] = [x for x in result["blocks"] if x["block"] != b] + [r]
            save()
        if args.chain:
            c = measure_chain(args.repo, work, args.chain_frames, args.chain_layers, args.reuse_builds)
            for row in c["images"]:
                print(
                    f"chain image {row['image']}: first in -> last out {row['first_in_to_last_out']}",
                    flush=True,
                )
            print(
                f"chain last-out intervals {c['last_out_intervals']}, {c['cycles_per_cpu_s']:,} cycles/CPU-s"
            )
            c["run"] = len(result["runs"]) - 1
            result["chain"] = c
            save()
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
