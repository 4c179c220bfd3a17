# compute-api API reference: Sphinx configuration.
#
# Build it from the top of the repository:
#
#   sphinx-build -W -b html -d api-ref/build/doctrees \
#       api-ref/source api-ref/build/html

extensions = [
    'os_api_ref',
    'openstackdocstheme',
]

project = 'compute-api'
copyright = 'compute-api developers'
source_suffix = {'.rst': 'restructuredtext'}
master_doc = 'index'
language = 'en'
pygments_style = 'native'
add_module_names = False

# The samples are JSON; the .inc files are pulled in by index.rst.
exclude_patterns = ['*.inc']

html_theme = 'openstackdocs'
html_theme_options = {
    'sidebar_mode': 'toc',
}
html_title = 'Compute API (compute-api) reference'

# openstackdocstheme: no version in the API reference (it describes the API
# by microversion, not by release); the project name is set above.
openstackdocs_auto_name = False
openstackdocs_auto_version = False
openstackdocs_repo_name = ''
openstackdocs_bug_project = ''
openstackdocs_bug_tag = 'api-ref'
