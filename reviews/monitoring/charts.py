"""Server-side SVG charts: horizontal bars (with optional intervals), stacked shares, lines, histograms.

Every label is escaped (format_html); the SVG carries a <title> and role="img" for screen
readers, and the numbers it draws are the ones in the table beside it (and its downloads).
"""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH = 640
ROW = 22
LABEL_W = 230
PALETTE = ("#2f6db5", "#d9822b", "#3a9d5d", "#b5452f", "#7b5ea7", "#8c8c8c", "#c4a000", "#1f9e9e")


def _num(x: float) -> str:
    return f"{x:.1f}"


def _svg(title: str, height: float, body: SafeString, width: int = WIDTH) -> SafeString:
    return format_html(
        '<svg class="chart" role="img" viewBox="0 0 {} {}" width="100%" preserveAspectRatio="xMinYMin meet" '
        'xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}</svg>',
        width,
        _num(height),
        title,
        body,
    )


def _join(parts) -> SafeString:
    """Concatenate fragments that format_html already escaped."""
    return format_html_join("", "{}", ((p,) for p in parts))


def _empty(title: str) -> SafeString:
    return format_html('<p class="empty">{}: nothing to draw yet.</p>', title)


def bars(
    title: str,
    rows: list[tuple[str, float | None]],
    *,
    intervals: list[tuple[float | None, float | None]] | None = None,
    domain: tuple[float, float] | None = None,
    fmt: str = "{:.3f}",
) -> SafeString:
    """Horizontal bars from a zero line (negative values to its left), optional interval whiskers."""
    drawn = [
        (label, v, intervals[i] if intervals else (None, None)) for i, (label, v) in enumerate(rows) if v is not None
    ]
    if not drawn:
        return _empty(title)
    ends = [v for _, v, _ in drawn] + [x for _, _, iv in drawn for x in iv if x is not None] + [0.0]
    lo, hi = domain or (min(ends), max(ends))
    if hi <= lo:
        hi = lo + 1
    plot_w = WIDTH - LABEL_W - 70

    def x(v):
        return LABEL_W + (min(max(v, lo), hi) - lo) / (hi - lo) * plot_w

    parts = []
    for n, (label, v, (low, high)) in enumerate(drawn):
        y = 8 + n * ROW
        x0, x1 = sorted((x(0.0), x(v)))
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="end" class="chart-label">{}</text>'
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>'
                '<text x="{}" y="{}" class="chart-value">{}</text>',
                LABEL_W - 6,
                _num(y + 14),
                label,
                _num(x0),
                _num(y + 3),
                _num(max(x1 - x0, 1)),
                ROW - 8,
                PALETTE[0],
                label,
                fmt.format(v),
                _num(max(x(v), x(high) if high is not None else 0) + 6),
                _num(y + 14),
                fmt.format(v),
            )
        )
        if low is not None and high is not None:
            parts.append(
                format_html(
                    '<line x1="{}" x2="{}" y1="{}" y2="{}" class="chart-whisker"/>',
                    _num(x(low)),
                    _num(x(high)),
                    _num(y + ROW / 2),
                    _num(y + ROW / 2),
                )
            )
    zero = x(0.0)
    height = 16 + len(drawn) * ROW
    parts.append(
        format_html('<line x1="{}" x2="{}" y1="4" y2="{}" class="chart-axis"/>', _num(zero), _num(zero), height - 4)
    )
    return _svg(title, height, _join(parts))


def stacked(title: str, rows: list[tuple[str, list[float]]], legend: list[str]) -> SafeString:
    """One horizontal bar per row split into shares (each row's values sum to 1), with a legend."""
    if not rows:
        return _empty(title)
    plot_w = WIDTH - LABEL_W - 20
    parts = []
    for n, (label, values) in enumerate(rows):
        y = 8 + n * ROW
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="end" class="chart-label">{}</text>', LABEL_W - 6, y + 14, label
            )
        )
        x = LABEL_W
        for k, share in enumerate(values):
            w = share * plot_w
            if w > 0:
                parts.append(
                    format_html(
                        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{} {}: {}%</title></rect>',
                        _num(x),
                        y + 3,
                        _num(w),
                        ROW - 8,
                        PALETTE[k % len(PALETTE)],
                        label,
                        legend[k],
                        f"{100 * share:.1f}",
                    )
                )
            x += w
    y = 16 + len(rows) * ROW
    legend_parts = format_html_join(
        "",
        '<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}" class="chart-label">{}</text>',
        (
            (LABEL_W + 150 * k, y, PALETTE[k % len(PALETTE)], LABEL_W + 150 * k + 14, y + 10, value)
            for k, value in enumerate(legend)
        ),
    )
    return _svg(title, y + 20, _join([*parts, legend_parts]))


