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
