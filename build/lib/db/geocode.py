"""Geocoding fallback (Qt-free): an address without coordinates, matched against a local gazetteer.

The gazetteer is built from the replica: ``places`` (estates, landmarks, roads) and
``communities`` (official names plus the short forms residents use: 德民社区居委会 → 德民社区).
Street names (城东街道 …) are recognised too, but only to break ties and to check an address
against a point: a match must resolve to a community, an estate/landmark or a road, never to a
whole street.

Matching scans the address once, trying at each position the names that start with that
character (longest first), so the cost is about the address length times a handful of
candidates, whatever the gazetteer size. The most specific match wins: estate or landmark, then
road (two roads that cross give their junction), then community; then the longest name, then a
name in the street the address mentions.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field

__all__ = ["Match", "Gazetteer", "geocode", "gazetteer_for"]

_KIND_RANK = {"estate": 0, "landmark": 0, "road": 1, "community": 2}
_MIN_ALIAS = 3  # shortest short form of a community name that is matched on its own


@dataclass(frozen=True)
class Match:
    lon: float
    lat: float
    kind: str  # estate | landmark | road | community
    name: str
    community_code: str | None
    street_code: str | None


@dataclass
class _Entry:
    match: Match
    geometry: str | None = None  # roads: GeoJSON line


def _community_aliases(name: str) -> list[str]:
    out = [name]
    for suffix, repl in (
        ("社区居民委员会", "社区"), ("社区居委会", "社区"), ("村村民委员会", "村"), ("村村委会", "村"),
        ("村民委员会", "村"), ("村委会", "村"), ("居民委员会", ""), ("居委会", ""),
    ):  # fmt: skip
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            out.append(stem + repl)
            if repl and len(stem) >= _MIN_ALIAS:
                out.append(stem)
            break
    else:
        if name.endswith("社区") and len(name) - 2 >= _MIN_ALIAS:
            out.append(name[:-2])
    return [a for a in dict.fromkeys(out) if len(a) >= 2]


@dataclass
class Gazetteer:
    """Names → places of one replica. Build once (``from_conn``) and call :meth:`match` per address."""

    entries: dict[str, list[_Entry]] = field(default_factory=dict)
    streets: dict[str, str] = field(default_factory=dict)  # street name → code
    _by_char: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_conn(cls, conn: sqlite3.Connection) -> Gazetteer:
        g = cls()
        for r in conn.execute(
            "SELECT kind, name, community_code, street_code, lon, lat, geometry FROM places "
            "WHERE name IS NOT NULL AND lon IS NOT NULL AND lat IS NOT NULL ORDER BY id"
        ):
            m = Match(float(r[4]), float(r[5]), r[0], r[1], r[2], r[3])
            g._add(r[1], _Entry(m, r[6] if r[0] == "road" else None))
        for r in conn.execute(
            "SELECT code, name, street_code, lon, lat FROM communities WHERE lon IS NOT NULL ORDER BY code"
        ):
            m = Match(float(r[3]), float(r[4]), "community", r[1], r[0], r[2])
            for alias in _community_aliases(r[1]):
                g._add(alias, _Entry(m))
        g.streets = {r[0]: r[1] for r in conn.execute("SELECT name, code FROM streets")}
        for name in g.entries:
            g._by_char.setdefault(name[0], []).append(name)
        for names in g._by_char.values():
            names.sort(key=len, reverse=True)
        return g

    def _add(self, name: str, entry: _Entry) -> None:
        name = name.strip()
        if name:
            self.entries.setdefault(name, []).append(entry)

    def __len__(self) -> int:
        return len(self.entries)

    def streets_in(self, address: str) -> list[str]:
        """Codes of the streets (街道) an address names, in order of appearance."""
        found = [(address.find(name), code) for name, code in self.streets.items() if name in address]
        return [code for _, code in sorted(found)]

    def _scan(self, address: str) -> list[tuple[int, str]]:
        hits: list[tuple[int, str]] = []
        by_char = self._by_char
        for i, ch in enumerate(address):
            names = by_char.get(ch)
            if not names:
                continue
            for name in names:
                if address.startswith(name, i):
                    hits.append((i, name))
        # drop names lying inside a longer hit (小石桥 inside 小石桥花苑)
        keep = []
        for i, name in hits:
            end = i + len(name)
            if any(j <= i and end <= j + len(other) and (j, other) != (i, name) and len(other) > len(name)
                   for j, other in hits):  # fmt: skip
                continue
            keep.append((i, name))
        return keep

    def match(self, address: str | None) -> Match | None:
        """The place an address points at, or ``None`` (never just a street)."""
        if not address:
            return None
        text = str(address).strip()
        hits = self._scan(text)
        if not hits:
            return None
        named_streets = set(self.streets_in(text))

        def entry_for(name: str) -> _Entry:
            options = self.entries[name]
            if named_streets:
                for e in options:
                    if e.match.street_code in named_streets:
                        return e
            return options[0]

        scored = []
        for pos, name in hits:
            e = entry_for(name)
            in_street = 0 if (not named_streets or e.match.street_code in named_streets) else 1
            scored.append((_KIND_RANK.get(e.match.kind, 3), in_street, -len(name), pos, name, e))
        scored.sort(key=lambda s: s[:4])
        best = scored[0][5]
        if best.match.kind == "road":
            roads = [s[5] for s in scored if s[5].match.kind == "road" and s[5] is not best]
            junction = self._junction(best, roads)
            if junction is not None:
                return junction
        return best.match

    @staticmethod
    def _junction(first: _Entry, others: list[_Entry]) -> Match | None:
        if not others or not first.geometry:
            return None
        import shapely

        a = shapely.from_geojson(first.geometry)
        for other in others:
            if not other.geometry or other.match.name == first.match.name:
                continue
            x = shapely.intersection(a, shapely.from_geojson(other.geometry))
            if x.is_empty:
                continue
            p = x if x.geom_type == "Point" else x.representative_point()
            m = first.match
            return Match(round(p.x, 6), round(p.y, 6), "road", f"{m.name}与{other.match.name}交叉口",
                         m.community_code, m.street_code)  # fmt: skip
        return None


_cache_lock = threading.Lock()
_cache: dict[tuple, Gazetteer] = {}


def gazetteer_for(conn: sqlite3.Connection) -> Gazetteer:
    """The gazetteer of the replica behind ``conn``, cached per process while places and
    communities are unchanged."""
    sig = tuple(
        conn.execute(
            "SELECT (SELECT count(*) FROM places), (SELECT max(rowid) FROM places), "
            "(SELECT sum(length(name)) FROM places), (SELECT count(*) FROM communities), "
            "(SELECT sum(length(name)) FROM communities)"
        ).fetchone()
    )
    with _cache_lock:
        g = _cache.get(sig)
        if g is None:
            g = Gazetteer.from_conn(conn)
            _cache.clear()
            _cache[sig] = g
        return g


def geocode(conn: sqlite3.Connection, address: str | None) -> Match | None:
    """``address`` → :class:`Match` (WGS-84 point, kind, name, community, street) or ``None``."""
    return gazetteer_for(conn).match(address)
