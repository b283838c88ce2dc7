"""Settings of the benchmarks: production's (portal/settings.py) plus what only a benchmark wants.

The scripts in bench/ run with ``DJANGO_SETTINGS_MODULE=bench.settings`` (their processes too: the web server
and the workers they start). Nothing here is read or routed in production.
"""

from portal.settings import *  # noqa: F403

# bench/portal.py's baseline, a bare view doing the lookup's database work, is routed only here (bench/urls.py).
ROOT_URLCONF = "bench.urls"
