"""Issue 18 in the back office and the catalogs: the exchange-rate table and API keys' branch in the admin
(scoped to the merchant), ``load_sat_catalogs`` from newer files, the portal's cart and currencies."""

import io
import pickle
import sqlite3
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from tickets.catalogs import PostalCode, TaxRateRule, tax_rate_catalog
from tickets.models import ApiKey, Branch, ExchangeRate
from tickets.zones import branch_zone_name, postal_info

SAT_SQL = """PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
INSERT INTO cfdi_40_reglas_tasa_cuota VALUES('Fijo','','0.000000','IVA','Tasa',1,'','2022-01-01','');
INSERT INTO cfdi_40_reglas_tasa_cuota VALUES('Fijo','','0.160000','IVA','Tasa',1,'','2022-01-01','');
INSERT INTO cfdi_40_reglas_tasa_cuota VALUES('Fijo','','0.080000','IVA Crédito aplicado del 50%','Tasa',1,'','2022-01-01','');
INSERT INTO cfdi_40_reglas_tasa_cuota VALUES('Fijo','','2.000000','IEPS','Tasa',1,1,'2027-01-01','');
INSERT INTO cfdi_40_reglas_tasa_cuota VALUES('Rango','0.000000','72.160500','IEPS','Cuota',1,1,'2026-01-01','');
COMMIT;
"""


def test_tax_rates_load_from_sats_table_and_replace_the_builtin_copy(tmp_path, db):
    path = tmp_path / "cfdi_40_reglas_tasa_cuota.sql"
    path.write_text(SAT_SQL, encoding="utf-8")
    out = io.StringIO()
    call_command("load_sat_catalogs", only="tax_rates", file=str(path), stdout=out)
    assert "tax_rates: 5 filas" in out.getvalue()
    assert TaxRateRule.objects.count() == 5
    catalog = tax_rate_catalog()
    assert catalog.allows("002", "Tasa", Decimal("0.080000"))  # «IVA Crédito aplicado del 50%» is IVA
    assert catalog.allows("003", "Cuota", Decimal("3.081800"))
    assert not catalog.allows("003", "Tasa", Decimal("2.000000"))  # in force only from its vigencia
    assert not catalog.allows("003", "Tasa", Decimal("0.265000"))  # this file's catalog, not the built-in one


def test_tax_rates_from_csv_and_the_builtin_copy(tmp_path, db):
    path = tmp_path / "tasas.csv"
    path.write_text("tipo,minimo,valor,impuesto,factor,traslado,retencion,vigencia_desde,vigencia_hasta\n"
                    "Fijo,,0.160000,002,Tasa,1,0,2022-01-01,\nFijo,,2.000000,003,Tasa,1,1,2026-01-01,\n")
    call_command("load_sat_catalogs", only="tax_rates", file=str(path), stdout=io.StringIO())
    assert tax_rate_catalog().allows("003", "Tasa", Decimal("2.000000"))
    call_command("load_sat_catalogs", only="tax_rates", stdout=io.StringIO())
    from invoicing.cfdi.catalogs import SAT_TASAS_O_CUOTAS
    from tickets.catalogs import tax_rate_catalog_clear

    tax_rate_catalog_clear()
    assert tax_rate_catalog() == SAT_TASAS_O_CUOTAS and TaxRateRule.objects.count() == 19


@pytest.mark.parametrize("content", ["", "no es una tabla", "Fijo,,abc,002,Tasa,1,0,,\n"])
def test_a_bad_tax_rates_file_changes_nothing(tmp_path, db, content):
    call_command("load_sat_catalogs", only="tax_rates", stdout=io.StringIO())
    path = tmp_path / "malo.csv"
    path.write_text(content)
    with pytest.raises(CommandError):
        call_command("load_sat_catalogs", only="tax_rates", file=str(path), stdout=io.StringIO())
    assert TaxRateRule.objects.count() == 19


def test_postal_codes_load_from_a_newer_satcfdi_file_and_drive_zone_and_border(tmp_path, merchant):
    path = tmp_path / "catalogs.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE C756_c_CodigoPostal (key BLOB, value BLOB)")
    rows = {"22000": ["BCN", "004", "04", "1", "Tiempo del Noroeste"],
            "83000": ["SON", "030", "07", "0", "Tiempo del Pacífico"],
            "06600": ["CMX", "015", "06", "0", "Tiempo del Centro"]}
    con.executemany("INSERT INTO C756_c_CodigoPostal VALUES (?, ?)",
                    [(pickle.dumps(k), pickle.dumps(v)) for k, v in rows.items()])
    con.commit()
    con.close()
    call_command("load_sat_catalogs", only="postal_codes", file=str(path), stdout=io.StringIO())
    assert PostalCode.objects.count() == 3
    tijuana = Branch.objects.create(merchant=merchant, code="TIJ", name="Tijuana", postal_code="22000")
    hermosillo = Branch.objects.create(merchant=merchant, code="HMO", name="Hermosillo", postal_code="83000")
    assert (branch_zone_name(tijuana), branch_zone_name(hermosillo)) == ("America/Tijuana", "America/Hermosillo")
    assert postal_info("22000").border and not postal_info("83000").border
    unknown = Branch.objects.create(merchant=merchant, code="X", name="X", postal_code="99999")
    assert branch_zone_name(unknown) == merchant.time_zone  # not in the catalog: the merchant's zone


