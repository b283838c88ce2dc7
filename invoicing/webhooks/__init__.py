"""Merchant webhooks: endpoints, signed deliveries with retries, the API and the admin (see docs/webhooks.md).

Other modules emit events through ``invoicing.webhooks.services.webhook_emit`` (or ``invoice_webhook_emit`` for
an invoice); delivery happens in the background (``invoicing.webhooks.tasks``).
"""
