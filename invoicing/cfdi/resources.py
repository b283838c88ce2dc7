"""Where SAT's XSD, XSLT and catalogs live at run time.

They come from the pinned ``satcfdi`` package (it ships SAT's files in SAT's own folder layout). This is the
only module that knows that: swapping the source means changing ``sat_root()`` and nothing else.
Compiled schema and transforms are cached per process because compiling the 5 MB catalog schema costs
~130 ms and every document would otherwise pay it.
"""

from __future__ import annotations

import functools
import pickle
import re
import sqlite3
from contextlib import closing
from pathlib import Path

from lxml import etree

CFDI_NS = "http://www.sat.gob.mx/cfd/4"
CFDI33_NS = "http://www.sat.gob.mx/cfd/3"
TFD_NS = "http://www.sat.gob.mx/TimbreFiscalDigital"

CFDI40_XSD = "cfd/4/cfdv40.xsd"
TFD11_XSD = "cfd/TimbreFiscalDigital/TimbreFiscalDigitalv11.xsd"
CADENA40_XSLT = "cfd/4/cadenaoriginal_4_0/cadenaoriginal_4_0.xslt"
TFD11_XSLT = "cfd/TimbreFiscalDigital/cadenaoriginal_TFD_1_1.xslt"


@functools.cache
def sat_root() -> Path:
    """``.../www.sat.gob.mx/sitio_internet`` inside the installed satcfdi package."""
    import satcfdi.transform

    root = Path(satcfdi.transform.__file__).resolve().parent / "schemas" / "www.sat.gob.mx" / "sitio_internet"
    if not (root / CFDI40_XSD).is_file():
        raise RuntimeError(f"No se encontraron los esquemas del SAT en {root}: reinstala el paquete satcfdi.")
    return root


def catalogs_db_path() -> Path:
    """SQLite file with SAT's full catalogs (postal codes, product keys...) shipped by satcfdi."""
    import satcfdi.catalogs

    return Path(satcfdi.catalogs.__file__).resolve().parent / "catalogs.db"


@functools.cache
def sat_catalog(name: str) -> dict:
    """One of SAT's CFDI 4.0 catalogs as shipped by satcfdi (``c_Moneda`` → {code: [name, decimals]}).

    Read once per process from the package's SQLite file (read-only); the values are satcfdi's own pickles.
    """
    import pickle
    import sqlite3

    if not re.fullmatch(r"c_[A-Za-z]+", name):
        raise ValueError(f"catálogo desconocido: {name}")
    source = sqlite3.connect(f"file:{catalogs_db_path()}?mode=ro", uri=True)
    try:
        rows = source.execute(f"SELECT key, value FROM C756_{name}").fetchall()  # noqa: S608 - checked name
    finally:
        source.close()
    return {pickle.loads(k): pickle.loads(v) for k, v in rows}  # noqa: S301 - the pinned package's own file


def _offline_parser() -> etree.XMLParser:
    # SAT's files reference each other by relative path; nothing may ever be fetched from the network.
    return etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)


def load_xslt(path: Path) -> etree.XSLT:
    """Compile an XSLT file; its xsl:include paths resolve against the file's own folder, offline."""
    doc = etree.parse(str(path), _offline_parser())
    access = etree.XSLTAccessControl(
        read_file=True, write_file=False, create_dir=False, read_network=False, write_network=False
    )
    return etree.XSLT(doc, access_control=access)


CATCFDI_XSD = "cfd/catalogos/catCFDI.xsd"
XS = "http://www.w3.org/2001/XMLSchema"
# The three huge enumerations of catCFDI.xsd (≈150,000 values). libxml2 scans an enumeration linearly for
# every attribute it checks, which made one XSD validation of a 10,000-concept global cost seconds. The
# compiled schema checks their shape only; membership is checked in O(1) by the business rules
# (validation.py: CFDI40126, CFDI40162, CFDI40165) against the very same values, read from the same file.
BIG_CATALOGS = {
    "c_ClaveProdServ": "[0-9]{8}",
    "c_CodigoPostal": "[0-9]{5}",
    "c_ClaveUnidad": "[A-Z0-9]{1,3}",
}


@functools.cache
def _split_catalogs() -> tuple[bytes, dict[str, frozenset[str]]]:
    """One pass over catCFDI.xsd: the big enumerations become patterns (the lean schema) and their values
    become sets (for the rules). Parsing the 5 MB file once instead of twice, without XPath, keeps a cold
    worker's first document fast."""
    tree = etree.parse(str(sat_root() / CATCFDI_XSD), _offline_parser())
    values: dict[str, frozenset[str]] = {}
    enumeration = f"{{{XS}}}enumeration"
    for simple_type in tree.getroot().iterchildren(f"{{{XS}}}simpleType"):
        name = simple_type.get("name")
        if name not in BIG_CATALOGS:
            continue
        restriction = simple_type.find(f"{{{XS}}}restriction")
        facets = [f for f in restriction.iterchildren(enumeration)]
        values[name] = frozenset(f.get("value") for f in facets)
        for facet in facets:
            restriction.remove(facet)
        etree.SubElement(restriction, f"{{{XS}}}pattern", value=BIG_CATALOGS[name])
    return etree.tostring(tree), values


