"""Navigation: one registry of the app's sections, shown to the roles that may open them.

Each area adds its entry here; an entry whose URL name is not routed (yet) is left out, so
the registry can name pages before they exist.
"""

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from reviews.core.roles import RANK, Role


@dataclass(frozen=True)
class Link:
    label: str
    url_name: str
    minimum: Role
    # Other URL names under which this entry is the current section.
    also: tuple[str, ...] = ()


# The top bar, in order.
MAIN = (
    Link("Label", "reviews:work_start", Role.LABELER, also=("work",)),
    Link("My history", "reviews:history", Role.LABELER),
    Link("Campaigns", "reviews:campaigns", Role.LABELER, also=("campaign",)),
    Link("Escalations", "reviews:escalations", Role.LEAD, also=("adjudicate",)),
    Link("Dashboards", "reviews:dashboards", Role.LEAD),
    Link("Rubrics", "reviews:rubrics", Role.ADMIN),
    Link("People", "reviews:people", Role.ADMIN),
    Link("API tokens", "reviews:api_tokens", Role.ADMIN),
)

# A campaign's sections, linked from its page; each URL takes the campaign's slug.
CAMPAIGN = (
    Link("Items", "reviews:items", Role.LEAD),
    Link("Escalations", "reviews:campaign_escalations", Role.LEAD),
    Link("Adjudications", "reviews:adjudications", Role.LEAD),
    Link("Dashboard", "reviews:dashboard", Role.LEAD),
    Link("Members", "reviews:members", Role.ADMIN),
    Link("Settings", "reviews:campaign_settings", Role.ADMIN),
    Link("Gold items", "reviews:gold_list", Role.ADMIN),
    Link("Datasets", "reviews:datasets", Role.ADMIN),
)


def _allowed(links, role: Role | None, args=()) -> list[dict]:
    if role is None:
        return []
    out = []
    for link in links:
        if RANK[role] < RANK[link.minimum]:
            continue
        try:
            url = reverse(link.url_name, args=args)
        except NoReverseMatch:
            continue
        names = {link.url_name.split(":")[-1], *link.also}
        out.append({"label": link.label, "url": url, "names": names})
    return out


def main_links(role: Role | None) -> list[dict]:
    return _allowed(MAIN, role)


def campaign_links(role: Role | None, slug: str) -> list[dict]:
    return _allowed(CAMPAIGN, role, args=[slug])
