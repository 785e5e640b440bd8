"""The pool's data: import (format and importer), pool actions, the item browser, backup and restore."""
