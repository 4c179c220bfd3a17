"""Compute API microversions: the constants and the request parser.

The version history, as far as this service's single call is concerned:

* 2.1  -- the base of the v2.1 API; ``DELETE /images/{image_id}`` exists.
* 2.35 -- the last version that has the image proxy API.
* 2.36 -- the proxy APIs (images among them) are removed: the call is 404.
* 2.104 -- the latest Compute API version this service speaks.
"""

import re

import microversion_parse

from compute_api import exception
from compute_api.api import faults

SERVICE_TYPE = 'compute'
MIN_VERSION = (2, 1)
MAX_VERSION = (2, 104)
# The image proxy API is served up to and including this version.
MAX_IMAGE_PROXY_VERSION = (2, 35)

LEGACY_HEADER = 'X-OpenStack-Nova-API-Version'
STANDARD_HEADER = 'OpenStack-API-Version'
VARY = f'{STANDARD_HEADER}, {LEGACY_HEADER}'

_VERSION_RE = re.compile(r'^([1-9]\d*)\.([1-9]\d*|0)$')


def to_string(version):
    return f'{version[0]}.{version[1]}'


def response_headers(version):
    """The headers that echo the version a response was served at."""
    text = to_string(version)
    return {
        STANDARD_HEADER: f'{SERVICE_TYPE} {text}',
        LEGACY_HEADER: text,
        'Vary': VARY,
    }


def from_request(req):
    """Return the requested version as a ``(major, minor)`` tuple.

    The standard header wins over the legacy one; with neither, the minimum
    version is served and ``latest`` means the maximum.

    :raises: a 400 fault when the value is malformed, a 406 fault when it is
        well formed but not served here.
    """
    requested = microversion_parse.get_version(
        req.headers, SERVICE_TYPE, legacy_headers=[LEGACY_HEADER])
    if requested is None:
        return MIN_VERSION
    requested = requested.strip()
    if requested == 'latest':
        return MAX_VERSION
    match = _VERSION_RE.match(requested)
    if match is None:
        shown = exception.shown(requested)
        raise faults.http_error(
            400, f'Invalid API version request: "{shown}" is not of the '
                 'form X.Y or "latest".')
    version = (int(match.group(1)), int(match.group(2)))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise faults.http_error(
            406, f'Version {requested} is not supported by the API. Minimum '
                 f'is {to_string(MIN_VERSION)} and maximum is '
                 f'{to_string(MAX_VERSION)}.')
    return version
