"""Building-economy read models for the side panel (Qt-free, demo data)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from db.economy import INDUSTRIES


@dataclass(frozen=True)
class EconomyFilter:
    industries: tuple[str, ...] = ()
    """Empty = every industry."""
    streets: tuple[str, ...] = ()
    """Empty = every street (street codes)."""

    def where(self, alias: str = "b") -> tuple[str, list]:
        parts, args = [], []
        if self.industries:
            parts.append(f"{alias}.industry IN ({', '.join('?' * len(self.industries))})")
            args += list(self.industries)
        if self.streets:
            parts.append(f"{alias}.street_code IN ({', '.join('?' * len(self.streets))})")
            args += list(self.streets)
        return (" WHERE " + " AND ".join(parts)) if parts else "", args

    def map_filters(self) -> list[dict]:
        """The same filter for the page (``onemap.setFilter('buildings', …)``)."""
        out = []
        if self.industries:
            out.append({"prop": "industry", "in": list(self.industries)})
        if self.streets:
            out.append({"prop": "street_code", "in": list(self.streets)})
        return out


def industry_name(code: str, lang: str = "zh") -> str:
    zh, en = INDUSTRIES.get(code, (code, code))
    return en if lang == "en" else zh


def street_totals(conn: sqlite3.Connection, flt: EconomyFilter = EconomyFilter()) -> list[dict]:
    """Per street: buildings, GFA, weighted occupancy, enterprises, tax, 亿元楼 count (by tax)."""
    where, args = flt.where()
    sql = (
        "SELECT b.street_code AS code, s.name AS street, count(*) AS buildings, sum(b.gfa_m2) AS gfa, "
        "sum(b.gfa_m2 * b.occupancy) / sum(b.gfa_m2) AS occupancy, sum(b.enterprises) AS enterprises, "
        "sum(b.tax_yuan) AS tax, sum(b.yiyuan) AS yiyuan "
        f"FROM buildings b LEFT JOIN streets s ON s.code = b.street_code{where} "
        "GROUP BY b.street_code ORDER BY tax DESC"
    )
    return [dict(r) for r in conn.execute(sql, args)]


def top_buildings(conn: sqlite3.Connection, flt: EconomyFilter = EconomyFilter(), n: int = 20) -> list[dict]:
    where, args = flt.where()
    sql = (
        "SELECT b.id, b.name, s.name AS street, b.industry, b.floors, b.gfa_m2, b.occupancy, b.enterprises, "
        "b.tax_yuan, b.yiyuan, b.lon, b.lat "
        f"FROM buildings b LEFT JOIN streets s ON s.code = b.street_code{where} ORDER BY b.tax_yuan DESC LIMIT ?"
    )
    return [dict(r) for r in conn.execute(sql, [*args, int(n)])]


def industry_mix(conn: sqlite3.Connection, flt: EconomyFilter = EconomyFilter()) -> list[dict]:
    """Enterprises and their tax per industry, over the filtered buildings."""
    where, args = flt.where()
    sql = (
        "SELECT e.industry, count(*) AS enterprises, sum(e.tax_yuan) AS tax "
        f"FROM enterprises e JOIN buildings b ON b.id = e.building_id{where} "
        "GROUP BY e.industry ORDER BY tax DESC"
    )
    return [dict(r) for r in conn.execute(sql, args)]


def totals(conn: sqlite3.Connection, flt: EconomyFilter = EconomyFilter()) -> dict:
    where, args = flt.where()
    r = conn.execute(
        "SELECT count(*) AS buildings, coalesce(sum(gfa_m2), 0) AS gfa, coalesce(sum(tax_yuan), 0) AS tax, "
        "coalesce(sum(enterprises), 0) AS enterprises, coalesce(sum(yiyuan), 0) AS yiyuan, "
        f"coalesce(sum(gfa_m2 * occupancy) / nullif(sum(gfa_m2), 0), 0) AS occupancy FROM buildings b{where}",
        args,
    ).fetchone()
    return dict(r)


def building_card(conn: sqlite3.Connection, building_id: int) -> dict | None:
    """One building with its enterprises (largest tax first) and monthly history."""
    r = conn.execute(
        "SELECT b.*, s.name AS street, g.name AS grid FROM buildings b LEFT JOIN streets s ON s.code = b.street_code "
        "LEFT JOIN grids g ON g.id = b.grid_id WHERE b.id = ?",
        (int(building_id),),
    ).fetchone()
    if r is None:
        return None
    card = dict(r)
    card.pop("geometry", None)
    card["enterprise_rows"] = [
        dict(e) for e in conn.execute(
            "SELECT name, industry, floor, area_m2, employees, tax_yuan, since FROM enterprises "
            "WHERE building_id = ? ORDER BY tax_yuan DESC", (int(building_id),))
    ]  # fmt: skip
    card["history"] = [
        dict(h) for h in conn.execute(
            "SELECT month, occupancy, tax_yuan FROM building_history WHERE building_id = ? ORDER BY month",
            (int(building_id),))
    ]  # fmt: skip
    return card


def streets(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(code, name) of the streets that have buildings."""
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT DISTINCT b.street_code, s.name FROM buildings b JOIN streets s ON s.code = b.street_code "
        "ORDER BY b.street_code")]  # fmt: skip


def industries_present(conn: sqlite3.Connection) -> Sequence[str]:
    return [r[0] for r in conn.execute("SELECT DISTINCT industry FROM buildings ORDER BY industry")]
