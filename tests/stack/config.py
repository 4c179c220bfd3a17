"""Reading and writing the services' ini files."""

import configparser


def write_ini(path, sections):
    """Write ``{section: {option: value}}`` as an ini file."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict({s: {k: str(v) for k, v in opts.items()}
                      for s, opts in sections.items()})
    with open(path, 'w') as f:
        parser.write(f)


def read_ini(path):
    """Read an ini file back as ``{section: {option: value}}``."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    sections = {'DEFAULT': dict(parser.defaults())}
    for name in parser.sections():
        sections[name] = {k: v for k, v in parser.items(name)
                          if k not in parser.defaults()}
    return sections
