from tests.internships.helpers import apply, move


def test_apply_and_shortlist(client, world):
    response = apply(client, world.student, world.opportunity["id"])
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    print(body)
    moved = move(client, world.employer_admin, body["id"], "SHORTLISTED")
    assert moved.status_code == 200, moved.get_json()
