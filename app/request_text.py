"""Request text fields: strings that must be well-formed Unicode (no lone surrogates)."""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError


def _valid_unicode(value: str) -> str:
    """JSON may carry lone surrogates (\\ud800) that no text encoding can represent."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PydanticCustomError(
            "invalid_unicode", "contains invalid Unicode (a lone surrogate at position "
            "{at}); send well-formed UTF-8 text", {"at": exc.start}) from None
    return value


Text = Annotated[str, AfterValidator(_valid_unicode)]
