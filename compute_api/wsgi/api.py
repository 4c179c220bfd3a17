"""The WSGI application for uwsgi, gunicorn or mod_wsgi.

    gunicorn compute_api.wsgi.api:application

The configuration is read from ``$OS_COMPUTE_API_CONFIG_DIR`` (default
``/etc/compute_api``) once, when the module is imported.
"""

from compute_api import deploy

application = deploy.init_application()
