"""The bulk upload's messages → the use case's column batches (shapes only; the rows are checked there)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from yaosu.evaluation.v1 import evaluation_pb2 as pb

from services.common.errors import InvalidArgument
from services.evaluation.application.commands import IndicatorBatch


def batch_of(message: pb.IndicatorBatch, index: int) -> IndicatorBatch:
    columns: dict[str, list[str]] = {}
    for position, column in enumerate(message.columns):
        if column.field in columns:
            raise InvalidArgument.field(f"batches[{index}].columns[{position}].field",
                                        "names a field already given a column in this batch")
        columns[column.field] = list(column.values)
    return IndicatorBatch([code.strip() for code in message.credit_codes], list(message.years), columns,
                          list(message.source_departments))


async def batches_after(first: pb.IndicatorBatch, rest: AsyncIterator[pb.IndicatorBatch]
                        ) -> AsyncIterator[IndicatorBatch]:
    """The first batch named the submission; a later one may repeat its key and department, not change them."""
    yield batch_of(first, 0)
    index = 1
    async for message in rest:
        for name in ("idempotency_key", "source_department"):
            if getattr(message, name) not in ("", getattr(first, name)):
                raise InvalidArgument.field(f"batches[{index}].{name}", "only the first batch names the submission")
        yield batch_of(message, index)
        index += 1
