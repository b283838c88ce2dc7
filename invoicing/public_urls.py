"""Public download URLs (random codes), mounted at /f/ by portal/urls.py."""

from django.urls import path

from invoicing import downloads

urlpatterns = [
    path("<str:code>/<str:fmt>", downloads.public_download, name="invoice-public-download"),
]
