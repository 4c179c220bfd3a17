"""Latency distributions as a picture (matplotlib, not a requirement of the
project: the tools' environment has it).

``draw_cdfs`` draws in process when matplotlib is importable, and
otherwise runs this module in the tools' environment (``.venv``) with the
samples in a JSON file::

    .venv/bin/python -m benchmarks.draw SAMPLES.json OUT.png

SAMPLES.json: ``{"panels": {panel title: {curve label: [ms, ...]}}}``.
"""

import json
import pathlib
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
TOOLS_PYTHON = REPO / '.venv' / 'bin' / 'python'


def _importable_here():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def drawing_unavailable():
    """Why ``draw_cdfs`` cannot draw (matplotlib neither here nor in the
    tools' environment), or None when it can."""
    if _importable_here() or (TOOLS_PYTHON.exists() and subprocess.run(
            [str(TOOLS_PYTHON), '-c', 'import matplotlib'],
            capture_output=True).returncode == 0):
        return None
    return ('--png needs matplotlib, which is not a requirement of the '
            'project: .venv/bin/pip install matplotlib')


def add_png_argument(parser):
    parser.add_argument('--png', help='draw the latency distributions here')


def check_png_argument(parser, args):
    """Before measuring: refuse ``--png`` where it cannot be drawn."""
    unavailable = args.png and drawing_unavailable()
    if unavailable:
        parser.error(unavailable)


def draw_cdfs(panels, path):
    """Draw ``{panel title: {curve label: [seconds, ...]}}`` as latency
    distributions into ``path``: here if matplotlib is importable, else in
    the tools' environment (``.venv``)."""
    in_ms = {title: {label: [s * 1000 for s in samples]
                     for label, samples in curves.items()}
             for title, curves in panels.items()}
    if _importable_here():
        draw(in_ms, path)
        return
    with tempfile.NamedTemporaryFile('w', suffix='.json') as f:
        json.dump({'panels': in_ms}, f)
        f.flush()
        subprocess.run([str(TOOLS_PYTHON), '-m', 'benchmarks.draw', f.name,
                        str(path)], cwd=REPO, check=True)


def draw(panels, path):
    """One panel per entry of ``panels``, one empirical CDF per curve,
    latencies in milliseconds on a log scale."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot

    fig, axes = pyplot.subplots(1, len(panels), figsize=(5 * len(panels), 4),
                                squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items(), strict=True):
        for label, samples in curves.items():
            data = sorted(samples)
            if not data:
                continue
            ax.step(data, [(i + 1) / len(data) for i in range(len(data))],
                    where='post', label=label)
        ax.set_xscale('log')
        ax.set_xlabel('Delete Image latency (ms, log scale)')
        ax.set_ylabel('fraction of deletes')
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize='small')
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    samples, path = (argv or sys.argv[1:])
    with open(samples) as f:
        draw(json.load(f)['panels'], path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
