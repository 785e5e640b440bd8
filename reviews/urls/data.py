"""URL routes of the data area (included by reviews/urls/__init__.py in the "reviews" namespace)."""

from django.urls import path

from reviews.views import items, members, people

urlpatterns = [
    path("campaigns/new", members.campaign_create, name="campaign_create"),
    path("campaigns/<slug:slug>/items/", items.items, name="items"),
    path("campaigns/<slug:slug>/items/bulk", items.bulk, name="items_bulk"),
    path("campaigns/<slug:slug>/items/<int:item_id>/", items.item, name="item"),
    path("campaigns/<slug:slug>/members/", members.members, name="members"),
    path("campaigns/<slug:slug>/members/add", members.member_add, name="member_add"),
    path("campaigns/<slug:slug>/members/remove", members.member_remove, name="member_remove"),
    path("people/", people.people, name="people"),
    path("people/new", people.person_create, name="person_create"),
    path("people/<str:username>/role", people.person_role, name="person_role"),
    path("people/<str:username>/active", people.person_active, name="person_active"),
]
