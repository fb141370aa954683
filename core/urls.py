"""Pages of the core app: the user's API tokens."""

from django.urls import path

from core.token_views import TokenListView, TokenRevokeView

urlpatterns = [
    path("account/tokens/", TokenListView.as_view(), name="token_list"),
    path("account/tokens/<int:pk>/revoke/", TokenRevokeView.as_view(), name="token_revoke"),
]