def big_catalog(name: str) -> frozenset[str]:
    """Every value SAT's catCFDI.xsd enumerates for ``name`` (one of BIG_CATALOGS)."""
    return _split_catalogs()[1][name]


POSTAL_CODES_TABLE = "C756_c_CodigoPostal"  # satcfdi's catalogs.db: the same values as catCFDI.xsd's c_CodigoPostal


def postal_code_in_catalog(code: str) -> bool:
    """Is ``code`` in SAT's c_CodigoPostal? From the XSD's values when this process has them already (a stamping
    worker), else one indexed look-up in satcfdi's catalogs.db: a web process checking a shopper's postal code
    must not pay the second it takes to read the 5 MB catalog schema."""
    if _split_catalogs.cache_info().currsize:
        return code in big_catalog("c_CodigoPostal")
    return _postal_code_in_db(code)


@functools.lru_cache(maxsize=65536)  # ~32,000 codes exist; a process sees a few
def _postal_code_in_db(code: str) -> bool:
    key = _db_key(code)
    if key is None:  # a satcfdi whose storage we do not recognise: the XSD's values are always there
        return code in big_catalog("c_CodigoPostal")
    with closing(_catalogs_db()) as db:
        return db.execute(f"SELECT 1 FROM {POSTAL_CODES_TABLE} WHERE key = ?", (key,)).fetchone() is not None  # noqa: S608


def _catalogs_db() -> sqlite3.Connection:
    return sqlite3.connect(f"file:{catalogs_db_path()}?mode=ro", uri=True)


def _db_key(code: str) -> bytes | None:
    """satcfdi stores keys pickled; the pickle protocol is read from the table itself and checked to give back
    its own first key byte for byte, so a change of satcfdi's format falls back instead of finding nothing."""
    protocol = _db_key_protocol()
    return None if protocol is None else pickle.dumps(code, protocol=protocol)


@functools.cache
def _db_key_protocol() -> int | None:
    try:
        with closing(_catalogs_db()) as db:
            row = db.execute(f"SELECT key FROM {POSTAL_CODES_TABLE} LIMIT 1").fetchone()  # noqa: S608
        first = pickle.loads(row[0])  # noqa: S301 - the pinned package's own file
        protocol = row[0][1]
    except (sqlite3.Error, pickle.UnpicklingError, TypeError, IndexError, ValueError, EOFError):
        return None
    if not isinstance(first, str) or protocol > pickle.HIGHEST_PROTOCOL or pickle.dumps(first, protocol) != row[0]:
        return None
    return protocol


def _lean_catalog_xsd() -> bytes:
    return _split_catalogs()[0]


class _LeanCatalogResolver(etree.Resolver):
    def resolve(self, system_url, public_id, context):
        if system_url and system_url.replace("\\", "/").endswith("catalogos/catCFDI.xsd"):
            return self.resolve_string(_lean_catalog_xsd(), context, base_url=system_url)
        return None


def _schema_parser() -> etree.XMLParser:
    parser = _offline_parser()
    parser.resolvers.add(_LeanCatalogResolver())
    return parser


def load_schema(root: Path, *, with_tfd: bool = True) -> etree.XMLSchema:
    """CFDI 4.0 schema; with ``with_tfd`` it also knows TimbreFiscalDigital 1.1 so a stamped file validates.

    Complemento is a strict xs:any, so a stamped CFDI only validates against a schema set that declares the
    TFD element: we compile a tiny wrapper that imports both official files by absolute path.
    """
    if not with_tfd:
        return etree.XMLSchema(etree.parse(str(root / CFDI40_XSD), _schema_parser()))
    wrapper = (
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        f'<xs:import namespace="{CFDI_NS}" schemaLocation="{(root / CFDI40_XSD).as_uri()}"/>'
        f'<xs:import namespace="{TFD_NS}" schemaLocation="{(root / TFD11_XSD).as_uri()}"/>'
        "</xs:schema>"
    )
    doc = etree.fromstring(wrapper.encode(), _schema_parser(), base_url=(root / "cfd").as_uri() + "/")
    return etree.XMLSchema(etree.ElementTree(doc))


@functools.cache
def cadena_xslt() -> etree.XSLT:
    return load_xslt(sat_root() / CADENA40_XSLT)


@functools.cache
def tfd_cadena_xslt() -> etree.XSLT:
    return load_xslt(sat_root() / TFD11_XSLT)


@functools.cache
def cfdi_schema() -> etree.XMLSchema:
    return load_schema(sat_root())


def engine_warm() -> None:
    """Load and compile SAT's XSLT, schema and big catalogs now rather than on the first document.

    ``manage.py qcluster`` calls it before forking its workers, so every worker (and every worker recycled
    after Q_RECYCLE tasks) shares them instead of paying for them on its first invoice.
    """
    cadena_xslt()
    tfd_cadena_xslt()
    cfdi_schema()
    _split_catalogs()
