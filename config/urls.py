from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    # Only sign in and out: there is no mail set-up, and password resets belong to admins
    # (`manage.py changepassword`), so Django's other account pages stay unrouted.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("reviews.api.urls")),
    path("", include("reviews.urls")),
]
