"""一企一单 (per-enterprise health check) as HTML (jinja2) and PDF (weasyprint, Noto CJK fonts)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.evaluation.application.views import ReportData

TEMPLATES = Path(__file__).parent / "templates"
GRADE_NAMES = {"A": "A类 优先发展", "B": "B类 鼓励提升", "C": "C类 监管调控", "D": "D类 落后整治", "T": "T类 不定等级"}
SIZE_NAMES = {"above_size": "规上", "below_size": "规下"}
STATUS_NAMES = {"graded": "参评", "not_graded": "不定等级 (T)", "tenant_list": "租赁企业名单",
                "out_of_scope": "不在评价范围"}
INDICATOR_NAMES = {"tax_per_mu": "亩均税收", "va_per_mu": "亩均增加值", "va_per_energy": "单位能耗增加值",
                   "va_per_emission": "单位排放增加值", "labour_prod": "全员劳动生产率", "rd_intensity": "研发经费占比",
                   "tax_per_kwh": "单位电耗税收", "sales_per_mu": "亩均销售收入", "va_per_water": "单位用水增加值",
                   "va_per_cod": "单位COD排放增加值", "sales_per_kwh": "单位用电营业收入"}
LEVER_NAMES = {"electricity_surcharge": "差别化电价", "water_surcharge": "差别化水价",
               "land_use_tax_relief": "城镇土地使用税减免", "energy_quota_change": "用能指标调整",
               "orderly_power": "有序用电", "pollutant_rights": "排污权", "energy_rights": "用能权",
               "new_land_supply": "新增用地"}
FIELD_NAMES = {"tax_paid": "实缴税金 (万元)", "sales": "销售收入 (万元)", "main_revenue": "主营业务收入 (万元)",
               "value_added": "工业增加值 (万元)", "energy_tce": "综合能耗 (tce)", "pollutant_t": "主要污染物排放 (t)",
               "cod_t": "COD 排放 (t)", "water_t": "用水量 (t)", "kwh": "用电量 (kWh)", "rd_expense": "R&D 经费 (万元)",
               "avg_employees": "年平均职工人数", "land_mu": "用地面积 (亩)", "years_since_production": "投产年数"}
ROUNDING_NAMES = {"floor": "向下取整", "ceil": "向上取整", "half_up": "四舍五入"}
HTML_TYPE = "text/html; charset=utf-8"
PDF_TYPE = "application/pdf"


class ReportRenderer:
    def __init__(self) -> None:
        self.environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.environment.filters["pct"] = _percent
        self.environment.filters["indicator"] = lambda name: INDICATOR_NAMES.get(name, name)

    def html(self, data: ReportData) -> str:
        return self.environment.get_template("enterprise_report.html.j2").render(
            data=data, r=data.result, grade_names=GRADE_NAMES, size_names=SIZE_NAMES, status_names=STATUS_NAMES,
            indicator_names=INDICATOR_NAMES, lever_names=LEVER_NAMES, field_names=FIELD_NAMES,
            rounding_names=ROUNDING_NAMES)

    async def pdf(self, data: ReportData) -> bytes:
        text = self.html(data)
        return await asyncio.to_thread(_pdf, text)


def _percent(share: str) -> str:
    """A share of the pool as written in a policy ("0.15") in percent ("15%")."""
    return f"{Decimal(share) * 100:f}".rstrip("0").rstrip(".") + "%"


def _pdf(html: str) -> bytes:
    from weasyprint import HTML  # imported on first use: it loads pango and the fonts

    return HTML(string=html, base_url=str(TEMPLATES)).write_pdf()
