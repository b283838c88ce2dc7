"""The fake PAC servers live in invoicing/pac/fakes.py, shared with the reliability suite (bench/faults.py)."""

from invoicing.pac.fakes import *  # noqa: F403
from invoicing.pac.fakes import (  # noqa: F401 - the names the PAC tests import from here
    FINKOK_PASSWORD,
    FINKOK_USER,
    SW_PASSWORD,
    SW_USER,
    FinkokFake,
    SatFake,
    SwFake,
)
