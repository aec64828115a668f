"""RSS trend classification on synthetic series with known shapes."""

from __future__ import annotations

import math

import pytest

from leakbench.analysis.trend import MIB, analyse_series, linear_fit, rise_z


def _times(n: int = 100, dt: float = 0.1) -> list[float]:
    return [i * dt for i in range(n)]


def test_linear_growth_is_measured_in_bytes_per_second() -> None:
    ts = _times()
    values = [int(30 * MIB + 2 * MIB * t) for t in ts]
    trend = analyse_series(ts, values)
    assert trend.pattern == "linear"
    assert trend.slope_bytes_per_s == pytest.approx(2 * MIB, rel=0.01)
    assert trend.r_squared > 0.99


def test_growth_that_stops_is_a_plateau() -> None:
    ts = _times(200)
    values = [int(30 * MIB + 20 * MIB * min(t, 8.0) / 8.0) for t in ts]
    trend = analyse_series(ts, values)
    assert trend.pattern == "plateau"
    assert trend.plateau_at_s is not None and 5 < trend.plateau_at_s < 9
    assert abs(trend.slope_bytes_per_s) < 0.1 * MIB


def test_noise_without_growth_is_flat() -> None:
    ts = _times()
    values = [int(30 * MIB + 100_000 * math.sin(t * 7)) for t in ts]
    assert analyse_series(ts, values).pattern == "flat"


def test_repeated_fill_and_release_is_a_sawtooth() -> None:
    ts = _times(200)
    values = [int(30 * MIB + 40 * MIB * ((t % 4.0) / 4.0)) for t in ts]
    assert analyse_series(ts, values).pattern == "sawtooth"


def test_a_few_big_jumps_are_a_step() -> None:
    ts = _times(100)
    values = [int(30 * MIB + (50 * MIB if t > 3 else 0) + (50 * MIB if t > 6.5 else 0)) for t in ts]
    assert analyse_series(ts, values).pattern == "step"


def test_linear_fit_of_a_line_is_exact() -> None:
    fit = linear_fit([0, 1, 2, 3], [1, 3, 5, 7])
    assert fit.slope == pytest.approx(2)
    assert fit.intercept == pytest.approx(1)
    assert fit.r_squared == pytest.approx(1)


def test_growth_that_stopped_within_the_warm_up_after_the_imports_is_a_plateau() -> None:
    ts = [i * 0.1 for i in range(100)]
    # imports until 0.2 s, a cache fills from 0.2 s to 0.8 s (before the 1 s warm-up cut), then nothing
    values = [20 * MIB if t < 0.2 else int(20 * MIB + min(t - 0.2, 0.6) / 0.6 * 30 * MIB) for t in ts]
    trend = analyse_series(ts, values, warmup_end=0.2)
    assert trend.pattern == "plateau"
    assert trend.plateau_at_s is not None and trend.plateau_at_s < 1.0
    assert analyse_series(ts, values).pattern == "flat"  # imports not known: nothing says it was work


def test_a_drop_at_the_very_end_is_the_teardown_not_the_work() -> None:
    from leakbench.analysis.trend import without_final_drop

    ts = [i * 0.1 for i in range(50)]
    values = [200 * MIB + i * MIB // 4 for i in range(48)] + [150 * MIB, 20 * MIB]
    kept_ts, kept = without_final_drop(ts, values)
    assert len(kept) == 48 and kept_ts[-1] == ts[47]
    saw = [(i % 10) * MIB for i in range(50)]  # a drop earlier in the run is its shape: kept
    assert len(without_final_drop(ts, saw)[1]) >= 45


def test_a_series_of_two_or_three_readings_keeps_its_end() -> None:
    """A target that reads its input and ends at once leaves two or three readings; none is a teardown."""
    from leakbench.analysis.trend import without_final_drop

    assert without_final_drop([0.0, 0.1], [100, 10]) == ([0.0, 0.1], [100, 10])
    assert without_final_drop([0.0, 0.1, 0.2], [100, 100, 10])[1][:2] == [100, 100]


def test_rise_z_is_sure_of_a_staircase_and_not_of_noise_that_ends_high() -> None:
    # a leak that keeps a batch every third interval, and temporaries: a random walk around a level, which a
    # snapshot catches high or low; over 60 intervals it rose in half of them and ends above its start
    staircase = [(i // 3) * 100_000 for i in range(40)]
    rng = __import__("random").Random(7)
    noise = [300_000 + rng.randrange(-200_000, 200_000) for _ in range(60)]
    noise[-1] = noise[0] + 150_000
    assert rise_z(staircase) > 5
    assert abs(rise_z(noise)) < 2
    assert rise_z(list(reversed(staircase))) < -5
    assert rise_z([5, 5, 5, 5]) == 0.0
    # four readings that only rise are as sure as four readings can be: just past one-sided 5%
    assert 1.645 < rise_z([1, 2, 3, 4]) < 2
