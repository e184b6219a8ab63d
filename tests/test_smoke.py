"""The app starts and serves its home page."""


def test_home_page(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"ketamine-assisted psychotherapy" in response.data.lower()
