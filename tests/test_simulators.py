"""Contract tests run over every registered simulator."""

import math

import pytest
import torch

from simulators import SIMULATORS, Simulator, get_simulator, register, simulator_options

NAMES = sorted(SIMULATORS)


def small(name: str) -> Simulator:
    """Each simulator with its default options (cheap enough for contract tests)."""
    return get_simulator(name)


def gen(seed: int, device="cpu") -> torch.Generator:
    return torch.Generator(device).manual_seed(seed)


@pytest.mark.parametrize("name", NAMES)
def test_interface(name):
    sim = small(name)
    assert sim.name == name
    assert sim.kind in ("point", "population")
    assert isinstance(sim.description, str) and sim.description
    assert len(sim.parameter_names) == sim.theta_dim >= 1
    assert isinstance(sim.differentiable, bool)
    assert sim.n_obs >= 1
    if sim.kind == "point":
        assert sim.true_parameters.shape == (sim.theta_dim,)
        assert torch.isfinite(sim.prior.log_prob(sim.true_parameters[None].double())).all()
    else:
        assert sim.true_parameters is None


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtype_determinism(name):
    sim = small(name)
    theta = sim.prior.sample((7,), generator=gen(0))
    assert theta.shape == (7, sim.theta_dim) and theta.dtype == torch.float32
    x1 = sim.simulate(theta, generator=gen(1))
    x2 = sim.simulate(theta, generator=gen(1))
    x3 = sim.simulate(theta, generator=gen(2))
    assert x1.shape == (7, *sim.x_shape)
    assert x1.dtype == theta.dtype and x1.device == theta.device
    assert torch.isfinite(x1).all()
    assert torch.equal(x1, x2)
    if name != "rosenbrock":  # the Rosenbrock model is deterministic by default
        assert not torch.equal(x1, x3)
    obs1, obs2 = sim.observe(50, generator=gen(3)), sim.observe(50, generator=gen(3))
    assert obs1.shape == (50, *sim.x_shape) and torch.equal(obs1, obs2)
    assert not torch.equal(obs1, sim.observe(50, generator=gen(4)))


@pytest.mark.parametrize("name", NAMES)
def test_float64(name):
    sim = small(name)
    theta = sim.prior.sample((3,), generator=gen(0), dtype=torch.float64)
    assert sim.simulate(theta, generator=gen(0)).dtype == torch.float64


@pytest.mark.parametrize("name", NAMES)
def test_device(name, device):
    sim = small(name)
    theta = sim.prior.sample((5,), generator=gen(0, device))
    assert theta.device.type == device.type
    x = sim.simulate(theta, generator=gen(1, device))
    assert x.device.type == device.type


@pytest.mark.gpu
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_shapes(name):
    sim = small(name)
    theta = sim.prior.sample((5,), generator=gen(0, "cuda"))
    assert sim.simulate(theta, generator=gen(1, "cuda")).is_cuda


@pytest.mark.parametrize("name", NAMES)
def test_bad_theta(name):
    sim = small(name)
    good = sim.prior.sample((2,), generator=gen(0))
    with pytest.raises(ValueError, match=name):
        sim.simulate(good[:, :1] if sim.theta_dim > 1 else good.repeat(1, 2))
    with pytest.raises(ValueError, match="shape"):
        sim.simulate(good[0])
    nan = good.clone()
    nan[1, 0] = math.nan
    with pytest.raises(ValueError, match=f"{name}.*finite"):
        sim.simulate(nan)
    with pytest.raises(ValueError, match="floating"):
        sim.simulate(good.long())
    if math.isfinite(float(sim.prior.high[0])):
        outside = good.clone()
        outside[0, 0] = float(sim.prior.high[0]) + 1.0
        with pytest.raises(ValueError, match=f"{sim.parameter_names[0]}.*outside the prior"):
            sim.simulate(outside)


@pytest.mark.parametrize("name", NAMES)
def test_bad_options(name):
    with pytest.raises(ValueError, match="valid options"):
        get_simulator(name, no_such_option=1)
    assert set(simulator_options(name)) == set(small(name).options())
    with pytest.raises(ValueError, match="must be"):
        small(name).observe(0)


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="choose from: " + ", ".join(NAMES)):
        get_simulator("nope")


def test_duplicate_registration():
    with pytest.raises(ValueError, match="already registered"):
        register(NAMES[0])(type("Dup", (Simulator,), {}))


@pytest.mark.parametrize("name", NAMES)
def test_identified_is_a_function_of_theta(name):
    sim = small(name)
    theta = sim.prior.sample((4,), generator=gen(0), dtype=torch.float64)
    value = sim.identified(theta)
    assert value.ndim == 2 and value.shape[0] == 4 and torch.isfinite(value).all()
