"""An admission webhook backend for a simulated pod, so kube-apiserver has a real one to call.

    python -m tests.controlplane.backend --listen IP:PORT --cert C --key K

The node agent (nodes.py) starts it inside the apiserver's network namespace, on the pod's
own IP, once a pod annotated `controlplane.test/serve: <service>.<namespace>.svc` turns
Ready, and stops it when the pod goes. It answers every AdmissionReview: allowed, unless
the object carries the label `controlplane.test/deny`, which it refuses with that label's
value as the message; so a test can tell a webhook that answered from one never called.
A GET of /apis/GROUP/VERSION answers an empty APIResourceList, which is what the API
aggregator asks of an APIService's backend before it calls it Available.
"""

import argparse
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DENY_LABEL = "controlplane.test/deny"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        review = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        request = review.get("request") or {}
        labels = ((request.get("object") or {}).get("metadata") or {}).get("labels") or {}
        response = {"uid": request.get("uid", ""), "allowed": DENY_LABEL not in labels}
        if not response["allowed"]:
            response["status"] = {"code": 403, "message": labels[DENY_LABEL]}
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": response}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) == 3 and parts[0] == "apis":
            body = json.dumps({"kind": "APIResourceList", "apiVersion": "v1",
                               "groupVersion": f"{parts[1]}/{parts[2]}", "resources": []}).encode()
            self.send_response(200)
        else:
            body = b"ok"
            self.send_response(200 if parts[0] in ("healthz", "readyz", "livez") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # the apiserver's log says enough
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.controlplane.backend")
    parser.add_argument("--listen", required=True, metavar="IP:PORT")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=exit_with_agent, args=(os.getppid(),), daemon=True).start()
    server.serve_forever()


def exit_with_agent(agent):
    """The node agent that started this backend may be killed outright: do not outlive it."""
    while os.getppid() == agent:
        time.sleep(1)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
