"""A browser's form post, read within bounds.

Forms arrive urlencoded (htmx and plain forms alike) and are parsed by hand:
python-multipart is not a dependency. A body over the bound is refused, never cut: a
comment cut short would be stored as if whole.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request

from threadline.server.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from threadline.server.http.request_bounds import ANNOTATION_FORM_BYTES

# The request-bounds middleware refuses bigger bodies first; this holds the form routes
# to it wherever they are mounted.
MAX_FORM_BYTES = ANNOTATION_FORM_BYTES


async def read_form(request: Request) -> dict[str, str]:
    """The form's fields (the first value of each), stripped of surrounding spaces;
    empty fields are left out."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("send the form as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLarge(f"a form is at most {MAX_FORM_BYTES // 1024} KB")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the form is not UTF-8") from None
    try:
        fields = parse_qs(text, errors="strict", max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as error:
        raise BadRequest(f"the form cannot be read: {error}") from None
    return {key: values[0].strip() for key, values in fields.items() if values[0].strip()}
