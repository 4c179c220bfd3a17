# compute-api release notes: Sphinx configuration.
#
# Build it from the top of the repository (reno reads the notes from the
# git history, so they must be committed):
#
#   sphinx-build -W -b html -d releasenotes/build/doctrees \
#       releasenotes/source releasenotes/build/html

extensions = [
    'openstackdocstheme',
    'reno.sphinxext',
]

project = 'compute-api Release Notes'
copyright = 'compute-api developers'
source_suffix = {'.rst': 'restructuredtext'}
master_doc = 'index'
language = 'en'
pygments_style = 'native'

html_theme = 'openstackdocs'

# The release notes are versioned by the notes themselves, not by Sphinx.
version = ''
release = ''
openstackdocs_auto_name = False
openstackdocs_auto_version = False
openstackdocs_repo_name = ''
openstackdocs_bug_project = ''
openstackdocs_bug_tag = 'releasenotes'
