"""The policy enforcer and its one door, :func:`authorize`.

The rules are the defaults in code (:mod:`compute_api.policies`) overridden
by the policy file and the files of the policy directories, read again
whenever one of them changes. The service fails closed on a policy file it
cannot use: while one cannot be read or parsed, every authorization is
refused with :class:`~compute_api.exception.PolicyUnavailable` (503) rather
than decided by the rules read before the file changed (which is what
oslo.policy alone does after a failed reload). A worker that starts while
the file is broken does the same: refusing to load would not be safer (the
WSGI server's master stops altogether when a worker cannot boot, so one
worker replaced while the file is broken would take the whole service down
until a restart by hand), and it recovers by itself once the file is
corrected.
"""

import logging
import os
import threading

from oslo_policy import policy
import yaml

from compute_api import exception
from compute_api import policies

LOG = logging.getLogger(__name__)

_STR_TAG = 'tag:yaml.org,2002:str'
# oslo.policy logs each enforcement's credentials and target at DEBUG; with
# that on, every decision is made by oslo.policy so that none goes unlogged.
_OSLO_LOG = logging.getLogger(policy.__name__)
# oslo.policy's own checks (role:, rule:, field:%(...)s, @, !, and, or,
# not) decide from the credentials, the target and the other rules alone.
# Any other check (http:, https:, one registered by a plugin) may depend on
# something else, and its decisions are never remembered.
_BUILTIN_CHECKS = policy.AndCheck.__module__
# Decisions remembered per set of rules at most (distinct callers and
# targets); the memo starts again empty when it is full.
_MEMO_SIZE = 4096


class PolicyFileError(Exception):
    """A policy file cannot be used (for the policy tools, which must not
    report on rules that the service would not use)."""


