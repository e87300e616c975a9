"""Heavy dependencies (POT, scikit-learn, torchdiffeq) are imported on first use only."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scflow._lazy import LazyModule


def test_lazy_module_imports_on_first_attribute_read():
    mod = LazyModule("json")
    assert "dumps" not in vars(mod)
    assert mod.dumps is json.dumps  # the real module's attribute
    assert vars(mod)["dumps"] is json.dumps  # kept: the next read does not import again
    assert "loads" in dir(mod)
    with pytest.raises(AttributeError, match="no_such_name"):
        mod.no_such_name  # noqa: B018


def test_lazy_module_of_a_missing_package_fails_on_use_not_on_creation():
    mod = LazyModule("scflow_no_such_package")
    with pytest.raises(ModuleNotFoundError, match="scflow_no_such_package"):
        mod.anything  # noqa: B018


@pytest.mark.subprocess
def test_import_scflow_leaves_pot_sklearn_and_torchdiffeq_unimported():
    """In a fresh interpreter: ``import scflow`` imports none of them; the first solver call
    imports POT, the first ODE integration torchdiffeq."""
    code = """if True:
        import sys
        import torch
        import scflow
        heavy = ("ot", "sklearn", "torchdiffeq", "anndata")
        print([m for m in heavy if m in sys.modules])
        x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
        print(round(scflow.metrics.wasserstein(x, x + 1.0), 6), "ot" in sys.modules)
        model = scflow.FlowModel(2, hidden=(4,))  # a constant field: v(t, x) = 1
        for p in model.parameters():
            torch.nn.init.zeros_(p)
        torch.nn.init.ones_(model.velocity_net.net[-1].bias)
        y = scflow.integrate(model, x, 0.0, 1.0, n_steps=2)
        print(torch.allclose(y, x + 1.0), "torchdiffeq" in sys.modules)
    """
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    lines = res.stdout.splitlines()
    assert lines == ["[]", "1.414214 True", "True True"], res.stdout + res.stderr
