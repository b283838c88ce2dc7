"""load_sat_catalogs: loads SAT's big catalogs from the pinned satcfdi package, idempotently."""

import pytest
from django.core.management import CommandError, call_command

from tickets.catalogs import UnitKey, iana_time_zone
from tickets.management.commands.load_sat_catalogs import _postal_code


def test_unit_keys_load_and_a_second_run_leaves_the_same_rows(db):
    call_command("load_sat_catalogs", only="unit_keys")
    count = UnitKey.objects.count()
    assert count > 2000 and UnitKey.objects.get(pk="H87").name == "Pieza"
    call_command("load_sat_catalogs", only="unit_keys")
    assert UnitKey.objects.count() == count


def test_unknown_catalog_name_is_refused(db):
    with pytest.raises(CommandError, match="Catálogo desconocido"):
        call_command("load_sat_catalogs", only="planets")


def test_postal_code_rows_carry_the_iana_time_zone():
    assert _postal_code("83000", ["SON", "030", "07", "0", "Tiempo del Pacífico"])[-1] == "America/Hermosillo"
    assert iana_time_zone("Tiempo del Sureste", "ROO") == "America/Cancun"
    assert iana_time_zone("Tiempo del Noroeste", "BCN") == "America/Tijuana"
