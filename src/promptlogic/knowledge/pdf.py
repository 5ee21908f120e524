"""Text of a PDF document, page after page, with pypdf (pure Python: no binary to install).

pypdf bounds what a stream may decompress to; on top of that the page count is bounded here,
and the caller bounds the text. Scanned pages (images only) have no text to extract: OCR is
out of scope.
"""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader

from promptlogic.validation import UNSTORABLE_TEXT

MAX_PAGES = 2_000

# pypdf warns through logging about every oddity of real-world files; those are not ours.
logging.getLogger("pypdf").setLevel(logging.ERROR)


class PdfUnreadable(ValueError):
    """The bytes are not a PDF whose text can be read (corrupt, encrypted, too long)."""


def pdf_text(data: bytes) -> str:
    """The text of every page, pages separated by a blank line (a paragraph break)."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise PdfUnreadable("the PDF is encrypted with a password")
        if len(reader.pages) > MAX_PAGES:
            raise PdfUnreadable(f"the PDF has more than {MAX_PAGES} pages")
        pages = [page.extract_text() or "" for page in reader.pages]
    except PdfUnreadable:
        raise
    except Exception as exc:  # pypdf raises many kinds for a damaged file
        raise PdfUnreadable(f"not a readable PDF ({exc.__class__.__name__})") from None
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    return UNSTORABLE_TEXT.sub("", text)
