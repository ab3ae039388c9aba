"""Root conftest of this repository's suites. hilt's own fixtures (node, lease_nodes, release_gate, ...) come
from the installed plugin (``hilt.pytestplugin``, the ``pytest11`` entry point); this loads the site's own."""

pytest_plugins = ["fixtures"]
