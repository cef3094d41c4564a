"""Statistics over seeds, as a reviewer reads them: a mean with its 95 % Student-t confidence interval, and the
paired difference of two points run on the same seeds (same data split and shuffles: the seed's share of the noise
cancels) with its interval and a two-sided paired t-test. A difference is "resolved" when its interval excludes 0
(the same as p < 0.05); with 3 seeds (2 degrees of freedom, t = 4.30) that takes a difference ~2.5x its std.
"""

import math
import statistics
from dataclasses import dataclass

from scipy.stats import t as student_t

LEVEL = 0.95


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample standard deviation (n - 1)
    half_width: float  # of the 95 % interval of the mean: mean +- half_width; nan for one value

    @property
    def interval(self) -> tuple[float, float]:
        return self.mean - self.half_width, self.mean + self.half_width


def summary(values: list[float]) -> Summary:
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return Summary(n, mean, 0.0, math.nan)
    std = statistics.stdev(values)
    return Summary(n, mean, std, float(student_t.ppf(0.5 + LEVEL / 2, n - 1)) * std / math.sqrt(n))


@dataclass(frozen=True)
class Paired:
    difference: Summary  # of a - b, seed by seed
    p: float  # two-sided paired t-test; nan with fewer than two shared seeds

    @property
    def resolved(self) -> bool:
        low, high = self.difference.interval
        return self.difference.n >= 2 and (low > 0 or high < 0)


def paired(a: dict[int, float], b: dict[int, float]) -> Paired:
    """a, b: seed -> value; compared on the seeds both have."""
    seeds = sorted(set(a) & set(b))
    d = summary([a[s] - b[s] for s in seeds]) if seeds else Summary(0, math.nan, math.nan, math.nan)
    if d.n < 2:
        return Paired(d, math.nan)
    if d.std == 0:  # every seed moved by the same amount: no noise left to test against
        return Paired(Summary(d.n, d.mean, 0.0, 0.0), 1.0 if d.mean == 0 else 0.0)
    t = d.mean / (d.std / math.sqrt(d.n))
    return Paired(d, float(2 * student_t.sf(abs(t), d.n - 1)))
