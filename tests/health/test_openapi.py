def test_every_health_endpoint_is_documented_with_its_response_shape(anon_client):
    spec = anon_client.get("/v1/openapi.json").json()
    paths = spec["paths"]
    for path, method in [
        ("/v1/customers/{id}/health", "get"),
        ("/v1/customers/{id}/health/history", "get"),
        ("/v1/signals/{id}", "get"),
        ("/v1/health/summary", "get"),
        ("/v1/health/at-risk", "get"),
        ("/v1/health/model", "get"),
        ("/v1/health/model", "put"),
    ]:
        operation = paths[path][method]
        assert "$ref" in str(operation["responses"]["200"]["content"]["application/json"]["schema"]), path
        assert "404" in operation["responses"] or method == "put" or "health/" in path
    params = {p["name"] for p in paths["/v1/health/at-risk"]["get"]["parameters"]}
    assert {"threshold", "dropped_after", "limit", "starting_after"} <= params