def line(title: str, points: list[tuple[str, float | None]], *, fmt: str = "{:.3f}") -> SafeString:
    """A line over ordered points (x labels shown at both ends), gaps where a value is None."""
    values = [v for _, v in points if v is not None]
    if not values:
        return _empty(title)
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    height, left, right, top, bottom = 220, 60, WIDTH - 20, 12, 190
    n = len(points)

    def xy(i, v):
        x = left + (right - left) * (i / (n - 1) if n > 1 else 0.5)
        y = bottom - (v - lo) / (hi - lo) * (bottom - top)
        return _num(x), _num(y)

    segments, current = [], []
    for i, (_, v) in enumerate(points):
        if v is None:
            if current:
                segments.append(current)
            current = []
        else:
            current.append(xy(i, v))
    if current:
        segments.append(current)
    parts = [
        format_html('<polyline points="{}" class="chart-line"/>', " ".join(f"{x},{y}" for x, y in seg))
        for seg in segments
    ]
    parts += [
        format_html(
            '<circle cx="{}" cy="{}" r="3" class="chart-dot"><title>{}: {}</title></circle>',
            *xy(i, v),
            label,
            fmt.format(v),
        )
        for i, (label, v) in enumerate(points)
        if v is not None
    ]
    parts.append(
        format_html(
            '<line x1="{l}" x2="{l}" y1="{t}" y2="{b}" class="chart-axis"/><line x1="{l}" x2="{r}" y1="{b}" y2="{b}" '
            'class="chart-axis"/><text x="{lx}" y="{ty}" text-anchor="end" class="chart-label">{hi}</text>'
            '<text x="{lx}" y="{by}" text-anchor="end" class="chart-label">{lo}</text>'
            '<text x="{l}" y="{xy}" class="chart-label">{first}</text>'
            '<text x="{r}" y="{xy}" text-anchor="end" class="chart-label">{last}</text>',
            l=left,
            r=right,
            t=top,
            b=bottom,
            lx=left - 4,
            ty=top + 4,
            by=bottom,
            hi=fmt.format(hi),
            lo=fmt.format(lo),
            xy=height - 8,
            first=points[0][0],
            last=points[-1][0],
        )
    )
    return _svg(title, height, _join(parts))


def histogram(title: str, bins: list[tuple[float, float, int]]) -> SafeString:
    """Vertical bars over contiguous bins (low, high, count)."""
    if not bins or not any(c for _, _, c in bins):
        return _empty(title)
    top_count = max(c for _, _, c in bins)
    height, left, right, top, bottom = 220, 50, WIDTH - 20, 12, 190
    w = (right - left) / len(bins)
    parts = []
    for i, (low, high, count) in enumerate(bins):
        h = count / top_count * (bottom - top)
        parts.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}–{}: {}</title></rect>',
                _num(left + i * w + 1),
                _num(bottom - h),
                _num(max(w - 2, 1)),
                _num(h),
                PALETTE[0],
                f"{low:.2f}",
                f"{high:.2f}",
                count,
            )
        )
    parts.append(
        format_html(
            '<line x1="{l}" x2="{r}" y1="{b}" y2="{b}" class="chart-axis"/>'
            '<text x="{l}" y="{xy}" class="chart-label">{lo}</text>'
            '<text x="{r}" y="{xy}" text-anchor="end" class="chart-label">{hi}</text>'
            '<text x="{lx}" y="{ty}" text-anchor="end" class="chart-label">{top}</text>',
            l=left,
            r=right,
            b=bottom,
            xy=height - 8,
            lo=f"{bins[0][0]:.2f}",
            hi=f"{bins[-1][1]:.2f}",
            lx=left - 4,
            ty=top + 8,
            top=top_count,
        )
    )
    return _svg(title, height, _join(parts))