def test_a_file_that_is_not_a_satcfdi_catalog_is_refused(tmp_path, db):
    path = tmp_path / "otro.db"
    sqlite3.connect(path).close()
    with pytest.raises(CommandError):
        call_command("load_sat_catalogs", only="postal_codes", file=str(path), stdout=io.StringIO())


# --- admin ----------------------------------------------------------------------------------------------------


def test_the_exchange_rate_admin_is_scoped_and_refuses_a_duplicate_day(client, merchant, other_merchant, make_staff):
    ExchangeRate.objects.create(merchant=other_merchant, currency="USD", valid_from="2026-05-30", rate=Decimal("99"))
    client.force_login(make_staff(merchant))
    data = {"currency": "usd", "valid_from": "2026-05-30", "rate": "17.25", "source": "dof_fix"}
    response = client.post("/admin/tickets/exchangerate/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    mine = ExchangeRate.objects.get(merchant=merchant)
    assert (mine.currency, mine.rate) == ("USD", Decimal("17.25"))
    again = client.post("/admin/tickets/exchangerate/add/", data)
    assert again.status_code == 200 and "edítalo" in again.content.decode()
    listing = client.get("/admin/tickets/exchangerate/").content.decode()
    assert "17.25" in listing and "99.000000" not in listing
    other = ExchangeRate.objects.get(merchant=other_merchant)
    assert client.get(f"/admin/tickets/exchangerate/{other.pk}/change/").status_code in (302, 404)


def test_the_exchange_rate_admin_refuses_pesos(client, merchant, make_staff):
    client.force_login(make_staff(merchant))
    response = client.post("/admin/tickets/exchangerate/add/", {"currency": "MXN", "valid_from": "2026-05-30",
                                                                 "rate": "1", "source": "dof_fix"})
    assert response.status_code == 200 and "moneda extranjera" in response.content.decode()
    assert not ExchangeRate.objects.exists()


def test_an_api_key_created_in_the_admin_names_one_of_the_merchants_branches(client, merchant, branch, other_branch,
                                                                            make_staff):
    client.force_login(make_staff(merchant))
    form = client.get("/admin/tickets/apikey/add/").content.decode()
    assert "Centro" in form and f'value="{other_branch.pk}"' not in form
    response = client.post("/admin/tickets/apikey/add/", {"name": "Caja 1", "scopes": ["tickets"],
                                                          "branch": other_branch.pk})
    assert response.status_code == 200 and not ApiKey.objects.exists()  # not a choice for this merchant
    response = client.post("/admin/tickets/apikey/add/", {"name": "Caja 1", "scopes": ["tickets"],
                                                          "branch": branch.pk})
    assert response.status_code == 302
    assert ApiKey.objects.get().branch == branch


def test_api_key_create_command_binds_a_branch(merchant, branch):
    out, err = io.StringIO(), io.StringIO()
    call_command("api_key_create", merchant="kemper", name="Caja", branch="CENTRO", stdout=out, stderr=err)
    assert ApiKey.objects.get().branch == branch
    with pytest.raises(CommandError):
        call_command("api_key_create", merchant="kemper", name="Caja", branch="NOEXISTE", stdout=out, stderr=err)


# --- portal cart ----------------------------------------------------------------------------------------------


def test_the_cart_refuses_a_ticket_in_another_currency_with_the_reason(client, merchant, branch, make_ticket):
    import datetime as dt

    from django.utils import timezone

    from tickets.services import LineInput, ticket_create

    peso = make_ticket(branch, number="M1")
    dollar = ticket_create(merchant=merchant, branch=branch, number="U1", currency="USD",
                           exchange_rate=Decimal("17.25"), sold_at=timezone.now() - dt.timedelta(hours=1),
                           lines=[LineInput(product_code="50202306", unit_code="H87", description="X",
                                            quantity=Decimal("1"), unit_price=Decimal("10.00"))])
    assert client.get(f"/t/{peso.public_code}").status_code in (200, 302)
    response = client.get(f"/t/{dollar.public_code}", follow=True)
    text = response.content.decode()
    assert "una sola moneda" in text
    cart = client.get(f"/{merchant.slug}/carrito/").content.decode()
    assert "M1" in cart and "U1" not in cart
