import subprocess
import sys

import accelsim


def test_every_public_name_resolves() -> None:
    for name in accelsim.__all__:
        assert getattr(accelsim, name) is not None, name


def test_flow_functions_stay_callable_once_their_subpackages_are_imported() -> None:
    # importing a subpackage rebinds ``accelsim.<name>`` to the module; it must still be the function's door
    code = (
        "import accelsim, accelsim.lower.rules, accelsim.compress.quantize, accelsim.search.outputs\n"
        "from accelsim.lower.frontend import lower\n"
        "assert callable(accelsim.lower) and callable(accelsim.compress) and callable(accelsim.search)\n"
        "g = accelsim.lower(__import__('torch').nn.Linear(4, 2), (1, 4))\n"
        "assert g.total_macs == 8, g.total_macs\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_accelsim_does_not_import_torch() -> None:
    code = "import sys, accelsim, accelsim.sim, accelsim.eval; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_overflow_report_is_a_deprecated_name_of_accumulator_overflow_error() -> None:
    import pytest

    from accelsim.errors import AccumulatorOverflowError

    with pytest.warns(
        FutureWarning, match=r"accelsim\.OverflowReport is deprecated; use accelsim\.Accum"
    ) as w:
        assert accelsim.OverflowReport is AccumulatorOverflowError
    with pytest.warns(FutureWarning, match=r"accelsim\.errors\.OverflowReport is deprecated") as w2:
        from accelsim.errors import OverflowReport
    assert w[0].filename == w2[0].filename == __file__  # the warning points at the caller
    assert OverflowReport is AccumulatorOverflowError
    with pytest.raises(OverflowReport):  # old except clauses still catch the new error
        raise AccumulatorOverflowError("x")
    assert "OverflowReport" not in accelsim.__all__ and "OverflowReport" not in dir(accelsim)
    with pytest.raises(AttributeError, match="no attribute 'NoSuchError'"):
        accelsim.errors.NoSuchError  # noqa: B018
