"""`python -m tilewise ...` is the `tilewise` command."""
import sys

from .cli import main

sys.exit(main())
