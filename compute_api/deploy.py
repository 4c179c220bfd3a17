"""Assemble the WSGI application: config, logging, policy, Paste pipeline.

The configuration directory is ``$OS_COMPUTE_API_CONFIG_DIR`` (default
``/etc/compute_api``): ``compute_api.conf`` there, and ``api-paste.ini``
beside it or else the packaged one. A service that cannot serve (no
readable ``compute_api.conf``, no service user in ``[keystone_authtoken]``)
refuses to load, naming what is missing, in the WSGI server's log.

The Paste factories take the ``ConfigOpts`` :func:`loadapp` hands them,
or, under another Paste loader (a host's, a test's), the
``compute_api.conf`` of their section's ``config_dir`` (default
``$OS_COMPUTE_API_CONFIG_DIR``), loaded once per directory and process.
"""

import importlib.util
import os
import sys

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from keystoneauth1.identity import generic as ks_generic
from keystoneauth1.identity import v3 as ks_v3
from oslo_config import cfg
from oslo_log import log as logging
from paste import deploy as paste_deploy

from compute_api import conf as compute_conf
from compute_api.conf import keystone_authtoken
from compute_api.conf import opts

PROJECT = 'compute_api'
CONFIG_DIR_ENV = 'OS_COMPUTE_API_CONFIG_DIR'
DEFAULT_CONFIG_DIR = '/etc/compute_api'
CONFIG_FILE = 'compute_api.conf'
# The Paste option naming the configuration directory of a factory.
CONFIG_DIR_OPTION = 'config_dir'
_CONF_KEY = 'compute_api_conf'
_PACKAGED_ETC = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    'etc', 'compute_api')

# ConfigOpts objects being handed to Paste factories, by key (see conf_from).
_LOADING = {}
# ConfigOpts loaded for a Paste config_dir: (directory, library_defaults).
_BY_DIRECTORY = {}


class ConfigurationError(Exception):
    """The service is not configured well enough to serve any request."""


def config_dir():
    return os.environ.get(CONFIG_DIR_ENV, DEFAULT_CONFIG_DIR)


def load_conf(args=None, directory=None, required=False,
              library_defaults=True):
    """A new ConfigOpts with every option registered and the files read.

    With ``required``, a missing or unreadable ``compute_api.conf`` is a
    :class:`ConfigurationError`; otherwise the defaults apply without it
    (for the policy and sample tools). ``library_defaults=False`` leaves
    the defaults of library options alone (:func:`opts.set_defaults`
    changes them for every user of the library in the process, which a
    filter inside another service must not do).
    """
    if library_defaults:
        opts.set_defaults()
    conf = cfg.ConfigOpts()
    compute_conf.register_opts(conf)
    logging.register_options(conf)
    keystone_authtoken.register_opts(conf)
    path = os.path.join(directory or config_dir(), CONFIG_FILE)
    if required:
        _check_readable(path)
    files = [path] if os.path.exists(path) else []
    conf(args or [], project=PROJECT, default_config_files=files,
         default_config_dirs=[])
    return conf


def _check_readable(path):
    try:
        open(path, 'rb').close()
    except FileNotFoundError:
        raise ConfigurationError(
            f'{path} does not exist. Set {CONFIG_DIR_ENV} (or, in a Paste '
            f'file, the {CONFIG_DIR_OPTION} option of the filter or app) '
            f'to the directory that holds {CONFIG_FILE} (default '
            f'{DEFAULT_CONFIG_DIR}).')
    except OSError as exc:
        raise ConfigurationError(
            f'{path} cannot be read by this process: {exc.strerror}.')


def check_auth_token_conf(conf):
    """Refuse a ``[keystone_authtoken]`` that could not validate a token.

    auth_token itself only notices at the first request (and answers it
    500); here the service user's plugin is built from the options, which
    contacts nobody, and a missing option is named. keystoneauth asks for a
    password plugin's user and password only when it first authenticates,
    as either of a name or an id will do: they are checked here.
    """
    group = keystone_authtoken.GROUP
    options = conf[group]
    where = ', '.join(conf.config_file or ()) or 'no configuration file'
    try:
        plugin = ks_loading.load_auth_from_conf_options(conf, group)
    except ks_exc.MissingRequiredOptions as exc:
        missing = [opt.dest for opt in exc.options]
    except ks_exc.NoMatchingPlugin as exc:
        raise ConfigurationError(f'[{group}] auth_type: {exc} ({where}).')
    else:
        if plugin is None:
            raise ConfigurationError(
                f'[{group}] has no auth_type: set it (auth_type = password) '
                'and the service user\'s credentials, which auth_token needs '
                f'to validate tokens ({where}).')
        missing = []
        if isinstance(plugin, (ks_generic.Password, ks_v3.Password)):
            missing = [name for name, value in (
                ('username (or user_id)',
                 options.username or options.user_id),
                ('password', options.password)) if not value]
    if missing:
        raise ConfigurationError(
            f'[{group}] lacks {", ".join(missing)}, which its auth_type '
            f'needs to authenticate the service user ({where}).')
    strategy = (options.memcache_security_strategy or 'none').lower()
    if (strategy != 'none'
            and importlib.util.find_spec('cryptography') is None):
        raise ConfigurationError(
            f'[{group}] memcache_security_strategy = {strategy} needs the '
            'cryptography package, which is not installed.')


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


def conf_for_directory(directory, library_defaults=True):
    """The ConfigOpts of ``directory``'s ``compute_api.conf``, loaded (and
    required) on the first call for that directory, then reused.

    :raises ConfigurationError: when the file is missing or unreadable.
    """
    key = (os.path.abspath(directory), library_defaults)
    if key not in _BY_DIRECTORY:
        _BY_DIRECTORY[key] = load_conf(directory=key[0], required=True,
                                       library_defaults=library_defaults)
    return _BY_DIRECTORY[key]


def conf_from(global_conf, local_conf=None):
    """The ConfigOpts a Paste factory builds its part of the pipeline from
    (``config_dir`` in its section, else in the file's ``[DEFAULT]``)."""
    key = global_conf.get(_CONF_KEY)
    if key in _LOADING:
        return _LOADING[key]
    return conf_for_directory((local_conf or {}).get(CONFIG_DIR_OPTION)
                              or global_conf.get(CONFIG_DIR_OPTION)
                              or config_dir())


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
    """The application a WSGI server runs, with logging set up.

    :raises ConfigurationError: when the service could not serve.
    """
    conf = load_conf(directory=directory, required=True)
    logging.setup(conf, PROJECT)
    return loadapp(conf)
