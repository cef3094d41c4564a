"""ManualSGD's update, the seeds' two momentum forms, against the equations written out by hand."""

import pytest
import torch

from src.manual.optim import ManualSGD

GRADS = [
    torch.tensor([0.5, -1.0], dtype=torch.float64),
    torch.tensor([2.0, 0.25], dtype=torch.float64),
    torch.tensor([-1.5, 3.0], dtype=torch.float64),
]


def run(optimizer: ManualSGD, w: torch.Tensor, grads: list[torch.Tensor]) -> torch.Tensor:
    for g in grads:
        w.grad = g.clone()
        optimizer.step()
    return w


@pytest.mark.parametrize("dampening", [0.0, 0.9])
def test_the_update_is_the_seeds_equation(dampening):
    """m_n = mu m_(n-1) + (1 - dampening) g_n, w_(n+1) = w_n - lr m_n, m_0 = 0: seed 002's form (dampening 0) and
    seed 003's equations (30)-(31) (dampening = mu)."""
    lr, mu = 0.1, 0.9
    w = torch.tensor([1.0, -2.0], dtype=torch.float64)
    run(ManualSGD([w], lr=lr, momentum=mu, dampening=dampening), w, GRADS)
    expected, m = torch.tensor([1.0, -2.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    for g in GRADS:
        m = mu * m + (1 - dampening) * g
        expected = expected - lr * m
    assert torch.equal(w, expected)


def test_seed_003s_form_averages_a_constant_gradient():
    """Seed 003's momentum is an average of past gradients: under a constant gradient it tends to it, not to
    g / (1 - mu) as seed 002's does (after 200 steps: 1 - 0.9^200 of it)."""
    steps, mu = 200, 0.9
    for dampening, limit in ((0.9, 1.0), (0.0, 10.0)):
        w = torch.zeros(1, dtype=torch.float64)
        optimizer = ManualSGD([w], lr=1.0, momentum=mu, dampening=dampening)
        run(optimizer, w, [torch.ones(1, dtype=torch.float64)] * steps)
        assert optimizer.state[w]["delta"].item() == pytest.approx(limit * (1 - mu**steps), rel=1e-12)


def test_a_checkpoint_from_before_dampening_resumes_undamped():
    w = torch.tensor([1.0, -2.0], dtype=torch.float64)
    old = ManualSGD([w], lr=0.1, momentum=0.9)
    run(old, w, GRADS[:1])
    state = old.state_dict()
    del state["param_groups"][0]["dampening"]  # as written by the ManualSGD of earlier versions
    resumed = ManualSGD([w], lr=0.1, momentum=0.9, dampening=0.5)
    resumed.load_state_dict(state)
    assert resumed.param_groups[0]["dampening"] == 0.0
    before = w.clone()
    run(resumed, w, GRADS[1:2])
    assert torch.equal(w, before - 0.1 * (0.9 * GRADS[0] + GRADS[1]))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="dampening"):
        ManualSGD([torch.zeros(1)], dampening=1.0)
