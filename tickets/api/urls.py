from django.urls import path, re_path

from infra.api.errors import api_not_found
from tickets.api import rates, views

# Ids are matched loosely and checked in the view, so a malformed id is a JSON 404 like any other.
urlpatterns = [
    path("tickets", views.TicketCollection.as_view(), name="api-tickets"),
    path("tickets/batch", views.TicketBatchView.as_view(), name="api-tickets-batch"),
    path("tickets/validate", views.TicketValidate.as_view(), name="api-tickets-validate"),
    path("tickets/<str:pk>", views.TicketDetail.as_view(), name="api-ticket"),
    path("tickets/<str:pk>/expire", views.TicketExpire.as_view(), name="api-ticket-expire"),
    path("tickets/<str:pk>/void", views.TicketVoid.as_view(), name="api-ticket-void"),
    path("batches/<str:batch_id>", views.BatchDetail.as_view(), name="api-batch"),
    path("batches/<str:batch_id>/report.csv", views.BatchReportCsv.as_view(), name="api-batch-report-csv"),
    path("exchange-rates", rates.ExchangeRates.as_view(), name="api-exchange-rates"),
    re_path(r"^(tickets|batches|exchange-rates)/", api_not_found),
]
