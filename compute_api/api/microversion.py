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

_VERSION_RE = re.compile(r'([1-9]\d*)\.([1-9]\d*|0)')
# A version number longer than this is beyond every version served here; it
# is not converted (int() refuses thousands of digits, and need not try).
_MAX_DIGITS = 9
# The two headers as WSGI environ keys: microversion-parse reads only them,
# and handing it just these spares it folding every header of the request.
ENVIRON_KEYS = {
    'HTTP_' + name.upper().replace('-', '_'): name.lower()
    for name in (STANDARD_HEADER, LEGACY_HEADER)}


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
    environ = req.environ
    headers = {name: environ[key] for key, name in ENVIRON_KEYS.items()
               if key in environ}
    requested = microversion_parse.get_version(
        headers, SERVICE_TYPE, legacy_headers=[LEGACY_HEADER])
    if requested is None:
        return MIN_VERSION
    requested = requested.strip()
    if requested == 'latest':
        return MAX_VERSION
    match = _VERSION_RE.fullmatch(requested)
    if match is None:
        shown = exception.shown(requested)
        raise faults.http_error(
            400, f'Invalid API version request: "{shown}" is not of the '
                 'form X.Y or "latest".')
    numbers = match.groups()
    if max(map(len, numbers)) <= _MAX_DIGITS:
        version = tuple(map(int, numbers))
        if MIN_VERSION <= version <= MAX_VERSION:
            return version
    raise faults.http_error(
        406, f'Version {exception.shown(requested)} is not supported by the '
             f'API. Minimum is {to_string(MIN_VERSION)} and maximum is '
             f'{to_string(MAX_VERSION)}.')
