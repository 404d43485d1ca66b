"""The Gnocchi API's WSGI app for gunicorn (the test peer of gnocchi_export/tests).

`gnocchi-api` runs the same app under uwsgi; `gnocchi.rest.wsgi` reads the command line,
which is gunicorn's here, so the config file comes from GNOCCHI_CONFIG instead.
"""

import os

from gnocchi import service
from gnocchi.rest import app

application = app.load_app(service.prepare_service(args=[], default_config_files=[os.environ["GNOCCHI_CONFIG"]]))
