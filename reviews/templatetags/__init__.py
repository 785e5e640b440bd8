"""Template helpers: form widgets of the compare page and inert Markdown."""
