"""Bench: scoring + classification + roll-ups of 1,000,000 enterprise-years in 200 pools (numpy bulk path).

Generation is not timed. Run: PYTHONPATH=gen:. .venv/bin/python -m tests.bench.bench_evaluation_engine
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from services.evaluation.domain import EnterpriseColumns, evaluate_bulk
from services.evaluation.domain.policy import RAW_FIELDS
from services.evaluation.policies import load_bundled_policy

ROWS = 1_000_000
REGIONS = 100  # × 2 size classes = 200 pools
SEED = 20240601


def generate(rows: int = ROWS, seed: int = SEED) -> EnterpriseColumns:
    rng = np.random.default_rng(seed)
    size_class = (rng.random(rows) < 0.4).astype(np.int8)  # 40 % 规下
    land = np.round(rng.lognormal(3.0, 1.0, rows) + 3.0, 2)
    value_added = np.round(rng.lognormal(7.0, 1.2, rows), 2)

    def scaled(base: np.ndarray, mean: float, sigma: float) -> np.ndarray:
        return np.round(base * rng.lognormal(mean, sigma, rows), 2)

    values = {
        "land_mu": land,
        "value_added": value_added,
        "tax_paid": np.round(value_added * rng.lognormal(-1.8, 0.6, rows) - rng.random(rows) * 5, 2),
        "sales": scaled(value_added, 1.5, 0.4),
        "main_revenue": scaled(value_added, 1.4, 0.4),
        "energy_tce": scaled(value_added, -1.0, 0.8),
        "pollutant_t": np.where(rng.random(rows) < 0.05, np.nan, scaled(value_added, -6.0, 1.0)),
        "cod_t": scaled(value_added, -7.0, 1.0),
        "water_t": scaled(value_added, 2.0, 0.7),
        "kwh": np.round(value_added * rng.lognormal(8.0, 0.7, rows)),
        "rd_expense": scaled(value_added, -3.5, 1.0),
        "avg_employees": np.maximum(1.0, np.round(value_added / rng.lognormal(3.0, 0.5, rows))),
    }
    assert set(values) == set(RAW_FIELDS)
    return EnterpriseColumns(
        credit_order=rng.permutation(rows).astype(np.int64),
        region=rng.integers(0, REGIONS, rows, dtype=np.int32),
        region_names=tuple(f"33{i:04d}" for i in range(REGIONS)),
        park=rng.integers(-1, 400, rows, dtype=np.int32),
        park_names=tuple(f"park-{i:03d}" for i in range(400)),
        industry_code4=rng.integers(1300, 4700, rows, dtype=np.int32),
        industry_digits=np.full(rows, 4, dtype=np.int8),
        size_class=size_class,
        year=np.full(rows, 2024, dtype=np.int16),
        values=values,
        years_since_production=rng.integers(0, 30, rows, dtype=np.int16),
        flags={"major_project_under_construction": rng.random(rows) < 0.002},
        adjustment_counts={"HNTE": (rng.random(rows) < 0.1).astype(np.int32),
                           "SRDI_N": (rng.random(rows) < 0.03).astype(np.int32),
                           "RENT": rng.poisson(0.2, rows).astype(np.int32)},
        veto=rng.random(rows) < 0.003,
        downgrade_count=(rng.random(rows) < 0.01).astype(np.int8),
        prior_consecutive_d=np.where(rng.random(rows) < 0.04, rng.integers(1, 5, rows), 0).astype(np.int16),
    )


def _peak_rss_gb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1024**3 if sys.platform == "darwin" else 1024**2)


def main() -> None:
    policy = load_bundled_policy()
    started = time.perf_counter()
    columns = generate()
    generated = time.perf_counter() - started
    evaluate_bulk(policy, generate(rows=10_000, seed=1))  # warm-up: imports and first-call costs
    started = time.perf_counter()
    result = evaluate_bulk(policy, columns)
    elapsed = time.perf_counter() - started
    graded = int((result.status == 0).sum())
    print(f"evaluation.engine.generate  {generated:.2f} s  rows {ROWS}")
    print(f"evaluation.engine.1M  {elapsed:.2f} s  peak_rss {_peak_rss_gb():.2f} GB  "
          f"pools {len(result.pool_keys)}  graded {graded}  exact_fallbacks {result.exact_fallbacks}")
    print(f"evaluation.engine.1M.rows_per_s  {ROWS / elapsed:,.0f}")


if __name__ == "__main__":
    main()
