"""A certificate authority of the stack's own, and a server certificate.

Made with ``openssl`` in ``<workdir>/tls``: ``ca.pem`` (the bundle clients
verify with), and for HAProxy ``server.pem`` (certificate then key) for
127.0.0.1 and ``localhost``, and ``wrong-name.pem`` for another name (a
server whose certificate does not match). All are valid for two days.
"""

import pathlib

from tests.stack.processes import run_command

SERVER_NAMES = ('IP:127.0.0.1', 'DNS:localhost')
# A certificate of the same CA for a name that is not the server's.
WRONG_NAMES = ('DNS:glance.invalid',)
DAYS = '2'


def _openssl(directory, log, *args):
    run_command(['openssl', *args], log, cwd=directory)


def make_ca(directory, log, subject='/CN=compute-api stack CA'):
    """Write ``ca.pem`` and ``ca.key`` into ``directory``."""
    directory = pathlib.Path(directory)
    _openssl(directory, log, 'req', '-x509', '-newkey', 'rsa:2048',
             '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', DAYS,
             '-subj', subject,
             '-addext', 'basicConstraints=critical,CA:TRUE',
             '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
    return directory / 'ca.pem'


def make_server_cert(directory, log, name='server', names=SERVER_NAMES):
    """Sign a server certificate for ``names`` with ``directory``'s CA.

    Returns the path of ``<name>.pem``: the certificate followed by its
    key, as HAProxy's ``crt`` takes them.
    """
    directory = pathlib.Path(directory)
    extensions = directory / f'{name}.ext'
    extensions.write_text(
        f'subjectAltName = {",".join(names)}\n'
        'basicConstraints = CA:FALSE\n'
        'keyUsage = digitalSignature, keyEncipherment\n'
        'extendedKeyUsage = serverAuth\n')
    _openssl(directory, log, 'req', '-newkey', 'rsa:2048', '-nodes',
             '-keyout', f'{name}.key', '-out', f'{name}.csr',
             '-subj', f'/CN={names[0].split(":", 1)[1]}')
    _openssl(directory, log, 'x509', '-req', '-in', f'{name}.csr',
             '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
             '-out', f'{name}.crt', '-days', DAYS, '-extfile', extensions)
    bundle = directory / f'{name}.pem'
    bundle.write_text((directory / f'{name}.crt').read_text()
                      + (directory / f'{name}.key').read_text())
    bundle.chmod(0o600)
    return bundle


def start(stack):
    """Make the stack's CA and HAProxy's certificate; record the CA."""
    directory = stack.workdir / 'tls'
    directory.mkdir(exist_ok=True)
    log = stack.logs / 'setup' / 'openssl.log'
    stack.state['ca_file'] = str(make_ca(directory, log))
    stack.state['tls_cert'] = str(make_server_cert(directory, log))
    stack.state['tls_cert_wrong_name'] = str(make_server_cert(
        directory, log, name='wrong-name', names=WRONG_NAMES))
