from django.core.management import call_command


def test_openapi_schema_generates_without_warnings_and_validates(tmp_path, db):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = out.read_text()
    for path in ("/api/v1/tickets", "/api/v1/invoices", "/api/v1/global-invoices", "/api/v1/webhooks"):
        assert f"{path}:" in schema
