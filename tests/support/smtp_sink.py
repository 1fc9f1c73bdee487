"""A local SMTP server for the sendmail tests: ``python -m aiosmtpd -c smtp_sink.Sink DIR DELAY``.

Each message is written to DIR as ``<n>.eml`` with its envelope in ``<n>.json``,
after waiting DELAY seconds (a slow server, to show sendmail parks only its
own greenlet).
"""

import asyncio
import json
import os


class Sink:
    def __init__(self, directory, delay="0"):
        self.directory = directory
        self.delay = float(delay)
        self.count = 0

    @classmethod
    def from_cli(cls, parser, *args):
        return cls(*args)

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        self.count += 1
        base = os.path.join(self.directory, str(self.count))
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".json", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos}, f)
        return "250 OK"
