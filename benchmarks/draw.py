"""Latency distributions as a picture (matplotlib, not a requirement of the
project: the tools' environment has it).

``harness.draw_cdfs`` draws in process when matplotlib is importable, and
otherwise runs this module in the tools' environment (``.venv``) with the
samples in a JSON file::

    .venv/bin/python -m benchmarks.draw SAMPLES.json OUT.png

SAMPLES.json: ``{"panels": {panel title: {curve label: [ms, ...]}}}``.
"""

import json
import sys


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
