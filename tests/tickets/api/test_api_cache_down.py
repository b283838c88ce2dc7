"""With Redis unreachable the API keeps answering: the per-key throttle counts in each process meanwhile."""


def test_api_answers_with_redis_unreachable_and_still_throttles_per_key(api_client, other_api_client, payload,
                                                                        redis_down, settings, still_clock):
    settings.API_RATE_LIMIT = "3/min"
    assert api_client.get("/api/v1/tickets").status_code == 200
    created = api_client.post("/api/v1/tickets", payload(), format="json")
    assert created.status_code == 201, created.content
    assert api_client.get(f"/api/v1/tickets/{created.json()['id']}").status_code == 200
    refused = api_client.get("/api/v1/tickets")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert int(refused["Retry-After"]) == 30  # the window (pinned 30 s into a minute) ends in 30 s
    assert other_api_client.get("/api/v1/tickets").status_code == 200  # still per key
