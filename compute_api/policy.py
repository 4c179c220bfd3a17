"""The policy enforcer: the rules in force and the one door to them.

The rules are the defaults in code (:mod:`compute_api.policies`) overridden
by the policy file and the policy directories' files, read again whenever
one of them changes (no restart). While a policy file cannot be read or
parsed, every authorization fails closed with
:class:`~compute_api.exception.PolicyUnavailable` (503), the file and line
in the log, instead of keeping the old rules as oslo.policy alone does; a
worker that starts then does the same (refusing to load would stop the
WSGI server's master) and recovers once the file is corrected.

A change never edits the rules in force: a new oslo.policy enforcer is
loaded from the files and then replaces the old one, so a concurrent
request is decided by one whole set of rules, the old or the new.
"""

import logging
import os
import threading
import time

from oslo_policy import opts as policy_opts
from oslo_policy import policy
import yaml

from compute_api import exception
from compute_api import policies

LOG = logging.getLogger(__name__)
# How long a policy file that was emptied or removed may stay so before it
# is taken for what the operator meant (no overrides): an editor or a shell
# that rewrites the file in place empties it first.
SETTLE = 2.0


class PolicyFileError(Exception):
    """A policy file cannot be used."""


def policy_files(conf):
    """The policy file (or None), all the files oslo.policy reads in its
    order (the policy file, then the files of each policy directory by
    name, hidden files left out), and the (directory, reason) of the
    policy directories that cannot be listed."""
    main = conf.find_file(conf.oslo_policy.policy_file)
    files = [main] if main else []
    unlisted = []
    for name in conf.oslo_policy.policy_dirs:
        directory = conf.find_file(name)
        if not directory:
            continue
        try:
            with os.scandir(directory) as entries:
                names = sorted(entry.name for entry in entries
                               if not entry.name.startswith('.')
                               and not entry.is_dir())
        except OSError as exc:
            unlisted.append((directory, exc.strerror))
            continue
        files.extend(os.path.join(directory, name) for name in names)
    return main, files, unlisted


def load(conf):
    """An oslo.policy enforcer with the defaults in code and the rules of
    the policy files as they are now, fully loaded.

    :raises PolicyFileError: naming the file (and the line of a YAML
        error) when one cannot be used.
    """
    policy_opts.set_defaults(conf)  # registers [oslo_policy], no more
    main, files, unlisted = policy_files(conf)
    problems = [f'Policy directory {path} cannot be listed: {reason}'
                for path, reason in unlisted]
    problems += [f'Policy file {path} {problem}' for path in files
                 if (problem := _file_problem(path))]
    if problems:
        raise PolicyFileError('; '.join(problems))
    enforcer = policy.Enforcer(conf, policy_file=main)
    enforcer.register_defaults(policies.list_rules())
    try:
        enforcer.load_rules(force_reload=True)
    except Exception as exc:  # a file changed while it was read
        raise PolicyFileError(f'Policy files {", ".join(files)} could not '
                              f'be loaded: {exc}') from None
    # Never reloaded in place: a change of the files makes a new one.
    enforcer.use_conf = False
    return enforcer


