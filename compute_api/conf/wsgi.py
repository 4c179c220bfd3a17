"""[wsgi] options: how the WSGI application is assembled."""

from oslo_config import cfg

GROUP = cfg.OptGroup('wsgi', title='WSGI application options')

opts = [
    cfg.StrOpt(
        'api_paste_config',
        default='api-paste.ini',
        help='The Paste Deploy file that defines the API pipeline. A '
             'relative name is looked up beside the configuration files; '
             'when it is not found there, the file shipped with the '
             'package is used.'),
]


def list_opts():
    return {GROUP: opts}
