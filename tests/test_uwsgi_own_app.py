"""uwsgi.ini serves the user's own app, run from the app's directory with the ini elsewhere."""

import json

import pytest
from support.servers import UwsgiServer, http_get

pytestmark = pytest.mark.uwsgi

APP = """
import os
import webmini as web

class Info:
    def GET(self):
        data = open("data.txt").read().strip() if os.path.exists("data.txt") else None
        return {"cwd": os.getcwd(), "data": data}

application = web.application(("/", "Info"), globals()).wsgifunc()
"""


def test_own_module_imports_from_the_start_directory(tmp_path):
    project = tmp_path / "myproject"
    project.mkdir()
    (project / "myapp.py").write_text(APP)
    (project / "data.txt").write_text("mine")
    server = UwsgiServer(project, module="myapp:application", processes=1).start()
    try:
        reply = http_get(server.http_port, "/")
        assert reply.status == 200, reply.body
    finally:
        server.stop()
    # WEBMINI_CHDIR=$PWD: the app's directory is the working directory too.
    server = UwsgiServer(project, module="myapp:application", processes=1,
                         env={"WEBMINI_CHDIR": str(project)}).start()
    try:
        info = json.loads(http_get(server.http_port, "/").body)
        assert info == {"cwd": str(project), "data": "mine"}
    finally:
        server.stop()
