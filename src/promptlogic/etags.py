"""ETags of numbered things (a record's version, a rule's revision, a label's version)."""

from __future__ import annotations

from promptlogic.errors import InvalidInput

MAX_NUMBER = 2**31 - 1  # stored as integer


def etag_of(number: int) -> str:
    return f'"{number}"'


def number_in(value: str, *, header: str, what: str, star: bool = True) -> int:
    """The number an ETag (`"3"`, weak `W/"3"`) names; 422 naming `header.<header>` otherwise.
    `star` only words the message: whether `*` is a valid alternative the caller handles."""
    number = value.strip().removeprefix("W/").strip('"')
    if not (number.isascii() and number.isdigit() and 1 <= int(number) <= MAX_NUMBER):
        alternative = ", or *" if star else ""
        raise InvalidInput.field(f"header.{header}", f'must be {what} ETag, e.g. "3"{alternative}')
    return int(number)
