"""A download streamed as it is made (the exports of the API and the web UI)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.responses import StreamingResponse

from threadline.server import export


def streamed(chunks: Iterator[bytes], fmt: str, name: str) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type=export.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{name}.{fmt}"',
            # Rows are written as they are read: nothing in between should hold them.
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        },
    )
