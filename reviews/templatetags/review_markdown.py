"""Template filters for untrusted text: `{{ text|markdown }}` and `{% for turn in content|chat_turns %}`."""

from django import template

from reviews.core.markdown import render_markdown, render_prompt

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    """Untrusted Markdown as inert HTML (reviews.core.markdown)."""
    return render_markdown(text)


@register.filter(name="chat_turns")
def chat_turns(content):
    """A prompt (a string or a list of {role, content}) as turns with rendered HTML."""
    return render_prompt(content)
