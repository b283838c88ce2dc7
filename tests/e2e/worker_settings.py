"""Settings for the e2e tests' django-q2 worker subprocess: the project's, with mail written to files so the
test can read what the worker sent."""

import os

from portal.settings import *  # noqa: F403

EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ["E2E_MAIL_DIR"]
