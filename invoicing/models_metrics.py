"""Counters of the stamping pipeline, kept in the database so that every web process reports the same totals.

The workers that stamp run on other machines, are forked and recycled by django-q2 and serve no HTTP: a counter
in their memory (even prometheus_client's multiprocess files, which only add up the processes of one host) would
never reach a scrape, or would reset with each worker. A row per (counter, labels, shard) is written in the same
transaction as the stamps it counts, so the totals are exact and survive restarts; ``shard`` (the writing
process's pid modulo SHARDS) keeps two workers from queueing on one row. /metrics adds the shards up.
"""

from django.db import models

SHARDS = 8


class MetricCounter(models.Model):
    name = models.CharField("contador", max_length=60)
    labels = models.CharField("etiquetas", max_length=200, blank=True)  # JSON of the sorted (label, value) pairs
    shard = models.PositiveSmallIntegerField("fragmento", default=0)
    value = models.FloatField("valor", default=0)

    class Meta:
        verbose_name = "contador de métricas"
        verbose_name_plural = "contadores de métricas"
        constraints = [models.UniqueConstraint(fields=["name", "labels", "shard"], name="metric_counter_unique")]

    def __str__(self):
        return f"{self.name}{self.labels} = {self.value}"