class Enforcer(policy.Enforcer):
    """oslo.policy's enforcer, failing closed on a broken policy file.

    On every enforcement the policy files are listed and stat()ed. When
    that changes (a file's modification time, size or inode, or the list of
    files), each file is read and parsed here first: if all can be used,
    oslo.policy reloads every rule from them; if one cannot, the problem is
    logged once (naming the file, and the line and column of a YAML error)
    and every enforcement raises PolicyUnavailable until the files change
    again.

    Evaluating a rule costs about 0.1 ms (oslo.policy inspects each check's
    signature as it calls it), and the same callers ask the same question
    again and again. So each set of rules in force has a memo of the
    positive decisions made with it, keyed on the rule name, the
    credentials and the target: a decision depends on nothing else. Any
    change of the rules (a reload after a file changed, ``set_rules``,
    ``clear``, a newly registered default) puts a new, empty memo in place,
    so no decision outlives the rules it was made with. The files' check
    above still runs on every enforcement, before the memo is consulted.
    Refusals are not remembered: each is decided again by oslo.policy,
    which raises its own exceptions for them.
    """

    def __init__(self, conf):
        super().__init__(conf)
        self.problems = []
        self._seen = None
        self._memo = _Memo(self)

    def load_rules(self, force_reload=False):
        main, files, unlisted = self._policy_files()
        seen = ([(path, _stat(path)) for path in files], unlisted)
        if force_reload or seen != self._seen:
            self._reload(main, files, unlisted)
            self._seen = seen
        if self.problems:
            raise exception.PolicyUnavailable()

    def enforce(self, rule, target, creds, do_raise=False, exc=None, *args,
                **kwargs):
        self.load_rules()  # every time: the files may have changed
        # The memo of the rules now in force, read once: if another thread
        # replaces the rules meanwhile, what is learnt here goes to the old
        # memo, which nothing reads any more.
        memo = self._memo
        key = memo.key(rule, target, creds)
        if key is not None:
            result = memo.decisions.get(key)
            if result:
                return result
        result = super().enforce(rule, target, creds, do_raise, exc,
                                 *args, **kwargs)
        if key is not None and result:
            memo.remember(key, result)
        return result

    def set_rules(self, rules, overwrite=True, use_conf=False):
        super().set_rules(rules, overwrite=overwrite, use_conf=use_conf)
        self._rules_changed()

    def clear(self):
        super().clear()
        self._rules_changed()

    def register_default(self, default):
        super().register_default(default)
        self._rules_changed()

    def _rules_changed(self):
        self._memo = _Memo(self)

    def _reload(self, main, files, unlisted):
        # oslo.policy reads the policy file from policy_path
        self.policy_path = main
        was_broken = bool(self.problems)
        problems = [f'Policy directory {path} cannot be listed: {reason}'
                    for path, reason in unlisted]
        for path in files:
            problem = _file_problem(path)
            if problem:
                problems.append(f'Policy file {path} {problem}')
        if not problems:
            # Rebuilt from scratch: from the files checked above or, without
            # any, from the defaults (oslo.policy alone would keep the rules
            # of a removed file).
            self.set_rules({}, use_conf=True)
            self.file_rules = {}
            try:
                super().load_rules(force_reload=True)
            except Exception as exc:  # a file changed while it was read
                problems.append(f'Policy files {", ".join(files)} could not '
                                f'be loaded: {exc}')
        self.problems = problems
        # oslo.policy's load_rules also edits the rules in place (defaults
        # added, deprecated rules handled): a new memo once it is done.
        self._rules_changed()
        for problem in problems:
            LOG.error('%s. Every delete is refused (503) until this is '
                      'corrected.', problem)
        if was_broken and not problems:
            LOG.info('The policy files can be used again: requests are '
                     'authorized by their rules.')

    def _policy_files(self):
        """The policy file (or None), all the files oslo.policy reads in its
        order (the policy file, then the files of each policy directory by
        name, hidden files left out), and the (directory, reason) of the
        policy directories that cannot be listed."""
        main = self.policy_path
        if not (main and os.path.exists(main)):
            main = self.conf.find_file(self.policy_file)
        files = [main] if main else []
        unlisted = []
        for name in self.conf.oslo_policy.policy_dirs:
            directory = self.conf.find_file(name)
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


class _Memo:
    """The positive decisions made with one set of rules."""

    def __init__(self, enforcer):
        self.decisions = {}
        self._lock = threading.Lock()
        self._enforcer = enforcer
        self._usable = None  # whether the rules allow a memo, found lazily

    def key(self, rule, target, creds):
        """The memo key of an enforcement, or None if it is not to be
        remembered (with oslo.policy's debug log on, for a check object
        rather than a rule name, for rules with other than oslo.policy's
        own checks, and for a target or credentials that hold values other
        than strings, numbers, booleans, None and lists of these)."""
        if not isinstance(rule, str) or _OSLO_LOG.isEnabledFor(logging.DEBUG):
            return None
        if self._usable is None:
            rules = self._enforcer.rules
            self._usable = all(_builtin(check) for check in rules.values())
        if not self._usable:
            return None
        if hasattr(creds, 'to_policy_values'):
            creds = creds.to_policy_values()
        try:
            key = (rule, _frozen(target), _frozen(creds))
            hash(key)
        except (TypeError, AttributeError):
            return None
        return key

    def remember(self, key, result):
        with self._lock:
            if len(self.decisions) >= _MEMO_SIZE:
                self.decisions = {}
            self.decisions[key] = result


def _builtin(check):
    """Whether ``check`` and every check inside it is oslo.policy's own."""
    if type(check).__module__ != _BUILTIN_CHECKS:
        return False
    if isinstance(check, (policy.AndCheck, policy.OrCheck)):
        return all(_builtin(inner) for inner in check.rules)
    if isinstance(check, policy.NotCheck):
        return _builtin(check.rule)
    return True


