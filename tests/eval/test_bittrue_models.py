"""Integration: the shipped reference models at W8A8, bit-true on the simulated hardware's arithmetic
(integer softmax/GELU-LUT/layernorm, 32-bit accumulators) against the torch fake-quant model.

Stated tolerance: top-1 agreement >= 99% of the test images, and the largest logit difference at
most a stated share of the largest fake-quant logit magnitude:
- ref_deit, 4%: measured 100% agreement, 0.107 at magnitude 4.92 (2.2%) with the integer units,
  0.054 with float units;
- ref_efficientvit, 7.5%: measured 100% agreement, 0.266 at magnitude 4.22 (6.3%); 0.306 with float
  units and the true divider. The largest difference is one sensitive image (the head's layernorm
  over small pooled features amplifies 1-LSB rounding flips); with float units the mean difference
  is 0.0146 with the log2 shift divider and 0.0082 with the true one. What remains against fake-quant is not executor
  error: (1) the zcu102 divider shifts while the w8a8 recipe's model divides exactly (no
  ``log2_attention``), and (2) a tensor quantised for a conv also feeds a residual add or LiteMLA's
  concat: the graph (one INT8 tensor, as hardware stores it) adds the quantised value, the fake-quant
  model the float one.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from accelsim.eval.models import WORKLOADS_DIR, reference_spec

MODELS = ["ref_deit", "ref_efficientvit"]
LOGIT_TOLERANCE = {"ref_deit": 0.04, "ref_efficientvit": 0.075}


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_w8a8_bittrue_agrees_with_fake_quant(name: str) -> None:
    from accelsim.eval.workload_sim import simulate_workload

    if not reference_spec(name).checkpoint.is_file():
        pytest.skip(f"{name}: no shipped checkpoint yet (run workloads/train_reference.py --model {name})")
    r = simulate_workload(WORKLOADS_DIR / f"{name}_w8a8.yaml", "zcu102", accuracy=True)
    assert r.images >= 300
    assert r.top1_agreement is not None and r.top1_agreement >= 0.99
    assert r.accuracy is not None and r.accuracy_fake_quant is not None
    assert abs(r.accuracy - r.accuracy_fake_quant) <= 0.01
    d = r.to_dict()
    assert {"accuracy", "accuracy_fake_quant", "top1_agreement", "fps", "total_cycles"} <= set(d)
    assert d["arithmetic"]["softmax"] == "int" and d["arithmetic"]["accumulator_bits"] == 32
    assert not r.overflows
    # the logits: within the stated share of the largest fake-quant logit (module docstring)
    assert r.max_logit_diff is not None and r.max_abs_logit_fake_quant is not None
    assert r.max_logit_diff <= LOGIT_TOLERANCE[name] * r.max_abs_logit_fake_quant


@pytest.mark.slow
def test_cli_simulate_workload_accuracy_json(tmp_path) -> None:
    import accelsim.eval
    from accelsim.cli import main

    if not hasattr(accelsim.eval, "simulate_workload"):
        pytest.skip("accelsim.eval does not export simulate_workload yet (the lead wires it for the CLI)")
    if not reference_spec("ref_deit").checkpoint.is_file():
        pytest.skip("ref_deit: no shipped checkpoint yet (run workloads/train_reference.py)")
    out = tmp_path / "r.json"
    rc = main(
        [
            "simulate",
            "--workload",
            str(WORKLOADS_DIR / "ref_deit_w8a8.yaml"),
            "--accuracy",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["top1_agreement"] >= 0.99
    assert abs(d["accuracy"] - d["accuracy_fake_quant"]) <= 0.01
