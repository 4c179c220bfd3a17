"""Assemble the WSGI application: config, logging, policy, Paste pipeline.

The configuration directory is ``$OS_COMPUTE_API_CONFIG_DIR`` (default
``/etc/compute_api``); the service reads ``compute_api.conf`` there and
finds ``api-paste.ini`` beside it, falling back to the packaged file.
"""

import os
import sys

from keystonemiddleware import auth_token
from oslo_config import cfg
from oslo_log import log as logging
from paste import deploy as paste_deploy

from compute_api import conf as compute_conf
from compute_api.conf import opts

PROJECT = 'compute_api'
CONFIG_DIR_ENV = 'OS_COMPUTE_API_CONFIG_DIR'
DEFAULT_CONFIG_DIR = '/etc/compute_api'
CONFIG_FILE = 'compute_api.conf'
_CONF_KEY = 'compute_api_conf'
_PACKAGED_ETC = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    'etc', 'compute_api')

# ConfigOpts objects being handed to Paste factories, by key (see conf_from).
_LOADING = {}


def config_dir():
    return os.environ.get(CONFIG_DIR_ENV, DEFAULT_CONFIG_DIR)


def load_conf(args=None, directory=None):
    """A new ConfigOpts with every option registered and the files read."""
    opts.set_defaults()
    conf = cfg.ConfigOpts()
    compute_conf.register_opts(conf)
    logging.register_options(conf)
    # auth_token registers these again when the pipeline is built; having
    # them from the start lets the API read www_authenticate_uri.
    for group, group_opts in auth_token.list_opts():
        conf.register_opts(group_opts, group=group)
    # The advanced memcached pool serves eventlet services; under sync
    # WSGI workers it only costs memory (it imports eventlet and dnspython,
    # about 11 MiB per worker).
    conf.set_default('memcache_use_advanced_pool', False,
                     group='keystone_authtoken')
    path = os.path.join(directory or config_dir(), CONFIG_FILE)
    files = [path] if os.path.exists(path) else []
    conf(args or [], project=PROJECT, default_config_files=files,
         default_config_dirs=[])
    return conf


def paste_config_path(conf):
    """Where the Paste file is: beside the config, else the packaged one."""
    name = conf.wsgi.api_paste_config
    if os.path.isabs(name):
        return name
    candidates = [conf.find_file(name),
                  os.path.join(sys.prefix, 'etc', 'compute_api', name),
                  os.path.join(_PACKAGED_ETC, name)]
    for path in candidates:
        if path and os.path.exists(path):
            return os.path.abspath(path)
    raise cfg.ConfigFilesNotFoundError([name])


def conf_from(global_conf):
    """The ConfigOpts of the application Paste is building."""
    return _LOADING[global_conf[_CONF_KEY]]


def loadapp(conf, name='main'):
    """Build the Paste pipeline ``name`` with ``conf``."""
    key = str(id(conf))
    _LOADING[key] = conf
    try:
        return paste_deploy.loadapp('config:' + paste_config_path(conf),
                                    name=name,
                                    global_conf={_CONF_KEY: key})
    finally:
        del _LOADING[key]


def init_application(directory=None):
    """The application a WSGI server runs, with logging set up."""
    conf = load_conf(directory=directory)
    logging.setup(conf, PROJECT)
    return loadapp(conf)
