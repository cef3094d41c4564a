"""The intervals and the paired test against a hand-computed example. With 3 seeds (2 degrees of freedom) Student's
t has closed forms: F(t) = 1/2 + t / (2 sqrt(t^2 + 2)), so the two-sided p of t is 1 - t / sqrt(t^2 + 2), and the
quantile of u is (2u - 1) / sqrt(2 u (1 - u))."""

import math

import pytest

from src import stats

T_975_DF2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)  # 4.302652729...


def test_a_mean_and_its_interval_over_three_seeds():
    s = stats.summary([0.97, 0.98, 0.96])  # mean 0.97, deviations -0, +0.01, -0.01: std 0.01
    assert s.n == 3 and abs(s.mean - 0.97) < 1e-12 and abs(s.std - 0.01) < 1e-12
    assert abs(s.half_width - T_975_DF2 * 0.01 / math.sqrt(3)) < 1e-9
    assert abs(s.interval[0] - (0.97 - T_975_DF2 * 0.01 / math.sqrt(3))) < 1e-9


def test_one_value_has_no_interval():
    s = stats.summary([0.5])
    assert s.std == 0.0 and math.isnan(s.half_width)


def test_a_paired_difference_by_hand():
    a = {0: 0.97, 1: 0.98, 2: 0.96, 7: 0.5}  # seed 7 only in a: not compared
    b = {0: 0.95, 1: 0.97, 2: 0.94}
    p = stats.paired(a, b)  # differences 0.02, 0.01, 0.02: mean 0.05/3, std 0.01/sqrt(3), standard error 0.01/3, t = 5
    assert p.difference.n == 3 and abs(p.difference.mean - 0.05 / 3) < 1e-12
    assert abs(p.difference.std - 0.01 / math.sqrt(3)) < 1e-12
    assert abs(p.difference.half_width - T_975_DF2 * 0.01 / 3) < 1e-9
    assert abs(p.p - (1 - 5 / math.sqrt(27))) < 1e-9  # 0.0377...
    assert p.resolved  # 0.0167 +- 0.0143 excludes 0


def test_a_difference_within_the_noise_is_not_resolved():
    p = stats.paired({0: 0.99, 1: 0.97, 2: 0.98}, {0: 0.98, 1: 0.98, 2: 0.98})  # differences +0.01, -0.01, 0: t = 0
    assert abs(p.difference.mean) < 1e-12 and abs(p.p - 1.0) < 1e-9 and not p.resolved


@pytest.mark.parametrize(
    "a, b, expected_p, resolved",
    [
        (
            {0: 0.75, 1: 0.5},
            {0: 0.5, 1: 0.25},
            0.0,
            True,
        ),  # the same shift on every seed (exact in binary): no noise left
        ({0: 0.9, 1: 0.8}, {0: 0.9, 1: 0.8}, 1.0, False),  # identical
    ],
)
def test_no_spread_in_the_differences(a, b, expected_p, resolved):
    p = stats.paired(a, b)
    assert p.p == expected_p and p.resolved is resolved and p.difference.half_width == 0.0


def test_fewer_than_two_shared_seeds_give_no_test():
    p = stats.paired({0: 0.9, 1: 0.8}, {1: 0.7, 2: 0.6})
    assert p.difference.n == 1 and math.isnan(p.p) and not p.resolved
