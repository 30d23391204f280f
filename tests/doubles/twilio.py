"""A stand-in for Twilio's REST API (api.twilio.com), served from a thread on 127.0.0.1.

Speaks the two requests Ringline makes, in Twilio's own shapes, so the real `twilio` client is
the one under test (its `api.base_url` points here):

- `POST /2010-04-01/Accounts/{AccountSid}/Calls.json` creates a call: 201 with a new CallSid;
- `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` updates one (hang-up, new TwiML).

Every request is recorded (`requests`: path, form, auth header); `status` makes every answer an
error in Twilio's error format.

    with TwilioApi() as api:
        settings = TelephonySettings(twilio_api_url=api.url, ...)
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

_CREATE = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]+)/Calls\.json$")
_UPDATE = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]+)/Calls/(CA[0-9a-f]+)\.json$")


class TwilioApi:
    """Records what it is asked; `created` holds the calls it placed (form fields and CallSid)."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []
        self.status = status
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                form = parse_qs(body)
                with api._lock:
                    api.requests.append({"path": self.path, "form": form,
                                         "auth": self.headers.get("Authorization", "")})
                status, reply = api._answer(self.path, form)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="twilio-api-double")

    def _answer(self, path: str, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if self.status >= 400:
            return self.status, {"code": 20500 if self.status >= 500 else 21211, "status": self.status,
                                 "message": f"the double answers {self.status}",
                                 "more_info": "https://www.twilio.com/docs/errors"}
        field = {name: values[0] for name, values in form.items()}
        if match := _CREATE.match(path):
            sid = "CA" + secrets.token_hex(16)
            with self._lock:
                self.created.append({"sid": sid, **field})
            return 201, {"sid": sid, "account_sid": match.group(1), "to": field.get("To"),
                         "from": field.get("From"), "status": "queued", "direction": "outbound-api"}
        if match := _UPDATE.match(path):
            return self.status, {"sid": match.group(2), "account_sid": match.group(1),
                                 "status": field.get("Status", "in-progress")}
        return 404, {"code": 20404, "status": 404, "message": f"no resource {path}",
                     "more_info": "https://www.twilio.com/docs/errors/20404"}

    def __enter__(self) -> TwilioApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
