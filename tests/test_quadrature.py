"""The hand-written cumulative Simpson rule against scipy's and the exact Beta CDF (issue 17).

``scipy.integrate.cumulative_simpson`` gives the same values at even nodes; at odd nodes it takes
half of each pair's parabola, which is less accurate than the rule kept in ``models.exact`` and
``decision_rules.beta`` (their docstrings say why the rule is kept).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special

from decision_rules.beta import _cumulative_simpson as beta_simpson
from models.exact import cumulative_simpson


def _logit_beta(n_nodes: int):
    """Densities of ``logit X``, ``X ~ Beta(a, b)``, on a uniform grid, and their exact CDFs."""
    a = np.array([[0.7], [3.0], [12.0], [45.0]])
    b = np.array([[2.0], [9.0], [4.0], [30.0]])
    u = np.linspace(-9.0, 7.0, n_nodes)
    f = np.exp(a * special.log_expit(u) + b * special.log_expit(-u) - special.betaln(a, b))
    x = special.expit(u)
    cdf = special.betainc(a, b, x) - special.betainc(a, b, x[0])
    return f, u[1] - u[0], cdf


@pytest.mark.parametrize("n_nodes", [161, 320, 641, 1281])
def test_even_nodes_equal_scipy_and_odd_nodes_more_accurate(n_nodes):
    f, du, exact = _logit_beta(n_nodes)
    ours = cumulative_simpson(f, du)
    theirs = integrate.cumulative_simpson(f, dx=du, initial=0.0)
    if n_nodes % 2:  # an odd node count: scipy's even nodes are composite Simpson too
        np.testing.assert_allclose(ours[:, ::2], theirs[:, ::2], rtol=0, atol=1e-13)
    err_ours = np.abs(ours - exact)[:, 1::2].max()
    err_theirs = np.abs(theirs - exact)[:, 1::2].max()
    assert err_ours < err_theirs / 4  # about 6x at every resolved grid
    assert np.abs(ours - exact).max() < 1.2e-4 * (161 / n_nodes) ** 4  # fourth order


def test_the_two_copies_are_the_same_rule():
    f, du, _ = _logit_beta(161)
    np.testing.assert_array_equal(beta_simpson(f, np.full(f.shape[0], du)), cumulative_simpson(f, du))
    # a spacing per row: the same as row by row
    dus = np.array([0.05, 0.1, 0.2, 0.4])
    rows = np.stack([cumulative_simpson(f[i], dus[i]) for i in range(len(dus))])
    np.testing.assert_allclose(beta_simpson(f, dus), rows, rtol=1e-14, atol=0)
    np.testing.assert_allclose(cumulative_simpson(f, dus), rows, rtol=1e-14, atol=0)
