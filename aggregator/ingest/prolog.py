"""An XML document's prolog made harmless before any parser sees it: no entity it declares
survives.

Feeds never need entities of their own, and feedparser's fallback parser expands them without
limit (a 110 KB body became a summary of a billion characters). What the prolog declares is
found by a real XML tokenizer (expat, which reads quotes, brackets, comments and processing
instructions as XML does), never by a pattern: a DOCTYPE with an internal subset is removed,
whatever it holds, up to the root element. A prolog the tokenizer cannot read is let through
only if it declares no entity in any spelling; otherwise the document is refused.
"""

from __future__ import annotations

import re
from xml.parsers import expat

from aggregator.errors import ParseError

_ENTITY_DECLARATION = re.compile(rb"<!\s*entity", re.IGNORECASE)
_DOCTYPE = {  # by byte-order mark; any other encoding expat reads spells it in ASCII
    b"\xff\xfe": "<!DOCTYPE".encode("utf-16-le"),
    b"\xfe\xff": "<!DOCTYPE".encode("utf-16-be"),
}


class _Root(Exception):
    """The root element's start: the prolog is over."""


def defuse(body: bytes) -> bytes:
    """The document without a DOCTYPE that declares anything (an internal subset); ParseError
    when its prolog cannot be read and may declare an entity."""
    doctype_at: int | None = None
    subset = False
    root_at: int | None = None
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)  # no external DTD either

    def doctype(_name: str, _system: str | None, _public: str | None, has_subset: int) -> None:
        nonlocal doctype_at, subset
        doctype_at, subset = parser.CurrentByteIndex, bool(has_subset)

    def declared(*_: object) -> None:
        nonlocal subset
        subset = True

    def root(*_: object) -> None:
        nonlocal root_at
        root_at = parser.CurrentByteIndex
        raise _Root

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = declared
    parser.UnparsedEntityDeclHandler = declared
    parser.StartElementHandler = root
    try:
        parser.Parse(body, True)
    except _Root:
        pass
    except (expat.ExpatError, ValueError, LookupError):
        root_at = None  # not XML that expat reads up to its root element (or not XML at all)
    if root_at is None:
        if _ENTITY_DECLARATION.search(body.replace(b"\x00", b"")):  # UTF-16 spells it with NULs
            raise ParseError("parse: refused: entity declarations in a prolog that is not valid XML")
        return body
    if not subset or doctype_at is None:
        return body
    # expat reports the DOCTYPE past its name; it opens at the last "<!DOCTYPE" before that, as
    # the document encodes it. Only comments and processing instructions may sit between the
    # DOCTYPE and the root: what is cut.
    opening = body.rfind(_DOCTYPE.get(body[:2], b"<!DOCTYPE"), 0, doctype_at)
    if opening < 0:
        raise ParseError("parse: refused: a DOCTYPE with declarations that could not be removed")
    return body[:opening] + body[root_at:]
