"""SAT's big catalogs (postal codes, product and unit keys) in our own tables, for indexed look-ups.

Loaded by ``manage.py load_sat_catalogs`` from the pinned satcfdi package. The small catalogs (régimen,
UsoCFDI, forma de pago) live in code in invoicing/cfdi/catalogs.py. Whether a postal code exists is the
receptor rule's question (invoicing/cfdi/receptor.py ``postal_code_exists``), answered from the same satcfdi
data whether or not these tables were loaded; the table adds what a code's row knows (state, time zone).
"""

from django.db import models

# SAT's time-zone descriptions (c_CodigoPostal) → IANA zones. The state disambiguates where SAT groups
# zones that differ in daylight saving (Sonora has none; the northern border follows the US calendar).
SAT_TIME_ZONES = {
    "Tiempo del Centro": "America/Mexico_City",
    "Tiempo del Sureste": "America/Cancun",
    "Tiempo del Noroeste": "America/Tijuana",
    "Tiempo del Pacífico": "America/Mazatlan",
    "Tiempo del Centro en Frontera": "America/Matamoros",
}
SAT_TIME_ZONES_BY_STATE = {
    ("Tiempo del Pacífico", "SON"): "America/Hermosillo",
    ("Tiempo del Centro en Frontera", "CHH"): "America/Ojinaga",
}


def iana_time_zone(sat_name: str, state: str) -> str:
    return SAT_TIME_ZONES_BY_STATE.get((sat_name, state)) or SAT_TIME_ZONES.get(sat_name, "America/Mexico_City")


class PostalCode(models.Model):
    """c_CodigoPostal: the receptor's DomicilioFiscalReceptor and a branch's LugarExpedicion must exist here."""

    code = models.CharField("código postal", max_length=5, primary_key=True)
    state = models.CharField("estado", max_length=3)
    municipality = models.CharField("municipio", max_length=3, blank=True)
    locality = models.CharField("localidad", max_length=2, blank=True)
    border_incentive = models.CharField("estímulo de franja fronteriza", max_length=1, blank=True)
    time_zone_name = models.CharField("huso horario (SAT)", max_length=40)
    time_zone = models.CharField("zona horaria", max_length=40)

    class Meta:
        verbose_name = "código postal (SAT)"
        verbose_name_plural = "códigos postales (SAT)"

    def __str__(self):
        return f"{self.code} ({self.state})"


class ProductKey(models.Model):
    """c_ClaveProdServ."""

    code = models.CharField("clave", max_length=8, primary_key=True)
    description = models.CharField("descripción", max_length=300)

    class Meta:
        verbose_name = "clave de producto o servicio (SAT)"
        verbose_name_plural = "claves de producto o servicio (SAT)"

    def __str__(self):
        return f"{self.code} {self.description}"


class UnitKey(models.Model):
    """c_ClaveUnidad."""

    code = models.CharField("clave", max_length=3, primary_key=True)
    name = models.CharField("nombre", max_length=200)

    class Meta:
        verbose_name = "clave de unidad (SAT)"
        verbose_name_plural = "claves de unidad (SAT)"

    def __str__(self):
        return f"{self.code} {self.name}"


class TaxRateRule(models.Model):
    """c_TasaOCuota, loaded by ``manage.py load_sat_catalogs --only tax_rates`` (optionally from a newer SAT
    file): when rows exist they replace the engine's built-in copy for ticket ingestion and stamping, so a rate
    SAT adds (e.g. IEPS 200 % on cigarettes, once published) is accepted without a release."""

    class Kind(models.TextChoices):
        FIXED = "fijo", "Fijo"
        RANGE = "rango", "Rango"

    kind = models.CharField("tipo", max_length=5, choices=Kind)
    tax = models.CharField("impuesto", max_length=3)  # 001 ISR, 002 IVA, 003 IEPS
    factor = models.CharField("tipo de factor", max_length=6)
    minimum = models.DecimalField("mínimo", max_digits=12, decimal_places=6, null=True, blank=True)
    value = models.DecimalField("valor (o máximo)", max_digits=12, decimal_places=6)
    transfer = models.BooleanField("traslado")
    withholding = models.BooleanField("retención")
    valid_from = models.DateField("vigente desde", null=True, blank=True)
    valid_to = models.DateField("vigente hasta", null=True, blank=True)

    class Meta:
        verbose_name = "tasa o cuota (SAT)"
        verbose_name_plural = "tasas o cuotas (SAT)"

    def __str__(self):
        value = f"{self.value:f}" if self.kind == self.Kind.FIXED else f"{self.minimum:f}–{self.value:f}"
        return f"{self.tax} {self.factor} {value}"


_TASAS_TTL = 60.0
_tasas_cache: list = [0.0, None]


def tax_rate_catalog():
    """c_TasaOCuota in force: the loaded rows (valid today), else the engine's copy of SAT's catalog.

    Cached for a minute per process: every ticket batch and every stamping batch asks."""
    import time

    from django.db.models import Q
    from django.utils import timezone

    from invoicing.cfdi.catalogs import SAT_TASAS_O_CUOTAS, TasaOCuotaRule, TasasOCuotas

    now = time.monotonic()
    if _tasas_cache[1] is not None and _tasas_cache[0] > now:
        return _tasas_cache[1]
    today = timezone.localdate()
    rows = list(TaxRateRule.objects.filter(Q(valid_from__isnull=True) | Q(valid_from__lte=today),
                                           Q(valid_to__isnull=True) | Q(valid_to__gte=today)))
    if rows:
        catalog = TasasOCuotas(
            [TasaOCuotaRule(r.tax, r.factor, r.value, r.minimum if r.kind == TaxRateRule.Kind.RANGE else None,
                            r.transfer, r.withholding) for r in rows],
            source="catálogo cargado (load_sat_catalogs)")
    else:
        catalog = SAT_TASAS_O_CUOTAS
    _tasas_cache[:] = [now + _TASAS_TTL, catalog]
    return catalog


def tax_rate_catalog_clear() -> None:
    _tasas_cache[:] = [0.0, None]
