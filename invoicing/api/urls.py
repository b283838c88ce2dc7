from django.urls import path, re_path

from invoicing.api import global_views, views

urlpatterns = [
    path("invoices", views.InvoiceCollection.as_view(), name="api-invoices"),
    path("invoices/<int:pk>", views.InvoiceDetail.as_view(), name="api-invoice"),
    path("invoices/<int:pk>/resend", views.InvoiceResend.as_view(), name="api-invoice-resend"),
    re_path(r"^invoices/(?P<pk>[0-9]+)/(?P<fmt>xml|pdf|zip)$", views.InvoiceDocument.as_view(),
            name="api-invoice-document"),
    path("global-invoices", global_views.GlobalInvoiceCollection.as_view(), name="api-global-invoices"),
    path("global-invoices/eligible", global_views.GlobalInvoiceEligible.as_view(), name="api-global-eligible"),
    path("global-invoices/<int:pk>", global_views.GlobalInvoiceDetail.as_view(), name="api-global-invoice"),
]
