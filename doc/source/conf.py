# compute-api operator documentation: Sphinx configuration.
#
# Build it from the top of the repository, with the package installed (the
# configuration and policy pages are generated from the code):
#
#   sphinx-build -W -b html -d doc/build/doctrees doc/source doc/build/html

extensions = [
    'openstackdocstheme',
    'oslo_config.sphinxext',
    'oslo_config.sphinxconfiggen',
    'oslo_policy.sphinxext',
    'oslo_policy.sphinxpolicygen',
]

project = 'compute-api'
copyright = 'compute-api developers'
source_suffix = {'.rst': 'restructuredtext'}
master_doc = 'index'
language = 'en'
pygments_style = 'native'

html_theme = 'openstackdocs'
html_theme_options = {
    'sidebar_mode': 'toc',
}

openstackdocs_auto_name = False
openstackdocs_auto_version = False
openstackdocs_repo_name = ''
openstackdocs_bug_project = ''
openstackdocs_bug_tag = 'doc'
version = ''
release = ''

# The sample configuration and policy files, generated at build time from
# the same generator files as ``tox -e genconfig`` and ``tox -e genpolicy``
# into doc/source/_static (not committed), and offered for download.
config_generator_config_file = (
    '../../etc/compute_api/compute-api-config-generator.conf')
sample_config_basename = '_static/compute_api'
policy_generator_config_file = (
    '../../etc/compute_api/compute-api-policy-generator.conf')
sample_policy_basename = '_static/compute_api'
