"""Statistics over seeds: bootstrap intervals, significance marks, ranks, coverage curves."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from avo_bench.results import COLUMNS
from avo_bench.stats import (
    ALPHA,
    badness,
    bootstrap_means,
    compare_methods,
    coverage_curve,
    mean_ranks,
)
from avo_bench.summary import summarize


def test_bootstrap_interval_of_two_values_is_their_range():
    # the bootstrap distribution of the mean of {0, 1} is {0, 1/2, 1} with mass 1/4, 1/2, 1/4:
    # its 2.5 % and 97.5 % points are 0 and 1
    mean, low, high = bootstrap_means([np.array([0.0, 1.0])])[0]
    assert (mean, low, high) == (0.5, 0.0, 1.0)


def test_bootstrap_interval_matches_the_t_interval_of_a_large_normal_sample():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=400)
    mean, low, high = bootstrap_means([x])[0]
    t_low, t_high = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert mean == pytest.approx(x.mean())
    assert low == pytest.approx(t_low, abs=0.05 * (t_high - t_low))
    assert high == pytest.approx(t_high, abs=0.05 * (t_high - t_low))


def test_bootstrap_edge_cases_and_reproducibility():
    out = bootstrap_means([np.array([2.0]), np.array([5.0, 5.0, 5.0]), np.array([]),
                           np.array([1.0, np.nan, 3.0])])  # fmt: skip
    assert out[0, 0] == 2.0 and np.isnan(out[0, 1:]).all()  # one seed: no interval
    assert list(out[1]) == [5.0, 5.0, 5.0]  # constant: a point interval
    assert np.isnan(out[2]).all()
    assert out[3, 0] == 2.0 and out[3, 1] <= 2.0 <= out[3, 2]  # NaN dropped
    groups = [np.arange(5.0), np.arange(7.0) ** 2]
    assert np.array_equal(bootstrap_means(groups, seed=3), bootstrap_means(groups, seed=3))


def known_winner() -> pd.DataFrame:
    """Five seeds: ``a`` best; ``b`` worse on every seed; ``c`` beats ``a`` on 2 of 5 seeds."""
    a = np.array([1.0, 1.2, 0.9, 1.1, 1.0])
    values = {"a": a, "b": a + np.array([0.5, 0.3, 0.4, 0.6, 0.2]),
              "c": a + np.array([0.3, -0.1, 0.2, -0.05, 0.1])}  # fmt: skip
    return pd.DataFrame([{"method": m, "seed": s, "value": v}
                         for m, vs in values.items() for s, v in enumerate(vs)])  # fmt: skip


def as_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Tidy result rows of data-space W1 from ``method``/``seed``/``value`` (and optionally
    ``simulator``, default ``s1``, and ``status``, default ``ok``)."""
    frame = frame.assign(
        **{k: frame.get(k, v) for k, v in (("simulator", "s1"), ("status", "ok"))}
    )
    return pd.DataFrame(
        [dict.fromkeys(COLUMNS, "") | {"simulator": r.simulator, "method": r.method,
                                        "seed": r.seed, "budget": 100, "space": "data",
                                        "metric": "wasserstein1", "value": r.value, "floor": 0.5,
                                        "direction": "lower", "ideal": 0.0, "status": r.status,
                                        "n_obs": 1}
         for r in frame.itertuples()], columns=COLUMNS,
    )  # fmt: skip


def test_marks_on_a_table_with_a_known_winner():
    table = compare_methods(known_winner(), "lower")
    assert list(table.index) == ["a", "c", "b"]
    assert table.best.tolist() == [True, False, False]
    # b is worse on all 5 seeds: the exact one-sided Wilcoxon p-value is 2^-5
    assert table.loc["b", "p"] == pytest.approx(1 / 32) and not table.loc["b", "tied"]
    assert table.loc["c", "p"] > ALPHA and table.loc["c", "tied"]
    assert table.loc["a", "low"] < table.loc["a", "mean"] < table.loc["a", "high"]
    # higher is better: the order reverses; nearest to an ideal of 1.6: b's values are nearest
    assert compare_methods(known_winner(), "higher").index[0] == "b"
    assert compare_methods(known_winner(), "nearest", ideal=1.6).index[0] == "b"


def test_marks_in_the_report_summary_agree():
    frame = known_winner()
    rows = as_rows(frame)
    table = summarize(rows).set_index("method")
    assert table.best.tolist() == [True, False, False]
    assert table.loc["b", "p"] == pytest.approx(1 / 32)
    assert table.tied.tolist() == [True, False, True]
    expected = compare_methods(frame, "lower")
    assert np.allclose(table.loc[["a", "b", "c"], ["mean", "low", "high"]],
                       expected.loc[["a", "b", "c"], ["mean", "low", "high"]])  # fmt: skip


