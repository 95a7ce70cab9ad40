"""Answer text that renders as text: no markdown image or link a chat front-end would fetch or follow."""
from __future__ import annotations

import re

# ![alt](url "title"): a front-end that renders markdown fetches the image at once, which leaks
# whatever the address carries (an injected document can build one).
_IMAGE = re.compile(r"!\[([^\]\n]{0,500})\]\([^)\n]{0,2000}\)")
# [text](url): keep the text, drop the address. ("[1] (see)" with a space is not a link.)
_LINK = re.compile(r"\[([^\]\n]{0,500})\]\([^)\n]{0,2000}\)")
# <https://...> autolinks and raw HTML images.
_AUTOLINK = re.compile(r"<((?:https?|ftp|data|javascript):[^>\s]{0,2000})>", re.I)
_HTML_IMG = re.compile(r"<\s*img\b[^>]{0,2000}>", re.I)
# [ref]: url  definitions, which turn [text][ref] and ![alt][ref] into links and images.
_DEFINITION = re.compile(r"^\s{0,3}\[[^\]\n]{1,200}\]:\s*\S+.*$", re.M)


def defang(text: str) -> str:
    """The text with markdown images and links reduced to their words."""
    text = _IMAGE.sub(lambda m: m.group(1), text)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _AUTOLINK.sub(lambda m: m.group(1).replace(":", ":\u200b", 1), text)
    text = _HTML_IMG.sub("", text)
    return _DEFINITION.sub("", text)
