"""Back office tickets: read-only records, expire/void through the services, one merchant's staff only."""

from tickets.models import Ticket


def test_staff_expires_and_voids_their_tickets_through_actions(client, merchant, branch, make_ticket, make_staff):
    client.force_login(make_staff(merchant))
    a, b = make_ticket(branch, number="A"), make_ticket(branch, number="B")
    response = client.post("/admin/tickets/ticket/", {"action": "void_selected", "_selected_action": [a.pk]})
    assert response.status_code == 302
    assert Ticket.objects.get(pk=a.pk).status == "void"
    client.post("/admin/tickets/ticket/", {"action": "expire_selected", "_selected_action": [b.pk]})
    b.refresh_from_db()
    assert b.status == "open" and b.expires_at <= b.updated_at


def test_an_invoiced_ticket_cannot_be_voided_and_says_why(client, merchant, ticket, make_staff):
    Ticket.objects.filter(pk=ticket.pk).update(status="invoiced")
    client.force_login(make_staff(merchant))
    response = client.post("/admin/tickets/ticket/", {"action": "void_selected", "_selected_action": [ticket.pk]},
                           follow=True)
    assert Ticket.objects.get(pk=ticket.pk).status == "invoiced"
    assert "facturado" in response.content.decode()


def test_tickets_cannot_be_added_or_edited_in_the_admin(client, merchant, ticket, make_staff):
    client.force_login(make_staff(merchant))
    assert client.get("/admin/tickets/ticket/add/").status_code == 403
    assert client.get("/admin/tickets/batch/add/").status_code == 403
    page = client.get(f"/admin/tickets/ticket/{ticket.pk}/change/")
    assert page.status_code == 200 and 'name="total"' not in page.content.decode()


def test_another_merchants_staff_sees_and_touches_none_of_my_tickets(client, other_merchant, branch, make_ticket,
                                                                     make_staff):
    ticket = make_ticket(branch, number="MINE-0001")  # not a string a random CSRF token could contain
    client.force_login(make_staff(other_merchant, "otro"))
    assert ticket.number not in client.get("/admin/tickets/ticket/").content.decode()
    assert client.get(f"/admin/tickets/ticket/{ticket.pk}/change/").status_code == 302
    client.post("/admin/tickets/ticket/", {"action": "void_selected", "_selected_action": [ticket.pk]})
    assert Ticket.objects.get(pk=ticket.pk).status == "open"