def test_with_fewer_than_five_seeds_nothing_is_significantly_worse():
    frame = known_winner()
    table = compare_methods(frame[frame.seed < 4], "lower")
    assert table.loc["b", "p"] == pytest.approx(1 / 16) and table.tied.all()


def test_a_method_with_fewer_finished_seeds_is_never_crowned():
    # d finished one seed with the best value of all; a finished all five and stays the best
    frame = pd.concat([known_winner(), pd.DataFrame([{"method": "d", "seed": 0, "value": 0.1}])])
    table = compare_methods(frame, "lower")
    assert table.index[0] == "a" and table.best.tolist() == [True, False, False, False]
    assert table.loc["d", "n"] == 1 and table.loc["d", "mean"] < table.loc["a", "mean"]
    rows = as_rows(frame)
    summary = summarize(rows).set_index("method")
    assert summary.best[summary.best].index.tolist() == ["a"]
    # with one seed each (a one-seed run), the best mean wins as before
    one = frame[frame.seed == 0]
    assert compare_methods(one, "lower").index[0] == "d"


def test_mean_ranks_across_tasks():
    means = pd.DataFrame({"a": [1.0, 0.9, np.nan], "b": [2.0, 0.1, 3.0], "c": [3.0, 0.5, 1.0]},
                         index=["t1", "t2", "t3"])  # fmt: skip
    ranks = mean_ranks(means, {"t1": ("lower", 0), "t2": ("higher", 0), "t3": ("lower", 0)})
    assert ranks.loc["a", "mean_rank"] == pytest.approx(1.0) and ranks.loc["a", "tasks"] == 2
    assert ranks.loc["b", "mean_rank"] == pytest.approx((2 + 3 + 2) / 3)
    assert ranks.loc["c", "mean_rank"] == pytest.approx((3 + 2 + 1) / 3)


def test_coverage_curve_and_badness():
    levels = np.array([0.1, 0.5, 0.5, 0.9, np.nan])
    assert coverage_curve(levels, np.array([0.0, 0.5, 1.0])).tolist() == [0.0, 0.75, 1.0]
    assert badness(np.array([0.4, 0.7]), "nearest", 0.5).tolist() == pytest.approx([0.1, 0.2])
    with pytest.raises(ValueError, match="direction must be one of"):
        badness(np.array([1.0]), "uniform")


def test_ranks_on_the_tasks_every_method_finished():
    from avo_bench.report import ranks
    from avo_bench.summary import finished_tasks
    from avo_bench.summary import mean_ranks as table_ranks

    scores = {  # task -> method -> value on both seeds; None: not applicable
        "s1": {"a": 1.0, "b": 2.0, "c": 3.0},
        "s2": {"a": 2.0, "b": 1.0},  # c not run yet: s2 is not finished
        "s3": {"a": 1.0, "b": 2.0, "c": None},  # c does not apply: s3 is finished
        "s4": {"a": 3.0, "b": 1.0, "c": 2.0},  # b failed on seed 1: s4 is not finished
    }
    frame = pd.DataFrame(
        [{"simulator": t, "method": m, "seed": s, "value": np.nan if v is None else v,
          "status": "n/a" if v is None else "ok"}
         for t, methods in scores.items() for m, v in methods.items() for s in (0, 1)]
    )  # fmt: skip
    failed = (frame.simulator == "s4") & (frame.method == "b") & (frame.seed == 1)
    frame.loc[failed, ["value", "status"]] = [np.nan, "error"]
    rows = as_rows(frame)
    assert finished_tasks(rows) == {100: {"s1", "s3"}}
    key = (("data", "wasserstein1"),)
    table = table_ranks(summarize(rows), key, finished_tasks(rows))
    common = table["budget 100, the 2 tasks all finished"]
    assert common.tolist() == ["1.00 (2)", "2.00 (2)", "3.00 (1)"]  # a, b, c
    assert list(table.index) == ["a", "b", "c"]
    # over every task each ran: a (1, 2, 1, 3), b (2, 1, 2, 1 on its one seed), c (3, 2)
    assert table["budget 100"].tolist() == ["1.75 (4)", "1.50 (4)", "2.50 (2)"]
    assert "tasks all finished" in ranks(summarize(rows), rows)
    assert "tasks all finished" not in ranks(summarize(rows))
