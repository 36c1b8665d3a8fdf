"""Keep secret values out of task logs: register them with Airflow's secrets masker.

Passwords inside URLs and DSNs are masked by their shape, whether or not their value is known.

Airflow masks connection passwords by itself, but not values it never saw: environment
variables of the task process (AWS keys, tokens) that a worker might print. Every log line
of ours, and every worker line streamed into the task log, goes through the masker.
"""
from __future__ import annotations

import os
import re

SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|API_?KEY|ACCESS_KEY|WEBHOOK|AUTH",
                         re.IGNORECASE)
# Shorter values (e.g. "1", "true") would mask ordinary words all over the log.
MIN_SECRET_LENGTH = 6
# Passwords written into text rather than known in advance: a URL's userinfo
# (https://user:pw@host, postgresql://airflow:pw@db/airflow) and a libpq DSN's password=...
URL_PASSWORD = re.compile(r"(?P<keep>[A-Za-z][A-Za-z0-9+.-]{0,30}://[^:/?#@\s]{0,128}:)"  # scheme://user:
                          r"[^/\s]{1,256}(?=@[^@/\s]*(?:$|[/?#\s]))")  # the password, up to the last @ of the host
DSN_PASSWORD = re.compile(r"(?P<keep>\b(?:password|passwd|pwd)\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s;&'\"]+)",
                          re.IGNORECASE)


def mask_inline_passwords(text: str) -> str:
    """URL userinfo passwords and DSN passwords in `text` as ***."""
    if "://" in text:
        text = URL_PASSWORD.sub(r"\g<keep>***", text)
    if "=" in text:
        text = DSN_PASSWORD.sub(r"\g<keep>***", text)
    return text


def secret_env_values(environ: dict[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    return {name: value for name, value in env.items()
            if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH}


class Redactor:
    """Replaces known secret values in a text with ***.

    Airflow's masker is not applied to every log path (e.g. `airflow dags test` prints
    unmasked), so worker lines and failure details are redacted here before they are logged.
    """

    def __init__(self, values) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.values = sorted({v for v in values if len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, "***")
        return mask_inline_passwords(text)


def mask_secret_env() -> Redactor:
    """Register secret-looking environment values with Airflow's masker; a Redactor for the rest."""
    from airflow.sdk.log import mask_secret

    found = secret_env_values()
    for name, value in found.items():
        mask_secret(value, name)
    return Redactor(found.values())
