"""The KPI engine (issue 6): pure, Qt-free numbers over a replica read connection.

``from app.kpi import compute_kpis, Scope, Window`` … Formulas are documented in
:mod:`app.kpi.engine`; the rollups that make them fast in :mod:`db.kpi_rollups`.
"""

from app.kpi.breakdowns import counts_by, department_ranking, hourly_counts, street_ranking, top_grids
from app.kpi.dashboard import DashboardData, dashboard_data
from app.kpi.engine import (
    KPI_KEYS,
    KPI_LABELS,
    arrival_minutes,
    compute_kpis,
    kpi_trend,
    linkage_counts,
    trend_direction,
)
from app.kpi.model import DRILL_MODES, SCOPE_KINDS, KpiValue, Scope, Window

__all__ = [
    "DashboardData",
    "dashboard_data",
    "DRILL_MODES",
    "KPI_KEYS",
    "KPI_LABELS",
    "SCOPE_KINDS",
    "KpiValue",
    "Scope",
    "Window",
    "arrival_minutes",
    "compute_kpis",
    "counts_by",
    "department_ranking",
    "hourly_counts",
    "kpi_trend",
    "linkage_counts",
    "street_ranking",
    "top_grids",
    "trend_direction",
]
