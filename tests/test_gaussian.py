import numpy as np
import pytest
import torch

from simulators import get_simulator


def test_posterior_matches_general_linear_gaussian_formula():
    sim = get_simulator("gaussian", dim=3, prior_mean=0.5, prior_var=2.0, noise_var=0.3, n_obs=7)
    x = sim.observe(generator=torch.Generator().manual_seed(0)).double().numpy()
    # Independent reference: the matrix form of the linear-Gaussian posterior.
    s0, s = 2.0 * np.eye(3), 0.3 * np.eye(3)
    cov = np.linalg.inv(np.linalg.inv(s0) + 7 * np.linalg.inv(s))
    mean = cov @ (np.linalg.inv(s0) @ np.full(3, 0.5) + np.linalg.inv(s) @ x.sum(0))
    post = sim.posterior(torch.as_tensor(x))
    np.testing.assert_allclose(post.loc.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(post.scale.numpy() ** 2, np.diag(cov), rtol=1e-12)


def test_posterior_is_calibrated():
    # Simulation-based calibration: theta ~ prior, x ~ sim(theta); the rank of theta under the
    # analytic posterior is uniform, i.e. the posterior CDF at theta is U(0, 1).
    sim = get_simulator("gaussian", dim=2, prior_var=1.0, noise_var=4.0, n_obs=5)
    g = torch.Generator().manual_seed(1)
    theta = sim.prior.sample((2000,), generator=g, dtype=torch.float64)
    x = sim.simulate(theta.repeat_interleave(5, 0), generator=g).reshape(2000, 5, 2)
    precision = 1.0 + 5 / 4.0
    mean = (x.sum(1) / 4.0) / precision
    u = torch.special.ndtr((theta - mean) * precision**0.5)
    from scipy.stats import kstest

    assert kstest(u.flatten().numpy(), "uniform").pvalue > 1e-3
    post = sim.posterior(x[0])
    assert torch.allclose(post.loc, mean[0]) and torch.allclose(
        post.scale, torch.tensor(precision, dtype=torch.float64) ** -0.5
    )


def test_sbibm_gaussian_linear_configuration():
    sim = get_simulator("gaussian", dim=10, prior_var=0.1, noise_var=0.1, n_obs=1)
    assert sim.theta_dim == 10 and sim.x_shape == (10,) and sim.observe().shape == (1, 10)
    assert torch.allclose(sim.prior.scale**2, torch.full((10,), 0.1, dtype=torch.float64))
    post = sim.posterior(torch.zeros(1, 10))
    assert torch.allclose(post.scale**2, torch.full((10,), 0.05, dtype=torch.float64))


def test_noise_variance_of_samples():
    sim = get_simulator("gaussian", dim=2, noise_var=0.25)
    theta = torch.zeros(100_000, 2)
    x = sim.simulate(theta, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(x.var(0), torch.full((2,), 0.25), rtol=0.02)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"dim": 0}, "dim"),
        ({"prior_var": -1.0}, "prior_var"),
        ({"theta_star": [1.0, 2.0, 3.0]}, "theta_star"),
    ],
)
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        get_simulator("gaussian", **options)
