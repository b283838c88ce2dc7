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
