"""The sandbox PAC's registry of demo taxpayers: a listed receptor must carry SAT's registered name and postal
code, or it is refused like a real PAC refuses it (CFDI40145, CFDI40147); unlisted RFCs pass as they come."""

import pytest

from invoicing.cfdi.inputs import Receptor
from invoicing.pac.base import PacError
from invoicing.pac.sandbox import SandboxPac
from invoicing.pac.sandbox_registry import DEMO_TAXPAYERS, registry_mismatch

pytestmark = pytest.mark.django_db

URE = ("URE180429TM6", "UNIVERSIDAD ROBOTICA ESPAÑOLA", "65000", "601", "G03")


def refused(seal, receptor):
    with pytest.raises(PacError) as exc:
        SandboxPac().stamp(seal(receptor=Receptor(*receptor)))
    assert exc.value.permanent  # resending the same XML can never succeed: the receptor must change
    return exc.value


def test_a_listed_receptor_with_another_postal_code_is_cfdi40147(seal):
    error = refused(seal, (URE[0], URE[1], "64000", "601", "G03"))
    assert error.code == "CFDI40147"
    assert "DomicilioFiscalReceptor" in error.message and "64000" in error.message and "URE180429TM6" in error.message


def test_a_listed_receptor_with_another_name_is_cfdi40145_before_the_postal_code(seal):
    error = refused(seal, (URE[0], "UNIVERSIDAD ROBOTICA", "64000", "601", "G03"))
    assert error.code == "CFDI40145" and "UNIVERSIDAD ROBOTICA" in error.message


def test_the_registered_data_stamp_and_unlisted_rfcs_pass_as_they_come(seal):
    assert SandboxPac().stamp(seal(receptor=Receptor(*URE))).uuid
    # Not in the registry: the sandbox cannot know every taxpayer, so it does not refuse it.
    assert SandboxPac().stamp(seal(receptor=Receptor("XIQB891116QE4", "ALGUIEN", "26015", "612", "G03"))).uuid


def test_names_compare_as_sat_writes_them():
    assert registry_mismatch("ure180429tm6", " universidad  robotica española ", "65000") is None
    assert registry_mismatch("URE180429TM6", "UNIVERSIDAD ROBOTICA ESPANOLA", "65000")[0] == "CFDI40145"  # Ñ counts
    assert registry_mismatch("EKU9003173C9", "CUALQUIERA", "00000") is None


def test_the_registry_holds_sat_test_rfcs_with_their_data():
    for taxpayer in DEMO_TAXPAYERS.values():
        assert len(taxpayer.postal_code) == 5 and taxpayer.name == taxpayer.name.upper()
    assert DEMO_TAXPAYERS["CACX7605101P8"].name == "XOCHILT CASAS CHAVEZ"  # a test CSD holder in ../shared/sat
