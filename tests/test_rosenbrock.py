import numpy as np
import torch
from scipy import stats

from simulators import get_simulator
from simulators.rosenbrock import rosenbrock


def test_known_values():
    theta = torch.tensor(
        [[1.0, 1.0], [0.0, 0.0], [-1.0, 1.0], [2.0, 3.0], [-2.0, -1.0]], dtype=torch.float64
    )
    expected = [0.0, 1.0, 4.0, 100.0 * 1.0 + 1.0, 100.0 * 25.0 + 9.0]
    assert rosenbrock(theta).flatten().tolist() == expected
    sim = get_simulator("rosenbrock")
    assert sim.simulate(theta).flatten().tolist() == expected


def test_observed_distribution_is_the_truncated_gaussian():
    sim = get_simulator("rosenbrock")
    y = sim.observe(20_000, generator=torch.Generator().manual_seed(0)).double().flatten().numpy()
    a, b = (250 - 350) / 50, (450 - 350) / 50
    reference = stats.truncnorm(a, b, loc=350, scale=50)
    assert stats.kstest(y, reference.cdf).pvalue > 1e-3
    grid = np.linspace(200, 500, 61)
    np.testing.assert_allclose(
        sim.observed_density(torch.as_tensor(grid)).numpy(),
        reference.pdf(grid),
        rtol=1e-10,
        atol=1e-15,
    )


def test_gradient_flows():
    sim = get_simulator("rosenbrock")
    theta = torch.tensor([[0.5, 0.5]], requires_grad=True)
    sim.simulate(theta).sum().backward()
    # dM/dt1 = -400 t1 (t2 - t1^2) - 2 (1 - t1), dM/dt2 = 200 (t2 - t1^2)
    assert torch.allclose(theta.grad, torch.tensor([[-400 * 0.5 * 0.25 - 1.0, 200 * 0.25]]))


def test_noise_option():
    sim = get_simulator("rosenbrock", noise_std=2.0)
    x = sim.simulate(torch.ones(50_000, 2), generator=torch.Generator().manual_seed(0))
    assert abs(float(x.std()) - 2.0) < 0.05
