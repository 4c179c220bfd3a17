"""Access to the stack a functional test run works against.

The test runner starts one stack per run (``python -m tests.stack up
--workdir DIR``) and exports ``COMPUTE_API_STACK=DIR/stack.json``.  Test
classes use ``StackFixture`` to read that state and to create what a test
needs (sessions, images, extra compute-api instances) with automatic
cleanup.  A missing or stopped stack is an error, never a skip: a functional
run without its stack must not look green.
"""

import os
import uuid

import fixtures

from tests import stack

ENV_VAR = 'COMPUTE_API_STACK'


class StackNotAvailable(RuntimeError):
    """The functional tests were started without a running stack."""


def running_state():
    """Return the state of the stack named by ``$COMPUTE_API_STACK``.

    Raises StackNotAvailable if the variable is unset, the state file is
    missing, or one of the stack's processes is not running.
    """
    path = os.environ.get(ENV_VAR)
    if not path:
        raise StackNotAvailable(
            f'{ENV_VAR} is not set: the functional tests need a running '
            'stack. Start one with "python -m tests.stack up --workdir DIR" '
            f'and export {ENV_VAR}=DIR/stack.json (the functional test '
            'runner does both).')
    try:
        state = stack.load_state(path)
    except stack.StackError as exc:
        raise StackNotAvailable(f'{ENV_VAR}={path}: {exc}')
    missing = [name for name, pid in state['pids'].items()
               if not stack.is_stack_process(pid)]
    if missing:
        raise StackNotAvailable(
            f'{ENV_VAR}={path}: not running: {", ".join(sorted(missing))}; '
            f'see the logs in {state["workdir"]}/logs/')
    return state


class StackFixture(fixtures.Fixture):
    """The running stack, as seen by one test.

    ``state`` is the stack's state dict (``compute_url``, ``users``,
    ``projects``, ``sample_image_id``, ...).  Sessions are cached per user
    for the life of the fixture; images and extra compute-api instances
    created through it are removed at cleanup.
    """

    def _setUp(self):
        self.state = running_state()
        self._sessions = {}

    @property
    def compute_url(self):
        """Root URL of the stack's compute-api (without ``/v2.1``)."""
        return self.state['compute_url']

    def user(self, name):
        """The state entry of a user: password, ids, project, roles."""
        return self.state['users'][name]

    def session(self, user_name):
        """A keystoneauth1 session for ``user_name`` (project scoped)."""
        if user_name not in self._sessions:
            self._sessions[user_name] = stack.get_session(self.state,
                                                          user_name)
        return self._sessions[user_name]

    def token(self, user_name):
        """A project-scoped token of ``user_name``."""
        return self.session(user_name).get_token()

    def glance_image(self, image_id, user_name='demo-admin'):
        """The image as Glance shows it to ``user_name``, or None."""
        return stack.glance_image(self.state, self.session(user_name),
                                  image_id)

    def create_image(self, user_name='demo-member', **props):
        """Create an image as ``user_name``; it is deleted at cleanup.

        Keyword arguments are as for ``tests.stack.create_image``
        (``data=b'...'``, ``visibility='public'``, ``protected=True``, ...).
        """
        session = self.session(user_name)
        props.setdefault('name', f'test-{uuid.uuid4().hex[:8]}')
        image_id = stack.create_image(self.state, session, **props)
        self.addCleanup(self._delete_image, session, image_id)
        return image_id

    def _delete_image(self, session, image_id):
        image = stack.glance_image(self.state, session, image_id)
        if image is None:
            return
        if image.get('protected'):
            stack.set_image(self.state, session, image_id, protected=False)
        response = session.delete(
            f'{self.state["glance_url"]}/v2/images/{image_id}',
            raise_exc=False)
        if response.status_code not in (204, 404):
            raise stack.StackError(f'cleanup of image {image_id}: HTTP '
                                   f'{response.status_code}')

    def start_compute_api(self, conf_overrides=None, workers=1,
                          policy_yaml=None, name=None, server=None,
                          server_settings=None):
        """Start an extra compute-api (stopped at cleanup).

        Returns ``{'url', 'pid', 'config_dir'}``; see
        ``tests.stack.start_compute_api``.
        """
        name = name or f'compute-{uuid.uuid4().hex[:12]}'
        instance = stack.start_compute_api(
            self.state, name, conf_overrides=conf_overrides,
            workers=workers, policy_yaml=policy_yaml, server=server,
            server_settings=server_settings)
        self.addCleanup(stack.stop_process, instance['pid'])
        return instance
