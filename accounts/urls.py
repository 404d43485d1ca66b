from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import two_factor_views, views

portal_patterns = [
    path("", views.dashboard, name="dashboard"),
    path("switch-organization", views.switch_organization, name="switch_organization"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/time-zone", views.time_zone, name="time_zone"),
    path("settings/two-factor-requirement", two_factor_views.requirement, name="two_factor_requirement"),
    path("team/", views.team, name="team"),
    path("team/members/<int:pk>/role", views.member_role, name="member_role"),
    path("team/members/<int:pk>/remove", views.member_remove, name="member_remove"),
    path("team/invitations/<int:pk>/revoke", views.invitation_revoke, name="invitation_revoke"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("api-keys/<int:pk>/revoke", views.api_key_revoke, name="api_key_revoke"),
]

# Sign-in and password reset keep Django's un-namespaced names (login, logout, password_reset…).
urlpatterns = [
    path("", include((portal_patterns, "portal"))),
    path("login/", views.LoginView.as_view(), name="login"),
    path("login/verify/", two_factor_views.verify, name="two_factor_verify"),
    path("two-factor/enrol/", two_factor_views.enrol, name="two_factor_enrol"),
    path("two-factor/recovery-codes/", two_factor_views.recovery_codes, name="two_factor_recovery_codes"),
    path("two-factor/disable", two_factor_views.disable, name="two_factor_disable"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("invitations/<str:token>", views.accept_invitation, name="accept_invitation"),
]
