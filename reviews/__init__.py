"""The review desk's one Django app: the human loop, in folders by context (README, Layout)."""
