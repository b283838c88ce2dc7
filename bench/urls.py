"""The product's URLs (portal/urls.py) plus the benchmark's baseline view; used only through bench/settings.py."""

from django.urls import path

from bench.views import lookup_baseline
from portal.urls import urlpatterns as product_urlpatterns

# Before the product's patterns: their last one catches every /<merchant slug>/.
urlpatterns = [path("<slug:slug>/bench-lookup", lookup_baseline, name="bench-lookup"), *product_urlpatterns]
