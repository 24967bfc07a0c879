"""Run code in a kernel of a user's real server, through the hub's proxy."""

from __future__ import annotations

import json
import uuid

import httpx
import websocket


def run_in_kernel(hub, user: str, code: str, token: str | None = None) -> dict:
    """Start a kernel on the user's server, run ``code``, and parse the JSON it prints."""
    token = token or hub.token
    headers = {"Authorization": f"token {token}"}
    base = f"{hub.url}/user/{user}/api"
    kernel = httpx.post(f"{base}/kernels", headers=headers, json={}, timeout=60)
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    ws_url = base.replace("http://", "ws://") + f"/kernels/{kernel_id}/channels"
    ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"], timeout=120)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": user,
                        "session": uuid.uuid4().hex,
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {"code": code, "silent": False, "store_history": False},
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        stdout = ""
        while True:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream":
                stdout += msg["content"]["text"]
            elif kind == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                break
    finally:
        ws.close()
        httpx.delete(f"{base}/kernels/{kernel_id}", headers=headers, timeout=30)
    return json.loads(stdout.strip().splitlines()[-1])
