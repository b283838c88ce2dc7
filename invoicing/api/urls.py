from django.urls import path, re_path

from invoicing.api import cancel_views, export_views, global_views, refund_views, views
from invoicing.webhooks import api as webhooks

urlpatterns = [
    path("invoices", views.InvoiceCollection.as_view(), name="api-invoices"),
    path("invoices/<int:pk>", views.InvoiceDetail.as_view(), name="api-invoice"),
    path("invoices/<int:pk>/resend", views.InvoiceResend.as_view(), name="api-invoice-resend"),
    path("invoices/<int:pk>/withdraw", views.InvoiceWithdraw.as_view(), name="api-invoice-withdraw"),
    path("invoices/<int:pk>/cancel", cancel_views.InvoiceCancel.as_view(), name="api-invoice-cancel"),
    path("invoices/<int:pk>/reissue", cancel_views.InvoiceReissue.as_view(), name="api-invoice-reissue"),
    re_path(r"^invoices/(?P<pk>[0-9]+)/(?P<fmt>xml|pdf|zip)$", views.InvoiceDocument.as_view(),
            name="api-invoice-document"),
    path("tickets/<str:pk>/refunds", refund_views.TicketRefunds.as_view(), name="api-ticket-refunds"),
    path("global-invoices", global_views.GlobalInvoiceCollection.as_view(), name="api-global-invoices"),
    path("global-invoices/eligible", global_views.GlobalInvoiceEligible.as_view(), name="api-global-eligible"),
    path("global-invoices/<int:pk>", global_views.GlobalInvoiceDetail.as_view(), name="api-global-invoice"),
    path("exports", export_views.ExportCollection.as_view(), name="api-exports"),
    path("exports/<int:pk>", export_views.ExportDetail.as_view(), name="api-export"),
    path("exports/<int:pk>/download", export_views.ExportDownload.as_view(), name="api-export-download"),
    path("webhooks", webhooks.WebhookCollection.as_view(), name="api-webhooks"),
    path("webhooks/<int:pk>", webhooks.WebhookDetail.as_view(), name="api-webhook"),
    path("webhooks/<int:pk>/test", webhooks.WebhookTest.as_view(), name="api-webhook-test"),
    path("webhooks/<int:pk>/rotate-secret", webhooks.WebhookRotateSecret.as_view(), name="api-webhook-rotate"),
    path("webhooks/<int:pk>/deliveries", webhooks.WebhookDeliveries.as_view(), name="api-webhook-deliveries"),
]
