"""Untrusted Markdown (model outputs, prompts, rubric guidelines) rendered so that nothing in it runs.

CommonMark with raw HTML off (tags come out as text), links only to http, https and mailto
(anything else stays literal text), images never loaded (a plain link stands in for them,
so showing an item fetches nothing from elsewhere), and every link marked
rel="nofollow noopener noreferrer".
"""

import functools
import re
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

ALLOWED_SCHEMES = ("http:", "https:", "mailto:")
LINK_REL = "nofollow noopener noreferrer"
# Browsers ignore ASCII whitespace and control characters inside a scheme ("java\tscript:").
_IGNORED_IN_URL = re.compile(r"[\x00-\x20\x7f]")


def is_safe_url(url: str) -> bool:
    """True for http(s) and mailto URLs only; relative, javascript:, data:, vbscript: ... are refused."""
    return _IGNORED_IN_URL.sub("", url).lower().startswith(ALLOWED_SCHEMES)


# Browsers wrap a long word without spaces in time that grows with its length squared (a 1 MB
# one-line output held Chromium for minutes), so a run of LONG_RUN characters without a space
# gets a break opportunity (<wbr>, not copied with the text) every BREAK_EVERY characters.
LONG_RUN = 80
BREAK_EVERY = 64
_LONG_RUN = re.compile(rf"\S{{{LONG_RUN},}}")


def breakable(text: str) -> str:
    """`text` escaped for HTML, with <wbr> inside runs of LONG_RUN or more non-space characters."""
    out, pos = [], 0
    for match in _LONG_RUN.finditer(text):
        out.append(escapeHtml(text[pos : match.start()]))
        run = match.group()
        out.append("<wbr>".join(escapeHtml(run[i : i + BREAK_EVERY]) for i in range(0, len(run), BREAK_EVERY)))
        pos = match.end()
    out.append(escapeHtml(text[pos:]))
    return "".join(out)


def _text(self, tokens, idx, options, env):
    return breakable(tokens[idx].content)


def _code_inline(self, tokens, idx, options, env):
    return f"<code>{breakable(tokens[idx].content)}</code>"


def _link_open(self, tokens, idx, options, env):
    tokens[idx].attrSet("rel", LINK_REL)
    return self.renderToken(tokens, idx, options, env)


def _image(self, tokens, idx, options, env):
    """An image becomes a link to it (never an <img>): no fetch happens unless the reader follows it."""
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env) or "image"
    src = token.attrGet("src") or ""
    text = f"[image: {escape(alt)}]"
    if not is_safe_url(src):
        return text
    return f'<a href="{escape(src)}" rel="{LINK_REL}" class="md-image">{text}</a>'


def _build() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False})
    # Checked after markdown-it has decoded entities and percent-encoded the URL; a refused
    # link or image is left as its literal source text.
    md.validateLink = is_safe_url
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("image", _image)
    md.add_render_rule("text", _text)
    md.add_render_rule("code_inline", _code_inline)
    return md


_MD = _build()


def render_markdown(text) -> SafeString:
    """HTML for untrusted Markdown text; safe to insert into a page as it is."""
    if text is None:
        return mark_safe("")
    text = str(text)
    if len(text) <= CACHED_CHARS:
        return _render_cached(text)
    return mark_safe(_MD.render(text))  # noqa: S308 - html=False and the rules above escape everything


# The same short texts come back on every page (a rubric's guidelines and questions): rendered once.
CACHED_CHARS = 4000


@functools.lru_cache(maxsize=128)
def _render_cached(text: str) -> SafeString:
    return mark_safe(_MD.render(text))  # noqa: S308 - as render_markdown


ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}


@dataclass(frozen=True)
class Turn:
    role: str
    label: str
    html: SafeString


def render_prompt(content) -> list[Turn]:
    """A prompt as turns: a chat transcript (a list of {role, content}) one turn per message, a string one turn."""
    if isinstance(content, list):
        turns = []
        for message in content:
            message = message if isinstance(message, dict) else {"content": message}
            role = str(message.get("role") or "message")
            # The role is also a CSS class hook: keep it to known names.
            css_role = role if role in ROLE_LABELS else "other"
            turns.append(Turn(css_role, ROLE_LABELS.get(role, role.title()), render_markdown(message.get("content"))))
        return turns
    return [Turn("user", "", render_markdown(content))]
