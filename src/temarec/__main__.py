"""`python -m temarec ...`: the same as the `temarec` command (tagging workers start themselves this way)."""

from temarec.cli import main

main(prog_name="temarec")
