"""Form markup the compare page renders many times: built in Python, not through widget templates.

A page has some 40 radio buttons; rendering each through Django's form renderer (a template per
input) was a third of the page's cost.
"""

from django import template
from django.forms.utils import flatatt
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def radio_input(radio):
    """The <input type="radio"> of a BoundWidget, with the attributes Django's widget would write."""
    data = radio.data
    attrs = dict(data["attrs"])
    if data.get("selected"):
        attrs["checked"] = True
    return format_html('<input type="radio" name="{}" value="{}"{}>', data["name"], data["value"], flatatt(attrs))


@register.simple_tag
def question(form, q):
    """A question of a JudgmentForm (reviews/partials/question.html, through JudgmentForm.question_html)."""
    return form.question_html(q)


# -- {% memo %}: a fragment rendered once per process -----------------------------------------

MEMO_SIZE = 512
_MEMO: dict = {}


class MemoNode(template.Node):
    def __init__(self, nodelist, keys):
        self.nodelist = nodelist
        self.keys = keys

    def render(self, context):
        key = tuple(k.resolve(context) for k in self.keys)
        if any(part is None for part in key):
            return self.nodelist.render(context)  # an unknown key part (a draft's publication time): no memo
        html = _MEMO.get(key)
        if html is None:
            if len(_MEMO) >= MEMO_SIZE:
                _MEMO.clear()
            html = _MEMO[key] = self.nodelist.render(context)
        return html


@register.tag
def memo(parser, token):
    """`{% memo "name" key... %}...{% endmemo %}`: the enclosed markup depends only on the keys
    (no request, no form state, no CSRF token), so each process renders it once per key."""
    bits = token.split_contents()[1:]
    if not bits:
        raise template.TemplateSyntaxError("memo needs a name")
    nodelist = parser.parse(("endmemo",))
    parser.delete_first_token()
    return MemoNode(nodelist, [parser.compile_filter(bit) for bit in bits])
