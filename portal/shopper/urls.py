"""Shoppers' routes, included by portal/urls.py before the merchant-slug catch-all."""

from django.urls import path

from portal import views
from portal.shopper import correction, my_invoices

urlpatterns = [
    path("t/<str:code>", views.ticket_by_code, name="ticket-public"),
    path("<slug:slug>/carrito/", views.cart_page, name="shop-cart"),
    path("<slug:slug>/datos/", views.fiscal_data, name="shop-data"),
    path("<slug:slug>/datos/constancia/", views.constancia_upload, name="shop-constancia"),
    path("<slug:slug>/datos/constancia/regimen/", views.constancia_regimen, name="shop-constancia-regimen"),
    path("<slug:slug>/confirmar/", views.confirm, name="shop-confirm"),
    path("<slug:slug>/factura/<str:code>/", views.invoice_page, name="shop-invoice"),
    path("<slug:slug>/factura/<str:code>/estado", views.invoice_status, name="shop-invoice-status"),
    path("<slug:slug>/factura/<str:code>/reenviar", views.invoice_resend, name="shop-invoice-resend"),
    path("<slug:slug>/factura/<str:code>/corregir", views.invoice_fix, name="shop-invoice-fix"),
    path("<slug:slug>/factura/<str:code>/reintentar", views.invoice_retry, name="shop-invoice-retry"),
    path("<slug:slug>/factura/<str:code>/correccion/", correction.invoice_correct, name="shop-invoice-correct"),
    path("<slug:slug>/facturado/<str:code>/", views.invoiced_ticket, name="shop-invoiced"),
    path("<slug:slug>/facturado/<str:code>/reenviar", views.invoiced_resend, name="shop-invoiced-resend"),
    path("<slug:slug>/mis-facturas/", my_invoices.my_invoices_request, name="shop-my-invoices"),
    path("<slug:slug>/mis-facturas/acceso/<str:token>/", my_invoices.my_invoices_open, name="shop-my-invoices-open"),
    path("<slug:slug>/mis-facturas/lista/", my_invoices.my_invoices_list, name="shop-my-invoices-list"),
    path("<slug:slug>/mis-facturas/<str:code>/<str:fmt>", my_invoices.my_invoices_download,
         name="shop-my-invoices-download"),
    path("<slug:slug>/privacidad/", views.privacy, name="shop-privacy"),
]
