"""The dashboard's alert rules and bids-per-minute series (pure functions; no services needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.gateway.portal import charts
from services.gateway.portal.monitor import (
    BidSeen,
    ResultSeen,
    SaleSeen,
    TradeSeen,
    bids_per_minute,
    late_bid_alerts,
    result_alerts,
    trade_alerts,
)

NOW = datetime(2026, 11, 23, 14, 0, 30, tzinfo=UTC)


def test_bids_per_minute_counts_the_last_minutes() -> None:
    bids = [BidSeen("L1", "1", NOW - timedelta(seconds=10)), BidSeen("L1", "2", NOW - timedelta(seconds=20)),
            BidSeen("L1", "1", NOW - timedelta(minutes=2)), BidSeen("L1", "1", NOW - timedelta(hours=2))]
    series = bids_per_minute(bids, NOW, minutes=5)
    assert [label for label, _ in series] == ["13:56", "13:57", "13:58", "13:59", "14:00"]
    assert [count for _, count in series] == [0, 0, 1, 0, 2]


def test_repeated_late_bids_by_one_bidder_number() -> None:
    closes = NOW
    late = [BidSeen("L1", "007", closes - timedelta(minutes=m)) for m in (4, 2, 1)]
    sale = SaleSeen("L1", "地块", closes, tuple(late) + (BidSeen("L1", "008", closes - timedelta(minutes=1)),
                                                     BidSeen("L1", "008", closes - timedelta(minutes=30))))
    alerts = late_bid_alerts([sale, SaleSeen("L2", "无截止", None)], window_minutes=5, min_bids=3)
    assert [(a.kind, a.subject) for a in alerts] == [("late_bids", "L1")]
    assert "007" in alerts[0].text and "008" not in alerts[0].text


def test_result_alerts_single_bidder_and_reserve() -> None:
    results = [ResultSeen("L1", "a", "sold", 1, 110, 100),       # single bidder
               ResultSeen("L2", "b", "sold", 3, 200, 100),       # 200 % of the reserve
               ResultSeen("L3", "c", "sold", 2, 90, 100),        # below the reserve: never expected
               ResultSeen("L4", "d", "unsold", 0, 0, 100),
               ResultSeen("L5", "e", "sold", 4, 120, 100)]       # within 50 %
    kinds = {(a.kind, a.subject) for a in result_alerts(results, reserve_deviation=0.5)}
    assert kinds == {("single_bidder", "L1"), ("far_from_reserve", "L2"), ("below_reserve", "L3")}


def test_trade_far_from_the_median_of_recent_trades() -> None:
    trades = [TradeSeen(f"T{i}", "EUR:330100", price, "10", NOW) for i, price in
              enumerate((1000, 1010, 990, 1005, 2000))]
    alerts = trade_alerts(trades, deviation=0.3)
    assert [a.subject for a in alerts] == ["T4"]
    assert trade_alerts(trades[:3], deviation=0.3) == []  # too few peers to judge


def test_charts_draw_ids_lines_and_columns() -> None:
    trend = charts.lines("t", {"330102": [(2024, 10.0), (2025, 12.5)], "330105": [(2024, 8.0)]},
                         chart_id="indicator-trend")
    assert 'id="indicator-trend"' in trend and trend.count('class="line"') == 2 and "330105" in trend
    columns = charts.columns("b", [("13:59", 0), ("14:00", 3)], chart_id="bpm")
    assert columns.count('class="bar"') == 1  # no bar for an empty minute
    assert 'id="x&lt;"' in charts.bars("x", [], chart_id="x<")
