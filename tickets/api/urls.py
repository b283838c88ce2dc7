from django.urls import path

from tickets.api import views

urlpatterns = [
    path("tickets", views.TicketCollection.as_view(), name="api-tickets"),
    path("tickets/batch", views.TicketBatchView.as_view(), name="api-tickets-batch"),
    path("tickets/validate", views.TicketValidate.as_view(), name="api-tickets-validate"),
    path("tickets/<int:pk>", views.TicketDetail.as_view(), name="api-ticket"),
    path("tickets/<int:pk>/expire", views.TicketExpire.as_view(), name="api-ticket-expire"),
    path("tickets/<int:pk>/void", views.TicketVoid.as_view(), name="api-ticket-void"),
    path("batches/<str:batch_id>", views.BatchDetail.as_view(), name="api-batch"),
    path("batches/<str:batch_id>/report.csv", views.BatchReportCsv.as_view(), name="api-batch-report-csv"),
]
