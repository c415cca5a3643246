"""A real SMTP server on loopback for driftless's email tests (aiosmtpd, installed by
scripts/testenv into the tools virtualenv).

    server.py LOG_DIR [--tls CERT KEY USER PASSWORD]

With --tls it offers STARTTLS, requires it before anything else, and requires AUTH with the
given credentials; without it the server speaks only plain SMTP. Every EHLO and every received
message is written to LOG_DIR/events (one line each: "ehlo", "data tls=<bool> auth=<login>"),
each message body to LOG_DIR/message-N.eml. The bound port is printed on stdout, then the
server runs until stdin closes.
"""

import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class BoundController(Controller):
    """Listens on port 0, so the kernel picks a free port that no other process can take between
    our finding it and binding it, and learns which before aiosmtpd (1.4.6, pinned by
    scripts/testenv) connects to it to check that it serves."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class Recorder:
    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.count = 0

    def log(self, line):
        with open(os.path.join(self.log_dir, "events"), "a", encoding="utf-8") as events:
            events.write(line + "\n")

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.log("ehlo")
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.log_dir, f"message-{self.count}.eml")
        with open(path, "wb") as message:
            message.write(envelope.original_content)
        self.log(f"data tls={session.ssl is not None} auth={session.auth_data} to={','.join(envelope.rcpt_tos)}")
        return "250 OK"


def main():
    log_dir = sys.argv[1]
    recorder = Recorder(log_dir)
    options = {}
    if len(sys.argv) == 7 and sys.argv[2] == "--tls":
        cert, key, user, password = sys.argv[3:7]
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)

        def authenticate(server, session, envelope, mechanism, auth_data):
            if isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                    and auth_data.password.decode() == password:
                return AuthResult(success=True, auth_data=user)
            return AuthResult(success=False, handled=False)

        options = dict(tls_context=context, require_starttls=True, authenticator=authenticate,
                       auth_required=True, auth_require_tls=True)
    controller = BoundController(recorder, hostname="127.0.0.1", port=0, **options)
    controller.start()
    print(controller.port, flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
