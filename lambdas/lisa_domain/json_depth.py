"""How deeply a JSON document nests, measured without parsing it.

``json.loads`` recurses once per level and raises ``RecursionError`` (a 500) on a few thousand
nested ``[`` or ``{``, so a request body is measured first and refused with 400 past
``MAX_JSON_DEPTH``. Brackets inside strings do not count; the scan runs in regex and C-level loops.
"""

from __future__ import annotations

import re
from itertools import accumulate

from lisa_domain.errors import ValidationFailed

#: Deepest nesting a request body may have (LISA's own documents nest a handful of levels).
MAX_JSON_DEPTH = 64

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_OPENING = frozenset(b"[{")


def json_depth(document: bytes) -> int:
    """The deepest bracket nesting outside strings (0 for a scalar); malformed input is measured too."""
    outside_strings = _STRING.sub(b"", document)
    steps = (1 if bracket[0] in _OPENING else -1 for bracket in _BRACKET.findall(outside_strings))
    return max(accumulate(steps), default=0)


def too_deep(document: bytes) -> bool:
    """Whether ``document`` nests deeper than ``MAX_JSON_DEPTH`` (the admin API and the serve app)."""
    if document.count(b"[") + document.count(b"{") <= MAX_JSON_DEPTH:
        return False  # fast path: no deeper nesting possible (most bodies)
    return json_depth(document) > MAX_JSON_DEPTH


def check_json_depth(document: bytes, field: str = "body") -> None:
    """``ValidationFailed`` (400) naming ``field`` when ``document`` nests deeper than allowed."""
    if too_deep(document):
        raise ValidationFailed(f"{field}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
