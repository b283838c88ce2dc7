"""Two nodes that share no disk (bench/cluster.py, lighter): web A and web B (gunicorn), worker A and worker B
(`manage.py qcluster`), each with its own VAR_DIR, on this test's PostgreSQL database, the machine's Redis (a
database number of its own, queue names of this run) and moto's S3 server on loopback. A ticket and its invoice
go in through web A; a worker stamps it and stores the PDF in the bucket; web B hands out the same bytes; nothing
is written under any VAR_DIR/media."""

import pytest
from django.conf import settings
from django.db import connection

from bench.cluster import TwoNodes, pdf_name, run_flow, setup_data

REDIS_DB = 13

pytestmark = [
    pytest.mark.skipif("connection.vendor != 'postgresql'",
                       reason="the nodes are separate processes: they need a database server (DATABASE_URL)"),
    pytest.mark.slow,
]


def _redis_url() -> str:
    import redis

    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at 127.0.0.1:6379 does not answer ({exc}): the nodes' broker")
    return url


@pytest.mark.django_db(transaction=True)
def test_documents_stamped_behind_one_web_process_download_from_the_other(s3_bucket, tmp_path):
    redis_url = _redis_url()
    api_key = setup_data()
    db = connection.settings_dict
    nodes = TwoNodes(root=tmp_path, env={
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,  # the CSD was encrypted by this process
        **s3_bucket.env,
    })
    try:
        nodes.start()
        result = run_flow(nodes, api_key=api_key, branch="CENTRO", invoices=2,
                          pdf_stored=pdf_name, bucket_object=lambda name: s3_bucket.objects()[name])
    finally:
        nodes.stop()
    assert result["stamped"] == 2 and result["pdfs_in_bucket"] == 2
    assert result["bytes_match"], result
    assert result["media_files"] == 0, result["media_file_names"]
    assert len(s3_bucket.objects()) == 2  # the two PDFs, and nothing else

