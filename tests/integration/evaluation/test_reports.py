"""一企一单 reports: HTML and PDF, Chinese text rendered with the Noto CJK font, history over the years."""

from __future__ import annotations

import re
import zlib

import grpc
import pytest
from yaosu.evaluation.v1 import evaluation_pb2 as pb

from tests.integration.evaluation.support import EVALUATOR, READER, firm_values, key, register_enterprises, row, submit


def _pdf_streams(pdf: bytes) -> list[bytes]:
    found = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            found.append(zlib.decompress(match.group(1)))
        except zlib.error:
            found.append(match.group(1))
    return found


def _unicode_in_cmaps(streams: list[bytes]) -> set[str]:
    """Characters the PDF's ToUnicode maps name: the text a PDF reader extracts."""
    characters = set()
    for stream in streams:
        if b"begincmap" not in stream:
            continue
        for hexcode in re.findall(rb"<[0-9A-Fa-f]+>\s*<([0-9A-Fa-f]{4,8})>", stream):
            characters.add(bytes.fromhex(hexcode.decode()).decode("utf-16-be", errors="ignore"))
    return characters


async def test_report_in_html_and_pdf_with_history_hints_and_sources(registry, evaluation):
    codes = await register_enterprises(registry.stub, 20)
    for year in (2023, 2024):
        await submit(evaluation.stub, [row(code, year, **firm_values(i + (year - 2023) * (i % 3)))
                                       for i, code in enumerate(codes)])
        run = (await evaluation.stub.StartRun(pb.StartRunRequest(idempotency_key=key(), jurisdiction="330106",
                                                                 year=year), metadata=EVALUATOR)).run
        await evaluation.stub.PublishRun(pb.PublishRunRequest(idempotency_key=key(), run_id=run.run_id),
                                         metadata=EVALUATOR)
    assert run.prior_run_id  # 2024 was evaluated with 2023's published run as its prior year
    target = codes[0]
    html = await evaluation.stub.GetEnterpriseReport(pb.GetEnterpriseReportRequest(
        credit_code=target, format=pb.REPORT_FORMAT_HTML), metadata=READER)
    assert html.content_type == "text/html; charset=utf-8" and html.file_name.endswith(".html")
    text = html.content.decode("utf-8")
    for expected in ("一企一单", "测试精密机械000有限公司", target, "亩均税收", "提升建议", "历年评价",
                     "数据来源", "差别化电价", run.run_id, "zj-county-default@2025.2"):
        assert expected in text, expected
    # the report states the class cut its pool was given (policy classification.rounding)
    assert "分档办法" in text
    assert "A 类 20%（向下取整），A+B 类累计至 60%（四舍五入），D 类 5%（向上取整）" in text
    history = text[text.index("六、历年评价"):text.index("七、提升建议")]
    assert "2023" in history and "2024" in history

    pdf = await evaluation.stub.GetEnterpriseReport(pb.GetEnterpriseReportRequest(
        credit_code=target, run_id=run.run_id, format=pb.REPORT_FORMAT_PDF), metadata=READER)
    assert pdf.content_type == "application/pdf" and pdf.content.startswith(b"%PDF")
    streams = _pdf_streams(pdf.content)
    assert any(b"Noto-Sans-CJK" in s or b"NotoSansCJK" in s for s in [pdf.content, *streams])
    assert set("企业综合评价一企一单测试精密机械有限公司") <= _unicode_in_cmaps(streams)

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await evaluation.stub.GetEnterpriseReport(pb.GetEnterpriseReportRequest(
            credit_code="91330106MA00000000"), metadata=READER)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
