"""The simulator's flavours (UPSTREAM.md, "Flavours"): which routes each kind of upstream has,
and how it answers a fetch of a task it does not know."""

from __future__ import annotations

import pytest

from tests.conftest import StartSimulator
from tests.simulator.helpers import connect

PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
    "hQGAhKmMIQAAAABJRU5ErkJggg=="
)
ROUTES = {
    "submit/action": {"taskId": "1", "customId": "MJ::JOB::upsample::1::x"},
    "submit/modal": {"taskId": "1"},
    "submit/shorten": {"prompt": "a fox"},
    "submit/upload-discord-images": {"base64Array": [PNG]},
    "insight-face/swap": {"sourceBase64": PNG, "targetBase64": PNG},
    "submit/change": {"taskId": "1", "action": "UPSCALE", "index": 1},
    "submit/simple-change": {"content": "1 U1"},
    "submit/video": {"prompt": "waves", "image": PNG},
    "submit/edits": {"prompt": "gold", "image": PNG},
    "submit/edit": {"prompt": "gold", "image": PNG},
    "submit/retexture": {"prompt": "gold", "image": PNG},
}
EDITS = {"submit/edits", "submit/edit", "submit/retexture"}
LACKS = {
    "plus": EDITS,
    "open-source": {
        "submit/action",
        "submit/modal",
        "submit/shorten",
        "submit/upload-discord-images",
        "insight-face/swap",
        "submit/video",
        *EDITS,
    },
    "trueai": {"submit/change", "submit/simple-change"},
}


@pytest.mark.parametrize("flavour", sorted(LACKS))
async def test_each_flavour_has_its_own_routes(
    simulator_factory: StartSimulator, flavour: str
) -> None:
    simulator = await simulator_factory(flavour=flavour)
    async with connect(simulator) as http:
        for route, body in ROUTES.items():
            answer = await http.post(f"/mj/{route}", json=body)
            if route in LACKS[flavour]:
                assert answer.status_code == 404, (flavour, route, answer.text)
            else:
                assert answer.status_code == 200, (flavour, route, answer.text)
                assert isinstance(answer.json()["code"], int)
        imagine = await http.post("/mj/submit/imagine", json={"prompt": "a fox"})
        assert imagine.json()["code"] == 1
        seed = await http.get(f"/mj/task/{imagine.json()['result']}/image-seed")
        assert seed.status_code == (404 if flavour == "open-source" else 200)
        prefixed = await http.post("/mj-relax/mj/submit/imagine", json={"prompt": "a fox"})
        assert prefixed.status_code == (404 if flavour == "open-source" else 200)


@pytest.mark.parametrize(
    ("flavour", "status"), [("plus", 200), ("open-source", 200), ("trueai", 204)]
)
async def test_a_fetch_of_an_unknown_task_is_empty(
    simulator_factory: StartSimulator, flavour: str, status: int
) -> None:
    simulator = await simulator_factory(flavour=flavour)
    async with connect(simulator) as http:
        answer = await http.get("/mj/task/1700000000000999/fetch")
    assert (answer.status_code, answer.content) == (status, b"")