def _frozen(values):
    """A mapping as a hashable, order-independent tuple."""
    return tuple(sorted(
        (name, tuple(value) if isinstance(value, list) else value)
        for name, value in values.items()))


def _stat(path):
    try:
        st = os.stat(path)
    except OSError as exc:
        return exc.errno
    return st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev


def _where(line, column):
    return f'line {line + 1}, column {column + 1}'


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
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is not None:
            loader.construct_document(node)
    except yaml.YAMLError as exc:
        return 'is not valid YAML: ' + _yaml_problem(exc, text)
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        return None
    if not isinstance(node, yaml.MappingNode):
        return ('is not a mapping of rule names to check strings: '
                f'{_where(node.start_mark.line, node.start_mark.column)}')
    for key, value in node.value:
        for item in (key, value):
            if item.tag != _STR_TAG:
                mark = item.start_mark
                return ('has a rule name or rule that is not a string: '
                        f'{_where(mark.line, mark.column)}')
    return None


def _yaml_problem(exc, text):
    """The position and the nature of a YAML error, on one line."""
    mark = getattr(exc, 'problem_mark', None)
    if mark is not None:
        problem = f'{_where(mark.line, mark.column)}: {exc.problem}'
        context_mark = getattr(exc, 'context_mark', None)
        if exc.context and context_mark is not None:
            problem += (f' ({exc.context} at '
                        f'{_where(context_mark.line, context_mark.column)})')
        return problem
    position = getattr(exc, 'position', None)
    reason = str(exc).splitlines()[0]
    if isinstance(position, int):  # a character YAML does not allow
        line = text.count('\n', 0, position)
        column = position - (text.rfind('\n', 0, position) + 1)
        return f'{_where(line, column)}: {reason}'
    return reason


def init_enforcer(conf, strict=False):
    """An enforcer for ``conf`` with the in-code defaults registered.

    The policy files are checked on every enforcement, so an operator's
    edit takes effect without a restart. A policy file that cannot be used
    now is logged (by the enforcer) and every delete is answered 503 until
    it is corrected.

    :raises PolicyFileError: with ``strict``, if a policy file cannot be
        used now; the message names the file and the problem.
    """
    enforcer = Enforcer(conf)
    enforcer.register_defaults(policies.list_rules())
    try:
        enforcer.load_rules()
    except exception.PolicyUnavailable:
        if strict:
            raise PolicyFileError('; '.join(enforcer.problems)) from None
    return enforcer


def authorize(enforcer, context, action, target):
    """Raise PolicyNotAuthorized unless ``context`` may do ``action``, and
    PolicyUnavailable while the policy cannot be used.

    A policy that loads can still fail when it is evaluated (rules that
    refer to each other in a cycle, a malformed ``%(...)s`` target, an
    ``http:`` check whose server cannot be reached): that fails closed too,
    as 503, with the rule and the error in the log.
    """
    try:
        enforcer.authorize(action, target, context, do_raise=True,
                           exc=exception.PolicyNotAuthorized, action=action)
    except policy.InvalidScope:
        raise exception.PolicyNotAuthorized(action=action)
    except (exception.PolicyNotAuthorized, exception.PolicyUnavailable):
        raise
    except Exception as exc:
        LOG.error('The policy rule %s could not be evaluated (%s: %s). '
                  'Every delete is refused (503) until the policy is '
                  'corrected.', action, type(exc).__name__,
                  str(exc)[:200])
        raise exception.PolicyUnavailable()


def get_enforcer():
    """Entry point for the oslopolicy command-line tools.

    The tools parse their own command line into oslo.config's global
    object; a ``--config-file`` given there is honoured, otherwise the
    service's own configuration directory is read.
    """
    from oslo_config import cfg

    from compute_api import deploy
    try:
        files = list(cfg.CONF.config_file or [])
    except cfg.Error:
        files = []
    args = [f'--config-file={path}' for path in files]
    return init_enforcer(deploy.load_conf(args=args), strict=True)
