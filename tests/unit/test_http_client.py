"""`actors.http_client.post_json`: the provider call's request, sent straight to the client's
transport, is the request the client itself would have built."""

from __future__ import annotations

import json

import httpx

from actors.http_client import post_json

BODY = {"model": "m", "messages": [{"role": "user", "content": "héllo"}], "n": 1}


async def test_the_request_is_the_one_the_client_would_build_and_nothing_is_kept() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True}, headers={"set-cookie": "s=1; Path=/"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    headers = {"Authorization": "Bearer sk-test", "content-type": "application/json"}
    timeout = httpx.Timeout(7.0, connect=2.0)
    reply = await post_json(client, "http://provider.test/v1/chat", BODY, headers, timeout)
    await reply.aread()
    built = client.build_request(
        "POST", "http://provider.test/v1/chat", json=BODY, headers=headers, timeout=timeout
    )
    [sent] = seen
    assert sent.content == built.content  # httpx's own JSON encoding, byte for byte
    assert json.loads(sent.content) == BODY
    assert sorted(sent.headers.multi_items()) == sorted(built.headers.multi_items())
    assert sent.extensions["timeout"] == built.extensions["timeout"]
    assert reply.status_code == 200 and reply.json() == {"ok": True}
    assert reply.request is sent
    assert not client.cookies  # a provider's cookie is not carried to the next call
    await client.aclose()
