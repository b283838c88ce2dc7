"""Where stored files live: the ``default`` entry of STORAGES, from the environment.

Files the product stores (invoice PDFs, accounting exports, merchant logos) are read and written only through
Django's storage API, so the backend is the one thing that decides where they live: under MEDIA_ROOT (the
default, one machine), or in an S3-compatible bucket when STORAGE_S3_BUCKET is set, so that any web machine
serves what a worker on another machine stored. Documents are always downloaded through the app's
merchant-scoped views and logos through /media/logos/ (portal/media.py): the bucket stays private and no URL of
it is handed out. The stamped XML is no file: it lives in the invoice's row.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from portal.env import env_int, env_str

S3_BACKEND = "storages.backends.s3.S3Storage"


def default_storage_from_env() -> dict:
    bucket = env_str("STORAGE_S3_BUCKET", "")
    endpoint = env_str("STORAGE_S3_ENDPOINT_URL", "")  # MinIO, Ceph, R2, moto…; empty: AWS itself
    if not bucket:
        if endpoint:
            raise ImproperlyConfigured("STORAGE_S3_ENDPOINT_URL is set but STORAGE_S3_BUCKET is not: set the "
                                       "bucket's name to store files there, or unset both to keep them under "
                                       "MEDIA_ROOT.")
        return {"BACKEND": env_str("DEFAULT_FILE_STORAGE", "django.core.files.storage.FileSystemStorage")}
    access_key, secret_key = env_str("STORAGE_S3_ACCESS_KEY_ID", ""), env_str("STORAGE_S3_SECRET_ACCESS_KEY", "")
    if bool(access_key) != bool(secret_key):
        raise ImproperlyConfigured("Set both STORAGE_S3_ACCESS_KEY_ID and STORAGE_S3_SECRET_ACCESS_KEY (or "
                                   "STORAGE_S3_SECRET_ACCESS_KEY_FILE), or neither to use boto3's own chain.")
    from botocore.config import Config

    # Most S3-compatible servers want path-style URLs; AWS takes either.
    addressing = env_str("STORAGE_S3_ADDRESSING_STYLE", "path" if endpoint else "auto")
    return {"BACKEND": S3_BACKEND, "OPTIONS": {
        "bucket_name": bucket,
        "endpoint_url": endpoint or None,
        "region_name": env_str("STORAGE_S3_REGION", "") or None,
        # Neither: boto3's own chain (AWS_ACCESS_KEY_ID…, instance profile, web identity).
        "access_key": access_key or None,
        "secret_key": secret_key or None,
        "location": env_str("STORAGE_S3_PREFIX", "").strip("/"),
        # Never overwrite: two workers racing to store one invoice's PDF each save under a name of their own and
        # the loser deletes its copy (invoicing/services/documents.py); with overwrites it would delete the
        # winner's.
        "file_overwrite": False,
        "default_acl": None,  # the bucket's own policy: private
        # A file read from the bucket is held in memory up to this size, then in the system's temp dir (never
        # under MEDIA_ROOT).
        "max_memory_size": env_int("STORAGE_S3_MAX_MEMORY_SIZE", 16 * 1024 * 1024),
        # A store that does not answer must not hold a request for minutes (botocore's defaults: 60 s per try):
        # it is a 503 (infra/outages.py), and a worker's delivery backs off and retries.
        "client_config": Config(connect_timeout=env_int("STORAGE_S3_CONNECT_TIMEOUT", 5),
                                read_timeout=env_int("STORAGE_S3_READ_TIMEOUT", 30),
                                retries={"max_attempts": 3, "mode": "standard"},
                                signature_version="s3v4",
                                s3={"addressing_style": addressing}),
    }}
