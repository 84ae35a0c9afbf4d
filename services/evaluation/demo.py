"""Demo indicator data (make run): every enterprise of the replica, two years, from the departments that
report them in practice, ingested through the same use case as real submissions, then run and published
under the default policy. Generated from a seed, so every start from empty gives the same data."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from services.common.uow import UnitOfWork
from services.evaluation.application.commands import PublishRun, RowInput, StartRun, SubmitRows
from services.evaluation.application.ingestion import Ingestion
from services.evaluation.application.runs import Runs
from services.evaluation.config import EvaluationSettings

log = logging.getLogger(__name__)

# Source departments of the registry's demo jurisdiction, and the fields each reports.
DEPARTMENTS = {
    "AG-330100-SW": ("tax_paid",),
    "AG-330100-TJ": ("value_added", "sales", "main_revenue", "rd_expense", "avg_employees",
                     "years_since_production", "adjustment.HNTE", "adjustment.SRDI_N", "adjustment.RENT"),
    "AG-330100-DL": ("kwh",),
    "AG-330100-FGW": ("energy_tce",),
    "AG-330100-STHJ": ("pollutant_t", "cod_t", "water_t", "veto.V_ENV_RED", "downgrade.G_ENV_PENALTY"),
}


def _money(value: float) -> str:
    return f"{max(value, 0.0):.2f}"


def _firm_year(rng: random.Random, base: dict, year_index: int) -> dict[str, str]:
    """One enterprise-year: a firm's own productivity drifts year to year; a few gaps, vetoes, bonuses."""
    growth = base["growth"] ** year_index
    land = base["land"]
    va = land * base["va_per_mu"] * growth * rng.uniform(0.92, 1.08)
    values = {
        "value_added": _money(va), "tax_paid": _money(va * base["tax_rate"] * rng.uniform(0.85, 1.15)),
        "sales": _money(va * rng.uniform(3.2, 4.8)), "main_revenue": _money(va * rng.uniform(3.0, 4.5)),
        "energy_tce": _money(va / base["va_per_tce"]), "pollutant_t": f"{va / base['va_per_t']:.4f}",
        "cod_t": f"{va / base['va_per_t'] / 4:.4f}", "water_t": _money(va * rng.uniform(2, 12)),
        "kwh": f"{va * base['kwh_per_va']:.0f}", "rd_expense": _money(va * 3.8 * base["rd"]),
        "avg_employees": str(max(3, int(va / base["va_per_head"]))),
        "years_since_production": str(base["since"] + year_index),
    }
    if base["above"] is False:  # 规下: no statistical value added, no R&D survey
        for name in ("value_added", "rd_expense", "main_revenue", "pollutant_t", "cod_t"):
            values.pop(name)
    if rng.random() < 0.04:
        values.pop(rng.choice(["pollutant_t", "energy_tce", "avg_employees", "kwh"]), None)
    if rng.random() < 0.12:
        values["adjustment.HNTE"] = "1"
    if rng.random() < 0.04:
        values["adjustment.SRDI_N"] = "1"
    if rng.random() < 0.05:
        values["adjustment.RENT"] = str(rng.randint(1, 3))  # tenants; the deduction follows the size class
    if rng.random() < 0.015:
        values["veto.V_ENV_RED"] = "1"
    if rng.random() < 0.02:
        values["downgrade.G_ENV_PENALTY"] = f"{rng.uniform(2, 40):.2f}"  # the year's penalties, 万元
    return values


async def load_if_empty(ingestion: Ingestion, runs: Runs, uow: UnitOfWork, repositories: Callable,
                        settings: EvaluationSettings) -> bool:
    async with uow() as tx:
        repo = repositories(tx.session)
        if await repo.has_runs() or await repo.has_indicator_data():
            return False
        enterprises = [e for e in await repo.enterprises_in("") if e.status != "deregistered"]
    if not enterprises:
        log.warning("demo data skipped: the enterprise replica is empty (is the registry up?)")
        return False
    rng = random.Random(settings.demo_seed)
    bases = {}
    for e in enterprises:
        bases[e.credit_code] = dict(
            above=e.size_class == "above", land=float(e.land_held_mu or 0) or rng.uniform(3, 40),
            va_per_mu=rng.lognormvariate(4.6, 0.6), tax_rate=rng.lognormvariate(-1.9, 0.5),
            va_per_tce=rng.lognormvariate(0.9, 0.5), va_per_t=rng.lognormvariate(8.3, 0.7),
            kwh_per_va=rng.lognormvariate(6.8, 0.5), rd=rng.lognormvariate(-4.6, 0.8),
            va_per_head=rng.lognormvariate(2.8, 0.4), since=rng.randint(0, 15), growth=rng.uniform(0.9, 1.15))
    for index, year in enumerate(settings.demo_years):
        per_source: dict[str, list[RowInput]] = {source: [] for source in DEPARTMENTS}
        for e in enterprises:
            values = _firm_year(rng, bases[e.credit_code], index)
            for source, fields in DEPARTMENTS.items():
                mine = {f: values[f] for f in fields if f in values}
                if mine:
                    rows = per_source[source]
                    rows.append(RowInput(len(rows) + 1, e.credit_code, year, mine, source))
        for source, rows in per_source.items():
            await ingestion.submit(SubmitRows(f"demo:{source}:{year}", "demo", tuple(rows), source))
        run = await runs.start(StartRun(f"demo:run:{year}", settings.demo_jurisdiction, year))
        await runs.publish(PublishRun(f"demo:publish:{year}", run.run_id))
        log.info("demo year evaluated", extra={"year": year, "run_id": run.run_id, "classes": run.class_counts})
    return True
