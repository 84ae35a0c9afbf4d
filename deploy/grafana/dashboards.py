#!/usr/bin/env python3
"""Grafana dashboards as code (stdlib only).

    python deploy/grafana/dashboards.py              # rewrite deploy/grafana/dashboards/*.json
    python deploy/grafana/dashboards.py --out DIR    # write elsewhere (the currency test does this)

The committed JSON is generated: edit this file, regenerate, commit both. Every query uses the metric
names of docs/metrics.md or the recording rules of deploy/prometheus/rules/recording.yml
(tests/deploy/test_grafana_dashboards.py checks both and that the committed JSON is current).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
SERVICES = "registry|evaluation|trading|gateway"
SERVER_FAULTS = "Unknown|DeadlineExceeded|ResourceExhausted|Internal|Unavailable|DataLoss|Unimplemented"


# --------------------------------------------------------------------------------------------- builders
class Board:
    """Lays panels out left to right, two per row (or `width`), rows of collapsible headers."""

    def __init__(self, uid: str, title: str, description: str, *, job_var: bool = False) -> None:
        self.uid, self.title, self.description, self.job_var = uid, title, description, job_var
        self.panels: list[dict] = []
        self.x = self.y = 0
        self.row_h = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append({"id": len(self.panels) + 1, "type": "row", "title": title, "collapsed": False, "panels": [],
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}})
        self.y += 1

    def _newline(self) -> None:
        if self.x:
            self.y += self.row_h
            self.x = self.row_h = 0

    def add(self, kind: str, title: str, targets: list[tuple[str, str]], *, unit: str = "short",
            width: int = 12, height: int = 8, description: str = "", stack: bool = False,
            thresholds: list[tuple[float | None, str]] | None = None, extra: dict | None = None) -> None:
        if self.x + width > 24:
            self._newline()
        field_defaults: dict = {"unit": unit}
        if kind == "timeseries":
            field_defaults["custom"] = {"fillOpacity": 10, "lineWidth": 1, "showPoints": "never",
                                        "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
        if thresholds:
            field_defaults["thresholds"] = {"mode": "absolute", "steps": [
                {"value": v, "color": c} for v, c in thresholds]}
        panel = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": {"x": self.x, "y": self.y, "w": width, "h": height},
            "fieldConfig": {"defaults": field_defaults, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}} if kind == "timeseries" else {},
            "targets": [{"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend,
                         "range": True, "instant": False}
                        for i, (expr, legend) in enumerate(targets)],
        }
        if extra:
            panel["options"].update(extra)
        self.panels.append(panel)
        self.x += width
        self.row_h = max(self.row_h, height)

    def ts(self, title: str, *targets: tuple[str, str], **kw) -> None:
        self.add("timeseries", title, list(targets), **kw)

    def stat(self, title: str, *targets: tuple[str, str], **kw) -> None:
        kw.setdefault("width", 6)
        kw.setdefault("height", 4)
        self.add("stat", title, list(targets), extra={"reduceOptions": {"calcs": ["lastNotNull"]},
                                                      "colorMode": "background"}, **kw)

    def json(self) -> dict:
        templating = [{
            "name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": [],
        }]
        if self.job_var:
            templating.append({
                "name": "job", "label": "Service", "type": "query", "datasource": DS,
                "query": {"query": f'label_values(up{{job=~"{SERVICES}"}}, job)', "refId": "job"},
                "definition": f'label_values(up{{job=~"{SERVICES}"}}, job)',
                "multi": True, "includeAll": True, "allValue": SERVICES,
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "refresh": 2, "sort": 1, "hide": 0, "options": [], "regex": "",
            })
        return {
            "uid": self.uid, "title": self.title, "description": self.description,
            "tags": ["yaosu"], "timezone": "browser", "editable": True, "graphTooltip": 1,
            "schemaVersion": 39, "version": 1, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"}, "timepicker": {},
            "annotations": {"list": [{
                "name": "Alerts", "datasource": DS, "enable": True, "iconColor": "red",
                "expr": 'ALERTS{alertstate="firing", alertname=~"Yaosu.*"}', "titleFormat": "{{alertname}}",
                "textFormat": "{{job}} {{severity}}", "useValueForTime": False, "step": "60s",
            }]},
            "links": [{"title": "yaosu dashboards", "type": "dashboards", "tags": ["yaosu"], "asDropdown": True}],
            "templating": {"list": templating},
            "panels": self.panels,
        }


# ------------------------------------------------------------------------------------------- dashboards
def overview() -> Board:
    b = Board("yaosu-overview", "yaosu / Suite overview",
              "RED per service (rate, errors, duration) and saturation (CPU, memory, outbox).", job_var=True)
    J = 'job=~"$job"'
    b.row("Availability")
    for svc in ("registry", "evaluation", "trading", "gateway"):
        b.stat(f"{svc} up", (f'sum(up{{job="{svc}"}})', "targets up"),
               thresholds=[(None, "red"), (1, "green")], description=f"Number of {svc} targets Prometheus scrapes.")
    b.row("gRPC servers: rate, errors, duration")
    b.ts("Requests / s by service", (f"job:grpc_server_requests:rate5m{{{J}}}", "{{job}}"), unit="reqps")
    b.ts("Requests / s by code", (f"sum by (grpc_code) (job_grpc_code:grpc_server_requests:rate5m{{{J}}})",
                                  "{{grpc_code}}"), unit="reqps", stack=True)
    b.ts("Server-fault ratio", (f"job:grpc_server_errors:ratio_rate5m{{{J}}}", "{{job}}"), unit="percentunit",
         description=f"grpc_code =~ {SERVER_FAULTS}; alert YaosuGrpcErrorRatioHigh above 5 %.",
         thresholds=[(None, "green"), (0.05, "red")])
    b.ts("Latency p50 / p99", (f"job:grpc_server_handling_seconds:p50_rate5m{{{J}}}", "p50 {{job}}"),
         (f"job:grpc_server_handling_seconds:p99_rate5m{{{J}}}", "p99 {{job}}"), unit="s")
    b.ts("Slowest methods (p99)", (f"topk(10, job_grpc_method:grpc_server_handling_seconds:p99_rate5m{{{J}}})",
                                   "{{job}} {{grpc_method}}"), unit="s", width=24)
    b.row("gRPC clients (calls between services)")
    b.ts("Client calls / s by callee", (f"job_grpc_service:grpc_client_requests:rate5m{{{J}}}",
                                        "{{job}} → {{grpc_service}}"), unit="reqps", width=8)
    b.ts("Client fault ratio", (f"job_grpc_service:grpc_client_errors:ratio_rate5m{{{J}}}",
                                "{{job}} → {{grpc_service}}"), unit="percentunit", width=8)
    b.ts("Client p99", (f"job_grpc_service:grpc_client_handling_seconds:p99_rate5m{{{J}}}",
                        "{{job}} → {{grpc_service}}"), unit="s", width=8)
    b.row("HTTP (gateway)")
    b.ts("Requests / s by route", ("topk(15, job_route:http_requests:rate5m)", "{{method}} {{route}}"),
         unit="reqps")
    b.ts("Requests / s by status", ("sum by (status) (rate(http_requests_total[$__rate_interval]))",
                                    "{{status}}"), unit="reqps", stack=True)
    b.ts("5xx ratio", ("job:http_requests_errors:ratio_rate5m", "{{job}}"), unit="percentunit",
         thresholds=[(None, "green"), (0.05, "red")])
    b.ts("Latency p50 / p99", ("job:http_request_duration_seconds:p50_rate5m", "p50"),
         ("job:http_request_duration_seconds:p99_rate5m", "p99"), unit="s")
    b.row("Saturation")
    b.ts("CPU (cores)", (f"sum by (job, instance) (rate(process_cpu_seconds_total{{{J}}}[$__rate_interval]))",
                         "{{job}} {{instance}}"), unit="short", width=8,
         description="One process per container: near 1 core means this replica is saturated.")
    b.ts("Resident memory", (f"process_resident_memory_bytes{{{J}}}", "{{job}} {{instance}}"), unit="bytes",
         width=8)
    b.ts("Open file descriptors (share of limit)",
         (f"process_open_fds{{{J}}} / process_max_fds{{{J}}}", "{{job}} {{instance}}"), unit="percentunit",
         width=8)
    b.ts("Outbox pending", (f"job:yaosu_outbox_pending:sum{{{J}}}", "{{job}}"), unit="short", width=12)
    b.ts("Consumer lag (pending)", (f"job_consumer:yaosu_consumer_pending:max{{{J}}}", "{{job}}/{{consumer}}"),
         unit="short", width=12)
    b.row("Build")
    b.add("table", "Versions", [(f"yaosu_build_info{{{J}}}", "{{service}} {{version}}")], width=24, height=6)
    return b


def market() -> Board:
    b = Board("yaosu-market", "yaosu / Market",
              "Bids, orders, trades, volumes and prices per instrument kind, open sales, settlement.")
    b.row("Now")
    b.stat("Open sales", ("sum(trading_open_sales)", "open"))
    b.stat("Bids / min", ("sum(mechanism_result:trading_bids:per_minute5m)", "bids"))
    b.stat("Trades / min", ("sum(instrument_kind:trading_trades:per_minute5m)", "trades"))
    b.stat("Settlement backlog", (":trading_settlement_backlog:sum", "unsettled"),
           thresholds=[(None, "green"), (1, "orange"), (100, "red")])
    b.row("Bids and orders")
    b.ts("Bids / min by mechanism", ('sum by (mechanism) (mechanism_result:trading_bids:per_minute5m{result="accepted"})',
                                     "{{mechanism}}"), unit="short", stack=True)
    b.ts("Refused bids / min by reason",
         ('sum by (reason) (rate(trading_bids_total{result="refused"}[$__rate_interval])) * 60', "{{reason}}"),
         unit="short", stack=True)
    b.ts("Orders / min by side and result", ("side_result:trading_orders:per_minute5m", "{{side}} {{result}}"),
         unit="short")
    b.ts("Order book depth", ("instrument_kind_side:trading_book_depth:sum", "{{instrument_kind}} {{side}}"),
         unit="short")
    b.row("Trades, volume and price per instrument kind")
    b.ts("Trades / min", ("instrument_kind:trading_trades:per_minute5m", "{{instrument_kind}}"), unit="short",
         stack=True)
    b.ts("Traded quantity (last hour)", ("instrument_kind:trading_traded_quantity:increase1h",
                                         "{{instrument_kind}}"), unit="short")
    b.ts("Traded value, CNY (last hour)", ("instrument_kind:trading_traded_value_fen:increase1h / 100",
                                           "{{instrument_kind}}"), unit="currencyCNY")
    b.ts("Price, CNY per unit", ("instrument_kind:trading_last_price_fen:max / 100", "last {{instrument_kind}}"),
         ("instrument_kind:trading_vwap_fen:1h / 100", "VWAP 1h {{instrument_kind}}"), unit="currencyCNY")
    b.row("Sales (listings and auctions)")
    b.ts("Open sales by mechanism and state", ("mechanism_state:trading_open_sales:sum", "{{mechanism}} {{state}}"),
         unit="short", stack=True)
    b.ts("Sales closed (last hour) by outcome and bidders",
         ("mechanism_outcome_bidders:trading_sales_closed:increase1h", "{{mechanism}} {{outcome}} {{bidders}}"),
         unit="short", description="bidders=single is the supervision signal of alert YaosuSaleClosedWithSingleBidder.")
    b.row("Settlement and ledger")
    b.ts("Settlement backlog", (":trading_settlement_backlog:sum", "executed, not settled"), unit="short", width=8)
    b.ts("Settlement time p99", (":trading_settlement_seconds:p99_rate5m", "p99"), unit="s", width=8)
    b.ts("Settlement failures / min",
         ("sum by (reason) (rate(trading_settlement_failures_total[$__rate_interval])) * 60", "{{reason}}"),
         unit="short", width=8)
    b.ts("Ledger operations / s", ("operation_outcome:registry_ledger_operations:rate5m", "{{operation}} {{outcome}}"),
         unit="ops", width=12)
    b.ts("Catalogue items", ("sum by (kind, status) (registry_catalogue_items)", "{{kind}} {{status}}"),
         unit="short", width=12)
    return b


def evaluation() -> Board:
    b = Board("yaosu-evaluation", "yaosu / Evaluation",
              "亩均论英雄: class distribution of the latest published run, run durations, refused indicator rows.")
    b.row("Class distribution (latest published run)")
    b.add("bargauge", "Enterprises by grade (above size)",
          [('sum by (grade) (grade_size_class:evaluation_enterprises:sum{size_class="above"})', "{{grade}}")],
          width=12, extra={"orientation": "horizontal", "displayMode": "gradient",
                           "reduceOptions": {"calcs": ["lastNotNull"]}})
    b.add("bargauge", "Enterprises by grade (below size)",
          [('sum by (grade) (grade_size_class:evaluation_enterprises:sum{size_class="below"})', "{{grade}}")],
          width=12, extra={"orientation": "horizontal", "displayMode": "gradient",
                           "reduceOptions": {"calcs": ["lastNotNull"]}})
    b.ts("Class shares", ("grade_size_class:evaluation_enterprises:share", "{{size_class}} {{grade}}"),
         unit="percentunit", width=24)
    b.row("Runs")
    b.ts("Runs (last day) by result", ("result:evaluation_runs:increase1d", "{{result}}"), unit="short", width=8)
    b.ts("Run duration p50 / p99",
         ("histogram_quantile(0.5, sum by (le) (rate(evaluation_run_duration_seconds_bucket[1h])))", "p50"),
         ("histogram_quantile(0.99, sum by (le) (rate(evaluation_run_duration_seconds_bucket[1h])))", "p99"),
         unit="s", width=8)
    b.ts("Mean run duration",
         ("sum(rate(evaluation_run_duration_seconds_sum[1h])) / sum(rate(evaluation_run_duration_seconds_count[1h]))",
          "mean"), unit="s", width=8)
    b.row("Indicator rows")
    b.ts("Rows / s accepted and refused", ("sum by (outcome) (rate(evaluation_rows_total[$__rate_interval]))",
                                           "{{outcome}}"), unit="short", stack=True)
    b.ts("Refused rows (last hour) by reason",
         ('outcome_reason:evaluation_rows:increase1h{outcome="refused"}', "{{reason}}"), unit="short")
    return b


def events() -> Board:
    b = Board("yaosu-events", "yaosu / Events",
              "Transactional outbox → JetStream → consumers; audit journal.", job_var=True)
    J = 'job=~"$job"'
    b.row("Outbox (publishing side)")
    b.ts("Published / s by stream", (f"job_stream:yaosu_outbox_published:rate5m{{{J}}}", "{{job}} → {{stream}}"),
         unit="short", stack=True)
    b.ts("Publish failures / s by reason", (f"job_reason:yaosu_outbox_publish_failures:rate5m{{{J}}}",
                                            "{{job}} {{reason}}"), unit="short")
    b.ts("Outbox pending", (f"job:yaosu_outbox_pending:sum{{{J}}}", "{{job}}"), unit="short",
         description="Alert YaosuOutboxBacklogGrowing: above 100 and growing for 10 min.")
    b.ts("Oldest pending event age", (f"job:yaosu_outbox_oldest_pending_seconds:max{{{J}}}", "{{job}}"), unit="s",
         thresholds=[(None, "green"), (300, "red")])
    b.row("Consumers")
    b.ts("Consumed / s by consumer and outcome", (f"job_consumer_outcome:yaosu_events_consumed:rate5m{{{J}}}",
                                                  "{{consumer}} {{outcome}}"), unit="short", stack=True)
    b.ts("Consumer lag (JetStream num_pending)", (f"job_consumer:yaosu_consumer_pending:max{{{J}}}",
                                                  "{{job}}/{{consumer}}"), unit="short",
         thresholds=[(None, "green"), (1000, "red")])
    b.ts("nak + term / s", (f'sum by (job, consumer, outcome) (rate(yaosu_events_consumed_total{{{J}, outcome=~"nak|term"}}[$__rate_interval]))',
                            "{{consumer}} {{outcome}}"), unit="short", width=24)
    b.row("Audit journal")
    b.ts("Audit entries / s", (f"job:yaosu_audit_entries:rate5m{{{J}}}", "{{job}}"), unit="short")
    b.add("stat", "Journal verified", [(f"min by (job) (yaosu_audit_verify_ok{{{J}}})", "{{job}}")], width=12,
          height=8, thresholds=[(None, "red"), (1, "green")],
          extra={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"})
    return b


BOARDS = (overview, market, evaluation, events)


def render() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {f"{(b := make()).uid}.json": json.dumps(b.json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
            for make in BOARDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (args.out / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
