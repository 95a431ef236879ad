def test_create_then_retrieve_customer(client, customer):
    response = client.get(f"/v1/customers/{customer['id']}")
    assert response.status_code == 200
    assert response.json() == customer
    assert response["Request-Id"].startswith("req_")
    assert response["X-RateLimit-Resource"] == "read"
