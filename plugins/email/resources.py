"""Demo only: ``/demo/mail`` lists the emails the demo wrote to ``<data dir>/mail/``.

Registered only when ``demo = true``: it shows every recipient's mail, which is
what a demo needs (read the password-reset link) and what production must not do.
"""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import falcon


def _folder(app) -> Path:
    return Path(app.settings.data_dir) / "mail"


def _read(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


class MailList:
    auth = "public"

    def on_get(self, req, resp):
        app = req.context.app
        files = sorted(_folder(app).glob("*.eml"), reverse=True)[:200]
        mails = []
        for f in files:
            msg = _read(f)
            mails.append(
                {"name": f.stem, "to": msg["To"], "subject": msg["Subject"], "date": msg["Date"]}
            )
        app.page(req, resp, "email_demo/list.html", mails=mails)


class MailView:
    auth = "public"

    def on_get(self, req, resp, name):
        app = req.context.app
        path = _folder(app) / f"{name}.eml"
        if "/" in name or ".." in name or not path.is_file():
            raise falcon.HTTPNotFound()
        msg = _read(path)
        body = msg.get_body(preferencelist=("plain",))
        app.page(
            req,
            resp,
            "email_demo/view.html",
            mail={
                "to": msg["To"],
                "subject": msg["Subject"],
                "date": msg["Date"],
                "text": body.get_content() if body else "",
            },
        )
