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
