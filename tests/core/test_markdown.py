"""Untrusted Markdown renders inert: no raw HTML, no script, style or javascript: link, no remote fetch."""

import re

import pytest
from django.template import Context, Template

from reviews.core.markdown import LINK_REL, is_safe_url, render_markdown, render_prompt


def tags_in(html: str) -> set[str]:
    return {m.lower() for m in re.findall(r"<\s*([a-zA-Z][a-zA-Z0-9]*)", html)}


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
        "<img src=x onerror=alert(1)>",
        "<style>body { display: none }</style>",
        '<a href="javascript:alert(1)">click</a>',
        '<iframe src="https://evil.example"></iframe>',
        "<div onclick=alert(1)>raw block</div>\n\nand text",
        "inline <b onmouseover=alert(1)>bold</b> html",
        "<!-- a comment --> <?php echo 1 ?> <![CDATA[x]]>",
        '<svg onload="alert(1)"></svg>',
    ],
)
def test_raw_html_is_escaped_as_text(source):
    html = render_markdown(source)
    assert tags_in(html) <= {"p"}, html
    assert "&lt;" in html


@pytest.mark.parametrize(
    "source",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](java&#9;script:alert(1))",
        "[x](  javascript:alert(1))",
        "<javascript:alert(1)>",
        "[x](vbscript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](file:///etc/passwd)",
        "[x](/accounts/logout/)",
        "[x][ref]\n\n[ref]: javascript:alert(1)",
    ],
)
def test_links_other_than_http_https_and_mailto_stay_text(source):
    html = render_markdown(source)
    assert "<a" not in html and "href" not in html, html


@pytest.mark.parametrize(
    ("source", "href"),
    [
        ("[docs](https://example.org/a?b=1&c=2)", "https://example.org/a?b=1&amp;c=2"),
        ("<http://example.org>", "http://example.org"),
        ("[mail](mailto:someone@example.org)", "mailto:someone@example.org"),
        ("<someone@example.org>", "mailto:someone@example.org"),
    ],
)
def test_safe_links_open_without_referrer_or_opener(source, href):
    html = render_markdown(source)
    assert f'<a href="{href}" rel="{LINK_REL}">' in html
    assert "target=" not in html


@pytest.mark.parametrize(
    "source",
    [
        "![a cat](https://evil.example/track.png)",
        '![a cat](https://evil.example/track.png "title")',
        "![a cat][img]\n\n[img]: https://evil.example/track.png",
        "![a cat](javascript:alert(1))",
        "![a cat](data:image/png;base64,iVBORw0KGgo=)",
    ],
)
def test_images_are_never_loaded(source):
    html = render_markdown(source)
    assert "<img" not in html and "src=" not in html
    assert "a cat" in html


def test_an_http_image_becomes_a_plain_link_and_others_stay_text():
    assert render_markdown("![chart](https://example.org/c.png)") == (
        f'<p><a href="https://example.org/c.png" rel="{LINK_REL}" class="md-image">[image: chart]</a></p>\n'
    )
    html = render_markdown("![<b>x</b>](javascript:alert(1))")
    assert "<a" not in html and "<b>" not in html


def test_code_blocks_render_as_pre_code_escaped():
    html = render_markdown('Try:\n\n```python\nprint("<script>")\n```\n\n    indented <b>\n\nand `inline <i>`')
    assert '<pre><code class="language-python">print(&quot;&lt;script&gt;&quot;)\n</code></pre>' in html
    assert "<pre><code>indented &lt;b&gt;\n</code></pre>" in html
    assert "<code>inline &lt;i&gt;</code>" in html


def test_a_fence_info_string_cannot_break_out_of_its_attribute():
    html = render_markdown('```"><script>alert(1)</script>\nx\n```')
    assert "<script" not in html
    assert tags_in(html) == {"pre", "code"}


def test_ordinary_markdown_still_reads_well():
    html = render_markdown("# Title\n\n- one\n- **two**\n\n> quoted\n\n1. first")
    assert tags_in(html) == {"h1", "ul", "li", "strong", "blockquote", "p", "ol"}


def test_empty_and_odd_input():
    assert render_markdown(None) == ""
    assert render_markdown(12) == "<p>12</p>\n"


def test_the_url_check_allows_only_three_schemes():
    assert is_safe_url("https://x") and is_safe_url("HTTP://x") and is_safe_url("mailto:a@b")
    for url in ("javascript:x", "java\nscript:x", " \tjavascript:x", "//evil.example", "/local", "#top", "data:,x"):
        assert not is_safe_url(url), url


def test_a_chat_transcript_renders_as_labeled_turns():
    turns = render_prompt(
        [
            {"role": "system", "content": "Be **brief**."},
            {"role": "user", "content": "<script>alert(1)</script>"},
            {"role": "assistant", "content": "```\ncode\n```"},
            {"role": "<b>tool</b>", "content": "x"},
        ]
    )
    assert [(t.role, t.label) for t in turns] == [
        ("system", "System"),
        ("user", "User"),
        ("assistant", "Assistant"),
        ("other", "<B>Tool</B>"),
    ]
    assert turns[0].html == "<p>Be <strong>brief</strong>.</p>\n"
    assert "&lt;script&gt;" in turns[1].html
    assert "<pre><code>code" in turns[2].html


def test_a_string_prompt_is_one_unlabeled_turn():
    [turn] = render_prompt("Hello *there*")
    assert (turn.label, turn.html) == ("", "<p>Hello <em>there</em></p>\n")


def test_the_template_filters_escape_what_they_do_not_render():
    out = Template(
        "{% load review_markdown %}{{ text|markdown }}"
        "{% for t in chat|chat_turns %}<li class='{{ t.role }}'>{{ t.label }}{{ t.html }}</li>{% endfor %}"
    ).render(
        Context(
            {
                "text": "<i>x</i> *y*",
                "chat": [{"role": "<b>r</b>", "content": "hi"}],
            }
        )
    )
    assert "&lt;i&gt;x&lt;/i&gt; <em>y</em>" in out
    assert "<li class='other'>&lt;B&gt;R&lt;/B&gt;<p>hi</p>" in out


# -- long unbroken runs (security area: a 1 MB one-line output must not freeze the browser) --------


def test_a_long_run_without_spaces_gets_break_opportunities_and_stays_escaped():
    from reviews.core.markdown import BREAK_EVERY, render_markdown

    html = str(render_markdown("short words stay " + "<" * 100 + "A" * 1000 + " end `" + "B" * 200 + "`"))
    assert "short words stay " in html and " end " in html
    assert "<<" not in html and "&lt;" * BREAK_EVERY in html
    assert html.count("<wbr>") >= 1100 // BREAK_EVERY
    assert "<code>" + "B" * BREAK_EVERY + "<wbr>" in html
    # Text without long runs renders as before, byte for byte.
    assert str(render_markdown("It's *fine* & <ok>")) == "<p>It's <em>fine</em> &amp; &lt;ok&gt;</p>\n"


def test_a_one_megabyte_line_renders_with_a_break_every_few_characters():
    from reviews.core.markdown import BREAK_EVERY, render_markdown

    html = str(render_markdown("A" * 1_048_576))
    assert html.count("<wbr>") == 1_048_576 // BREAK_EVERY - 1
    assert html.replace("<wbr>", "") == "<p>" + "A" * 1_048_576 + "</p>\n"
