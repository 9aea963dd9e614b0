"""Colour tokens and sizes of the wall and the dashboards (shared/WALL-UX.md).

``u`` is the wall's height in pixels ÷ 1080; every size is given in px@1080 and scaled by ``u``.
"""

from __future__ import annotations

BG = "#071330"
PANEL_FILL = (6, 30, 93, 128)
PANEL_EDGE = (1, 153, 209, 128)
TEXT = "#d3d6dd"
TEXT_2 = "#B9B8CE"
ACCENT = "#00E4FF"
DECOR = "#0072FF"  # decoration only, never text
SEVERITY = {1: "#ff6e76", 2: "#ff8a45", 3: "#fddd60", 4: "#4992ff"}
ALARM_FILL = "#d9001b"  # a fill behind white text, never a text colour
UP, DOWN = "#ff8a45", "#4be3a0"
FONT_FAMILY = "WenQuanYi Micro Hei"
NUM_FAMILY = "DejaVu Sans Mono"  # tabular digits; D-DIN is not installed here

SIZES = {"smallest": 22, "body": 26, "event": 32, "panel_title": 29, "kpi": 52, "title": 46, "header": 80,
         "column": 520, "ticker": 64}  # fmt: skip


def px(name_or_value, u: float) -> int:
    """A size in pixels at scale ``u`` (from a :data:`SIZES` name or a px@1080 number)."""
    v = SIZES[name_or_value] if isinstance(name_or_value, str) else float(name_or_value)
    return max(1, round(v * u))


def wall_qss(u: float) -> str:
    """The wall's style sheet at scale ``u``."""
    return f"""
    #WallWindow QWidget {{ background: transparent; }}
    #WallWindow, #WallCentral {{ background: {BG}; }}
    #WallWindow QLabel {{ color: {TEXT}; font-family: "{FONT_FAMILY}"; font-size: {px('body', u)}px; }}
    #WallTitle {{ color: #ffffff; font-size: {px('title', u)}px; font-weight: bold; }}
    #WallClock {{ color: {ACCENT}; font-family: "{NUM_FAMILY}"; font-size: {px(30, u)}px; }}
    #WallFresh, #WallMode {{ color: {TEXT_2}; font-size: {px('smallest', u)}px; }}
    #WallFresh[stale="true"] {{ color: {SEVERITY[2]}; }}
    #PanelTitle {{ color: {ACCENT}; font-size: {px('panel_title', u)}px; font-weight: bold; }}
    #WallEmpty {{ color: {TEXT_2}; font-size: {px('body', u)}px; }}
    #KpiLabel {{ color: {TEXT_2}; font-size: {px('smallest', u)}px; }}
    #KpiValue {{ color: #ffffff; font-family: "{NUM_FAMILY}"; font-size: {px('kpi', u)}px; font-weight: bold; }}
    #KpiUnit {{ color: {TEXT_2}; font-size: {px('smallest', u)}px; }}
    #KpiTrendUp {{ color: {UP}; font-size: {px(30, u)}px; }}
    #KpiTrendDown {{ color: {DOWN}; font-size: {px(30, u)}px; }}
    #KpiTrendFlat {{ color: {TEXT_2}; font-size: {px(30, u)}px; }}
    #IncidentBanner {{ background: {ALARM_FILL}; }}
    #IncidentBanner QLabel {{ color: #ffffff; font-size: {px('event', u)}px; font-weight: bold; }}
    #EventList QLabel {{ font-size: {px('smallest', u)}px; }}
    """


def desktop_qss() -> str:
    """Dashboard dock on the desktop: the same tokens at desktop sizes (body 14 px)."""
    return f"""
    #DashboardPanel {{ background: {BG}; }}
    #DashboardPanel QLabel {{ color: {TEXT}; font-size: 13px; background: transparent; }}
    #DashboardPanel QWidget#KpiTile, #DashboardPanel QWidget#WallPanel {{ background: transparent; }}
    #DashboardPanel #PanelTitle {{ color: {ACCENT}; font-size: 14px; font-weight: bold; }}
    #DashboardPanel #KpiLabel {{ color: {TEXT_2}; font-size: 12px; }}
    #DashboardPanel #KpiValue {{ color: #ffffff; font-family: "{NUM_FAMILY}"; font-size: 22px; font-weight: bold; }}
    #DashboardPanel #KpiUnit {{ color: {TEXT_2}; font-size: 12px; }}
    #DashboardPanel #KpiTrendUp {{ color: {UP}; font-size: 14px; }}
    #DashboardPanel #KpiTrendDown {{ color: {DOWN}; font-size: 14px; }}
    #DashboardPanel #KpiTrendFlat {{ color: {TEXT_2}; font-size: 14px; }}
    """
