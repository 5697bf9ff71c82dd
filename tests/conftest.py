import pytest
import torch


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="device for device-parametrized tests")


def pytest_configure(config):
    # Tests run on 2 shared cores: one torch and one BLAS/OpenMP thread, in this process and in
    # the processes tests start, keep timings irrelevant and avoid stalls (with one BLAS thread
    # per core, pytest-xdist's workers spun against each other: sbibm's C2ST classifier ran 5x
    # slower; avo_bench.workers.pin_threads).
    from avo_bench.workers import pin_threads

    pin_threads(1)


#: The slow tests of several CPU minutes (seconds measured 2026-12-02 with ``pytest -m slow -n 0
#: --durations=0`` on one core of the 2 here, the other busy: 4,760 s for the 102 slow tests).
#: They are collected first, so that pytest-xdist's workers start them early and share the
#: rest: collected last (their file order), the 722 s one ran alone at the end.
HEAVY = {
    "test_sequential.py::test_gaussian_linear_posterior_at_a_thousand[snle]": 722,
    "test_runner.py::test_default_grid_every_registered_method": 384,
    "test_neural.py::test_sbibm_gaussian_linear_c2st[nle-1000]": 318,
    "test_options.py::test_documented_option_values_with_every_method[ising.field=True]": 292,
    "test_iid_methods.py::test_gaussian_iid_c2st[12-nle]": 200,
    "test_new_methods_sbi.py::test_gaussian_linear_posterior_at_ten_thousand[npe_ensemble]": 200,
    "test_new_methods_nonsbi.py::test_abc_rf_sbibm_gaussian_linear_c2st[10000]": 153,
    "test_avo.py::test_predictive_improves_from_1e4_to_1e5[poisson]": 148,
    "test_iid_methods.py::test_gaussian_iid_c2st[11-nle]": 143,
}


def _heaviness(item) -> int:
    return -HEAVY.get(item.nodeid.rsplit("/", 1)[-1], 0)


def pytest_collection_modifyitems(config, items):
    items.sort(key=_heaviness)  # stable: the others keep their order
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def device(request):
    name = request.config.getoption("--device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    return torch.device(name)


@pytest.fixture(autouse=True)
def _seed():
    # Tests must not depend on global RNG state; library code takes explicit generators.
    torch.manual_seed(0)


#: Settings for the tests that run every method to check the wiring, not the accuracy: 1,000
#: returned draws, short MCMC chains, two rounds of the sequential methods, no FMPE amortized
#: check (200 ODE solves, minutes; ``tests/test_new_methods_sbi.py`` tests that path), two NPE
#: ensemble members and a 300-step cGAN floor (the two costliest cells after SNLE's in
#: ``test_default_grid_every_registered_method``: 76 s and 50 s of its 650 s) (each key only
#: for the methods that have it).
CHEAP = {"num_samples": 1000, "num_chains": 10, "warmup_steps": 10, "num_rounds": 2,
         "amortized_check": False, "ensemble_size": 2, "min_steps": 300}  # fmt: skip


@pytest.fixture
def cheap_method_options():
    """``method_options`` with :data:`CHEAP` for every available registered method."""
    from avo_bench.methods import METHODS

    return {
        name: {k: v for k, v in CHEAP.items() if k in method.make_config().__dataclass_fields__}
        for name, method in METHODS.items()
        if method.available()
    }
