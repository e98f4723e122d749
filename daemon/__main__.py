"""``python -m daemon`` is the ``accesstrail`` command."""

from daemon.cli import main

main(prog_name="accesstrail")