class Enforcer:
    """The rules in force. Every authorization lists and stat()s the
    policy files; when that changes (a file's modification time, size or
    inode, or the list of files), :func:`load` builds the new rules."""

    def __init__(self, conf, clock=time.monotonic):
        policy_opts.set_defaults(conf)
        self.conf = conf
        self.problems = []
        self._rules = None  # the oslo.policy enforcer in force, if any
        self._seen = None
        self._emptied = None  # (what was seen, since when)
        self._clock = clock
        self._lock = threading.Lock()
        self.refresh()

    def _settling(self, seen):
        """True while a policy file that had rules is empty or gone, for
        up to SETTLE seconds: the rules in force stay until the file is
        written again (a rewrite in place) or has stayed so."""
        def size(st):  # (mtime, size, ...) or the errno of a failed stat
            return st[1] if isinstance(st, tuple) else 0
        current = dict(seen[0])
        if self._rules is None or not any(
                size(st) and not size(current.get(path))
                for path, st in self._seen[0]):
            return False
        now = self._clock()
        if self._emptied is None or self._emptied[0] != seen:
            self._emptied = (seen, now)
        return now - self._emptied[1] < SETTLE

    def refresh(self):
        _, files, unlisted = policy_files(self.conf)
        seen = [(path, _stat(path)) for path in files], unlisted
        if seen == self._seen or self._settling(seen):
            return
        with self._lock:  # one thread loads; the others wait for it
            if seen == self._seen:
                return
            was_broken = bool(self.problems)
            try:
                self._rules, self.problems = load(self.conf), []
            except PolicyFileError as exc:
                self._rules, self.problems = None, [str(exc)]
                LOG.error('%s. Every delete is refused (503) until this '
                          'is corrected.', exc)
            if was_broken and not self.problems:
                LOG.info('The policy files can be used again: requests are '
                         'authorized by their rules.')
            self._seen = seen

    def authorize(self, context, action, target):
        """Raise PolicyNotAuthorized unless ``context`` may do ``action``,
        and PolicyUnavailable while the policy cannot be used.

        A policy that loads can still fail when it is evaluated (rules
        that refer to each other in a cycle, a malformed ``%(...)s``
        target, an ``http:`` check whose server cannot be reached): that
        fails closed too, as 503, with the rule and the error in the log.
        """
        self.refresh()
        rules = self._rules
        if rules is None:
            raise exception.PolicyUnavailable()
        try:
            rules.authorize(action, target, context, do_raise=True,
                            exc=exception.PolicyNotAuthorized, action=action)
        except policy.InvalidScope:
            raise exception.PolicyNotAuthorized(action=action)
        except exception.PolicyNotAuthorized:
            raise
        except Exception as exc:
            LOG.error('The policy rule %s could not be evaluated (%s: %s). '
                      'Every delete is refused (503) until the policy is '
                      'corrected.', action, type(exc).__name__,
                      str(exc)[:200])
            raise exception.PolicyUnavailable()


def _stat(path):
    try:
        st = os.stat(path)
    except OSError as exc:
        return exc.errno
    return st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev


def _where(mark):
    return f'line {mark.line + 1}, column {mark.column + 1}'


def _file_problem(path):
    """Why the policy file at ``path`` cannot be used, or None.

    Usable is what oslo.policy can load and what the policy documentation
    describes: readable text, YAML, empty or a mapping of rule names to
    check strings.
    """
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        return f'cannot be read: {exc.strerror}'
    except UnicodeDecodeError as exc:
        return f'cannot be read as text: {exc}'
    try:
        loader = yaml.SafeLoader(text)  # may refuse a character already
        node = loader.get_single_node()
        if node is not None:
            loader.construct_document(node)
    except yaml.YAMLError as exc:
        return 'is not valid YAML: ' + _yaml_problem(exc, text)
    if node is not None and not isinstance(node, yaml.MappingNode):
        return ('is not a mapping of rule names to check strings: '
                + _where(node.start_mark))
    for item in (i for pair in getattr(node, 'value', ()) for i in pair):
        if item.tag != 'tag:yaml.org,2002:str':
            return ('has a rule name or rule that is not a string: '
                    + _where(item.start_mark))
    return None


def _yaml_problem(exc, text):
    """The position and the nature of a YAML error, on one line."""
    mark = getattr(exc, 'problem_mark', None)
    if mark is not None:
        problem = f'{_where(mark)}: {exc.problem}'
        if exc.context and getattr(exc, 'context_mark', None) is not None:
            problem += f' ({exc.context} at {_where(exc.context_mark)})'
        return problem
    reason = str(exc).splitlines()[0]
    position = getattr(exc, 'position', None)
    if isinstance(position, int):  # a character YAML does not allow
        line = text.count('\n', 0, position)
        column = position - text.rfind('\n', 0, position) - 1
        return f'line {line + 1}, column {column + 1}: {reason}'
    return reason


def get_enforcer():
    """Entry point for the oslopolicy command-line tools: an oslo.policy
    enforcer of the service's rules (PolicyFileError for a policy file that
    cannot be used). A ``--config-file`` the tools parsed into oslo.config's
    global object is honoured, else the service's own directory is read."""
    from oslo_config import cfg

    from compute_api import deploy
    try:
        files = list(cfg.CONF.config_file or [])
    except cfg.Error:
        files = []
    args = [f'--config-file={path}' for path in files]
    return load(deploy.load_conf(args=args))
